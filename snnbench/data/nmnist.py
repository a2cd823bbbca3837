"""N-MNIST (Orchard et al. 2015): MNIST digits seen by an ATIS sensor moved in three saccades,
34x34 pixels; the official 60,000 / 10,000 train / test split.

Layout under the data root (tonic's folder name):
  NMNIST/Train/<digit>/*.bin, NMNIST/Test/<digit>/*.bin      5-byte events (decoders: nmnist-bin)
"""

from __future__ import annotations

import os
from pathlib import Path

from snnbench.data import recordings
from snnbench.data.base import DataStatus, Split
from snnbench.data.common import damaged, missing
from snnbench.data.recordings import EventLayout, Recording, Scan, class_folders

FOLDER = "NMNIST"
DESCRIBE = "NMNIST/Train/<digit>/*.bin and NMNIST/Test/<digit>/*.bin"


def _scan(task, root: Path) -> Scan:
    folder = root / FOLDER
    parts = {"train": folder / "Train", "test": folder / "Test"}
    if not any(p.is_dir() for p in parts.values()):
        raise missing(folder, DESCRIBE)
    recs: list[Recording] = []
    notes = []
    for split, d in parts.items():
        if not d.is_dir():
            notes.append(f"{d.name}/ absent")
            continue
        by_class = class_folders(d, [str(i) for i in range(10)], (".bin",))
        for cls in sorted(by_class):
            for f in by_class[cls]:
                recs.append(
                    Recording(
                        f"{d.name}/{cls}/{os.path.splitext(f.name)[0]}", f.path, int(cls), split, "nmnist-bin"
                    )
                )
    if not recs:
        raise missing(folder, DESCRIBE)
    for split in ("train", "test"):
        want = int(task.data.get(f"{split}_size", 0))
        got = sum(r.split == split for r in recs)
        if want and got > want:
            raise damaged(parts[split], f"holds {got} recordings, more than the published {want}")
    return Scan(
        folder, "nmnist-bin", recs, len(recs), int(task.data["total_recordings"]), "recordings", notes=notes
    )


LAYOUT = EventLayout("nmnist", FOLDER, DESCRIBE, _scan)


def scan(task, root: Path) -> Scan:
    """The dataset's recordings and their split, from the listing alone (no event is decoded)."""
    return recordings.scan(LAYOUT, task, root)


def load(task, split: str, root: Path, timesteps: int | None = None, progress: bool = True) -> Split:
    """The `split` ("train" or "test") as cached frames [T, 2, H, W] (see recordings.py)."""
    return recordings.load(LAYOUT, task, split, root, timesteps, progress)


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt from the listing, sizes and headers (no decoding)."""
    return recordings.check(LAYOUT, task, root)
