"""Task registry: one TOML file per task under tasks/, validated on load.

A task fixes everything that decides a number (data, split, encoding, T, batch size, metric
families); its `version` is bumped whenever any of that changes, and every stored run carries it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from snnbench.metrics.registry import FAMILIES

KINDS = ("classification", "rl")
METRIC_FAMILIES = tuple(FAMILIES)
REQUIRED_KEYS = (
    "id",
    "version",
    "kind",
    "title",
    "input_shape",
    "timesteps",
    "batch_size",
    "data",
    "encoding",
)


class TaskError(ValueError):
    """A task file is malformed or a task id is unknown; the message says which and what to do."""


@dataclass(frozen=True)
class Task:
    """A versioned evaluation protocol. Holds no paths: it is safe to hand to a submission."""

    id: str
    version: int
    kind: str
    title: str
    input_shape: tuple[int, ...]
    timesteps: int
    batch_size: int
    classes: int = 0
    actions: int = 0
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    encoding: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    metrics: tuple[str, ...] = ("accuracy", "activity", "energy", "latency", "footprint")
    robustness: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    privacy: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    train: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    description: str = ""

    @property
    def outputs(self) -> int:
        """Width of the model's last dimension: classes, or actions for RL tasks."""
        return self.classes if self.kind == "classification" else self.actions

    @property
    def embedded(self) -> bool:
        """True when the data ships with the installed packages (no data root needed)."""
        return bool(self.data.get("embedded", False))

    def spec_hash(self) -> str:
        """Short hash of the whole definition, so an edited file without a version bump shows."""
        blob = json.dumps(_as_plain(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _as_plain(task: Task) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in task.__dict__.items()}


def tasks_dir() -> Path:
    """tasks/ of this checkout, or SNNBENCH_TASKS when set (for tests and forks)."""
    env = os.environ.get("SNNBENCH_TASKS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "tasks"


def parse_task(raw: dict[str, Any], source: str) -> Task:
    """Validate a task dict (from TOML); every problem is a TaskError naming the file and key."""
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise TaskError(
            f"{source}: missing key(s) {', '.join(missing)}; see tasks/digits.toml for a complete task"
        )
    kind = raw["kind"]
    if kind not in KINDS:
        raise TaskError(f"{source}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for key in ("version", "timesteps", "batch_size"):
        if not isinstance(raw[key], int) or raw[key] < 1:
            raise TaskError(f"{source}: {key} must be a positive integer, got {raw[key]!r}")
    shape = raw["input_shape"]
    if not (isinstance(shape, list) and shape and all(isinstance(s, int) and s > 0 for s in shape)):
        raise TaskError(f"{source}: input_shape must be a list of positive integers, got {shape!r}")
    metrics = tuple(raw.get("metrics", Task.metrics))
    unknown = [m for m in metrics if m not in METRIC_FAMILIES]
    if unknown:
        raise TaskError(f"{source}: unknown metric family {unknown}; known: {', '.join(METRIC_FAMILIES)}")
    if kind == "classification" and int(raw.get("classes", 0)) < 2:
        raise TaskError(f"{source}: a classification task needs classes >= 2")
    if kind == "rl" and int(raw.get("actions", 0)) < 1:
        raise TaskError(f"{source}: an rl task needs actions >= 1")
    if not isinstance(raw["data"], dict) or "source" not in raw["data"]:
        raise TaskError(f"{source}: [data] needs a `source` naming the reader")
    if not isinstance(raw["encoding"], dict) or "kind" not in raw["encoding"]:
        raise TaskError(f"{source}: [encoding] needs a `kind` (direct, rate, latency, frames)")
    known = set(Task.__dataclass_fields__)
    extra = sorted(set(raw) - known)
    if extra:
        raise TaskError(
            f"{source}: unknown key(s) {', '.join(extra)}; known keys: {', '.join(sorted(known))}"
        )
    return Task(
        id=raw["id"],
        version=raw["version"],
        kind=kind,
        title=raw["title"],
        input_shape=tuple(shape),
        timesteps=raw["timesteps"],
        batch_size=raw["batch_size"],
        classes=int(raw.get("classes", 0)),
        actions=int(raw.get("actions", 0)),
        data=dict(raw["data"]),
        encoding=dict(raw["encoding"]),
        metrics=metrics,
        robustness=dict(raw.get("robustness", {})),
        privacy=dict(raw.get("privacy", {})),
        train=dict(raw.get("train", {})),
        description=raw.get("description", ""),
    )


def load_tasks(directory: Path | None = None) -> dict[str, Task]:
    """Every task under `directory`, by id; duplicate ids and id/file-name mismatches are errors."""
    directory = directory or tasks_dir()
    tasks: dict[str, Task] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise TaskError(f"{path}: not valid TOML ({exc})") from None
        task = parse_task(raw, str(path))
        if task.id != path.stem:
            raise TaskError(f"{path}: id {task.id!r} must match the file name {path.stem!r}")
        tasks[task.id] = task
    return tasks


def get_task(task_id: str, directory: Path | None = None) -> Task:
    """The task with this id; an unknown id gets a did-you-mean."""
    tasks = load_tasks(directory)
    if task_id in tasks:
        return tasks[task_id]
    close = difflib.get_close_matches(task_id, list(tasks), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise TaskError(f"unknown task {task_id!r}; {hint}run `snnbench tasks` to list them")
