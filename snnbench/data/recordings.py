"""What the event-camera dataset layouts (cifar10dvs.py, nmnist.py, dvsgesture.py, ncaltech101.py)
share: the Recording and Scan of a dataset folder, class-folder scanning, and the reader contract
(load / check) every layout module delegates to with its EventLayout.

Read offline in their published formats: nothing is ever downloaded. tonic's dataset classes are
never instantiated (they download when they miss the archive); files are decoded by decoders.py
(tonic.io where tonic has a working reader) and binned into cached frames by framecache.py.
Folder names are tonic's, so a tonic download root works as is.

A layout's scan lists the folder without decoding any event: missing data raises DataMissing,
a listing fault DataError. load() checks every file's size and header (decoders.quick_check),
warns once for partial data or an unpinned split (not reportable), then bins what is not cached.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from snnbench.data.base import DataError, DataStatus, Split
from snnbench.data.common import (
    damaged,
    from_os_error,
    partial_detail,
    status_from_error,
)
from snnbench.data.decoders import FORMAT_NAMES, quick_check
from snnbench.data.framecache import Recording, build_frames, sensor_of, verify_frames_pin
from snnbench.data.splits import PinCheck, check_disjoint, per_class_split, pin_check


@dataclass
class Scan:
    """What a dataset folder holds, from its listing alone (no event is decoded)."""

    folder: Path
    kind: str
    recordings: list[Recording]
    found: int
    total: int
    unit: str
    pin: PinCheck | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def layout(self) -> str:
        return FORMAT_NAMES[self.kind]

    @property
    def complete(self) -> bool:
        return self.found >= self.total


@dataclass(frozen=True)
class EventLayout:
    """One dataset layout: the task source it serves, its folder under the data root, the expected
    layout in words (for errors), and its scan (listing only, no decoding)."""

    source: str
    folder: str
    describe: str
    scan: Callable[..., Scan]


# ---------------------------------------------------------------- scanning helpers (no decoding)


def entries(path: Path) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def class_folders(folder: Path, class_names: list[str], exts: tuple[str, ...], skip=()) -> dict[str, list]:
    """{class: [DirEntry of recordings]} for folder/<class>/*<ext>; an unknown class folder holding
    recordings is a DataError."""
    known = set(class_names)
    out: dict[str, list] = {}
    for e in entries(folder):
        if not e.is_dir() or e.name in skip:
            continue
        files = [f for f in entries(Path(e.path)) if f.is_file() and f.name.endswith(exts)]
        if e.name not in known:
            if files:
                raise damaged(
                    Path(e.path), f"class folder not in the task's class_names ({len(known)} classes)"
                )
            continue
        out[e.name] = files
    return out


def per_class_scan(task, folder: Path, files_by_class: dict[str, list], kind_of) -> Scan:
    classes = [c for c in task.data["class_names"] if c not in set(task.data.get("exclude_classes", []))]
    if task.classes and len(classes) != task.classes:
        raise DataError(
            f"tasks/{task.id}.toml: class_names minus exclude_classes leaves {len(classes)} classes "
            f"but classes = {task.classes}; make them agree (and bump the task version)"
        )
    index = {c: i for i, c in enumerate(classes)}
    by_name = {c: {os.path.splitext(f.name)[0]: f for f in files} for c, files in files_by_class.items()}
    train, test = per_class_split({c: [f.name for f in files] for c, files in files_by_class.items()})
    check_disjoint(train, test, str(folder))
    recs = []
    for split, ids in (("train", train), ("test", test)):
        for rid in ids:
            cls, st = rid.split("/", 1)
            entry = by_name[cls][st]
            recs.append(Recording(rid, entry.path, index[cls], split, kind_of(entry.name)))
    found = sum(len(f) for f in files_by_class.values())
    return Scan(
        folder,
        recs[0].kind if recs else "",
        recs,
        found,
        int(task.data["total_recordings"]),
        "recordings",
        pin_check(task, test),
    )


def scan(layout: EventLayout, task, root: Path) -> Scan:
    """List the dataset (no decoding). Missing data and listing faults raise DataError."""
    source = task.data.get("source")
    if source != layout.source:
        raise DataError(f"task {task.id}: the {layout.source} reader does not serve data source {source!r}")
    found = layout.scan(task, Path(root))
    if found.found > found.total:
        raise damaged(
            found.folder, f"holds {found.found} {found.unit}, more than the published {found.total}"
        )
    return found


# ---------------------------------------------------------------- reader contract


def load(
    layout: EventLayout, task, split: str, root: Path, timesteps: int | None = None, progress: bool = True
) -> Split:
    """The `split` of an event task as cached frames [T, 2, H, W]."""
    try:
        return _load(layout, task, split, root, timesteps, progress)
    except OSError as exc:
        raise from_os_error(exc) from None


def _load(layout: EventLayout, task, split: str, root: Path, timesteps: int | None, progress: bool) -> Split:
    verify_frames_pin(task)
    found = scan(layout, task, root)
    recs = [r for r in found.recordings if r.split == split]
    if not recs:
        raise damaged(found.folder, f"holds no {split} recordings; expected {layout.describe}")
    sensor = sensor_of(task)
    for path in dict.fromkeys(r.path for r in recs):
        quick_check(path, found.kind, sensor)
    notes: list[str] = []
    reportable = True
    if found.pin is not None:
        if found.complete and found.pin.state == "mismatch":
            raise DataError(
                f"{found.folder}: {found.pin.describe()}; the recordings differ from the pinned release"
            )
        if found.pin.state != "match":
            reportable = False
            why = found.pin.describe() if found.complete else "the split of partial data cannot match the pin"
            notes.append(why)
    status = "present"
    if not found.complete:
        status, reportable = "partial", False
        notes.insert(0, f"partial: {partial_detail(found.found, found.total, found.unit)}")
    if notes:
        warnings.warn(
            f"{task.id} {split}: {'; '.join(notes)}; runs are stored as not reportable", stacklevel=2
        )
    dataset = build_frames(task, recs, found.folder, int(timesteps or task.timesteps), progress)
    return Split(dataset, status=status, reportable=reportable, note="; ".join(notes))


def check(layout: EventLayout, task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt from the listing, file sizes and headers (no decoding)."""
    folder = Path(root) / layout.folder
    try:
        verify_frames_pin(task)
        found = scan(layout, task, root)
        sensor = sensor_of(task)
        for path in dict.fromkeys(r.path for r in found.recordings):
            quick_check(path, found.kind, sensor)
    except DataError as exc:
        return status_from_error(exc, folder)
    except OSError as exc:
        return status_from_error(from_os_error(exc), folder)
    details = [
        f"{sum(r.split == 'train' for r in found.recordings)} train / "
        f"{sum(r.split == 'test' for r in found.recordings)} test samples"
    ]
    word = "present" if found.complete else "partial"
    if not found.complete:
        details.insert(0, partial_detail(found.found, found.total, found.unit))
    details += found.notes
    if found.pin is not None:
        if found.complete:
            details.append(found.pin.describe())
            if found.pin.state == "mismatch":
                word = "corrupt"
        else:
            details.append(
                f"test list sha256 {found.pin.computed} (partial data: not comparable with the pin)"
            )
    return DataStatus(word, str(found.folder), "; ".join(details), found.layout)
