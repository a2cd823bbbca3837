"""N-Caltech101 (Orchard et al. 2015): Caltech101 images seen by an ATIS sensor moved in saccades,
raw x, y in the 240x180 window. No official split: snnbench's frozen per-class split (splits.py),
its test list pinned by hash in the task file; the task's exclude_classes are skipped.

Layout under the data root (tonic's folder name):
  NCALTECH101/Caltech101/<class>/*.bin    5-byte events (decoders: ncaltech-bin)
"""

from __future__ import annotations

from pathlib import Path

from snnbench.data import recordings
from snnbench.data.base import DataStatus, Split
from snnbench.data.common import missing
from snnbench.data.recordings import EventLayout, Scan, class_folders, per_class_scan

FOLDER = "NCALTECH101"
DESCRIBE = "NCALTECH101/Caltech101/<class>/*.bin"


def _scan(task, root: Path) -> Scan:
    base = root / FOLDER
    folder = base / "Caltech101"
    if not folder.is_dir():
        raise missing(base, DESCRIBE)
    skip = tuple(task.data.get("exclude_classes", []))
    by_class = class_folders(folder, task.data["class_names"], (".bin",), skip=skip)
    if not any(by_class.values()):
        raise missing(folder, DESCRIBE)
    return per_class_scan(task, folder, by_class, lambda name: "ncaltech-bin")


LAYOUT = EventLayout("ncaltech101", FOLDER, DESCRIBE, _scan)


def scan(task, root: Path) -> Scan:
    """The dataset's recordings and their split, from the listing alone (no event is decoded)."""
    return recordings.scan(LAYOUT, task, root)


def load(task, split: str, root: Path, timesteps: int | None = None, progress: bool = True) -> Split:
    """The `split` ("train" or "test") as cached frames [T, 2, H, W] (see recordings.py)."""
    return recordings.load(LAYOUT, task, split, root, timesteps, progress)


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt from the listing, sizes and headers (no decoding)."""
    return recordings.check(LAYOUT, task, root)
