"""The static leaderboard site: index.html, one SVG pair per section, one page per method.

A pure function of the result store view, the task files and the submissions' static strings
(`CITATION` and `REPORTED`, read with ast, never executed). No server, no CDN, no external file:
styles and the sorting/filter script are inline, plots are SVG files beside the page (matplotlib,
fixed hash salt, text kept as text, no date), so rebuilding from the same store gives
byte-identical files and the committed site can be checked for staleness.

Layout under `site/`:
    index.html                        one section per (task, task version, metrics version, T)
    plots/<section>-energy.svg        accuracy against energy, the Pareto front marked
    plots/<section>-anytime.svg       accuracy after each timestep (the anytime curve)
    plots/<section>-firing.svg        firing rate per spiking layer
    methods/<method>.html             its paper (CITATION), REPORTED beside the measured figures
"""

from __future__ import annotations

import html
import io
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from . import leaderboard as lb
from .cite import ENERGY_CARD, read_citation, submission_file
from .store import StoreView
from .submission import static_constant
from .tasks import Task

# Where the committed site sits in the repository: method pages link to a submission's README
# relative to it (../../../baselines/x/README.md), which is right for leaderboard/site/.
SITE_IN_REPO = PurePosixPath("leaderboard/site")
ENERGY_KEY = f"energy_uj_per_sample[{ENERGY_CARD}]"
SVG_RC = {"svg.hashsalt": "snnbench", "svg.fonttype": "none", "font.size": 9}

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:100%;padding:0 1em;color:#222;"
    "font-size:15px}"
    "table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:.2em .35em;text-align:right;vertical-align:top}"
    # headers such as "training J (horowitz45nm-fp32)" may break anywhere: the columns
    # stay as narrow as their numbers, so seeds and result ids fit at 1280 px
    "th{background:#f3f3f3;cursor:pointer;user-select:none;overflow-wrap:anywhere}th.sorted-asc::after{content:' \\25B2'}"
    "th.sorted-desc::after{content:' \\25BC'}"
    "td.l,th.l{text-align:left}td.ids{text-align:left;max-width:11em}td.ids code{display:inline-block}"
    "td.num{white-space:nowrap}td.num small{color:#666}figure{margin:0;flex:0 1 600px}"
    "code{font-family:ui-monospace,monospace;font-size:92%;background:#f4f4f4;padding:0 .15em}"
    "pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;word-break:break-word}.note{color:#555}"
    ".plots{display:flex;flex-wrap:wrap;gap:1em}.plots img{max-width:100%;height:auto;border:1px solid #eee}"
    "input.filter{margin:.3em 0;padding:.2em .4em;width:18em}nav li{margin:.1em 0}"
)

# Sorting: click a header (numbers sort by the value in data-v, text by its content; a second
# click reverses); filter: rows whose method cell contains the typed text. No external file.
_JS = """
(function () {
  function key(td) {
    var v = td.getAttribute('data-v');
    if (v !== null) { return v === '' ? null : parseFloat(v); }
    return td.textContent.trim().toLowerCase();
  }
  document.querySelectorAll('table.lb').forEach(function (table) {
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function (th, col) {
      th.addEventListener('click', function () {
        var asc = !th.classList.contains('sorted-asc');
        heads.forEach(function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
        th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === null && y === null) { return 0; }
          if (x === null) { return 1; }
          if (y === null) { return -1; }
          var c = x < y ? -1 : (x > y ? 1 : 0);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    input.addEventListener('input', function () {
      var table = document.getElementById(input.getAttribute('data-table'));
      var text = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var name = r.cells[0].textContent.toLowerCase();
        r.style.display = name.indexOf(text) >= 0 ? '' : 'none';
      });
    });
  });
})();
"""


def inline(text: str) -> str:
    """HTML for one line of page text: escaped, with `code` spans as <code> (never literal backticks)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick stays a character
        parts = [*parts[:-2], parts[-2] + "`" + parts[-1]]
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_.") or "x"


def section_slug(key: tuple) -> str:
    task_id, version, metrics_version, timesteps = key
    return slug(f"{task_id}-v{int(version)}-T{int(timesteps)}-m{metrics_version}")


def _page(title: str, body: Sequence[str], script: bool = False) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        *body,
    ]
    if script:
        out.append(f"<script>{_JS}</script>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _blocks_html(blocks: Sequence[lb.Block]) -> list[str]:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{inline(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f'<p class="note">{inline(b.text)}</p>')
        elif b.kind == "ul":
            out.append("<ul>" + "".join(f"<li>{inline(str(i))}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            align = list(b.align) or ["left"] + ["right"] * (len(b.headers) - 1)
            cls = ['class="l"' if a == "left" else "" for a in align]
            head = "".join(
                f"<th {c}>{inline(str(h))}</th>".replace("<th >", "<th>") for c, h in zip(cls, b.headers)
            )
            body = "".join(
                "<tr>"
                + "".join(f"<td {c}>{inline(str(x))}</td>".replace("<td >", "<td>") for c, x in zip(cls, r))
                + "</tr>\n"
                for r in b.rows
            )
            out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>")
        elif b.kind == "pre":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
    return out


def _num_attr(v: float) -> str:
    return "" if v is None or not math.isfinite(v) else repr(float(v))


def _num_cell(text: str) -> str:
    """A figure cell: the mean, and the spread over seeds under it in small type."""
    mean, sep, spread = text.partition(" ± ")
    return html.escape(mean) + (f"<br><small>± {html.escape(spread)}</small>" if sep else "")


def _flags(row: pd.Series) -> str:
    flags = []
    if row["uncounted"]:
        flags.append(f"{lb.LOWER_BOUND} lower bound")
    if row["gradient_masking"]:
        flags.append(f"{lb.MASKED} masking")
    if row["budget_cut"]:
        flags.append(f"{lb.BUDGET_CUT} budget cut")
    return ", ".join(flags)


def method_page_name(method: str) -> str:
    return f"methods/{slug(method)}.html"


def _section_table(part: pd.DataFrame, table_id: str, several: bool) -> str:
    cols = lb.shown_columns(part)
    rank = next((k for k in lb.RANK_KEYS if part[f"{k}_n"].sum() > 0), None)
    part = part.copy()
    part["_rank"] = -part[f"{rank}_mean"].fillna(-np.inf) if rank else 0.0
    part = part.sort_values(["_rank", "method", "origin"], kind="stable")
    dup = part["method"].duplicated(keep=False)
    e = html.escape
    head = ['<th class="l">method</th>', *[f"<th>{e(c.header)}</th>" for c in cols]]
    head += ['<th class="l">flags</th>', "<th>seeds</th>", '<th class="l">result ids</th>']
    body = []
    for (_, row), is_dup in zip(part.iterrows(), dup):
        name = row["method"]
        label = name + (f" ({row['origin']})" if several or is_dup else "")
        cells = [f'<td class="l"><a href="{e(method_page_name(name))}">{e(label)}</a></td>']
        for c in cols:
            cells.append(
                f'<td class="num" data-v="{_num_attr(row[f"{c.key}_mean"])}">{_num_cell(lb._cell(row, c))}</td>'
            )
        cells.append(f'<td class="l">{e(_flags(row))}</td>')
        cells.append(f'<td data-v="{int(row["runs"])}">{e(row["seeds"])}</td>')
        ids = " ".join(f"<code>{e(r)}</code>" for r in row["result_ids"].split())
        cells.append(f'<td class="ids">{ids}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<label>Filter by method: <input class="filter" type="search" data-table="{table_id}" '
        'placeholder="method name"></label>\n'
        f'<table class="lb" id="{table_id}">\n<thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


# ---------------------------------------------------------------------------------------------
# plots


def _svg(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _tex_safe(text: str) -> str:
    return str(text).replace("$", r"\$")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower or equal x, higher or equal y, one strictly),
    ordered by x: the accuracy-vs-energy front."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 <= x and y2 >= y and (x2 < x or y2 > y)) for j, (x2, y2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def energy_plot(part: pd.DataFrame, title: str) -> bytes | None:
    """Accuracy (%) against µJ/sample under the compute card, one point per row with error bars
    over seeds, the Pareto front as a step line. None when the rows lack either figure."""
    import matplotlib
    from matplotlib.figure import Figure

    have = part[(part["accuracy_n"] > 0) & (part[f"{ENERGY_KEY}_n"] > 0)]
    if not len(have):
        return None
    have = have.sort_values(["method", "origin"])
    labels = list(have["method"])
    if have["method"].duplicated().any():
        labels = [f"{m} ({o})" for m, o in zip(have["method"], have["origin"])]
    x = have[f"{ENERGY_KEY}_mean"].to_numpy(dtype=float)
    y = 100 * have["accuracy_mean"].to_numpy(dtype=float)
    xerr = np.nan_to_num(have[f"{ENERGY_KEY}_std"].to_numpy(dtype=float))
    yerr = np.nan_to_num(100 * have["accuracy_std"].to_numpy(dtype=float))
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", color="#1f77b4", ecolor="#9ab", capsize=2)
        front = pareto_front(list(zip(x, y)))
        fx, fy = x[front], y[front]
        ax.step(fx, fy, where="post", color="#d62728", lw=1.2, label="Pareto front")
        ax.plot(fx, fy, "o", mfc="none", mec="#d62728", ms=10)
        for xi, yi, name in zip(x, y, labels):
            ax.annotate(_tex_safe(name), (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if np.all(x > 0) and x.max() / max(x.min(), 1e-30) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(f"µJ per sample ({ENERGY_CARD}, compute)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(_tex_safe(title), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        return _svg(fig)


def anytime_curves(chosen: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per row label: (timesteps, mean accuracy over the row's seeds) from the `accuracy` rows that
    carry a timestep (no layer, no condition)."""
    acc = metrics[
        (metrics["metric"] == "accuracy")
        & metrics["timestep"].notna()
        & metrics["layer"].isna()
        & metrics["condition"].isna()
    ]
    acc = acc[acc["result_id"].isin(set(chosen["result_id"]))]
    if not len(acc):
        return {}
    label_of = {}
    dup = chosen.drop_duplicates(["method", "origin"])["method"].duplicated(keep=False).any()
    for r in chosen.itertuples(index=False):
        label_of[r.result_id] = f"{r.method} ({r.origin})" if dup else r.method
    acc = acc.assign(label=acc["result_id"].map(label_of))
    out = {}
    for label, g in acc.groupby("label", sort=True):
        per_t = g.groupby("timestep", sort=True)["value"].mean()
        out[label] = (per_t.index.to_numpy(dtype=float), per_t.to_numpy(dtype=float))
    return out


def anytime_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> bytes | None:
    import matplotlib
    from matplotlib.figure import Figure

    if not curves:
        return None
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        for label, (t, acc) in curves.items():
            ax.plot(t, 100 * acc, marker="o", ms=3, label=_tex_safe(label))
        ax.set_xlabel("timesteps seen (prediction from outputs 1..t)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(_tex_safe(title), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        return _svg(fig)


def _natural(name: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(name)) if t)


def layer_rates(chosen: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """Per row label: [(layer, mean firing rate over the row's seeds)], layers in natural name order
    (module names: features.2 before features.10), from the `firing_rate` rows with a layer and
    neither timestep nor condition."""
    fr = metrics[
        (metrics["metric"] == "firing_rate")
        & metrics["layer"].notna()
        & metrics["timestep"].isna()
        & metrics["condition"].isna()
    ]
    fr = fr[fr["result_id"].isin(set(chosen["result_id"]))]
    if not len(fr):
        return {}
    dup = chosen.drop_duplicates(["method", "origin"])["method"].duplicated(keep=False).any()
    out = {}
    for (method, origin), g in chosen.groupby(["method", "origin"], sort=True):
        ids = sorted(g["result_id"])
        rows = fr[fr["result_id"].isin(ids)]
        if not len(rows):
            continue
        order = sorted(set(rows["layer"]), key=_natural)
        means = rows.groupby("layer")["value"].mean()
        out[f"{method} ({origin})" if dup else method] = [
            (str(layer), float(means[layer])) for layer in order
        ]
    return out


def firing_plot(rates: dict[str, list[tuple[str, float]]], title: str) -> bytes | None:
    """Horizontal bars: each row's spiking layers, top to bottom, one colour per row."""
    import matplotlib
    from matplotlib.figure import Figure

    if not rates:
        return None
    labels, values, colors = [], [], []
    palette = matplotlib.colormaps["tab10"]
    for i, (name, layers) in enumerate(rates.items()):
        for layer, v in layers:
            labels.append(_tex_safe(f"{name}: {layer}"))
            values.append(v)
            colors.append(palette(i % 10))
    with matplotlib.rc_context(SVG_RC):
        fig = Figure(figsize=(6.4, 1.2 + 0.22 * len(values)))
        ax = fig.add_subplot()
        y = np.arange(len(values))[::-1]
        ax.barh(y, values, color=colors)
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_xlabel("firing rate (spikes per neuron update, mean over seeds)")
        ax.set_title(_tex_safe(title), fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
        return _svg(fig)


# ---------------------------------------------------------------------------------------------
# method pages


def _fmt_reported(key: str, value) -> str:
    if isinstance(value, float) and 0 <= value <= 1 and "acc" in key.lower():
        return f"{100 * value:.2f} %"
    return str(value)


def _readme_link(submission_path: str, submissions_root, relative: bool = True) -> str | None:
    """A link to the README.md beside the submission, when there is one: relative to the
    committed site (leaderboard/site/methods/ -> ../../../baselines/x/README.md) when `relative`
    and the path is inside the repository, else the README's absolute file:// URI (a page built in
    a user's store folder, which lives outside the repository)."""
    path = submission_file(submission_path, submissions_root)
    readme = path.parent / "README.md"
    if not readme.is_file():
        return None
    p = PurePosixPath(str(submission_path))
    if not relative or p.is_absolute() or ".." in p.parts:
        return readme.resolve().as_uri()
    rel_folder = p if path.name == "__init__.py" and p.suffix != ".py" else p.parent
    up = "../" * (len(SITE_IN_REPO.parts) + 1)
    return f"{up}{(rel_folder / 'README.md').as_posix()}"


def robustness(chosen: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """robust_accuracy per (table, origin, method, attack condition): mean and sample std over the
    chosen runs that measured it (the `robustness` metric family, where it was run)."""
    cols = [*lb.GROUP_KEYS, "origin", "method", "condition", "mean", "std", "n"]
    rob = metrics[
        (metrics["metric"] == "robust_accuracy") & metrics["layer"].isna() & metrics["timestep"].isna()
    ]
    rob = rob[rob["result_id"].isin(set(chosen["result_id"]))]
    if not len(rob):
        return pd.DataFrame(columns=cols)
    rob = rob.merge(chosen[["result_id", *lb.GROUP_KEYS, "origin", "method"]], on="result_id")
    keys = [*lb.GROUP_KEYS, "origin", "method", "condition"]
    out = rob.groupby(keys, sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"count": "n"})[cols]


def _robust_table(rob: pd.DataFrame) -> list[str]:
    if not len(rob):
        return []
    e = html.escape
    trs = []
    order = rob.assign(_k=[lb._sort_key(tuple(k)) for k in rob[lb.GROUP_KEYS].itertuples(index=False)])
    for _, r in order.sort_values(["_k", "origin", "condition"]).iterrows():
        task = (
            f"{r['task']} v{int(r['task_version'])}, T={int(r['timesteps'])}, metrics v{r['metrics_version']}"
        )
        text = _pct(r["mean"]) if r["n"] == 1 else f"{_pct(r['mean'])} ± {_pct(r['std'])}"
        trs.append(
            f'<tr><td class="l">{e(task)}</td><td class="l">{e(str(r["condition"]))}</td>'
            f'<td class="num">{_num_cell(text)}</td><td>{int(r["n"])}</td></tr>'
        )
    return [
        "<h2>Robustness (where measured)</h2>",
        '<table>\n<thead><tr><th class="l">table</th><th class="l">attack</th><th>robust top-1 %</th>'
        "<th>runs</th></tr></thead>\n<tbody>\n" + "\n".join(trs) + "\n</tbody>\n</table>",
    ]


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def method_page(
    method: str,
    rows: pd.DataFrame,
    submissions_root,
    rob: pd.DataFrame | None = None,
    relative_links: bool = True,
) -> str:
    e = html.escape
    body = ['<p><a href="../index.html">← leaderboard</a></p>', f"<h1>{e(method)}</h1>"]
    paths = sorted(set(rows["submission_path"]))
    for sp in paths:
        link = _readme_link(sp, submissions_root, relative_links)
        line = f"Submission: <code>{e(sp)}</code>"
        if link:
            line += f' · <a href="{e(link)}">README (method, mechanism, reproduction checks)</a>'
        body.append(f"<p>{line}</p>")

    body.append("<h2>Measured here</h2>")
    cols = lb.shown_columns(rows)
    head = ['<th class="l">task</th>', "<th>T</th>", *[f"<th>{e(c.header)}</th>" for c in cols]]
    head += ['<th class="l">flags</th>', "<th>seeds</th>", '<th class="l">result ids</th>']
    trs = []
    order = rows.assign(_k=[lb._sort_key(tuple(k)) for k in rows[lb.GROUP_KEYS].itertuples(index=False)])
    for _, r in order.sort_values(["_k", "origin"]).iterrows():
        key = tuple(r[k] for k in lb.GROUP_KEYS)
        task = f"{r['task']} v{int(r['task_version'])}, metrics v{r['metrics_version']}"
        if rows["origin"].nunique() > 1:
            task += f" ({r['origin']})"
        cells = [
            f'<td class="l"><a href="../index.html#{section_slug(key)}">{e(task)}</a></td>',
            f"<td>{int(r['timesteps'])}</td>",
            *[f'<td class="num">{_num_cell(lb._cell(r, c))}</td>' for c in cols],
            f'<td class="l">{e(_flags(r))}</td>',
            f"<td>{e(r['seeds'])}</td>",
            '<td class="ids">' + " ".join(f"<code>{e(x)}</code>" for x in r["result_ids"].split()) + "</td>",
        ]
        trs.append("<tr>" + "".join(cells) + "</tr>")
    body.append(
        f"<table>\n<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n"
        + "\n".join(trs)
        + "\n</tbody>\n</table>"
    )

    if rob is not None:
        body += _robust_table(rob)

    body.append("<h2>Reported by the paper</h2>")
    for sp in paths:
        reported = static_constant(submission_file(sp, submissions_root), "REPORTED")
        if isinstance(reported, dict) and reported:
            items = sorted(reported.items(), key=lambda kv: str(kv[0]))
            trs = "".join(
                f'<tr><td class="l">{e(str(k))}</td><td>{e(_fmt_reported(str(k), v))}</td></tr>'
                for k, v in items
            )
            body.append(
                f'<table>\n<thead><tr><th class="l">figure (REPORTED in <code>{e(sp)}</code>)</th>'
                f"<th>value</th></tr></thead>\n<tbody>{trs}</tbody>\n</table>"
            )
            body.append(
                '<p class="note">The paper\'s figures are on its own datasets and protocol; the measured '
                "rows above are this harness's tasks, so compare the trend, not the digits.</p>"
            )
        else:
            body.append(f'<p class="note"><code>{e(sp)}</code> declares no REPORTED figures.</p>')

    body.append("<h2>Paper</h2>")
    cited = False
    for sp in paths:
        text = read_citation(sp, submissions_root)
        if text:
            body.append(f"<pre>{e(text)}</pre>")
            cited = True
    if not cited:
        body.append('<p class="note">No CITATION string in the submission.</p>')
    body.append(
        '<p class="note">Cite a measured row with <code>snnbench cite RESULT_ID</code>, or a whole table '
        "with <code>snnbench cite --task TASK --timesteps T</code>.</p>"
    )
    return _page(f"{method} - snnbench", body)


# ---------------------------------------------------------------------------------------------
# the index and the whole site


def site_files(
    view: StoreView,
    tasks: dict[str, Task],
    store_root: Path,
    submissions_root: str | os.PathLike | None = None,
    relative_links: bool = True,
) -> dict[str, bytes]:
    """Every file of the site, by path relative to site/: a pure function of its arguments.
    `relative_links`: method pages link READMEs relative to the repository's leaderboard/site/
    (the committed page), else by absolute file:// URI."""
    runs = view.runs
    if "origin" not in runs.columns:
        runs = runs.assign(origin=lb.ORIGIN_OWN)
    view = StoreView(runs, view.metrics, view.corrupt)
    blocks = lb.page_blocks(view, tasks, store_root, submissions_root)
    files: dict[str, bytes] = {}
    e = html.escape
    # the intro (h1 and the paragraphs before the first section) comes from the Markdown page's blocks
    intro = []
    for b in blocks:
        if b.kind == "h2":
            break
        intro.append(b)
    body = _blocks_html(intro)
    if not len(runs):
        files["index.html"] = _page("snnbench leaderboard", body).encode()
        return files

    summary = lb.summarize(view)
    chosen, superseded = lb.select_runs(runs)
    several = runs["origin"].nunique() > 1
    keys = sorted({tuple(k) for k in runs[lb.GROUP_KEYS].itertuples(index=False)}, key=lb._sort_key)
    nav = []
    for key in keys:
        heading, _ = lb._section_title(key, tasks)
        nav.append(f'<li><a href="#{section_slug(key)}">{e(heading)}</a></li>')
    body.append("<nav><p>Sections:</p><ul>" + "".join(nav) + "</ul></nav>")
    if len(summary):
        methods = sorted(set(summary["method"]))
        links = ", ".join(f'<a href="{e(method_page_name(m))}">{e(m)}</a>' for m in methods)
        body.append(f"<p>Method pages (paper, reported figures, README): {links}.</p>")

    for key in keys:
        heading, note = lb._section_title(key, tasks)
        sid = section_slug(key)
        body += [f'<section id="{sid}">', f"<h2>{e(heading)}</h2>", f'<p class="note">{inline(note)}</p>']
        part = summary[lb._match(summary, key)] if len(summary) else summary
        if len(part):
            body.append(_section_table(part, f"t-{sid}", several))
            cmd = f"snnbench cite --task {key[0]} --timesteps {int(key[3])}"
            body.append(f'<p class="note">BibTeX for every row: <code>{e(cmd)}</code></p>')
            body += _blocks_html(lb._footnotes(part))
            plots = []
            svg = energy_plot(part, heading)
            if svg is not None:
                name = f"plots/{sid}-energy.svg"
                files[name] = svg
                plots.append(
                    f'<figure><img src="{name}" alt="accuracy against energy, {e(heading)}" width="600">'
                    "<figcaption>Accuracy against energy per sample; red: the Pareto front (no other row "
                    "is both cheaper and more accurate).</figcaption></figure>"
                )
            sec_chosen = chosen[lb._match(chosen, key)] if len(chosen) else chosen
            svg = anytime_plot(anytime_curves(sec_chosen, view.metrics), heading)
            if svg is not None:
                name = f"plots/{sid}-anytime.svg"
                files[name] = svg
                plots.append(
                    f'<figure><img src="{name}" alt="anytime accuracy, {e(heading)}" width="600">'
                    "<figcaption>Anytime accuracy: the prediction from the outputs of the first t "
                    "timesteps, mean over seeds (rows whose runs stored no per-timestep accuracy are not drawn)."
                    "</figcaption></figure>"
                )
            svg = firing_plot(layer_rates(sec_chosen, view.metrics), heading)
            if svg is not None:
                name = f"plots/{sid}-firing.svg"
                files[name] = svg
                plots.append(
                    f'<figure><img src="{name}" alt="firing rate per layer, {e(heading)}" width="600">'
                    "<figcaption>Firing rate of each spiking layer, mean over seeds.</figcaption></figure>"
                )
            if plots:
                body.append('<div class="plots">' + "".join(plots) + "</div>")
        else:
            body.append('<p class="note">No reportable run for this task and T.</p>')
        n_sup = int(lb._match(superseded, key).sum()) if len(superseded) else 0
        left = lb._left_out(runs[lb._match(runs, key)], n_sup)
        if left:
            body.append(f'<p class="note">{inline(left)}</p>')
        body.append("</section>")

    body += _blocks_html(lb._left_out_table(runs, superseded))
    files["index.html"] = _page("snnbench leaderboard", body, script=True).encode()

    rob = robustness(chosen, view.metrics)
    for method, rows in summary.groupby("method", sort=True):
        page = method_page(method, rows, submissions_root, rob[rob["method"] == method], relative_links)
        files[method_page_name(method)] = page.encode()
    return files


def write_site(files: dict[str, bytes], site_dir: str | os.PathLike) -> list[Path]:
    """Write the files under site_dir (sorted, index.html first); return their paths."""
    site = Path(site_dir)
    names = sorted(files, key=lambda n: (n != "index.html", n))
    written = []
    for name in names:
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
        written.append(path)
    return written
