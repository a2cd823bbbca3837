"""One factory for valid run rows, shared by the store, leaderboard and cite tests."""

from __future__ import annotations

from datetime import datetime, timezone

from snnbench.store import result_id

ID_FIELDS = (
    "task", "task_version", "submission_sha256", "checkpoint_sha256", "seed", "timesteps",
    "snnbench_version", "limit", "metrics_version",
)  # fmt: skip

DEFAULTS = {
    "task": "digits",
    "task_version": 1,
    "submission_sha256": "a" * 64,
    "checkpoint_sha256": None,
    "seed": 0,
    "timesteps": 4,
    "snnbench_version": "0.1.0",
    "limit": None,
    "metrics_version": "1",
    "method": "m",
    "submission_path": "submissions/m.py",
    "data_status": "embedded",
    "device": "cpu",
    "torch_version": "2.13.0",
    "git_commit": "abc123",
    "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    "wall_time_s": 1.0,
    "status": "ok",
    "error": None,
    "uncounted": [],
}


def make_run(**over) -> dict:
    """A valid run dict: any column can be overridden; result_id follows the id fields unless given,
    and reportable follows limit unless given."""
    run = {**DEFAULTS, **over}
    run.setdefault("reportable", run["limit"] is None)
    run.setdefault("result_id", result_id(**{k: run[k] for k in ID_FIELDS}))
    return run
