"""Task registry: one TOML file per task under tasks/, validated on load.

A task fixes everything that decides a number (data, split, encoding, T, batch size, metric
families); its `version` is bumped whenever any of that changes, and every stored run carries it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
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


# ---------------------------------------------------------------- typed sections


class Section(Mapping):
    """A frozen, typed section of a task file. Attribute access gives the value or its default
    (defaults live here, once); it also reads as a mapping of the keys that have a value (None
    means "the recipe's or collector's own default"), so `dict(task.train)` and `.get()` work."""

    def __getitem__(self, key: str) -> Any:
        if key in self.__dataclass_fields__:
            value = getattr(self, key)
            if value is not None:
                return value
        raise KeyError(key)

    def __iter__(self):
        return (f.name for f in fields(self) if getattr(self, f.name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in self.__dataclass_fields__ else None
        return default if value is None else value


@dataclass(frozen=True)
class DataSpec(Section):
    """[data]: where the data comes from and what the published dataset holds."""

    source: str = ""
    embedded: bool = False
    split: str = ""
    layout: str | None = None
    train_size: int | None = None
    test_size: int | None = None
    total_recordings: int | None = None
    class_names: tuple[str, ...] | None = None
    exclude_classes: tuple[str, ...] = ()
    test_list_sha256: str | None = None
    trials_train: int | None = None
    trials_test: int | None = None
    npy_train: int | None = None
    npy_test: int | None = None


@dataclass(frozen=True)
class EncodingSpec(Section):
    """[encoding]: how samples become the [T, B, ...] input (PROTOCOLS.md section 1)."""

    kind: str = "direct"
    normalize: str | None = None
    sensor_size: tuple[int, ...] | None = None
    binning: str | None = None
    frames: str | None = None


@dataclass(frozen=True)
class RobustnessSpec(Section):
    """[robustness]: PROTOCOLS.md section 4 settings."""

    eps: float = 0.1
    samples: int = 256
    event_drop: float = 0.2
    hot_pixels: tuple[float, ...] = (0.001, 0.01)
    hot_pixel_rate: float = 1.0
    blackbox_samples: int = 64
    blackbox_queries: int = 100
    event_budget: float = 0.05
    # issue 28: white-box attacks through each surrogate (worst case is the headline), APGD-CE,
    # expectation over `eot_draws` Poisson draws, transfer from an ANN twin trained on the train split
    surrogates: tuple[str, ...] = ("own", "rectangular", "fast_sigmoid", "atan")
    apgd_steps: int = 20
    eot_draws: int = 8
    transfer_samples: int = 2048
    transfer_epochs: int = 3
    transfer_lr: float = 1e-3


@dataclass(frozen=True)
class PrivacySpec(Section):
    """[privacy]: PROTOCOLS.md section 4 settings (membership inference, class leakage)."""

    fpr: tuple[float, ...] = (0.01, 0.05)
    members: int | None = None
    reference_models: int | None = None


@dataclass(frozen=True)
class RLSpec(Section):
    """[rl]: the environment and the evaluation episodes (PROTOCOLS.md section 5)."""

    env: str = ""
    episodes: int = 10
    seeds: str | None = None
    epsilon: float = 0.0
    sticky_actions: float = 0.25
    frameskip: int = 4
    action_set: str = "minimal"
    max_frames: int = 108_000
    random_score: float | None = None
    human_score: float | None = None


@dataclass(frozen=True)
class TrainSpec(Section):
    """[train]: the budget every recipe gets (epochs, lr, batch size, optional wall time), plus the
    default DQN recipe's knobs on RL tasks (None: snnbench.rl.DQNConfig's default)."""

    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 64
    wall_time_s: float | None = None
    steps_per_epoch: int | None = None
    gamma: float | None = None
    target_update: int | None = None
    eps_start: float | None = None
    eps_end: float | None = None
    eps_decay_steps: int | None = None
    replay_size: int | None = None
    learning_starts: int | None = None
    train_every: int | None = None
    threads: int | None = None
    validate_episodes: int | None = None


SECTIONS: dict[str, type[Section]] = {
    "data": DataSpec,
    "encoding": EncodingSpec,
    "robustness": RobustnessSpec,
    "privacy": PrivacySpec,
    "rl": RLSpec,
    "train": TrainSpec,
}


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _typed(value: Any, annotation: str, where: str) -> Any:
    """Check a TOML value against a field's annotation (as written in the dataclass)."""
    bad = f"{where} must be {annotation.replace(' | None', '')}, got {value!r}"
    if annotation.startswith("tuple"):
        if not isinstance(value, (list, tuple)):
            raise TaskError(bad)
        inner = "str" if "str" in annotation else "float" if "float" in annotation else "int"
        return tuple(_typed(v, inner, where) for v in value)
    if annotation.startswith("bool"):
        if not isinstance(value, bool):
            raise TaskError(bad)
        return value
    if annotation.startswith("int"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TaskError(bad)
        return value
    if annotation.startswith("float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TaskError(bad)
        return float(value)
    if annotation.startswith("str"):
        if not isinstance(value, str):
            raise TaskError(bad)
        return value
    raise AssertionError(annotation)  # pragma: no cover - the dataclasses use these types only


def parse_section(name: str, raw: Any, source: str) -> Section:
    """One [section] as its typed dataclass; unknown keys and wrong types are TaskErrors."""
    cls = SECTIONS[name]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TaskError(f"{source}: [{name}] must be a table of keys, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise TaskError(
                f"{source}: unknown key {key!r} in [{name}]{_did_you_mean(key, known)}; "
                f"known keys: {', '.join(known)}"
            )
        values[key] = _typed(value, str(known[key].type), f"{source}: [{name}] {key}")
    return cls(**values)


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
    data: DataSpec = field(default_factory=DataSpec)
    encoding: EncodingSpec = field(default_factory=EncodingSpec)
    metrics: tuple[str, ...] = ("accuracy", "activity", "energy", "latency", "footprint")
    robustness: RobustnessSpec = field(default_factory=RobustnessSpec)
    privacy: PrivacySpec = field(default_factory=PrivacySpec)
    rl: RLSpec = field(default_factory=RLSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    description: str = ""

    def __post_init__(self) -> None:
        # dataclasses.replace(task, data={...}) and hand-built tasks get the same validation
        for name in SECTIONS:
            value = getattr(self, name)
            if not isinstance(value, SECTIONS[name]):
                object.__setattr__(self, name, parse_section(name, dict(value), f"task {self.id}"))

    @property
    def outputs(self) -> int:
        """Width of the model's last dimension: classes, or actions for RL tasks."""
        return self.classes if self.kind == "classification" else self.actions

    @property
    def embedded(self) -> bool:
        """True when the data ships with the installed packages (no data root needed)."""
        return bool(self.data.embedded)

    def resolve_timesteps(self, override: int | None = None, declared: int | None = None) -> int:
        """The T a run uses, resolved once per run: --timesteps, else the T the submission declares
        (`TIMESTEPS = N`), else the task's."""
        return int(override or declared or self.timesteps)

    def spec_hash(self) -> str:
        """Short hash of the whole definition, so an edited file without a version bump shows."""
        blob = json.dumps(_as_plain(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _as_plain(task: Task) -> dict[str, Any]:
    out = {}
    for k, v in task.__dict__.items():
        if isinstance(v, Section):
            v = {key: list(val) if isinstance(val, tuple) else val for key, val in v.items()}
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


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
    known = set(Task.__dataclass_fields__)
    extra = sorted(set(raw) - known)
    if extra:
        raise TaskError(
            f"{source}: unknown key {extra[0]!r}{_did_you_mean(extra[0], known)}; known keys: "
            f"{', '.join(sorted(known))}"
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
        raise TaskError(
            f"{source}: unknown metric family {unknown[0]!r}{_did_you_mean(unknown[0], METRIC_FAMILIES)}; "
            f"known: {', '.join(METRIC_FAMILIES)}"
        )
    if kind == "classification" and int(raw.get("classes", 0)) < 2:
        raise TaskError(f"{source}: a classification task needs classes >= 2")
    if kind == "rl" and int(raw.get("actions", 0)) < 1:
        raise TaskError(f"{source}: an rl task needs actions >= 1")
    if not isinstance(raw["data"], dict) or "source" not in raw["data"]:
        raise TaskError(f"{source}: [data] needs a `source` naming the reader")
    if not isinstance(raw["encoding"], dict) or "kind" not in raw["encoding"]:
        raise TaskError(f"{source}: [encoding] needs a `kind` (direct, rate, latency, frames)")
    if kind == "rl" and not (isinstance(raw.get("rl"), dict) and raw["rl"].get("env")):
        raise TaskError(f"{source}: an rl task needs [rl] with the environment id `env`")
    sections = {name: parse_section(name, raw.get(name), source) for name in SECTIONS}
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
        metrics=metrics,
        description=raw.get("description", ""),
        **sections,
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
