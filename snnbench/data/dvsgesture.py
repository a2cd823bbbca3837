"""DVS128 Gesture (Amir et al. 2017): 11 hand gestures by 29 subjects under 3 lighting conditions,
DVS128 sensor (128x128); the official train / test split by subject.

Layouts under the data root (tonic's folder name):
  DVSGesture/user*_*.aedat + user*_*_labels.csv + trials_to_train.txt / trials_to_test.txt
                                   the original AEDAT 3.1 release (also accepted one level down, in
                                   DVSGesture/DvsGesture/); one sample per labels.csv row, events
                                   with startTime_usec <= t < endTime_usec, label = class - 1
                                   (decoders: aedat31)
  DVSGesture/ibmGestureTrain/<user>_<lighting>/<label>.npy, DVSGesture/ibmGestureTest/...
                                   tonic's preprocessed release (columns x, y, p, t in ms; decoders: npy)
"""

from __future__ import annotations

import csv
from pathlib import Path

from snnbench.data import recordings
from snnbench.data.base import DataStatus, Split
from snnbench.data.common import damaged, missing, one_line
from snnbench.data.recordings import EventLayout, Recording, Scan, entries
from snnbench.data.splits import check_disjoint

FOLDER = "DVSGesture"
DESCRIBE = (
    "DVSGesture/ with user*_*.aedat, user*_*_labels.csv, trials_to_train.txt, "
    "trials_to_test.txt (AEDAT 3.1 original release) or DVSGesture/ibmGestureTrain/ and ibmGestureTest/ "
    "<user>_<lighting>/<label>.npy (tonic's release)"
)
GESTURE_CLASSES = 11


def _gesture_original_dir(folder: Path) -> Path | None:
    for d in (folder, folder / "DvsGesture"):
        if (d / "trials_to_train.txt").is_file() or (d / "trials_to_test.txt").is_file():
            return d
    return None


def _read_trial_list(path: Path) -> list[str]:
    if not path.is_file():
        raise damaged(path, "absent, but the original DVS Gesture layout lists it")
    names = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    bad = [n for n in names if not n.endswith(".aedat") or "/" in n]
    if bad:
        raise damaged(path, f"lists {bad[0]!r}, not a user*_*.aedat file name")
    return names


def read_gesture_labels(path: Path, classes: int = GESTURE_CLASSES) -> list[tuple[int, int, int]]:
    """[(label 0-based, startTime_usec, endTime_usec)] of a DVS Gesture *_labels.csv."""
    if not path.is_file():
        raise damaged(path, "absent, but its trial is listed; each user*_*.aedat needs its _labels.csv")
    rows = []
    try:
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != [
                "class",
                "startTime_usec",
                "endTime_usec",
            ]:
                raise ValueError("header is not 'class,startTime_usec,endTime_usec'")
            for n, row in enumerate(reader, 2):
                if not row or not "".join(row).strip():
                    continue
                cls, t0, t1 = (int(v) for v in row[:3])
                if not (1 <= cls <= classes) or t1 <= t0:
                    raise ValueError(f"row {n} ({','.join(row)}) needs class 1..{classes} and start < end")
                rows.append((cls - 1, t0, t1))
    except (ValueError, UnicodeDecodeError) as exc:
        raise damaged(path, f"malformed labels file ({one_line(exc)})") from None
    if not rows:
        raise damaged(path, "labels file has no rows")
    return rows


def _scan(task, root: Path) -> Scan:
    folder = root / FOLDER
    if not folder.is_dir():
        raise missing(folder, DESCRIBE)
    original = _gesture_original_dir(folder)
    if original is not None:
        lists = {s: _read_trial_list(original / f"trials_to_{s}.txt") for s in ("train", "test")}
        check_disjoint(lists["train"], lists["test"], str(original))
        recs = []
        for split, names in lists.items():
            for name in names:
                path = original / name
                if not path.is_file():
                    raise damaged(path, f"absent, but trials_to_{split}.txt lists it")
                labels = original / f"{Path(name).stem}_labels.csv"
                for i, (y, t0, t1) in enumerate(read_gesture_labels(labels, task.classes or GESTURE_CLASSES)):
                    recs.append(
                        Recording(
                            f"{Path(name).stem}#{i}", str(path), y, split, "aedat31", (t0, t1), (str(labels),)
                        )
                    )
        found = sum(len(v) for v in lists.values())
        total = int(task.data.get("trials_train", 0)) + int(task.data.get("trials_test", 0))
        return Scan(original, "aedat31", recs, found, total or found, "trials")
    parts = {"train": folder / "ibmGestureTrain", "test": folder / "ibmGestureTest"}
    if not any(p.is_dir() for p in parts.values()):
        raise missing(folder, DESCRIBE)
    recs = []
    for split, d in parts.items():
        if not d.is_dir():
            continue
        for user in entries(d):
            if not user.is_dir():
                continue
            for f in entries(Path(user.path)):
                if not f.name.endswith(".npy"):
                    continue
                stem = Path(f.name).stem
                if not stem.isdigit() or not 0 <= int(stem) < (task.classes or GESTURE_CLASSES):
                    raise damaged(Path(f.path), "tonic's layout names each sample <label>.npy, label 0..10")
                recs.append(Recording(f"{d.name}/{user.name}/{stem}", f.path, int(stem), split, "npy"))
    if not recs:
        raise missing(folder, DESCRIBE)
    total = int(task.data.get("npy_train", 0)) + int(task.data.get("npy_test", 0))
    return Scan(folder, "npy", recs, len(recs), total or len(recs), "samples")


LAYOUT = EventLayout("dvsgesture", FOLDER, DESCRIBE, _scan)


def scan(task, root: Path) -> Scan:
    """The dataset's recordings and their split, from the listing alone (no event is decoded)."""
    return recordings.scan(LAYOUT, task, root)


def load(task, split: str, root: Path, timesteps: int | None = None, progress: bool = True) -> Split:
    """The `split` ("train" or "test") as cached frames [T, 2, H, W] (see recordings.py)."""
    return recordings.load(LAYOUT, task, split, root, timesteps, progress)


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt from the listing, sizes and headers (no decoding)."""
    return recordings.check(LAYOUT, task, root)
