"""The leaderboard: a pure function of the result store, the task files and CITATION strings.

`build()` reads the store once, aggregates reportable runs per (task, task version, metrics
version, T) and method (mean ± sample std over seeds), and writes LEADERBOARD.md (tabulate, github
tables) and the static site (snnbench/site.py: site/index.html with sortable, filterable tables,
SVG plots per section, a page per method). Nothing else is read (no clock, no environment beyond
the task directory and the submissions' static strings), and everything is sorted, so rebuilding
from the same store gives byte-identical files.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from .cite import ENERGY_CARD, ENERGY_CARD_MEM, headline, read_citation
from .store import Store, StoreView, is_uri
from .tasks import Task, load_tasks

LOWER_BOUND = "≥"
MASKED = "†"
BUDGET_CUT = "‡"
ORIGIN_OWN = "yours"
ORIGIN_COMMITTED = "baseline"


def _si(v: float) -> str:
    """Three significant digits with an SI suffix: counts span 1 to 1e12 across tasks."""
    if not math.isfinite(v):
        return str(v)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def _g3(v: float) -> str:
    return f"{v:.3g}"


def _f3(v: float) -> str:
    return f"{v:.3f}"


def _f2(v: float) -> str:
    return f"{v:.2f}"


@dataclass(frozen=True)
class Column:
    """One leaderboard column: a headline figure (see cite.headline) and how to print it."""

    header: str
    key: str
    fmt: Callable[[float], str]
    activity: bool = False  # a lower bound when the run has uncounted modules
    # shown only in tables where some row's mean is non-zero (weight sparsity: a pruned network)
    only_if_nonzero: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("top-1 %", "accuracy", _pct),
    Column("top-5 %", "accuracy_top5", _pct),
    Column("human-norm. score", "human_normalized_score", _f2),
    Column("return", "episode_return_mean", _g3),
    Column("spikes/sample", "spikes_per_sample", _si, activity=True),
    Column("SynOps/sample", "synops_per_sample", _si, activity=True),
    Column("MACs/sample", "macs_per_sample", _si, activity=True),
    Column("µJ/sample compute", f"energy_uj_per_sample[{ENERGY_CARD}]", _g3, activity=True),
    Column("µJ/sample memory-aware", f"energy_uj_per_sample[{ENERGY_CARD_MEM}]", _g3, activity=True),
    Column("decision step", "decision_timestep", _f2),
    Column("latency ms/sample", "latency_ms_per_sample", _g3),
    Column("params", "params", _si),
    Column("weight sparsity %", "weight_sparsity", _pct, only_if_nonzero=True),
)
# Figures shown only where some run measured them, one column per `condition` the rows carry
# (the energy model of a training estimate, the FPR of a membership-inference TPR), named
# `metric[condition]` like the energy cards: (metric, header, format, placed after this key).
MEASURED: tuple[tuple[str, str, Callable[[float], str], str], ...] = (
    ("training_energy_j", "training J", _g3, f"energy_uj_per_sample[{ENERGY_CARD_MEM}]"),
    ("mia_auc", "MIA AUC", _f3, "params"),  # RMIA's, see _strongest_attack
    ("mia_tpr_at_fpr", "MIA TPR", _f3, "params"),
    ("class_leakage", "class leakage", _f3, "params"),
    ("robust_accuracy", "robust acc", _f3, "accuracy_top5"),
)
_MEASURED = {m[0]: m for m in MEASURED}


def _worst_case(condition: str) -> str | None:
    """Only the headline of the robustness family, shortened: "worst case eps=0.1 over fgsm,... x
    surrogates ..." -> "worst eps=0.1" (the full condition is in the store and on `snnbench show`)."""
    if not condition.startswith("worst case "):
        return None
    return "worst " + condition[len("worst case ") :].split(" over ")[0]


def _strongest_attack(condition: str) -> str | None:
    """Membership inference: the table shows the strongest attack, offline RMIA (Zarifzadeh et al.
    2024); the loss and LiRA figures stay in the store. Conditions without an attack name (older or
    hand-made rows) are shown as they are."""
    if not condition.startswith("attack="):
        return condition
    attack, _, rest = condition.partition(" ")
    if attack != "attack=rmia" or (rest and rest != "fpr=0.01"):
        return None  # the table keeps RMIA's AUC and its TPR at the lowest FPR, 0.01
    return condition[len("attack=") :]


def _headline_training_card(condition: str) -> str | None:
    """Training energy priced like the inference columns (Horowitz 45 nm), one column whatever the
    training model ("sata-bptt/<card>", or "sata-bptt+stdp/<card>" for local learning): the
    column names the card, the full condition is in the store and on `snnbench show`. The
    SATA_Sim-constant estimate (its unit assumed) stays in the store."""
    if "satasim" in condition:
        return None
    return condition.rpartition("/")[2]


# Metrics with many conditions, of which the table shows a few: condition -> column label or None.
_SHOWN_CONDITIONS: dict[str, Callable[[str], str | None]] = {
    "robust_accuracy": _worst_case,
    "mia_auc": _strongest_attack,
    "mia_tpr_at_fpr": _strongest_attack,
    "training_energy_j": _headline_training_card,
}


def _measured_key(metric: str, condition) -> str:
    return metric if not isinstance(condition, str) or not condition else f"{metric}[{condition}]"


def _measured_column(key: str) -> Column:
    metric, _, cond = key.partition("[")
    _, header, fmt, _ = _MEASURED[metric]
    cond = cond.rstrip("]")
    if cond:
        header += f" @ {cond}" if "=" in cond else f" ({cond})"
    return Column(header, key, fmt)


def measured_figures(metrics: pd.DataFrame) -> dict[str, float]:
    """The MEASURED figures of one run's metric rows (totals: no layer, no timestep), by key."""
    if metrics.empty:
        return {}
    rows = metrics[
        metrics["metric"].isin(list(_MEASURED)) & metrics["layer"].isna() & metrics["timestep"].isna()
    ]
    out: dict[str, float] = {}
    for r in rows.itertuples(index=False):
        condition = r.condition
        if r.metric in _SHOWN_CONDITIONS:
            condition = _SHOWN_CONDITIONS[r.metric](condition if isinstance(condition, str) else "")
            if condition is None:
                continue
        out.setdefault(_measured_key(r.metric, condition), float(r.value))
    return out


def columns(frame: pd.DataFrame | None = None) -> list[Column]:
    """COLUMNS and, where `frame` (a summary, see summarize()) has them, the MEASURED columns, each
    after the column its MEASURED entry names, conditions in name order."""
    keys = set() if frame is None else {c[: -len("_n")] for c in frame.columns if c.endswith("_n")}
    extra = sorted(k for k in keys if k.partition("[")[0] in _MEASURED)
    out = []
    for col in COLUMNS:
        out.append(col)
        for metric, _, _, after in MEASURED:
            if after == col.key:
                out += [_measured_column(k) for k in extra if k.partition("[")[0] == metric]
    return out


def shown_columns(part: pd.DataFrame) -> list[Column]:
    """The columns a table of `part` (summary rows) prints: those some row measured, less the
    only_if_nonzero ones that are zero in every row (a dense network's weight sparsity)."""
    out = []
    for c in columns(part):
        if part[f"{c.key}_n"].sum() <= 0:
            continue
        if c.only_if_nonzero and not (part[f"{c.key}_mean"].fillna(0) != 0).any():
            continue
        out.append(c)
    return out


# The figure that orders a table, best first: the first one its rows have.
RANK_KEYS = ("accuracy", "human_normalized_score", "episode_return_mean")
GROUP_KEYS = ["task", "task_version", "metrics_version", "timesteps"]


# ---------------------------------------------------------------------------------------------
# aggregation


def _run_figures(metrics: pd.DataFrame) -> tuple[dict[str, dict[str, float]], set[str]]:
    """Per result id: headline figures; and the ids with gradient_masking_suspected set."""
    figures = {
        rid: {**headline(m), **measured_figures(m)} for rid, m in metrics.groupby("result_id", sort=True)
    }
    flagged = metrics[(metrics["metric"] == "gradient_masking_suspected") & (metrics["value"] >= 0.5)]
    return figures, set(flagged["result_id"])


def _reportable_ok(runs: pd.DataFrame) -> pd.Series:
    return (runs["status"] == "ok") & runs["reportable"].astype(bool)


def select_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(chosen, superseded) among the reportable ok runs: the rule of one run per (method, seed).

    Within a table (task, task version, metrics version, T) and store origin, a method's newest
    submission version (the submission_sha256 of its newest run) is the one shown; of its runs,
    the newest per seed is kept. Everything else reportable (a re-trained seed, an older
    submission file, an evaluate repeated with other --metrics) is superseded: listed apart, never
    averaged in. Ties on created_at fall back to result_id, so the choice is deterministic.
    """
    good = runs[_reportable_ok(runs)]
    if not len(good):
        return good, good
    good = good.sort_values(["created_at", "result_id"], ascending=[False, False], kind="stable")
    keys = [*GROUP_KEYS, "origin", "method"]
    newest_sha = good.groupby(keys, sort=False)["submission_sha256"].transform("first")
    same_code = good["submission_sha256"] == newest_sha
    first_per_seed = ~good.duplicated([*keys, "seed"], keep="first")
    keep = same_code & first_per_seed
    return good[keep], good[~keep]


def _short_device(device: str) -> str:
    """ "cpu: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz (2 threads)" -> a short label."""
    return str(device).replace("(R)", "").replace("(TM)", "").replace(" CPU", "").strip()


def summarize(view: StoreView) -> pd.DataFrame:
    """One row per (task, task_version, metrics_version, T, origin, method): the runs select_runs()
    keeps, with `<key>_mean`, `<key>_std` (sample std, NaN for one run) and `<key>_n` per column key.

    Latency is averaged only over runs measured on one device; a row whose runs ran on several
    devices shows no latency (the devices are listed on the page instead of being averaged).
    """
    runs = view.runs
    if "origin" not in runs.columns:
        runs = runs.assign(origin=ORIGIN_OWN)
    chosen, _ = select_runs(runs)
    figures, flagged = _run_figures(view.metrics)
    measured = sorted({k for f in figures.values() for k in f if k.partition("[")[0] in _MEASURED})
    all_columns = [*COLUMNS, *(_measured_column(k) for k in measured)]
    rows = []
    for key, group in chosen.groupby([*GROUP_KEYS, "origin", "method"], sort=True):
        group = group.sort_values(["seed", "result_id"])
        ids = list(group["result_id"])
        uncounted = sorted({u for lst in group["uncounted"] for u in lst})
        devices = sorted({str(d) for d in group["device"]})
        commits = sorted({str(c)[:12] for c in group["git_commit"] if isinstance(c, str) and c})
        complete = group["train_budget_complete"] if "train_budget_complete" in group else pd.Series([])
        row = dict(zip([*GROUP_KEYS, "origin", "method"], key))
        row.update(
            submission_sha256=str(group["submission_sha256"].iloc[0]),
            submission_path=str(group["submission_path"].iloc[0]),
            runs=len(ids),
            seeds=", ".join(str(int(s)) for s in group["seed"]),
            result_ids=" ".join(ids),
            uncounted=", ".join(uncounted),
            gradient_masking=any(r in flagged for r in ids),
            devices=devices,
            commits=commits,
            budget_cut=bool((complete == False).any()),  # noqa: E712 - nullable column
        )
        for col in all_columns:
            vals = np.array([figures.get(r, {}).get(col.key, np.nan) for r in ids], dtype=np.float64)
            if col.key == "latency_ms_per_sample" and len(devices) > 1:
                vals = np.array([], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            row[f"{col.key}_n"] = len(vals)
            row[f"{col.key}_mean"] = float(vals.mean()) if len(vals) else np.nan
            row[f"{col.key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# a tiny document model rendered to Markdown and HTML from the same blocks


@dataclass(frozen=True)
class Block:
    kind: str  # h1, h2, p, ul, table, pre
    text: str = ""
    items: tuple = ()
    headers: tuple = ()
    rows: tuple = ()
    align: tuple = ()  # per column, "left" or "right"; default: first left, the rest right


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    out = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}")
        elif b.kind == "h2":
            out.append(f"## {b.text}")
        elif b.kind == "h3":
            out.append(f"### {b.text}")
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "ul":
            out.append("\n".join(f"- {i}" for i in b.items))
        elif b.kind == "table":
            align = list(b.align) or ["left"] + ["right"] * (len(b.headers) - 1)
            rows = [[_md_cell(c) for c in r] for r in b.rows]
            out.append(
                tabulate(
                    rows, headers=list(b.headers), tablefmt="github", disable_numparse=True, colalign=align
                )
            )
        elif b.kind == "pre":
            out.append(f"```bibtex\n{b.text}\n```")
    return "\n\n".join(out) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:80em;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}"
    "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}"
    "pre{background:#f6f6f6;padding:.6em;overflow-x:auto}.note{color:#555}"
)


def to_html(blocks: Sequence[Block], title: str) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f'<p class="note">{e(b.text)}</p>')
        elif b.kind == "ul":
            out.append("<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in b.headers)
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>\n" for r in b.rows)
            out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>")
        elif b.kind == "pre":
            out.append(f"<pre>{e(b.text)}</pre>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# the page


def _cell(row: pd.Series, col: Column) -> str:
    n, mean, std = row[f"{col.key}_n"], row[f"{col.key}_mean"], row[f"{col.key}_std"]
    if n == 0:
        return "–"
    text = col.fmt(mean) if n == 1 else f"{col.fmt(mean)} ± {col.fmt(std)}"
    if col.activity and row["uncounted"]:
        text = LOWER_BOUND + text
    return text


def _section_title(key: tuple, tasks: dict[str, Task]) -> tuple[str, str]:
    task_id, version, metrics_version, timesteps = key
    heading = f"{task_id} v{version}, T={timesteps}, metrics v{metrics_version}"
    task = tasks.get(task_id)
    if task is None:
        return heading, "(no task file for this id any more)"
    note = task.title
    if task.version != version:
        note += f" (the task file is now v{task.version}: these runs used an older protocol)"
    return heading, note


def _left_out(runs: pd.DataFrame, superseded: int) -> str | None:
    failed = int((runs["status"] == "failed").sum())
    timeout = int((runs["status"] == "timeout").sum())
    unrep = int(((runs["status"] == "ok") & ~runs["reportable"].astype(bool)).sum())
    if not (failed or timeout or unrep or superseded):
        return None
    return (
        f"Left out: {failed} failed, {timeout} timed out, {unrep} not reportable (--limit, partial "
        f"data or untrained), {superseded} superseded by a newer run of the same method and seed; "
        "see 'Runs left out' below."
    )


def page_blocks(
    view: StoreView,
    tasks: dict[str, Task],
    store_root: Path,
    submissions_root: str | os.PathLike | None = None,
) -> list[Block]:
    """The whole leaderboard as blocks; a pure function of its arguments."""
    runs = view.runs
    if "origin" not in runs.columns:
        runs = runs.assign(origin=ORIGIN_OWN)
    view = StoreView(runs, view.metrics, view.corrupt)
    summary = summarize(view)
    _, superseded = select_runs(runs)
    several = runs["origin"].nunique() > 1 if len(runs) else False
    n_ok = int(_reportable_ok(runs).sum()) if len(runs) else 0
    intro = (
        f"Built from the result store alone: {len(runs)} runs, {n_ok} reportable. Each row is one "
        "method on one task version and T: mean ± sample std over its seeds (one run per seed: the "
        "newest run of the method's newest submission file), best first. Activity and energy are per "
        f"test sample (docs/PROTOCOLS.md section 3); µJ under {ENERGY_CARD} (compute only) and "
        f"{ENERGY_CARD_MEM} (with on-chip memory traffic). Cite a row with `snnbench cite RESULT_ID`."
    )
    if several:
        intro += (
            f" Rows marked '{ORIGIN_COMMITTED}' come from the committed baselines store (read-only); "
            f"'{ORIGIN_OWN}' are your runs."
        )
    blocks = [Block("h1", "snnbench leaderboard"), Block("p", intro)]
    if view.corrupt:
        blocks.append(Block("p", "Skipped corrupt result files (--skip-corrupt):"))
        blocks.append(Block("ul", items=tuple(_rel(p, store_root) for p in view.corrupt)))
    if not len(runs):
        blocks.append(Block("p", "The store holds no runs yet: run `snnbench evaluate` first."))
        return blocks

    keys = sorted({tuple(k) for k in runs[GROUP_KEYS].itertuples(index=False)}, key=_sort_key)
    for key in keys:
        heading, note = _section_title(key, tasks)
        blocks += [Block("h2", heading), Block("p", note)]
        mask = _match(runs, key)
        part = summary[_match(summary, key)] if len(summary) else summary
        if len(part):
            blocks.append(_table(part, several))
            blocks += _footnotes(part)
        else:
            blocks.append(Block("p", "No reportable run for this task and T."))
        n_sup = int(_match(superseded, key).sum()) if len(superseded) else 0
        left = _left_out(runs[mask], n_sup)
        if left:
            blocks.append(Block("p", left))

    blocks += _left_out_table(runs, superseded)
    blocks += _references(summary, submissions_root)
    return blocks


def _match(frame: pd.DataFrame, key: tuple) -> np.ndarray:
    if not len(frame):
        return np.zeros(0, dtype=bool)
    return np.logical_and.reduce([(frame[c] == v).to_numpy(dtype=bool) for c, v in zip(GROUP_KEYS, key)])


def _sort_key(key: tuple) -> tuple:
    task_id, version, metrics_version, timesteps = key
    return (str(task_id), int(version), str(metrics_version), int(timesteps))


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _table(part: pd.DataFrame, several_origins: bool = False) -> Block:
    cols = shown_columns(part)
    rank = next((k for k in RANK_KEYS if part[f"{k}_n"].sum() > 0), None)
    part = part.copy()
    part["_rank"] = -part[f"{rank}_mean"].fillna(-np.inf) if rank else 0.0
    part = part.sort_values(["_rank", "method", "origin"], kind="stable")
    dup = part["method"].duplicated(keep=False)
    headers = ["method", *[c.header for c in cols], "T", "seeds", "result ids"]
    rows = []
    for (_, row), is_dup in zip(part.iterrows(), dup):
        name = row["method"]
        if several_origins or is_dup:
            name += f" ({row['origin']})"
        if row["gradient_masking"]:
            name += f" {MASKED}"
        if row["budget_cut"]:
            name += f" {BUDGET_CUT}"
        rows.append(
            (
                name,
                *[_cell(row, c) for c in cols],
                str(int(row["timesteps"])),
                row["seeds"],
                row["result_ids"],
            )
        )
    return Block("table", headers=tuple(headers), rows=tuple(rows))


def _footnotes(part: pd.DataFrame) -> list[Block]:
    notes = []
    for _, row in part.sort_values(["method", "origin"]).iterrows():
        if row["uncounted"]:
            notes.append(
                f"{LOWER_BOUND} {row['method']}: activity is a lower bound: uncounted module types "
                f"{row['uncounted']}."
            )
        if len(row["devices"]) > 1:
            notes.append(
                f"{row['method']}: its seeds ran on several devices ({'; '.join(row['devices'])}), so no "
                "latency is averaged for it."
            )
    if part["gradient_masking"].any():
        notes.append(
            f"{MASKED} gradient masking suspected: a robustness sanity check failed (docs/PROTOCOLS.md "
            "section 4); treat its robust accuracy with caution."
        )
    if part["budget_cut"].any():
        notes.append(
            f"{BUDGET_CUT} training ran fewer epochs than the task's budget (a wall-time cap, or the recipe's "
            "own choice; the run's training record says which)."
        )
    devices = sorted({_short_device(d) for ds in part["devices"] for d in ds})
    if devices:
        notes.append("Latency measured on: " + "; ".join(devices) + ".")
    commits = sorted({c for cs in part["commits"] for c in cs})
    if commits:
        notes.append("Rows come from snnbench commits: " + ", ".join(commits) + ".")
    return [Block("p", n) for n in notes]


def _left_out_table(runs: pd.DataFrame, superseded: pd.DataFrame) -> list[Block]:
    bad = runs[~_reportable_ok(runs)]
    rows = []
    for r in bad.sort_values(["task", "task_version", "timesteps", "method", "seed", "result_id"]).itertuples(
        index=False
    ):
        why = r.error if r.status != "ok" else _why_unreportable(r)
        rows.append(_left_row(r, r.status, why))
    for r in superseded.sort_values(
        ["task", "task_version", "timesteps", "method", "seed", "result_id"]
    ).itertuples(index=False):
        rows.append(_left_row(r, "superseded", "a newer run of this method and seed is shown"))
    if not rows:
        return []
    return [
        Block("h2", "Runs left out"),
        Block(
            "table",
            headers=("result id", "task", "T", "method", "seed", "status", "reason"),
            rows=tuple(rows),
            align=("left", "left", "right", "left", "right", "left", "left"),
        ),
    ]


def _left_row(r, status: str, why: str) -> tuple:
    task = f"{r.task} v{int(r.task_version)}"
    method = r.method if getattr(r, "origin", ORIGIN_OWN) == ORIGIN_OWN else f"{r.method} ({r.origin})"
    return (r.result_id, task, str(int(r.timesteps)), method, str(int(r.seed)), status, why)


def _why_unreportable(r) -> str:
    if not pd.isna(r.limit):
        return f"not reportable: --limit {int(r.limit)}"
    if isinstance(r.data_status, str) and r.data_status not in ("present", "embedded"):
        return f"not reportable: data {r.data_status}"
    if getattr(r, "untrained", None) is True:
        return "not reportable: evaluated without a checkpoint (untrained)"
    return "not reportable"


def _references(summary: pd.DataFrame, submissions_root) -> list[Block]:
    if not len(summary):
        return []
    seen, blocks = set(), []
    for r in summary.sort_values(["method", "submission_path"]).itertuples(index=False):
        if (r.method, r.submission_path) in seen:
            continue
        seen.add((r.method, r.submission_path))
        text = read_citation(r.submission_path, submissions_root)
        if text:
            blocks += [Block("h3", f"{r.method} ({r.submission_path})"), Block("pre", text)]
    return [Block("h2", "References"), *blocks] if blocks else []


def _open(store: str | os.PathLike | Store) -> Store:
    return store if isinstance(store, Store) else Store(store)


def _local_root(store: str | os.PathLike | Store) -> Path | None:
    """The store's folder on this machine, None for a store on a filesystem URI."""
    location = store.path if isinstance(store, Store) else store
    return None if is_uri(location) or (isinstance(store, Store) and not store.is_local) else Path(location)


def read_views(
    stores: Sequence[tuple[str | os.PathLike | Store, str]], skip_corrupt: bool = False
) -> StoreView:
    """One view over several stores (folders, filesystem URIs or Store objects), each run tagged
    with its `origin` label (a run id present in two stores is taken from the first)."""
    runs, metrics, corrupt = [], [], []
    for path, origin in stores:
        view = _open(path).read(skip_corrupt=skip_corrupt)
        runs.append(view.runs.assign(origin=origin))
        metrics.append(view.metrics)
        corrupt += view.corrupt
    all_runs = pd.concat(runs, ignore_index=True) if runs else pd.DataFrame()
    all_runs = all_runs.drop_duplicates("result_id", keep="first")
    all_metrics = pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame()
    if len(all_metrics):
        all_metrics = all_metrics.drop_duplicates(
            ["result_id", "metric", "layer", "timestep", "condition"], keep="first"
        )
    return StoreView(all_runs, all_metrics, corrupt)


def build(
    store_path: str | os.PathLike | Store,
    out_dir: str | os.PathLike,
    tasks_dir: str | os.PathLike | None = None,
    skip_corrupt: bool = False,
    submissions_root: str | os.PathLike | None = None,
    baselines: str | os.PathLike | None = None,
) -> list[Path]:
    """Write out_dir/LEADERBOARD.md and the site under out_dir/site/ (index.html, plots/*.svg,
    methods/*.html) from the store; return the paths written, LEADERBOARD.md then index.html first.

    With `baselines` (a second store, read-only), its runs are shown next to the store's, each
    row marked with where it came from. A corrupt part file raises the store's one-line
    CorruptStoreError unless `skip_corrupt`, which lists the skipped files at the top of the page.
    Relative submission paths (for CITATION strings) resolve against `submissions_root`, default
    the current directory. The store may be a filesystem URI (s3://..., file://...) or a Store;
    `out_dir` is a folder on this machine.
    """
    stores = [(store_path, ORIGIN_OWN)]
    local = _local_root(store_path)
    if baselines is not None and (local is None or Path(baselines).resolve() != local.resolve()):
        stores.append((baselines, ORIGIN_COMMITTED))
    view = read_views(stores, skip_corrupt=skip_corrupt)
    tasks = load_tasks(Path(tasks_dir) if tasks_dir is not None else None)
    from . import site  # site.py renders with this module's helpers

    store_root = local if local is not None else Path(str(_open(store_path).path))
    blocks = page_blocks(view, tasks, store_root, submissions_root)
    # the repository's own page (its store is <root>/leaderboard/results) links READMEs relatively
    root = Path(submissions_root) if submissions_root is not None else Path.cwd()
    in_repo = local is not None and local.resolve() == (root / "leaderboard" / "results").resolve()
    files = site.site_files(view, tasks, store_root, submissions_root, relative_links=in_repo)
    out = Path(out_dir)
    md_path = out / "LEADERBOARD.md"
    out.mkdir(parents=True, exist_ok=True)
    md_path.write_text(to_markdown(blocks), encoding="utf-8", newline="\n")
    _remove_stale(out / "site", files)
    return [md_path, *site.write_site(files, out / "site")]


def _remove_stale(site_dir: Path, files: dict) -> None:
    """Delete plots and method pages an earlier build wrote that this one does not (a method or a
    section gone from the store), so the folder is exactly what the store makes."""
    for sub, pattern in (("plots", "*.svg"), ("methods", "*.html")):
        for path in sorted((site_dir / sub).glob(pattern)):
            if f"{sub}/{path.name}" not in files:
                path.unlink()


def comparison(
    run: dict,
    figures: dict[str, float],
    baselines: str | os.PathLike | None,
    headers_max: int = 6,
) -> tuple[list[str], list[list[str]]] | None:
    """The table `snnbench evaluate` prints after a run: the committed baselines on the same task,
    task version, metrics version and T (one row per method, as on the leaderboard), with this
    run inserted in rank order and marked. None when no baseline store or no baseline row exists."""
    if baselines is None or not Path(baselines).is_dir():
        return None
    view = read_views([(baselines, ORIGIN_COMMITTED)], skip_corrupt=True)
    if not len(view.runs):
        return None
    summary = summarize(view)
    if not len(summary):
        return None
    key = (run["task"], run["task_version"], run["metrics_version"], run["timesteps"])
    part = summary[_match(summary, key)]
    if not len(part):
        return None
    cols = [c for c in COLUMNS if part[f"{c.key}_n"].sum() > 0 or c.key in figures][:headers_max]
    rank = next((k for k in RANK_KEYS if k in figures or part[f"{k}_n"].sum() > 0), None)
    entries = []
    for _, row in part.iterrows():
        cells = [row["method"], *[_cell(row, c) for c in cols], row["seeds"]]
        entries.append((row[f"{rank}_mean"] if rank else 0.0, cells))
    mine = [f"{run['method']} (this run)", *[_own_cell(figures, c) for c in cols], str(run["seed"])]
    entries.append((figures.get(rank, -np.inf) if rank else 0.0, mine))
    entries.sort(key=lambda e: -(e[0] if e[0] == e[0] else -np.inf))
    headers = ["method", *[c.header for c in cols], "seeds"]
    return headers, [cells for _, cells in entries]


def _own_cell(figures: dict[str, float], col: Column) -> str:
    value = figures.get(col.key)
    return "–" if value is None or not math.isfinite(value) else col.fmt(value)
