"""Events to frames, and the on-disk cache of derived arrays.

Events are tonic-style structured numpy arrays with fields x, y, t (microseconds), p (polarity
0 = OFF, 1 = ON). `EventFrames` turns one into a float32 tensor [T, P, H, W] of event counts
(channel index = polarity, so channel 0 is OFF and channel 1 is ON) with tonic's own transforms.
It is a frozen dataclass: its repr names every parameter, so it goes into the cache key and a
changed parameter can never reuse stale frames.

The cache stores named numpy arrays as one .npz per (dataset id, transform repr, content hash of
the source), under snnbench.data.cache_root()/<dataset id>/, written to a dot-prefixed
temporary name and renamed into place, so concurrent writers and crashes never leave half a file.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tonic

from snnbench.data import cache_root

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array (EVENT_DTYPE) from four equal-length columns, in the given order."""
    n = len(t)
    if not (len(x) == len(y) == len(p) == n):
        raise ValueError(f"event columns differ in length: x {len(x)}, y {len(y)}, t {n}, p {len(p)}")
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


@dataclass(frozen=True)
class EventFrames:
    """Bin events into `n_time_bins` frames of per-pixel, per-polarity event counts.

    sensor_size: (W, H, P) of the recording sensor, tonic's convention (x < W, y < H, p < P).
    n_time_bins: T, the number of frames.
    size: None, or (h, w) to downsample to: tonic's Downsample maps x -> floor(x * w / W) and
        y -> floor(y * h / H) (in floating point, as tonic does), so several sensor pixels add
        into one frame pixel and no event is dropped.
    duration_us: None bins as tonic's ToFrame(n_time_bins=T) does: T bins of width
        (t_last - t_first) // T starting at the first event, so events after the last full bin
        (always including the last event) are not counted. An integer D instead fixes the time
        axis to [0, D): event t falls in bin floor(t * T / D) exactly, every event with
        0 <= t < D is counted and later ones are not; use it when all recordings share a length.
    """

    sensor_size: tuple[int, int, int]
    n_time_bins: int
    size: tuple[int, int] | None = None
    duration_us: int | None = None

    def __post_init__(self):
        if len(self.sensor_size) != 3 or min(self.sensor_size) < 1:
            raise ValueError(f"sensor_size must be (W, H, P) with positive entries, got {self.sensor_size}")
        if self.n_time_bins < 1:
            raise ValueError(f"n_time_bins must be >= 1, got {self.n_time_bins}")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ValueError(f"size must be None or (h, w) with positive entries, got {self.size}")
        if self.duration_us is not None and self.duration_us < 1:
            raise ValueError(f"duration_us must be None or >= 1, got {self.duration_us}")
        # Normalise to plain ints in tuples so equal parameters give an identical repr.
        object.__setattr__(self, "sensor_size", tuple(int(v) for v in self.sensor_size))
        object.__setattr__(self, "n_time_bins", int(self.n_time_bins))
        if self.size is not None:
            object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        if self.duration_us is not None:
            object.__setattr__(self, "duration_us", int(self.duration_us))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of one sample's frames: (T, P, h, w)."""
        w, h, p = self.sensor_size
        if self.size is not None:
            h, w = self.size
        return (self.n_time_bins, p, h, w)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return events_to_frames(events, self)


def _check_events(events: np.ndarray, sensor_size: tuple[int, int, int]) -> None:
    names = events.dtype.names or ()
    missing = [f for f in ("x", "y", "t", "p") if f not in names]
    if missing:
        raise ValueError(f"events need fields x, y, t, p (tonic layout); missing {', '.join(missing)}")
    if len(events) == 0:
        return
    w, h, p = sensor_size
    for field, bound in (("x", w), ("y", h), ("p", p)):
        lo, hi = int(events[field].min()), int(events[field].max())
        if lo < 0 or hi >= bound:
            raise ValueError(
                f"event {field} spans {lo}..{hi}, outside the sensor's 0..{bound - 1}; "
                f"check sensor_size {sensor_size} (W, H, P) and that p is 0/1"
            )


def events_to_frames(events: np.ndarray, spec: EventFrames) -> np.ndarray:
    """float32 [T, P, H, W] event counts of one recording, binned as `spec` says (see EventFrames)."""
    _check_events(events, spec.sensor_size)
    t_bins, p, h, w = spec.shape
    if len(events) and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    if spec.size is not None:
        events = tonic.transforms.Downsample(sensor_size=spec.sensor_size, target_size=(w, h))(events)
    sensor = (w, h, p)
    if spec.duration_us is None:
        expected = None
        kwargs = {"n_time_bins": t_bins}
    else:
        # Scale time by T so every bin edge k * D is an integer: bin k holds k*D <= t*T < (k+1)*D.
        events = events[(events["t"] >= 0) & (events["t"] < spec.duration_us)].copy()
        events["t"] *= t_bins
        expected = len(events)
        kwargs = {"time_window": spec.duration_us, "start_time": 0, "end_time": spec.duration_us * t_bins}
    if len(events) == 0:  # tonic returns a transposed or one-frame array for empty input
        return np.zeros(spec.shape, dtype=np.float32)
    counts = tonic.functional.to_frame_numpy(events, sensor_size=sensor, **kwargs)
    if expected is None:
        window = (int(events["t"][-1]) - int(events["t"][0])) // t_bins
        expected = int(np.searchsorted(events["t"], events["t"][0] + t_bins * window))
    # tonic accumulates into int16: a pixel with > 32767 events in one bin would wrap silently.
    if counts.shape != spec.shape or int(counts.sum(dtype=np.int64)) != expected:
        raise ValueError(
            f"binning {len(events)} events gave frames {counts.shape} summing to {int(counts.sum())}, "
            f"expected {spec.shape} summing to {expected}; more than 32767 events in one pixel and bin?"
        )
    return counts.astype(np.float32)


# ---------------------------------------------------------------- content hashes and the cache


def content_hash(*parts) -> str:
    """sha256 (hex) of the parts in order: bytes, str, numpy arrays (dtype, shape and data) or Paths
    (file bytes). Used as the `source_hash` of a cache entry."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"ndarray {part.dtype.str} {part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, Path):
            with open(part, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        elif isinstance(part, str):
            digest.update(part.encode())
        elif isinstance(part, bytes | bytearray | memoryview):
            digest.update(bytes(part))
        else:
            raise TypeError(
                f"content_hash takes bytes, str, numpy arrays or Paths, got {type(part).__name__}"
            )
        digest.update(b"\x00")
    return digest.hexdigest()


def cache_key(dataset_id: str, transform_repr: str, source_hash: str) -> str:
    """The 20-hex-digit key of one cache entry."""
    return content_hash(dataset_id, transform_repr, source_hash)[:20]


def cache_path(dataset_id: str, transform_repr: str, source_hash: str, label: str = "arrays") -> Path:
    """Where the entry lives: cache_root()/<dataset_id>/<label>-<key>.npz (label is for humans)."""
    if not label or "/" in label or label.startswith("."):
        raise ValueError(f"cache label must be a plain file-name prefix, got {label!r}")
    key = cache_key(dataset_id, transform_repr, source_hash)
    return cache_root() / dataset_id / f"{label}-{key}.npz"


def _meta(dataset_id: str, transform_repr: str, source_hash: str) -> np.ndarray:
    return np.array(f"{dataset_id}\n{transform_repr}\n{source_hash}")


def load_cached(
    dataset_id: str, transform_repr: str, source_hash: str, label: str = "arrays"
) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent. An unreadable or mismatched file warns and counts
    as absent (it is derived data: the caller recomputes and overwrites it)."""
    path = cache_path(dataset_id, transform_repr, source_hash, label)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"cache file {path} is unreadable ({exc}); recomputing it", stacklevel=2)
        return None
    meta = arrays.pop("__meta__", None)
    if meta is None or str(meta) != str(_meta(dataset_id, transform_repr, source_hash)):
        warnings.warn(f"cache file {path} was written for other parameters; recomputing it", stacklevel=2)
        return None
    return arrays


def save_cached(
    dataset_id: str,
    transform_repr: str,
    source_hash: str,
    arrays: Mapping[str, np.ndarray],
    label: str = "arrays",
) -> Path:
    """Store named arrays atomically (dot-prefixed temporary file in the same folder, then rename)."""
    if "__meta__" in arrays:
        raise ValueError("the array name __meta__ is reserved for the cache's own record")
    path = cache_path(dataset_id, transform_repr, source_hash, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.stem}-{os.getpid()}.npz"
    try:
        np.savez(tmp, __meta__=_meta(dataset_id, transform_repr, source_hash), **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def cached(
    dataset_id: str,
    transform_repr: str,
    source_hash: str,
    compute: Callable[[], Mapping[str, np.ndarray]],
    label: str = "arrays",
) -> dict[str, np.ndarray]:
    """The cached arrays for this key, computing and storing them first when absent."""
    arrays = load_cached(dataset_id, transform_repr, source_hash, label)
    if arrays is None:
        arrays = dict(compute())
        save_cached(dataset_id, transform_repr, source_hash, arrays, label)
    return arrays
