"""Dataset registry: every task's `[data] source` names a reader module here.

The package is laid out as tonic is: file-format decoders apart from dataset layouts.

    base.py          DataError / DataMissing, Split, DataStatus, data_root, cache_root (no imports)
    common.py        one-line errors, status from an error, file fingerprints, the parallel first pass
    cache.py         the on-disk cache of derived arrays (content hashes, atomic .npz entries)
    frames.py        events -> frames (EventFrames, tonic's binning)
    decoders.py      event file formats: AEDAT 2.0, AEDAT 3.1, AEDAT 4, N-MNIST/N-Caltech101 .bin, npy
    recordings.py    what every event layout shares: Recording / Scan, class-folder scans, the reader
    framecache.py    binning recordings into frames on a process pool, one cache file per recording
    splits.py        frozen train/test splits and their pinned hashes
    images.py        what the static-image layouts share: ImageDataset, channel statistics
    cifar.py, tinyimagenet.py, cifar10dvs.py, nmnist.py, dvsgesture.py, ncaltech101.py
                     one module per dataset layout (load() and check())
    digits.py        the embedded digits (shared by digits and digits-dvs); digits_dvs.py emulates events

A reader module exposes two functions:

    load(task, split, root, timesteps) -> Split      # split is "train" or "test"
    check(task, root) -> DataStatus                   # never raises for bad data: it reports it

Items of `Split.dataset` are `(x, y)`: x a float tensor before encoding (static images [C,H,W],
or event frames [T,C,H,W] already binned into `timesteps` bins), y an int label. Readers never
download: a missing dataset is a DataMissing (a DataError) whose message names the expected layout
and the `--data-root` / SNNBENCH_DATA setting; a damaged file is a DataError naming the file.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from snnbench.data.base import (
    STATUS_WORDS,
    DataError,
    DataMissing,
    DataStatus,
    Split,
    cache_root,
    data_root,
)

__all__ = [
    "READERS",
    "STATUS_WORDS",
    "DataError",
    "DataMissing",
    "DataStatus",
    "Split",
    "cache_root",
    "check",
    "data_root",
    "load_split",
]

# source -> module (relative to snnbench.data) implementing load() and check().
READERS: dict[str, str] = {
    "digits": "digits",
    "digits-dvs": "digits_dvs",
    "cifar10": "cifar",
    "cifar100": "cifar",
    "tinyimagenet": "tinyimagenet",
    "cifar10dvs": "cifar10dvs",
    "nmnist": "nmnist",
    "dvsgesture": "dvsgesture",
    "ncaltech101": "ncaltech101",
}


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
        return DataStatus("embedded", "(environment)", task.rl.env)
    return _reader(task).check(task, data_root(root))
