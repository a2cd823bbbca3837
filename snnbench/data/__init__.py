"""Dataset registry: every task's `[data] source` names a reader module here.

A reader module exposes two functions:

    load(task, split, root, timesteps) -> Split      # split is "train" or "test"
    check(task, root) -> DataStatus                   # never raises for bad data: it reports it

Items of `Split.dataset` are `(x, y)`: x a float tensor before encoding (static images [C,H,W],
or event frames [T,C,H,W] already binned into `timesteps` bins), y an int label. Readers never
download: a missing dataset is a DataError whose message names the expected layout and the
`--data-root` / SNNBENCH_DATA setting; a damaged file is a DataError naming the file.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

# source -> module (relative to snnbench.data) implementing load() and check().
READERS: dict[str, str] = {
    "digits": "embedded",
    "digits-dvs": "embedded",
    "cifar10": "static",
    "cifar100": "static",
    "tinyimagenet": "static",
    "cifar10dvs": "events",
    "nmnist": "events",
    "dvsgesture": "events",
    "ncaltech101": "events",
}

STATUS_WORDS = ("present", "partial", "missing", "corrupt", "embedded")


class DataError(RuntimeError):
    """Data missing or damaged. str(err) is one line that names the file or layout and the fix."""


@dataclass
class Split:
    """A loaded split. `reportable` is False for partial data: its runs are marked not citable."""

    dataset: Dataset
    status: str = "present"
    reportable: bool = True
    note: str = ""


@dataclass(frozen=True)
class DataStatus:
    """What `snnbench data check` prints for one task: a status word, where it looked, details."""

    word: str
    folder: str
    detail: str = ""
    layout: str = ""


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """--data-root wins over SNNBENCH_DATA, which wins over ~/data."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SNNBENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / "data"


def cache_root() -> Path:
    """Where derived arrays (emulated events, binned frames) are cached: SNNBENCH_CACHE or ~/.cache/snnbench."""
    env = os.environ.get("SNNBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snnbench"


def _reader(task):
    source = task.data.get("source")
    if source not in READERS:
        raise DataError(f"task {task.id}: no reader for data source {source!r}; known: {', '.join(READERS)}")
    return importlib.import_module(f"snnbench.data.{READERS[source]}")


def load_split(task, split: str, root: Path | None = None, timesteps: int | None = None) -> Split:
    """The `split` ("train" or "test") of `task`, read from `root` (see data_root())."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _reader(task).load(task, split, data_root(root), timesteps or task.timesteps)


def check(task, root: Path | None = None) -> DataStatus:
    """The data status of `task` under `root`; never raises for missing or damaged data."""
    if task.kind == "rl":
        return DataStatus("embedded", "(environment)", task.data.get("env", ""))
    return _reader(task).check(task, data_root(root))
