"""Events to frames.

Events are tonic-style structured numpy arrays with fields x, y, t (microseconds), p (polarity
0 = OFF, 1 = ON). `EventFrames` turns one into a float32 tensor [T, P, H, W] of event counts
(channel index = polarity, so channel 0 is OFF and channel 1 is ON) with tonic's own transforms.
It is a frozen dataclass: its repr names every parameter, so it goes into the cache key and a
changed parameter can never reuse stale frames.

The on-disk cache of derived arrays is snnbench.data.cache; binning whole datasets into cached
frames is snnbench.data.framecache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tonic

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
