"""What the static-image layouts (cifar.py, tinyimagenet.py) share: the in-memory ImageDataset,
exact per-channel statistics of the training split (cached), and the partial-data ending of load().

Items are (x, y): x float32 [3, H, W] = (pixel / 255 - mean_c) / std_c, where mean_c and std_c are
the population mean and standard deviation of channel c over every pixel of the training split,
computed exactly from the train data (256-bin histograms) and cached, not published constants.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from snnbench.data.base import Split
from snnbench.data.cache import cached
from snnbench.data.common import fingerprint

STATS_REPR = "channel-stats v1: population mean/std of train pixels / 255, per channel"


class ImageDataset(Dataset):
    """uint8 images [N, C, H, W] kept in memory, normalised per item to float32 on access."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: np.ndarray, std: np.ndarray, **extra):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.mean = torch.as_tensor(np.asarray(mean, dtype=np.float32)).view(-1, 1, 1)
        self.std = torch.as_tensor(np.asarray(std, dtype=np.float32)).view(-1, 1, 1)
        for key, value in extra.items():  # e.g. coarse_labels, class_names
            setattr(self, key, value)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(np.ascontiguousarray(self.images[i])).to(torch.float32).div_(255.0)
        return (x - self.mean) / self.std, int(self.labels[i])


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float64 [C] of uint8 images [N, C, H, W] on the [0, 1] scale, exact (histograms)."""
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"channel_stats needs non-empty uint8 [N, C, H, W], got {images.dtype} {images.shape}"
        )
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = np.bincount(images[:, c].ravel(), minlength=256).astype(np.float64)
        n = hist.sum()
        mean = float((hist * levels).sum() / n)
        means.append(mean)
        stds.append(float(np.sqrt((hist * (levels - mean) ** 2).sum() / n)))
    return np.array(means), np.array(stds)


def cached_stats(source: str, files: list[Path], base: Path, compute) -> tuple[np.ndarray, np.ndarray]:
    arrays = cached(source, STATS_REPR, fingerprint(files, base), compute, label="channel-stats")
    return arrays["mean"], arrays["std"]


def finish(task, split: str, dataset, partial: list[str], folder: Path) -> Split:
    """The Split; partial data (details `partial`, headline first) warns once and is not reportable."""
    if not partial:
        return Split(dataset)
    note = f"partial data under {folder}: {'; '.join(partial[:6])}" + (" ..." if len(partial) > 6 else "")
    warnings.warn(f"{task.id} {split}: {note}; runs are stored as not reportable", stacklevel=3)
    return Split(dataset, status="partial", reportable=False, note=note)
