"""CIFAR10-DVS (Li et al. 2017): 10,000 recordings of CIFAR-10 images moved on a monitor, 1,000 per
class, DVS128 sensor (128x128). No official split: snnbench's frozen per-class split (splits.py),
its test list pinned by hash in the task file.

Layout under the data root (tonic's folder name):
  CIFAR10DVS/<class>/*.aedat       AEDAT 2.0, the original release (decoders: aedat2)
  CIFAR10DVS/<class>/*.aedat4      tonic's AEDAT4 conversion (decoders: aedat4)
One layout per copy: mixing the two is an error.
"""

from __future__ import annotations

from pathlib import Path

from snnbench.data import recordings
from snnbench.data.base import DataStatus, Split
from snnbench.data.common import damaged, missing
from snnbench.data.recordings import EventLayout, Scan, class_folders, per_class_scan

FOLDER = "CIFAR10DVS"
DESCRIBE = (
    "CIFAR10DVS/<class>/*.aedat (AEDAT 2.0 original release) or *.aedat4 (tonic's AEDAT4 "
    "conversion), one folder per class"
)


def _scan(task, root: Path) -> Scan:
    folder = root / FOLDER
    if not folder.is_dir():
        raise missing(folder, DESCRIBE)
    by_class = class_folders(folder, task.data["class_names"], (".aedat", ".aedat4"))
    files = [f for fs in by_class.values() for f in fs]
    if not files:
        raise missing(folder, DESCRIBE)
    kinds = {("aedat4" if f.name.endswith(".aedat4") else "aedat2") for f in files}
    if len(kinds) > 1:
        raise damaged(folder, "mixes .aedat and .aedat4 recordings; keep one layout")
    kind = kinds.pop()
    return per_class_scan(task, folder, by_class, lambda name: kind)


LAYOUT = EventLayout("cifar10dvs", FOLDER, DESCRIBE, _scan)


def scan(task, root: Path) -> Scan:
    """The dataset's recordings and their split, from the listing alone (no event is decoded)."""
    return recordings.scan(LAYOUT, task, root)


def load(task, split: str, root: Path, timesteps: int | None = None, progress: bool = True) -> Split:
    """The `split` ("train" or "test") as cached frames [T, 2, H, W] (see recordings.py)."""
    return recordings.load(LAYOUT, task, split, root, timesteps, progress)


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt from the listing, sizes and headers (no decoding)."""
    return recordings.check(LAYOUT, task, root)
