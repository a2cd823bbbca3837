"""Readers for the event-camera tasks: CIFAR10-DVS, N-MNIST, DVS128 Gesture and N-Caltech101,
read offline in their published formats. Nothing is ever downloaded: tonic's dataset classes are
never instantiated (they download when they miss the archive); files are decoded with `tonic.io`
where tonic has a working reader, and with the code below where it has none.

Layouts under the data root (folder names are tonic's, so a tonic download root works as is):
  CIFAR10DVS/<class>/*.aedat       AEDAT 2.0, the original release (tonic.io.read_aedat_header_from_file +
                                   get_aer_events_from_file; DVS128 address: x = a>>8 & 127,
                                   y = a>>1 & 127, p = a & 1, as tonic's read_dvs_128)
  CIFAR10DVS/<class>/*.aedat4      tonic's AEDAT4 conversion (tonic.io.read_aedat4, `aedat` package)
  NMNIST/Train/<digit>/*.bin, NMNIST/Test/<digit>/*.bin      (tonic.io.read_mnist_file)
  DVSGesture/user*_*.aedat + user*_*_labels.csv + trials_to_train.txt / trials_to_test.txt
                                   the original AEDAT 3.1 release (also accepted one level down, in
                                   DVSGesture/DvsGesture/); one sample per labels.csv row, events
                                   with startTime_usec <= t < endTime_usec, label = class - 1
  DVSGesture/ibmGestureTrain/<user>_<lighting>/<label>.npy, DVSGesture/ibmGestureTest/...
                                   tonic's preprocessed release (columns x, y, p, t in ms)
  NCALTECH101/Caltech101/<class>/*.bin    (tonic.io.read_mnist_file; raw x, y in the 240x180 window)

Why not tonic everywhere: tonic 1.7's read_dvs_128 / read_dvs_ibm unpack the three values of
read_aedat_header_from_file into two (ValueError on every file), and its AEDAT 3.1 packet loop
ignores the event type, so special events would be read as polarity events. AEDAT 3.1 is decoded
here: polarity packets (type 1) only, valid events only, t = tsOverflow << 31 | timestamp.

Items are (x, y): x float32 [T, 2, H, W] event counts per time bin (channel 0 OFF, 1 ON) made by
snnbench.data.frames.EventFrames (T = timesteps, the sensor downsampled to the task's input
shape); y an int. Every event is checked against the task's sensor (x < W, y < H); a file outside
it, truncated, zero-byte or malformed is a one-line DataError naming the file.

Frames are cached (frames.save_cached) one file per recording, keyed by the dataset id, the
reader version plus EventFrames' repr, and a cheap fingerprint of the source files (common.py), so
a second evaluation reads frames and never decodes events. The first pass bins on a process pool
(SNNBENCH_DATA_WORKERS, default every CPU) with a tqdm bar on stderr. The Dataset only holds paths
and labels, so DataLoader workers can share it (`dataset.recommended_num_workers`).
"""

from __future__ import annotations

import csv
import os
import re
import struct
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from snnbench.data import DataError, DataStatus, Split
from snnbench.data.common import (
    damaged,
    fingerprint,
    from_os_error,
    missing,
    one_line,
    partial_detail,
    pool_map,
    recommended_num_workers,
    status_from_error,
)
from snnbench.data.splits import PinCheck, check_disjoint, per_class_split, pin_check

# Bump when a decoder changes what it produces for the same file (it is part of the cache key;
# a change in what the frames mean also needs the task versions bumped).
READER_VERSION = 1

FOLDERS = {
    "cifar10dvs": "CIFAR10DVS",
    "nmnist": "NMNIST",
    "dvsgesture": "DVSGesture",
    "ncaltech101": "NCALTECH101",
}
LAYOUTS = {
    "cifar10dvs": "CIFAR10DVS/<class>/*.aedat (AEDAT 2.0 original release) or *.aedat4 (tonic's AEDAT4 "
    "conversion), one folder per class",
    "nmnist": "NMNIST/Train/<digit>/*.bin and NMNIST/Test/<digit>/*.bin",
    "dvsgesture": "DVSGesture/ with user*_*.aedat, user*_*_labels.csv, trials_to_train.txt, "
    "trials_to_test.txt (AEDAT 3.1 original release) or DVSGesture/ibmGestureTrain/ and ibmGestureTest/ "
    "<user>_<lighting>/<label>.npy (tonic's release)",
    "ncaltech101": "NCALTECH101/Caltech101/<class>/*.bin",
}
LAYOUT_NAMES = {
    "aedat2": "AEDAT 2.0 original release",
    "aedat4": "AEDAT4 (tonic conversion)",
    "nmnist-bin": "N-MNIST .bin original release",
    "aedat31": "AEDAT 3.1 original release",
    "npy": "tonic npy",
    "ncaltech-bin": "N-Caltech101 .bin original release",
}
MAGIC = {"aedat2": b"#!AER-DAT2", "aedat4": b"#!AER-DAT4.0", "aedat31": b"#!AER-DAT3"}
GESTURE_CLASSES = 11


@dataclass(frozen=True)
class Recording:
    """One sample before binning: a file (or a time window of one) and its label."""

    rid: str  # stable id within the dataset, e.g. "airplane/cifar10_airplane_0"
    path: str  # str, not Path: scanning 70,000 files spends most of its time building Paths
    label: int
    split: str  # "train" or "test"
    kind: str  # decoder: aedat2, aedat4, nmnist-bin, ncaltech-bin, aedat31, npy
    window: tuple[int, int] | None = None  # [t0, t1) in microseconds (DVS Gesture original)
    extra: tuple[str, ...] = ()  # other files the sample depends on (labels csv)


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
        return LAYOUT_NAMES[self.kind]

    @property
    def complete(self) -> bool:
        return self.found >= self.total


# ---------------------------------------------------------------- frame parameters


def frame_spec(task, timesteps: int | None = None):
    """The task's EventFrames: sensor (W, H, 2) from [encoding] sensor_size, T bins, input H x W."""
    from snnbench.data.frames import EventFrames

    w, h = (int(v) for v in task.encoding["sensor_size"])
    _, out_h, out_w = task.input_shape
    size = None if (out_h, out_w) == (h, w) else (int(out_h), int(out_w))
    return EventFrames(sensor_size=(w, h, 2), n_time_bins=int(timesteps or task.timesteps), size=size)


def verify_frames_pin(task) -> None:
    """The task file's `[encoding] frames` must equal the code's EventFrames repr at the default T."""
    pinned = task.encoding.get("frames")
    if pinned is None:
        return
    actual = repr(frame_spec(task, task.timesteps))
    if pinned != actual:
        raise DataError(
            f"tasks/{task.id}.toml: [encoding] frames is {pinned!r} but the code bins with {actual!r}; "
            "event-to-frame parameters are part of the task: update the field and bump the task version"
        )


def _sensor(task) -> tuple[int, int]:
    w, h = (int(v) for v in task.encoding["sensor_size"])
    return w, h


# ---------------------------------------------------------------- scanning (no decoding)


def _entries(path: Path) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _class_folders(folder: Path, class_names: list[str], exts: tuple[str, ...], skip=()) -> dict[str, list]:
    """{class: [DirEntry of recordings]} for folder/<class>/*<ext>; an unknown class folder holding
    recordings is a DataError."""
    known = set(class_names)
    out: dict[str, list] = {}
    for e in _entries(folder):
        if not e.is_dir() or e.name in skip:
            continue
        files = [f for f in _entries(Path(e.path)) if f.is_file() and f.name.endswith(exts)]
        if e.name not in known:
            if files:
                raise damaged(
                    Path(e.path), f"class folder not in the task's class_names ({len(known)} classes)"
                )
            continue
        out[e.name] = files
    return out


def _per_class_scan(task, folder: Path, files_by_class: dict[str, list], kind_of) -> Scan:
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


def _scan_cifar10dvs(task, root: Path) -> Scan:
    folder = root / FOLDERS["cifar10dvs"]
    if not folder.is_dir():
        raise missing(folder, LAYOUTS["cifar10dvs"])
    by_class = _class_folders(folder, task.data["class_names"], (".aedat", ".aedat4"))
    files = [f for fs in by_class.values() for f in fs]
    if not files:
        raise missing(folder, LAYOUTS["cifar10dvs"])
    kinds = {("aedat4" if f.name.endswith(".aedat4") else "aedat2") for f in files}
    if len(kinds) > 1:
        raise damaged(folder, "mixes .aedat and .aedat4 recordings; keep one layout")
    kind = kinds.pop()
    return _per_class_scan(task, folder, by_class, lambda name: kind)


def _scan_ncaltech101(task, root: Path) -> Scan:
    base = root / FOLDERS["ncaltech101"]
    folder = base / "Caltech101"
    if not folder.is_dir():
        raise missing(base, LAYOUTS["ncaltech101"])
    skip = tuple(task.data.get("exclude_classes", []))
    by_class = _class_folders(folder, task.data["class_names"], (".bin",), skip=skip)
    if not any(by_class.values()):
        raise missing(folder, LAYOUTS["ncaltech101"])
    return _per_class_scan(task, folder, by_class, lambda name: "ncaltech-bin")


def _scan_nmnist(task, root: Path) -> Scan:
    folder = root / FOLDERS["nmnist"]
    parts = {"train": folder / "Train", "test": folder / "Test"}
    if not any(p.is_dir() for p in parts.values()):
        raise missing(folder, LAYOUTS["nmnist"])
    recs: list[Recording] = []
    notes = []
    for split, d in parts.items():
        if not d.is_dir():
            notes.append(f"{d.name}/ absent")
            continue
        by_class = _class_folders(d, [str(i) for i in range(10)], (".bin",))
        for cls in sorted(by_class):
            for f in by_class[cls]:
                recs.append(
                    Recording(
                        f"{d.name}/{cls}/{os.path.splitext(f.name)[0]}", f.path, int(cls), split, "nmnist-bin"
                    )
                )
    if not recs:
        raise missing(folder, LAYOUTS["nmnist"])
    for split in ("train", "test"):
        want = int(task.data.get(f"{split}_size", 0))
        got = sum(r.split == split for r in recs)
        if want and got > want:
            raise damaged(parts[split], f"holds {got} recordings, more than the published {want}")
    return Scan(
        folder, "nmnist-bin", recs, len(recs), int(task.data["total_recordings"]), "recordings", notes=notes
    )


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


def _scan_dvsgesture(task, root: Path) -> Scan:
    folder = root / FOLDERS["dvsgesture"]
    if not folder.is_dir():
        raise missing(folder, LAYOUTS["dvsgesture"])
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
        raise missing(folder, LAYOUTS["dvsgesture"])
    recs = []
    for split, d in parts.items():
        if not d.is_dir():
            continue
        for user in _entries(d):
            if not user.is_dir():
                continue
            for f in _entries(Path(user.path)):
                if not f.name.endswith(".npy"):
                    continue
                stem = Path(f.name).stem
                if not stem.isdigit() or not 0 <= int(stem) < (task.classes or GESTURE_CLASSES):
                    raise damaged(Path(f.path), "tonic's layout names each sample <label>.npy, label 0..10")
                recs.append(Recording(f"{d.name}/{user.name}/{stem}", f.path, int(stem), split, "npy"))
    if not recs:
        raise missing(folder, LAYOUTS["dvsgesture"])
    total = int(task.data.get("npy_train", 0)) + int(task.data.get("npy_test", 0))
    return Scan(folder, "npy", recs, len(recs), total or len(recs), "samples")


SCANNERS = {
    "cifar10dvs": _scan_cifar10dvs,
    "nmnist": _scan_nmnist,
    "dvsgesture": _scan_dvsgesture,
    "ncaltech101": _scan_ncaltech101,
}


def scan(task, root: Path) -> Scan:
    """List the dataset (no decoding). Missing data and listing faults raise DataError."""
    source = task.data.get("source")
    if source not in SCANNERS:
        raise DataError(f"task {task.id}: the event reader serves {', '.join(SCANNERS)}, not {source!r}")
    found = SCANNERS[source](task, Path(root))
    if found.found > found.total:
        raise damaged(
            found.folder, f"holds {found.found} {found.unit}, more than the published {found.total}"
        )
    return found


# ---------------------------------------------------------------- cheap per-file checks


def quick_check(path: str | Path, kind: str, sensor: tuple[int, int]) -> None:
    """Size and header checks that need no decoding; a fault is a DataError naming the file."""
    size = os.stat(path).st_size
    if size == 0:
        raise damaged(path, "zero-byte file; restore it from the archive")
    if kind in ("nmnist-bin", "ncaltech-bin"):
        if size % 5:
            raise damaged(path, f"size {size} is not a whole number of 5-byte events: truncated")
        return
    if kind == "npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise damaged(path, f"not a readable .npy file ({type(exc).__name__}: {one_line(exc)})") from None
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise damaged(
                path, f"holds an array of shape {arr.shape}; tonic's layout has [N, 4] (x, y, p, t)"
            )
        return
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head.startswith(MAGIC[kind]):
        raise damaged(path, f"does not start with {MAGIC[kind].decode()}: not an {LAYOUT_NAMES[kind]} file")
    if kind == "aedat4":
        w, h = _aedat4_size(path)
        if w > sensor[0] or h > sensor[1]:
            raise damaged(
                path, f"events outside the {sensor[0]}x{sensor[1]} sensor (the file is from a {w}x{h} one)"
            )


def _aedat4_size(path: Path) -> tuple[int, int]:
    import aedat

    try:
        streams = aedat.Decoder(str(path)).id_to_stream()
    except Exception as exc:
        raise damaged(path, f"not a readable AEDAT4 header ({one_line(exc)})") from None
    events = [s for _, s in sorted(streams.items()) if s.get("type") == "events"]
    if not events:
        raise damaged(path, "AEDAT4 file has no event stream")
    return int(events[0]["width"]), int(events[0]["height"])


# ---------------------------------------------------------------- decoding


def decode(path: Path, kind: str, sensor: tuple[int, int]) -> np.ndarray:
    """All events of one file as frames.EVENT_DTYPE, checked against the sensor (W, H)."""
    decoders = {
        "aedat2": _decode_aedat2,
        "aedat4": _decode_aedat4,
        "nmnist-bin": _decode_bin,
        "ncaltech-bin": _decode_bin,
        "aedat31": _decode_aedat31,
        "npy": _decode_npy,
    }
    quick_check(path, kind, sensor)
    events = decoders[kind](path)
    check_sensor(path, events, sensor)
    return events


def check_sensor(path: Path, events: np.ndarray, sensor: tuple[int, int]) -> None:
    if len(events) == 0:
        return
    w, h = sensor
    for name, bound in (("x", w), ("y", h)):
        lo, hi = int(events[name].min()), int(events[name].max())
        if lo < 0 or hi >= bound:
            raise damaged(path, f"events outside the {w}x{h} sensor ({name} spans {lo}..{hi})")
    p = np.unique(events["p"])
    if not np.isin(p, (0, 1)).all():
        raise damaged(path, f"polarities {p.tolist()[:4]} are not 0/1")


def _events(x, y, t, p) -> np.ndarray:
    from snnbench.data.frames import make_events

    return make_events(
        np.asarray(x, dtype=np.int64).clip(-1, 32767),  # int16 field: keep out-of-range values detectable
        np.asarray(y, dtype=np.int64).clip(-1, 32767),
        np.asarray(t, dtype=np.int64),
        np.asarray(p, dtype=np.int64).clip(-1, 127),
    )


def aedat_header(path: str | Path) -> tuple[float, int]:
    """(version, byte where the events start) of an AEDAT 2.x / 3.x file.

    tonic's read_aedat_header_from_file first; its parse needs CRLF line ends and a particular
    "Creation time:" line format, so when it raises, the '#' lines are parsed here instead.
    """
    import tonic.io

    try:
        version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
        return float(version), int(start)
    except Exception:
        pass
    version, start = None, 0
    with open(path, "rb") as fh:
        for line in iter(fh.readline, b""):
            if not line.startswith(b"#"):
                break
            start += len(line)
            m = re.match(rb"#!AER-DAT(\d+\.\d+)", line)
            if m:
                version = float(m.group(1))
            if line.startswith(b"#!END-HEADER"):
                break
    if version is None:
        raise damaged(path, "no '#!AER-DAT<version>' header line: not an AEDAT file")
    return version, start


def _decode_aedat2(path: Path) -> np.ndarray:
    import tonic.io

    version, start = aedat_header(path)
    if not 2 <= version < 3:
        raise damaged(path, f"is AEDAT {version}, this layout holds AEDAT 2.0")
    if (os.path.getsize(path) - start) % 8:
        raise damaged(path, "truncated: the event block is not a whole number of 8-byte events")
    raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    addr = raw["address"].astype(np.int64)
    return _events((addr >> 8) & 0x7F, (addr >> 1) & 0x7F, raw["timeStamp"], addr & 1)


def _decode_aedat4(path: Path) -> np.ndarray:
    import tonic.io

    try:
        raw = tonic.io.read_aedat4(str(path))
    except Exception as exc:
        raise damaged(path, f"not a readable AEDAT4 file ({type(exc).__name__}: {one_line(exc)})") from None
    return _events(raw["x"], raw["y"], raw["t"].astype(np.int64), raw["on"].astype(np.int64))


def _decode_bin(path: Path) -> np.ndarray:
    import tonic.io

    dtype = np.dtype([("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
    try:
        raw = tonic.io.read_mnist_file(str(path), dtype=dtype)
    except Exception as exc:
        raise damaged(
            path, f"not a readable .bin event file ({type(exc).__name__}: {one_line(exc)})"
        ) from None
    return _events(raw["x"], raw["y"], raw["t"], raw["p"])


def _decode_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise damaged(path, f"not a readable .npy file ({type(exc).__name__}: {one_line(exc)})") from None
    if arr.ndim != 2 or arr.shape[1] != 4 or not np.issubdtype(arr.dtype, np.number):
        raise damaged(
            path, f"holds {arr.dtype} {arr.shape}; tonic's layout has numbers [N, 4] (x, y, p, t ms)"
        )
    if not np.isfinite(arr).all():
        raise damaged(path, "holds non-finite values")
    x, y, p, t_ms = (arr[:, i] for i in range(4))
    return _events(x, y, np.round(t_ms.astype(np.float64) * 1000), p)


_PACKET = struct.Struct("<hhiiiiii")  # type, source, size, tsOffset, tsOverflow, capacity, number, valid


def _decode_aedat31(path: Path) -> np.ndarray:
    version, start = aedat_header(path)
    if not 3 <= version < 4:
        raise damaged(path, f"is AEDAT {version}, this layout holds AEDAT 3.1")
    with open(path, "rb") as fh:
        data = fh.read()
    pos, parts = start, []
    while pos < len(data):
        if len(data) - pos < _PACKET.size:
            raise damaged(path, f"truncated: a packet header at byte {pos} is cut short")
        etype, _, esize, _, overflow, capacity, number, _ = _PACKET.unpack_from(data, pos)
        pos += _PACKET.size
        if esize <= 0 or capacity < 0 or not 0 <= number <= capacity:
            raise damaged(path, f"malformed packet header at byte {pos - _PACKET.size}")
        nbytes = capacity * esize
        if pos + nbytes > len(data):
            raise damaged(path, f"truncated: a packet at byte {pos - _PACKET.size} needs {nbytes} bytes")
        if etype == 1 and number:
            if esize < 8:
                raise damaged(path, f"polarity events of {esize} bytes; AEDAT 3.1 uses 8")
            block = np.frombuffer(data, dtype=np.uint8, count=number * esize, offset=pos).reshape(
                number, esize
            )
            words = np.ascontiguousarray(block[:, :8]).view("<u4").astype(np.int64)
            word, ts = words[:, 0], words[:, 1] & 0x7FFFFFFF
            keep = (word & 1) == 1  # the validity mark
            parts.append(
                (
                    (word >> 17) & 0x7FFF,
                    (word >> 2) & 0x7FFF,
                    ts | (int(overflow) << 31),
                    (word >> 1) & 1,
                    keep,
                )
            )
        pos += nbytes
    if not parts:
        raise damaged(path, "holds no polarity events")
    x, y, t, p, keep = (np.concatenate(c) for c in zip(*parts))
    return _events(x[keep], y[keep], t[keep], p[keep])


# ---------------------------------------------------------------- binning and the frame cache


@dataclass(frozen=True)
class Entry:
    """One cached sample: enough to find its frames, or to remake them."""

    rid: str
    path: str
    kind: str
    label: int
    source_hash: str
    window: tuple[int, int] | None = None

    @property
    def cache_label(self) -> str:
        return "r-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in self.rid)


@dataclass(frozen=True)
class BinJob:
    """Decode one file once and bin every sample taken from it (a worker's unit of work)."""

    dataset_id: str
    transform: str
    spec: object  # frames.EventFrames
    sensor: tuple[int, int]
    entries: tuple[Entry, ...]


def transform_repr(kind: str, spec) -> str:
    """The cache key's transform part: decoder, reader version and EventFrames' repr."""
    return f"{kind} reader v{READER_VERSION}; {spec!r}"


def bin_events(path: Path, events: np.ndarray, spec) -> np.ndarray:
    """uint16 [T, 2, H, W] counts (tonic counts in int16, so uint16 is lossless)."""
    try:
        frames = spec(events)
    except ValueError as exc:
        raise damaged(path, f"cannot bin its events ({one_line(exc)})") from None
    return frames.astype(np.uint16)


def run_job(job: BinJob) -> int:
    """Decode the job's file, bin each entry's window and store it in the cache; returns entries done."""
    from snnbench.data.frames import save_cached

    first = job.entries[0]
    path = first.path
    events = decode(path, first.kind, job.sensor)
    for e in job.entries:
        sub = events
        if e.window is not None:
            sub = events[(events["t"] >= e.window[0]) & (events["t"] < e.window[1])]
        frames = bin_events(path, sub, job.spec)
        save_cached(job.dataset_id, job.transform, e.source_hash, {"frames": frames}, label=e.cache_label)
    return len(job.entries)


class FrameDataset(Dataset):
    """Cached event frames: items (float32 [T, 2, H, W], label). Holds paths and keys only, so it
    pickles cheaply into DataLoader workers; a vanished cache file is remade on access."""

    def __init__(self, dataset_id: str, transform: str, spec, sensor: tuple[int, int], entries: list[Entry]):
        self.dataset_id, self.transform, self.spec, self.sensor = dataset_id, transform, spec, sensor
        self.entries = entries
        self.labels = np.array([e.label for e in entries], dtype=np.int64)
        self.rids = [e.rid for e in entries]
        self.recommended_num_workers = recommended_num_workers()

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from snnbench.data.frames import load_cached

        e = self.entries[i]
        arrays = load_cached(self.dataset_id, self.transform, e.source_hash, label=e.cache_label)
        if arrays is None:
            run_job(BinJob(self.dataset_id, self.transform, self.spec, self.sensor, (e,)))
            arrays = load_cached(self.dataset_id, self.transform, e.source_hash, label=e.cache_label)
        return torch.from_numpy(arrays["frames"].astype(np.float32)), e.label


def _entry(rec: Recording, folder: Path) -> Entry:
    key = fingerprint([rec.path, *rec.extra], folder) + f" {rec.rid} {rec.window}"
    return Entry(rec.rid, rec.path, rec.kind, rec.label, key, rec.window)


def build_frames(
    task,
    recs: list[Recording],
    folder: Path,
    timesteps: int,
    progress: bool = True,
    n_workers: int | None = None,
) -> FrameDataset:
    """Bin whatever is not cached yet (process pool, progress bar), then a FrameDataset over all."""
    from snnbench.data.frames import cache_path

    spec = frame_spec(task, timesteps)
    dataset_id = task.data["source"]
    sensor = _sensor(task)
    kind = recs[0].kind
    transform = transform_repr(kind, spec)
    entries = [_entry(r, folder) for r in recs]
    todo: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        if not cache_path(dataset_id, transform, e.source_hash, e.cache_label).is_file():
            todo[e.path].append(e)
    jobs = [BinJob(dataset_id, transform, spec, sensor, tuple(v)) for v in todo.values()]
    if jobs:
        pool_map(
            run_job,
            jobs,
            f"{task.id}: binning events (first pass, cached after)",
            progress,
            n_workers,
            chunk=8,
        )
    return FrameDataset(dataset_id, transform, spec, sensor, entries)


# ---------------------------------------------------------------- reader contract


def load(task, split: str, root: Path, timesteps: int | None = None, progress: bool = True) -> Split:
    """The `split` of an event task as cached frames [T, 2, H, W]; see the module doc for layouts."""
    try:
        return _load(task, split, root, timesteps, progress)
    except OSError as exc:
        raise from_os_error(exc) from None


def _load(task, split: str, root: Path, timesteps: int | None, progress: bool) -> Split:
    verify_frames_pin(task)
    found = scan(task, root)
    recs = [r for r in found.recordings if r.split == split]
    if not recs:
        raise damaged(found.folder, f"holds no {split} recordings; expected {LAYOUTS[task.data['source']]}")
    sensor = _sensor(task)
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


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt from the listing, file sizes and headers (no decoding)."""
    source = task.data.get("source")
    folder = Path(root) / FOLDERS.get(source, str(source))
    try:
        verify_frames_pin(task)
        found = scan(task, root)
        sensor = _sensor(task)
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
