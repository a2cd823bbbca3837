"""digits-dvs: scikit-learn's digits seen by an emulated event camera (DVS), the way N-MNIST was made
from MNIST (Orchard et al. 2015, Front. Neurosci.): the sensor looks at a still image and moves
along three short saccades forming a triangle, and every pixel reports changes of log intensity.

Each 8x8 digit is upsampled (bilinear) to 32x32 and rendered at sub-pixel offsets along the
path, one sample every `step_us`. A pixel keeps a reference log level; when log(I + log_eps)
moves at least its threshold above (below) the reference it emits an ON (OFF) event and moves the
reference by one threshold, as many times as the change allows, each event timed where the
linearly interpolated log intensity crossed its level. Thresholds differ per pixel (fixed
mismatch of one emulated sensor); every recording adds timestamp jitter and Poisson background
events. Everything is seeded: sample i of load_digits() always gets the same events.

Events are cached under snnbench.data.cache_root()/digits-dvs/, keyed by the emulator's repr and
the digits' content hash; frames for each T are cached beside them.

    python -m snnbench.data.digits_dvs --yardstick    # logistic-regression difficulty check
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snnbench.data.base import DataError, DataStatus, Split, cache_root
from snnbench.data.cache import cache_path, cached, content_hash
from snnbench.data.digits import ArrayDataset, digits_arrays, positions, source_hash, split_indices
from snnbench.data.frames import EventFrames, make_events

DATASET_ID = "digits-dvs"
# Bump when the emulation code changes what it produces for the same parameters.
EMULATOR_VERSION = 1


@dataclass(frozen=True)
class SaccadeDVS:
    """Every parameter of the digits-dvs emulator; the repr is part of the cache key.

    image_size: side of the square image the 8x8 digit is upsampled to (bilinear), in pixels.
    sensor_size: side of the square DVS pixel array; the image is centred on it at rest.
    duration_us: length of one recording in microseconds (three saccades of equal duration).
    step_us: interval between rendered images; events in between are timed by interpolation.
    amplitude_px: size of the saccade triangle in sensor pixels (base and height of an isosceles
        triangle centred on the rest position; the image moves down-right, up-right, then back
        left along the base, y pointing down).
    position_jitter_px: each recording's rest position is offset by dx, dy drawn uniformly from
        [-position_jitter_px, position_jitter_px] (the sensor never re-centres exactly).
    log_eps: added to intensity (0 = black, 1 = full digit stroke) before the log, like the
        photoreceptor's dark current: it bounds the response to changes in dark regions.
    threshold_on: mean log-intensity increase that fires an ON event (contrast threshold C_on).
    threshold_off: mean log-intensity decrease that fires an OFF event (C_off).
    threshold_sigma: standard deviation of the per-pixel thresholds around their means (fixed
        mismatch of the sensor, drawn once from `sensor_seed`; clipped below at 20% of the mean).
    jitter_us: standard deviation of the Gaussian jitter added to every signal event's timestamp.
    noise_hz: background (shot-noise) event rate per pixel and per polarity, in Hz: Poisson
        counts at uniform times over the recording.
    seed: seeds each recording's generator from (seed, sample index): initial reference levels
        (uniform within the thresholds), rest offset, background events and jitter.
    sensor_seed: seeds the per-pixel threshold mismatch (one emulated sensor for all samples).
    """

    image_size: int = 32
    sensor_size: int = 32
    duration_us: int = 300_000
    step_us: int = 1_000
    amplitude_px: float = 3.0
    position_jitter_px: float = 1.5
    log_eps: float = 0.1
    threshold_on: float = 0.25
    threshold_off: float = 0.25
    threshold_sigma: float = 0.05
    jitter_us: float = 2_000.0
    noise_hz: float = 2.0
    seed: int = 0
    sensor_seed: int = 0

    def __post_init__(self):
        positive = (
            "image_size",
            "sensor_size",
            "duration_us",
            "step_us",
            "log_eps",
            "threshold_on",
            "threshold_off",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"SaccadeDVS.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("amplitude_px", "position_jitter_px", "threshold_sigma", "jitter_us", "noise_hz"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"SaccadeDVS.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.duration_us % self.step_us:
            raise ValueError(f"duration_us {self.duration_us} must be a multiple of step_us {self.step_us}")

    @property
    def n_pixels(self) -> int:
        """Pixels of the sensor (sensor_size squared)."""
        return self.sensor_size * self.sensor_size

    def offsets(self, times_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image offset (dx, dy) in pixels at each time: three saccades along the triangle, each
        with a smooth (raised-cosine) velocity profile, so the motion starts and stops at rest."""
        a = self.amplitude_px
        corners = np.array([[0.0, 0.0], [a / 2, a], [a, 0.0], [0.0, 0.0]]) - [a / 2, a / 3]
        phase = np.clip(np.asarray(times_us, dtype=np.float64) / self.duration_us, 0.0, 1.0) * 3
        leg = np.minimum(phase.astype(np.int64), 2)
        ease = (1 - np.cos(np.pi * (phase - leg))) / 2
        pos = corners[leg] + ease[:, None] * (corners[leg + 1] - corners[leg])
        return pos[:, 0], pos[:, 1]

    def thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel (C_on, C_off), float32 [H*W] each, fixed by sensor_seed."""
        rng = np.random.default_rng([self.sensor_seed, 0x0D5])
        out = []
        for mean in (self.threshold_on, self.threshold_off):
            c = rng.normal(mean, self.threshold_sigma, self.n_pixels)
            out.append(np.maximum(c, 0.2 * mean).astype(np.float32))
        return out[0], out[1]

    def _resample(self, src: int, offset: float, canvas: int, margin: int) -> np.ndarray:
        """[canvas, src] bilinear weights: canvas pixel X shows image coordinate X - margin - offset
        of the image upsampled from `src` to image_size pixels (align_corners=False, as
        torch's interpolate), and black where that falls outside the image."""
        u = np.arange(canvas) - margin - offset
        inside = (u >= -0.5) & (u < self.image_size - 0.5)
        pos = np.clip((u + 0.5) * src / self.image_size - 0.5, 0, src - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, src - 1)
        w = np.zeros((canvas, src))
        rows = np.arange(canvas)
        np.add.at(w, (rows, lo), (1 - (pos - lo)) * inside)
        np.add.at(w, (rows, hi), (pos - lo) * inside)
        return w

    def upsample(self, images: np.ndarray) -> np.ndarray:
        """float32 [N, S, S] (S = image_size): images [N, h, w] in [0, 1] upsampled bilinearly."""
        images = np.asarray(images, dtype=np.float64)
        wy = self._resample(images.shape[1], 0.0, self.image_size, 0)
        wx = self._resample(images.shape[2], 0.0, self.image_size, 0)
        return (wy @ images @ wx.T).astype(np.float32)

    def record(self, images: np.ndarray, sample_ids: Sequence[int]) -> list[np.ndarray]:
        """Events (tonic layout, sorted by t) of each image [N, h, w] in [0, 1]; sample_ids[i] seeds
        image i's recording. Images are processed together; the result does not depend on which
        others are in the batch."""
        images = np.asarray(images, dtype=np.float64)
        n, side = len(images), self.sensor_size
        if images.ndim != 3:
            raise ValueError(f"images must be [N, h, w] with values in [0, 1], got shape {images.shape}")
        if len(sample_ids) != n:
            raise ValueError(f"{n} images but {len(sample_ids)} sample ids")
        rngs = [np.random.default_rng([self.seed, int(i)]) for i in sample_ids]
        c_on, c_off = self.thresholds()

        # Each recording's scene: the upsampled image at its own rest offset, on a black canvas
        # wide enough that every shifted view along the saccades stays inside it.
        shift = (side - self.image_size) / 2
        margin = int(math.ceil(self.amplitude_px + self.position_jitter_px + abs(shift))) + 2
        canvas = self.image_size + 2 * margin
        scene = np.empty((n, canvas, canvas), np.float32)
        for i, rng in enumerate(rngs):
            ox, oy = rng.uniform(-1.0, 1.0, 2) * self.position_jitter_px
            wy = self._resample(images.shape[1], oy, canvas, margin)
            wx = self._resample(images.shape[2], ox, canvas, margin)
            scene[i] = wy @ images[i] @ wx.T
        n_steps = self.duration_us // self.step_us
        dx, dy = self.offsets(np.arange(n_steps + 1) * self.step_us)

        def view(k: int) -> np.ndarray:
            # The pixel (x, y) sees the scene at (x - shift - dx + margin, y - shift - dy + margin).
            u, v = margin - shift - dx[k], margin - shift - dy[k]
            iu, iv = math.floor(u), math.floor(v)
            fu, fv = np.float32(u - iu), np.float32(v - iv)
            rows = scene[:, iv : iv + side + 1]
            a = (1 - fu) * rows[:, :, iu : iu + side] + fu * rows[:, :, iu + 1 : iu + side + 1]
            img = (1 - fv) * a[:, :side] + fv * a[:, 1:]
            return np.log(img.reshape(n, -1) + np.float32(self.log_eps))

        level = view(0)
        u0 = np.stack([r.random(self.n_pixels, dtype=np.float32) for r in rngs]) if n else level
        ref = level + (u0 * (c_on + c_off) - c_on)  # level - ref starts anywhere in (-C_off, C_on)
        chunks: list[tuple[np.ndarray, ...]] = []
        for k in range(1, n_steps + 1):
            new = view(k)
            diff = new - ref
            for pol, sign, c in ((1, 1.0, c_on), (0, -1.0, c_off)):
                b, pix = np.nonzero(sign * diff >= c)
                if len(b) == 0:
                    continue
                cc = c[pix]
                count = np.floor(sign * diff[b, pix] / cc).astype(np.int64)
                start, old, now = ref[b, pix], level[b, pix], new[b, pix]
                ref[b, pix] = start + sign * count * cc
                # The j-th event (j = 1..count) fires where the level crosses start + sign * j * c.
                rep = np.repeat(np.arange(len(b)), count)
                j = np.arange(len(rep)) - np.repeat(np.cumsum(count) - count, count) + 1
                rise, gap = start[rep] + sign * j * cc[rep] - old[rep], now[rep] - old[rep]
                # gap 0 only when the start sat exactly on the dead-band edge: fire at the step.
                frac = np.divide(rise, gap, out=np.ones_like(rise), where=gap != 0)
                t = (k - 1 + np.clip(frac, 0.0, 1.0)) * self.step_us
                chunks.append((b[rep], pix[rep], t, np.full(len(rep), pol, np.int8)))
            level = new

        if chunks:
            b, pix, t, p = (np.concatenate(col) for col in zip(*chunks))
        else:
            b, pix, t, p = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8)
        order = np.argsort(b, kind="stable")
        bounds = np.searchsorted(b[order], np.arange(n + 1))
        out = []
        for i, rng in enumerate(rngs):
            sel = order[bounds[i] : bounds[i + 1]]
            out.append(self._finish(pix[sel], t[sel], p[sel], rng))
        return out

    def _finish(self, pix: np.ndarray, t: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add jitter and background events to one recording's signal events; sort by time."""
        if self.jitter_us > 0:
            t = t + rng.normal(0.0, self.jitter_us, len(t))
        lam = self.noise_hz * self.duration_us * 1e-6
        counts = rng.poisson(lam, 2 * self.n_pixels) if lam > 0 else np.zeros(2 * self.n_pixels, np.int64)
        slot = np.repeat(np.arange(2 * self.n_pixels), counts)
        noise_t = rng.random(len(slot)) * self.duration_us
        pix = np.concatenate([pix, slot % self.n_pixels])
        t = np.concatenate([t, noise_t])
        p = np.concatenate([p, (slot // self.n_pixels).astype(np.int8)])
        t = np.clip(np.floor(t), 0, self.duration_us - 1).astype(np.int64)
        order = np.argsort(t, kind="stable")
        pix = pix[order]
        return make_events(pix % self.sensor_size, pix // self.sensor_size, t[order], p[order])


DEFAULT = SaccadeDVS()


def frame_spec(timesteps: int, emulator: SaccadeDVS = DEFAULT) -> EventFrames:
    """How digits-dvs recordings become frames: T equal bins over the whole recording."""
    side = emulator.sensor_size
    return EventFrames(sensor_size=(side, side, 2), n_time_bins=timesteps, duration_us=emulator.duration_us)


def generate(
    indices: Sequence[int] | None = None,
    emulator: SaccadeDVS = DEFAULT,
    progress: bool = False,
    batch_size: int = 64,
) -> list[np.ndarray]:
    """Events of the digits at these positions of load_digits() (default all), without the cache."""
    images, _ = digits_arrays()
    indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
    out: list[np.ndarray] = []
    with tqdm(
        total=len(indices), desc="digits-dvs: emulating events", unit="img", disable=not progress
    ) as bar:
        for start in range(0, len(indices), batch_size):
            ids = indices[start : start + batch_size]
            out.extend(emulator.record(images[ids], ids))
            bar.update(len(ids))
    return out


def _subset(indices: Sequence[int] | None) -> tuple[np.ndarray, str]:
    n = len(digits_arrays()[1])
    idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"digit indices must lie in 0..{n - 1}")
    return idx, content_hash(source_hash(), idx)


def _events_repr(emulator: SaccadeDVS) -> str:
    return f"{emulator!r} emulator-v{EMULATOR_VERSION}"


def load_events(
    indices: Sequence[int] | None = None, emulator: SaccadeDVS = DEFAULT, progress: bool = True
) -> list[np.ndarray]:
    """Events of the digits at `indices` (default all 1,797), from the cache or generated once."""
    idx, source = _subset(indices)

    def compute() -> dict[str, np.ndarray]:
        events = generate(idx, emulator, progress=progress)
        flat = np.concatenate(events) if events else make_events([], [], [], [])
        offsets = np.concatenate([[0], np.cumsum([len(e) for e in events])]).astype(np.int64)
        columns = {"x": np.uint8, "y": np.uint8, "t": np.int32, "p": np.uint8}  # compact on disk
        return {**{name: flat[name].astype(dtype) for name, dtype in columns.items()}, "offsets": offsets}

    arrays = cached(DATASET_ID, _events_repr(emulator), source, compute, label="events")
    flat = make_events(arrays["x"], arrays["y"], arrays["t"], arrays["p"])
    offsets = arrays["offsets"]
    return [flat[offsets[i] : offsets[i + 1]] for i in range(len(idx))]


def load_frames(
    timesteps: int,
    indices: Sequence[int] | None = None,
    emulator: SaccadeDVS = DEFAULT,
    progress: bool = True,
    cache_indices: Sequence[int] | None = None,
) -> np.ndarray:
    """Event counts [n, T, 2, S, S] (unsigned ints; channel 0 OFF, 1 ON) of the digits at `indices`
    (positions in load_digits(), default all), cut from the frames cached for `cache_indices`
    (default all 1,797: one cache file per T, the events cache shared by every T)."""
    idx, source = _subset(cache_indices)
    spec = frame_spec(timesteps, emulator)

    def compute() -> dict[str, np.ndarray]:
        events = load_events(idx, emulator, progress=progress)
        frames = np.stack([spec(e) for e in events]) if events else np.zeros((0, *spec.shape), np.float32)
        top = int(frames.max()) if frames.size else 0
        dtype = np.uint8 if top <= np.iinfo(np.uint8).max else np.uint16 if top <= 65535 else np.uint32
        return {"frames": frames.astype(dtype)}

    frames = cached(
        DATASET_ID, f"{_events_repr(emulator)} | {spec!r}", source, compute, label=f"frames-T{timesteps}"
    )
    frames = frames["frames"]
    if indices is None:
        return frames
    where = {int(v): k for k, v in enumerate(idx)}
    try:
        rows = [where[int(i)] for i in indices]
    except KeyError as exc:
        raise ValueError(f"digit index {exc.args[0]} is not among the cached indices") from None
    return frames[rows]


def cache_folder() -> Path:
    """The folder holding digits-dvs events and frames."""
    return cache_root() / DATASET_ID


def cache_report(timesteps: int, emulator: SaccadeDVS = DEFAULT) -> str:
    """One line for `snnbench data check`: what is cached for the full dataset."""
    _, source = _subset(None)
    events = cache_path(DATASET_ID, _events_repr(emulator), source, "events").is_file()
    spec_repr = f"{_events_repr(emulator)} | {frame_spec(timesteps, emulator)!r}"
    frames = cache_path(DATASET_ID, spec_repr, source, f"frames-T{timesteps}").is_file()
    if frames:
        return f"emulated events and T={timesteps} frames cached"
    if events:
        return f"emulated events cached; T={timesteps} frames are binned on first load"
    return "not generated yet: events are emulated and cached on first load"


# ---------------------------------------------------------------- reader contract


def load(task, split: str, root: Path | None = None, timesteps: int | None = None) -> Split:
    """The split of the `digits-dvs` task: x float32 [T, 2, 32, 32] event counts, T = `timesteps`
    (default the task's). `root` is unused: the data is embedded."""
    source = task.data.get("source")
    idx = positions(split)
    if source != DATASET_ID:
        raise DataError(f"task {task.id}: the digits-dvs reader serves digits-dvs, not {source!r}")
    t_bins = int(timesteps or task.timesteps)
    if t_bins < 1:
        raise DataError(f"task {task.id}: timesteps must be >= 1, got {t_bins}")
    _, labels = digits_arrays()
    return Split(ArrayDataset(load_frames(t_bins, indices=idx), labels[idx], idx), status="embedded")


def check(task, root: Path | None = None) -> DataStatus:
    """Embedded data is always there; the detail says whether events and frames are cached."""
    source = task.data.get("source")
    if source != DATASET_ID:
        return DataStatus("missing", "(embedded)", f"the digits-dvs reader has no data source {source!r}")
    try:
        return DataStatus("embedded", str(cache_folder()), cache_report(task.timesteps))
    except Exception as exc:  # check() reports, it never raises
        return DataStatus("corrupt", str(cache_root()), f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- difficulty yardstick


def yardstick(timesteps: int = 10, emulator: SaccadeDVS = DEFAULT) -> dict[str, float]:
    """Test accuracy of a logistic regression on digits pixels and on flattened digits-dvs frames."""
    from sklearn.linear_model import LogisticRegression

    images, labels = digits_arrays()
    train, test = split_indices()
    frames = load_frames(timesteps, emulator=emulator).astype(np.float32)
    result = {}
    for name, xs in (("digits", images), (f"digits-dvs T={timesteps}", frames)):
        flat = xs.reshape(len(xs), -1)
        scale = max(float(flat[train].max()), 1.0)
        clf = LogisticRegression(max_iter=2000, C=1.0)
        clf.fit(flat[train] / scale, labels[train])
        result[name] = float(clf.score(flat[test] / scale, labels[test]))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snnbench.data.digits_dvs", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--yardstick", action="store_true", help="logistic-regression accuracy on digits and digits-dvs"
    )
    parser.add_argument("--timesteps", type=int, default=10, help="frames T (default 10)")
    args = parser.parse_args(argv)
    if args.timesteps < 1:
        parser.error("--timesteps must be >= 1")
    start = time.perf_counter()
    events = load_events()
    sizes = np.array([len(e) for e in events])
    took = time.perf_counter() - start
    spread = f"{sizes.mean():.0f} each on average ({sizes.min()}..{sizes.max()})"
    print(f"events: {len(events)} recordings, {spread}, {took:.1f} s")
    start = time.perf_counter()
    frames = load_frames(args.timesteps)
    print(f"frames: {frames.shape} {frames.dtype}, {time.perf_counter() - start:.1f} s")
    if args.yardstick:
        for name, acc in yardstick(args.timesteps).items():
            print(f"logistic regression, {name}: test accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
