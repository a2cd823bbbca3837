"""Recordings (one sample before binning) to cached frames: the task's EventFrames, binning on a
process pool, one cache file per recording, and the Dataset that reads them back.

Frames are cached (cache.save_cached) one file per recording, keyed by the dataset id, the
reader version plus EventFrames' repr, and a cheap fingerprint of the source files (common.py), so
a second evaluation reads frames and never decodes events. The first pass bins on a process pool
(SNNBENCH_DATA_WORKERS, default every CPU) with a tqdm bar on stderr. The Dataset only holds paths
and labels, so DataLoader workers can share it (`dataset.recommended_num_workers`).

Items are (x, y): x float32 [T, 2, H, W] event counts per time bin (channel 0 OFF, 1 ON) made by
frames.EventFrames (T = timesteps, the sensor downsampled to the task's input shape); y an int.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from snnbench.data import decoders
from snnbench.data.base import DataError
from snnbench.data.cache import cache_path, load_cached, save_cached
from snnbench.data.common import damaged, fingerprint, one_line, pool_map, recommended_num_workers
from snnbench.data.frames import EventFrames

# Bump when a decoder changes what it produces for the same file (it is part of the cache key;
# a change in what the frames mean also needs the task versions bumped).
READER_VERSION = 1


def frame_spec(task, timesteps: int | None = None):
    """The task's EventFrames: sensor (W, H, 2) from [encoding] sensor_size, T bins, input H x W."""
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


def sensor_of(task) -> tuple[int, int]:
    w, h = (int(v) for v in task.encoding["sensor_size"])
    return w, h


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
    first = job.entries[0]
    path = first.path
    events = decoders.decode(path, first.kind, job.sensor)
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
    spec = frame_spec(task, timesteps)
    dataset_id = task.data["source"]
    sensor = sensor_of(task)
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
