"""The embedded digits, shared by the tasks `digits` and `digits-dvs` (no data root, no download),
and the reader of `digits`. digits_dvs.py (the event emulator and the `digits-dvs` reader) imports
this module; this module never imports it.

digits: scikit-learn's 1,797 real 8x8 handwritten digits, x = pixel / 16 as float32 [1, 8, 8]
(the evaluator repeats it over T: direct coding). digits-dvs: the same images seen by an emulated
event camera (snnbench.data.digits_dvs), x = float32 [T, 2, 32, 32] event counts (channel 0 OFF,
1 ON). Both use one split, stratified 75/25 with random_state 0: 1,347 train / 450 test, the
same images in both tasks (each dataset's `indices` are positions in load_digits()).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from snnbench.data.base import DataError, DataStatus, Split, cache_root
from snnbench.data.cache import content_hash

SPLIT_SEED = 0
TEST_FRACTION = 0.25


@lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: images float32 [N, 8, 8] in [0, 1] (pixel / 16) and labels int64 [N].
    Read-only arrays, in load_digits() order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@lru_cache(maxsize=1)
def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions into digits_arrays(): stratified 75/25, random_state 0, sorted."""
    from sklearn.model_selection import train_test_split

    _, labels = digits_arrays()
    train, test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    train, test = np.sort(train), np.sort(test)
    train.setflags(write=False)
    test.setflags(write=False)
    return train, test


def source_hash() -> str:
    """Content hash of the digits images and labels: the source part of every digits cache key."""
    images, labels = digits_arrays()
    return content_hash(images, labels)


class ArrayDataset(Dataset):
    """Items (x, y): x = float32 tensor of xs[i] (stored counts are converted on access), y an int.

    `indices` are the samples' positions in load_digits(), so digits and digits-dvs items pair up.
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, indices: np.ndarray):
        if not (len(xs) == len(ys) == len(indices)):
            raise ValueError(f"xs, ys and indices differ in length: {len(xs)}, {len(ys)}, {len(indices)}")
        self.xs, self.ys, self.indices = xs, ys, indices

    def __len__(self) -> int:
        return len(self.ys)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.asarray(self.xs[i], dtype=np.float32).copy()), int(self.ys[i])


def positions(split: str) -> np.ndarray:
    """Positions in load_digits() of the `split` ("train" or "test")."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    train, test = split_indices()
    return train if split == "train" else test


def load(task, split: str, root: Path | None = None, timesteps: int | None = None) -> Split:
    """The split of the `digits` task: x float32 [1, 8, 8] = pixel / 16. `root` is unused."""
    source = task.data.get("source")
    idx = positions(split)
    if source != "digits":
        raise DataError(f"task {task.id}: the digits reader serves digits, not {source!r}")
    images, labels = digits_arrays()
    return Split(ArrayDataset(images[idx][:, None], labels[idx], idx), status="embedded")


def check(task, root: Path | None = None) -> DataStatus:
    """Embedded data is always there."""
    source = task.data.get("source")
    if source != "digits":
        return DataStatus("missing", "(embedded)", f"the digits reader has no data source {source!r}")
    try:
        import sklearn

        return DataStatus(
            "embedded", "(scikit-learn)", f"sklearn.datasets.load_digits, scikit-learn {sklearn.__version__}"
        )
    except Exception as exc:  # check() reports, it never raises
        return DataStatus("corrupt", str(cache_root()), f"{type(exc).__name__}: {exc}")
