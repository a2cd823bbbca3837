"""`snnbench cite RESULT_ID`: BibTeX for one stored result, its method's paper, and snnbench;
`snnbench cite --task TASK [--timesteps T]`: the same for every row of a leaderboard table.

Everything comes from the store and the submission's `CITATION` string, which is read with `ast`
from the file's text: a submission is never imported or run to cite it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .literals import static_constant
from .store import Store

ENERGY_CARD = "horowitz45nm-fp32"
ENERGY_CARD_MEM = "horowitz45nm-fp32-mem"
# pyproject.toml's [project.urls] Repository (a test keeps the two equal).
REPOSITORY_URL = "https://github.com/snnbench/snnbench"


def submission_file(submission_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The stored submission path as a file: relative paths against `root` (default: the cwd),
    a package folder as its __init__.py."""
    p = Path(submission_path)
    if not p.is_absolute():
        p = Path(root or Path.cwd()) / p
    return p / "__init__.py" if p.is_dir() else p


def read_citation(submission_path: str | os.PathLike, root: str | os.PathLike | None = None) -> str | None:
    """The module-level string literal `CITATION = "..."` of a submission, parsed, never executed.

    A missing or unreadable file, a syntax error, or a CITATION that is not a plain string
    literal gives None: a leaderboard or a citation must not fail because a file moved.
    """
    value = static_constant(submission_file(submission_path, root), "CITATION")
    return (value.strip() or None) if isinstance(value, str) else None


def headline(metrics: pd.DataFrame) -> dict[str, float]:
    """The run-level figures quoted in a citation and the leaderboard: totals only
    (no layer, timestep or condition), energy by card."""
    out: dict[str, float] = {}
    if metrics.empty:
        return out
    total = metrics["layer"].isna() & metrics["timestep"].isna()
    for row in metrics[total].itertuples(index=False):
        cond = row.condition if isinstance(row.condition, str) else None
        if cond is None:
            out.setdefault(row.metric, float(row.value))
        elif row.metric == "energy_uj_per_sample":
            out.setdefault(f"energy_uj_per_sample[{cond}]", float(row.value))
    return out


def _bib_escape(text: str) -> str:
    """Escape the characters LaTeX reads specially inside a BibTeX field value."""
    out = []
    for ch in str(text):
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "\\":
            out.append("\\textbackslash{}")
        elif ch in "~^":
            out.append("\\" + ch + "{}")
        else:
            out.append(ch)
    return "".join(out)


def _num(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def _note(run: dict[str, Any], figures: dict[str, float]) -> str:
    parts = []
    if run["status"] != "ok":
        parts.append(f"status {run['status']}: {run['error']}")
    if "accuracy" in figures:
        parts.append(f"top-1 accuracy {100 * figures['accuracy']:.2f}%")
    if "accuracy_top5" in figures:
        parts.append(f"top-5 accuracy {100 * figures['accuracy_top5']:.2f}%")
    for key, label in (
        ("human_normalized_score", "human-normalized score"),
        ("episode_return_mean", "mean episode return"),
        ("spikes_per_sample", "spikes/sample"),
        ("synops_per_sample", "SynOps/sample"),
        ("macs_per_sample", "MACs/sample"),
    ):
        if key in figures:
            parts.append(f"{_num(figures[key])} {label}" if "/" in label else f"{label} {_num(figures[key])}")
    for card in (ENERGY_CARD, ENERGY_CARD_MEM):
        key = f"energy_uj_per_sample[{card}]"
        if key in figures:
            parts.append(f"energy {_num(figures[key])} uJ/sample ({card})")
    if len(run["uncounted"]):
        parts.append(f"activity a lower bound (uncounted: {', '.join(run['uncounted'])})")
    if not run["reportable"]:
        parts.append("not reportable")
    parts.append(f"T={run['timesteps']}, seed {run['seed']}")
    commit = run.get("git_commit")
    parts.append(f"commit {commit}" if isinstance(commit, str) and commit else "commit unknown")
    parts.append(f"snnbench {run['snnbench_version']}, metrics v{run['metrics_version']}")
    parts.append(f"device {run['device']}, torch {run['torch_version']}")
    parts.append(f"created {pd.Timestamp(run['created_at']).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    return "; ".join(parts)


def result_bibtex(run: dict[str, Any], metrics: pd.DataFrame) -> str:
    """The @misc entry for one stored result: its numbers and provenance, no URL."""
    rid = run["result_id"]
    created = pd.Timestamp(run["created_at"])
    title = f"{run['method']} on snnbench task {run['task']} v{run['task_version']} (T={run['timesteps']})"
    fields = [
        ("title", "{" + _bib_escape(title) + "}"),  # double braces keep the method's capitals
        ("author", "{snnbench}"),
        ("year", str(created.year)),
        ("howpublished", _bib_escape(f"snnbench result store, result id {rid}")),
        ("note", _bib_escape(_note(run, headline(metrics)))),
    ]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
    return f"@misc{{snnbench:{rid},\n{body}\n}}"


def software_bibtex(version: str, year: int | None = None) -> str:
    """snnbench's own citation, at the harness version that produced the result; `year` is the
    year of the cited run(s), so the entry stays a function of the store."""
    fields = [
        ("title", "{snnbench: one evaluation protocol for spiking neural networks}"),
        ("author", "{snnbench contributors}"),
    ]
    if year is not None:
        fields.append(("year", str(int(year))))
    fields += [
        ("version", _bib_escape(version)),
        ("url", REPOSITORY_URL),
        (
            "note",
            f"software, version {_bib_escape(version)}: tasks, exact activity metrics, "
            "a Parquet result store and a leaderboard",
        ),
    ]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
    return f"@misc{{snnbench_{_key_safe(version)},\n{body}\n}}"


def _key_safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in str(text))


def cite(
    store_path: str | os.PathLike, result_id: str, submissions_root: str | os.PathLike | None = None
) -> str:
    """BibTeX for a stored result (a unique prefix of its id is enough), then the method's
    CITATION if its submission file has one, then snnbench's software citation."""
    store = Store(store_path)
    rid = store.resolve_id(result_id)
    run = store.read_run(rid)
    metrics = store.read_metrics(result_ids=[rid])
    entries = [result_bibtex(run, metrics)]
    method_cite = read_citation(run["submission_path"], submissions_root)
    if method_cite:
        entries.append(method_cite)
    entries.append(software_bibtex(run["snnbench_version"], pd.Timestamp(run["created_at"]).year))
    return "\n\n".join(entries) + "\n"


def _ascii(text: str) -> str:
    return str(text).replace("±", "+/-").replace("µ", "u").replace("≥", ">=")


def row_bibtex(row: pd.Series, runs: pd.DataFrame, with_origin: bool = False) -> str:
    """The @misc entry for one leaderboard row: a method on a task version and T, its figures as
    mean +/- sample std over seeds, the seeds, result ids and commits."""
    from . import leaderboard as lb

    task, version, mv, T = (row[k] for k in lb.GROUP_KEYS)
    key = f"snnbench:{task}-v{int(version)}-T{int(T)}-m{mv}:{_key_safe(row['method'])}"
    title = f"{row['method']} on snnbench task {task} v{int(version)} (T={int(T)})"
    if with_origin:
        key += f":{_key_safe(row['origin'])}"
        title += f", {row['origin']} store"
    measured = lb.columns(row.to_frame().T)  # the fixed columns and any measured ones (privacy, training J)
    parts = [
        f"{_ascii(c.header)} {_ascii(lb._cell(row, c))}" for c in measured if row.get(f"{c.key}_n", 0) > 0
    ]
    parts.append(f"mean +/- sample std over seeds {row['seeds']} ({int(row['runs'])} runs)")
    if row["uncounted"]:
        parts.append(f"activity a lower bound (uncounted: {row['uncounted']})")
    if row["gradient_masking"]:
        parts.append("gradient masking suspected")
    if row["budget_cut"]:
        parts.append("training ran fewer epochs than the task budget")
    parts.append(f"metrics v{mv}")
    versions = sorted({str(v) for v in runs["snnbench_version"]})
    parts.append(f"snnbench {', '.join(versions)}")
    parts.append(f"commits {', '.join(row['commits'])}" if row["commits"] else "commit unknown")
    year = max(pd.Timestamp(t).year for t in runs["created_at"])
    fields = [
        ("title", "{" + _bib_escape(title) + "}"),
        ("author", "{snnbench}"),
        ("year", str(year)),
        ("howpublished", _bib_escape(f"snnbench result store, result ids {row['result_ids']}")),
        ("note", _bib_escape("; ".join(parts))),
    ]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
    return f"@misc{{{key},\n{body}\n}}"


def cite_table(
    stores: Sequence[tuple[str | os.PathLike, str]],
    task: str,
    timesteps: int | None = None,
    submissions_root: str | os.PathLike | None = None,
) -> str:
    """BibTeX for every row of a task's leaderboard table(s), as the leaderboard shows them (one
    row per method and task version, metrics version and T; stores as (path, origin label)): the
    row entries best first, then each method's CITATION once, then snnbench's entry per version.
    Raises ValueError when no reportable row matches."""
    from . import leaderboard as lb

    view = lb.read_views(stores, skip_corrupt=True)
    if not len(view.runs):
        raise ValueError(f"no runs in {', '.join(str(p) for p, _ in stores)}")
    summary = lb.summarize(view)
    part = summary[summary["task"] == task] if len(summary) else summary
    if timesteps is not None and len(part):
        part = part[part["timesteps"] == int(timesteps)]
    if not len(part):
        where = f"task {task}" + (f" at T={timesteps}" if timesteps is not None else "")
        raise ValueError(f"no reportable leaderboard row for {where}")
    chosen, _ = lb.select_runs(view.runs)
    rank = next((k for k in lb.RANK_KEYS if part[f"{k}_n"].sum() > 0), None)
    part = part.assign(
        _section=[lb._sort_key(tuple(k)) for k in part[lb.GROUP_KEYS].itertuples(index=False)],
        _rank=-part[f"{rank}_mean"].fillna(-math.inf) if rank else 0.0,
    ).sort_values(["_section", "_rank", "method", "origin"], kind="stable")
    several = part["origin"].nunique() > 1
    entries, runs_all = [], []
    for _, row in part.iterrows():
        runs = chosen[chosen["result_id"].isin(row["result_ids"].split())]
        runs_all.append(runs)
        entries.append(row_bibtex(row, runs, with_origin=several))
    seen = set()
    for _, row in part.sort_values(["method", "submission_path"]).iterrows():
        # a relative path is the cwd's (or submissions_root's), else the checkout snnbench runs from
        text = read_citation(row["submission_path"], submissions_root) or read_citation(
            row["submission_path"], Path(__file__).resolve().parents[1]
        )
        if text and text not in seen:
            seen.add(text)
            entries.append(text)
    used = pd.concat(runs_all, ignore_index=True)
    year = max(pd.Timestamp(t).year for t in used["created_at"])
    for version in sorted({str(v) for v in used["snnbench_version"]}):
        entries.append(software_bibtex(version, year))
    return "\n\n".join(entries) + "\n"
