"""`snnbench cite RESULT_ID`: BibTeX for one stored result, its method's paper, and snnbench.

Everything comes from the store and the submission's `CITATION` string, which is read with `ast`
from the file's text: a submission is never imported or run to cite it.
"""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .store import Store

ENERGY_CARD = "horowitz45nm-fp32"
ENERGY_CARD_MEM = "horowitz45nm-fp32-mem"


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
    path = submission_file(submission_path, root)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    found: str | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "CITATION" for t in targets):
            is_str = isinstance(value, ast.Constant) and isinstance(value.value, str)
            found = value.value.strip() if is_str else None
    return found or None


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


def software_bibtex(version: str) -> str:
    """snnbench's own citation, at the harness version that produced the result."""
    return (
        f"@misc{{snnbench_{_key_safe(version)},\n"
        "  title = {snnbench: one evaluation protocol for spiking neural networks},\n"
        "  author = {{snnbench contributors}},\n"
        f"  note = {{software, version {_bib_escape(version)}: tasks, exact activity metrics, "
        "a Parquet result store and a leaderboard}\n"
        "}"
    )


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
    entries.append(software_bibtex(run["snnbench_version"]))
    return "\n\n".join(entries) + "\n"
