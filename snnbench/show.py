"""`snnbench show RESULT_ID`: one stored run as a reader wants it: provenance, headline figures and
the per-layer activity table, which otherwise only the store's long metrics table holds.

Everything comes from the store; nothing is re-run and no submission is imported.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import pandas as pd

from .store import Store

# One column of the per-layer table per activity metric stored with `layer` set.
LAYER_COLUMNS = (
    ("spikes_per_sample", "spikes"),
    ("firing_rate", "firing rate"),
    ("synops_per_sample", "SynOps"),
    ("macs_per_sample", "MACs"),
    ("dense_ops_per_sample", "dense ops"),
    ("neuron_updates_per_sample", "neuron updates"),
)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _text(value: Any) -> str:
    if _missing(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        return ", ".join(map(str, items)) if items else "none"
    return str(value)


def why_not_reportable(run: dict[str, Any]) -> list[str]:
    """Every reason the run is left off the leaderboard (empty when it is reportable)."""
    reasons = []
    if run.get("status") != "ok":
        reasons.append(f"status {run.get('status')}")
    if not _missing(run.get("limit")):
        reasons.append(f"--limit {int(run['limit'])}")
    status = run.get("data_status")
    if isinstance(status, str) and status not in ("present", "embedded"):
        reasons.append(f"data {status}")
    if run.get("untrained") is True:
        reasons.append("evaluated without a checkpoint (untrained)")
    if not reasons and not run.get("reportable"):
        reasons.append("unpinned or unverified test split")
    return reasons


def provenance_rows(run: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) for every run column worth reading, in reading order."""
    created = run.get("created_at")
    created = "-" if _missing(created) else pd.Timestamp(created).strftime("%Y-%m-%d %H:%M:%S UTC")
    reportable = "yes" if run.get("reportable") else "no"
    reasons = why_not_reportable(run)
    if not run.get("reportable") and reasons:
        reportable += f" ({'; '.join(reasons)})"
    rows = [
        ("result", run["result_id"]),
        ("task", f"{run['task']} v{int(run['task_version'])}  (spec {_text(run.get('spec_hash'))})"),
        ("method", run["method"]),
        ("submission", f"{run['submission_path']}  sha256 {run['submission_sha256']}"),
        ("checkpoint sha256", _text(run.get("checkpoint_sha256"))),
        ("seed", str(int(run["seed"]))),
        ("T", str(int(run["timesteps"]))),
        ("limit", _text(run.get("limit"))),
        ("data", _text(run.get("data_status"))),
        ("device", _text(run.get("device"))),
        (
            "versions",
            f"snnbench {run['snnbench_version']}, metrics v{run['metrics_version']}, "
            f"torch {run['torch_version']}",
        ),
        ("commit", _text(run.get("git_commit"))),
        ("created", created),
        ("wall time", f"{float(run['wall_time_s']):.1f} s"),
        ("status", run["status"]),
    ]
    if not _missing(run.get("error")):
        rows.append(("error", str(run["error"])))
    rows += [
        ("reportable", reportable),
        ("metric families", _text(run.get("metrics"))),
        ("uncounted modules", _text(run.get("uncounted"))),
        ("untrained", _text(run.get("untrained"))),
        ("train recipe", _text(run.get("train_recipe"))),
    ]
    wall = run.get("train_wall_time_s")
    rows.append(("train wall time", "-" if _missing(wall) else f"{float(wall):.1f} s"))
    rows.append(("train budget complete", _text(run.get("train_budget_complete"))))
    return rows


def _natural(name: str) -> list:
    """'layers.10.fc' after 'layers.9.fc': digit runs compare as numbers."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p]


def layer_table(metrics: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per layer, one column per activity metric (means per sample;
    `-` where the metric does not apply to the layer, e.g. SynOps of a neuron layer)."""
    headers = ["layer"] + [label for _, label in LAYER_COLUMNS]
    if metrics.empty:
        return headers, []
    per = metrics[metrics["layer"].notna() & metrics["timestep"].isna() & metrics["condition"].isna()]
    wanted = {m for m, _ in LAYER_COLUMNS}
    per = per[per["metric"].isin(wanted)]
    values = {(r.layer, r.metric): float(r.value) for r in per.itertuples(index=False)}
    rows = []
    for layer in sorted({str(x) for x in per["layer"]}, key=_natural):
        row = [layer]
        for metric, _ in LAYER_COLUMNS:
            v = values.get((layer, metric))
            row.append("-" if v is None else (f"{v:.4f}" if metric == "firing_rate" else f"{v:.6g}"))
        rows.append(row)
    return headers, rows


def headline_rows(metrics: pd.DataFrame) -> list[tuple[str, str]]:
    """The figures `snnbench evaluate` prints, from the stored rows."""
    from snnbench.evaluate import Outcome, headline
    from snnbench.metrics import MetricRow

    rows = []
    for r in metrics.itertuples(index=False):
        rows.append(
            MetricRow(
                r.metric,
                float(r.value),
                r.unit,
                n=None if _missing(r.n) else int(r.n),
                stderr=None if _missing(r.stderr) else float(r.stderr),
                layer=None if _missing(r.layer) else str(r.layer),
                timestep=None if _missing(r.timestep) else int(r.timestep),
                condition=None if _missing(r.condition) else str(r.condition),
            )
        )
    return headline(Outcome({}, rows))


def render(run: dict[str, Any], metrics: pd.DataFrame) -> str:
    """The text `snnbench show` prints for one run and its metric rows."""
    from tabulate import tabulate

    parts = [tabulate(provenance_rows(run), tablefmt="plain", disable_numparse=True)]
    figures = headline_rows(metrics)
    if figures:
        parts.append("headline figures\n" + tabulate(figures, tablefmt="plain", disable_numparse=True))
    headers, body = layer_table(metrics)
    if body:
        parts.append(
            "per layer (mean per sample)\n"
            + tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
        )
    elif run.get("status") == "ok":
        parts.append("per layer: no per-layer rows stored (the activity family did not run)")
    return "\n\n".join(parts) + "\n"


def show(store_path: str | os.PathLike, result_id: str) -> str:
    """The text for one stored run (a unique prefix of its id is enough); ValueError (unknown or
    ambiguous id) and KeyError as Store.resolve_id and Store.read_run raise them."""
    store = Store(store_path)
    rid = store.resolve_id(result_id)
    return render(store.read_run(rid), store.read_metrics(result_ids=[rid]))
