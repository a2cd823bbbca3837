"""The digits-dvs event-camera emulator: determinism, event layout, physics invariants, the digit
in the events, frames, and the events/frames cache. Small subsets only: the full set is slow."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from snnbench.data import digits_dvs
from snnbench.data.digits import digits_arrays, split_indices
from snnbench.data.digits_dvs import DEFAULT, SaccadeDVS, frame_spec, generate, load_events, load_frames
from snnbench.data.frames import EVENT_DTYPE

SUBSET = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


pytestmark = pytest.mark.usefixtures("private_cache")  # each test caches on its own


@pytest.fixture(scope="module")
def subset_events():
    return generate(SUBSET)


def test_same_seed_same_events_other_seeds_differ(subset_events):
    again = generate(SUBSET[:3])
    for a, b in zip(subset_events[:3], again):
        np.testing.assert_array_equal(a, b)
    reseeded = generate(SUBSET[:3], dataclasses.replace(DEFAULT, seed=1))
    other_sensor = generate(SUBSET[:3], dataclasses.replace(DEFAULT, sensor_seed=1))
    for a, b, c in zip(subset_events[:3], reseeded, other_sensor):
        assert len(a) != len(b) or not np.array_equal(a, b)
        assert len(a) != len(c) or not np.array_equal(a, c)


def test_a_recording_does_not_depend_on_its_batch(subset_events):
    alone = generate([7])[0]
    np.testing.assert_array_equal(alone, subset_events[7])
    in_small_batches = generate(SUBSET, batch_size=5)
    for a, b in zip(subset_events, in_small_batches):
        np.testing.assert_array_equal(a, b)


def test_event_layout_ranges_and_order(subset_events):
    for ev in subset_events:
        assert ev.dtype == EVENT_DTYPE
        assert ev.dtype.names == ("x", "y", "t", "p")
        assert 3000 < len(ev) < 9000  # N-MNIST-like: a few thousand events per recording
        assert ev["x"].min() >= 0 and ev["x"].max() < 32
        assert ev["y"].min() >= 0 and ev["y"].max() < 32
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["t"].min() >= 0 and ev["t"].max() < DEFAULT.duration_us
        assert set(np.unique(ev["p"]).tolist()) == {0, 1}
        on = int((ev["p"] == 1).sum())
        assert 0.3 < on / len(ev) < 0.7  # a moving image brightens as much as it darkens


def test_still_scene_without_noise_is_silent():
    quiet = SaccadeDVS(amplitude_px=0.0, position_jitter_px=0.0, noise_hz=0.0, jitter_us=0.0)
    assert [len(e) for e in generate([0, 1], quiet)] == [0, 0]


def test_background_rate_matches_poisson_expectation():
    noise = SaccadeDVS(amplitude_px=0.0, noise_hz=20.0)
    blank = np.zeros((4, 8, 8))
    events = noise.record(blank, [0, 1, 2, 3])
    total = sum(len(e) for e in events)
    expected = 4 * 2 * 32 * 32 * 20.0 * 0.3  # recordings x polarities x pixels x rate x seconds
    assert abs(total - expected) < 5 * np.sqrt(expected)
    on = sum(int((e["p"] == 1).sum()) for e in events)
    assert abs(on - expected / 2) < 5 * np.sqrt(expected / 2)


def test_each_pixel_stays_within_a_threshold_of_its_level():
    # The path returns to its start, so a pixel's level ends where it began: its reference moved by
    # n_on * C_on - n_off * C_off, and the reference is always within (-C_on, C_off) of the level.
    exact = SaccadeDVS(noise_hz=0.0, jitter_us=0.0)
    images, _ = digits_arrays()
    c_on, c_off = exact.thresholds()
    for ev in exact.record(images[:3], [0, 1, 2]):
        pix = ev["y"].astype(int) * 32 + ev["x"]
        n_on = np.bincount(pix[ev["p"] == 1], minlength=1024)
        n_off = np.bincount(pix[ev["p"] == 0], minlength=1024)
        net = n_on * c_on.astype(np.float64) - n_off * c_off
        assert np.all(np.abs(net) < c_on + c_off + 1e-4)
        assert n_on.sum() > 1000


def test_event_counts_are_bounded_by_the_rendered_intensity_changes():
    # Render the moving image independently (scipy's linear interpolation, black outside the
    # image). A pixel can fire ON events worth at most its total log-intensity rise plus one
    # threshold (the start inside the dead band), likewise OFF; with a dead band of C_on + C_off,
    # hysteresis loses a part of the small back-and-forth changes but most of the change is reported.
    from scipy.ndimage import map_coordinates

    exact = SaccadeDVS(noise_hz=0.0, jitter_us=0.0, position_jitter_px=0.0)
    images, _ = digits_arrays()
    up = exact.upsample(images[:2]).astype(np.float64)
    dx, dy = exact.offsets(np.arange(301) * exact.step_us)
    yy, xx = np.mgrid[0:32, 0:32]
    c_on, c_off = (c.astype(np.float64) for c in exact.thresholds())
    for img, ev in zip(up, exact.record(images[:2], [0, 1])):
        views = [
            map_coordinates(img, [yy - dy[k], xx - dx[k]], order=1, mode="grid-constant") for k in range(301)
        ]
        rise = np.diff(np.log(np.stack(views).reshape(301, -1) + exact.log_eps), axis=0)
        up_total, down_total = rise.clip(min=0).sum(0), (-rise).clip(min=0).sum(0)
        pix = ev["y"].astype(int) * 32 + ev["x"]
        n_on = np.bincount(pix[ev["p"] == 1], minlength=1024)
        n_off = np.bincount(pix[ev["p"] == 0], minlength=1024)
        assert np.all(n_on * c_on <= up_total + c_on + 1e-4)
        assert np.all(n_off * c_off <= down_total + c_off + 1e-4)
        assert 0.6 < (n_on * c_on).sum() / up_total.sum() <= 1.0
        assert 0.6 < (n_off * c_off).sum() / down_total.sum() <= 1.0


def test_thresholds_mismatch_is_fixed_per_sensor():
    a_on, a_off = DEFAULT.thresholds()
    b_on, _ = DEFAULT.thresholds()
    np.testing.assert_array_equal(a_on, b_on)
    assert a_on.shape == (1024,) and a_on.dtype == np.float32
    assert abs(a_on.mean() - DEFAULT.threshold_on) < 0.01
    assert abs(a_on.std() - DEFAULT.threshold_sigma) < 0.01
    assert not np.array_equal(a_on, a_off)
    c_on, _ = dataclasses.replace(DEFAULT, sensor_seed=1).thresholds()
    assert not np.array_equal(a_on, c_on)


def test_upsampling_is_torch_bilinear():
    images, _ = digits_arrays()
    ours = DEFAULT.upsample(images[:5])
    ref = torch.nn.functional.interpolate(
        torch.tensor(np.array(images[:5]))[:, None], size=(32, 32), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_saccades_form_a_closed_triangle():
    t = np.array([0, 50_000, 100_000, 200_000, 300_000])
    dx, dy = DEFAULT.offsets(t)
    a = DEFAULT.amplitude_px
    corners = np.array([[0, 0], [a / 2, a], [a, 0], [0, 0]]) - [a / 2, a / 3]
    np.testing.assert_allclose(np.c_[dx, dy][[0, 2, 3, 4]], corners, atol=1e-12)
    np.testing.assert_allclose([dx[1], dy[1]], corners[:2].mean(0), atol=1e-12)  # half way at half time


def test_events_carry_the_digit():
    # Templates from the images alone (edge strength of each class's mean upsampled digit), never
    # from events: the event-count image of a recording must match its own class's template.
    images, labels = digits_arrays()
    train, test = split_indices()
    up = DEFAULT.upsample(images[train])
    gy, gx = np.gradient(up, axis=(1, 2))
    edges = np.hypot(gx, gy)
    tmpl = np.stack([edges[labels[train] == c].mean(0) for c in range(10)]).reshape(10, -1)
    tmpl -= tmpl.mean(1, keepdims=True)
    tmpl /= np.linalg.norm(tmpl, axis=1, keepdims=True)
    idx = test[:40]
    counts = np.stack([np.bincount(e["y"].astype(int) * 32 + e["x"], minlength=1024) for e in generate(idx)])
    counts = counts - counts.mean(1, keepdims=True)
    accuracy = float((np.argmax(counts @ tmpl.T, 1) == labels[idx]).mean())
    assert accuracy >= 0.4  # chance is 0.1


def test_frames_count_every_event_in_its_bin(subset_events):
    spec = frame_spec(10)
    assert spec.sensor_size == (32, 32, 2) and spec.duration_us == DEFAULT.duration_us
    for ev in subset_events[:3]:
        frames = spec(ev)
        assert frames.shape == (10, 2, 32, 32) and frames.dtype == np.float32
        assert frames.sum() == len(ev)
        bins = ev["t"] * 10 // DEFAULT.duration_us
        np.testing.assert_array_equal(frames.sum(axis=(1, 2, 3)), np.bincount(bins, minlength=10))
        np.testing.assert_array_equal(frames[:, 1].sum(), (ev["p"] == 1).sum())  # channel 1 is ON


def test_cache_is_used_on_second_load_and_shared_across_timesteps(monkeypatch, subset_events):
    calls = []
    real = digits_dvs.generate

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(digits_dvs, "generate", counting)
    f10 = load_frames(10, cache_indices=SUBSET, progress=False)
    f4 = load_frames(4, cache_indices=SUBSET, progress=False)
    assert len(calls) == 1  # events emulated once, binned for both T
    assert f10.shape == (12, 10, 2, 32, 32) and f4.shape == (12, 4, 2, 32, 32)
    np.testing.assert_array_equal(f10.sum(axis=(1, 2, 3, 4)), [len(e) for e in subset_events])
    np.testing.assert_array_equal(f4.sum(axis=(1, 2, 3, 4)), f10.sum(axis=(1, 2, 3, 4)))

    def boom(*args, **kwargs):
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(digits_dvs, "generate", boom)
    np.testing.assert_array_equal(load_frames(10, cache_indices=SUBSET), f10)
    for a, b in zip(load_events(SUBSET), subset_events):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == EVENT_DTYPE
    picked = load_frames(10, indices=[9, 2], cache_indices=SUBSET)
    np.testing.assert_array_equal(picked, f10[[9, 2]])
    with pytest.raises(ValueError, match="not among the cached"):
        load_frames(10, indices=[40], cache_indices=SUBSET)
    # A changed parameter is another cache entry: it must generate.
    with pytest.raises(AssertionError, match="generated again"):
        load_frames(10, cache_indices=SUBSET, emulator=dataclasses.replace(DEFAULT, noise_hz=3.0))


def test_cache_key_changes_with_every_parameter():
    from snnbench.data.cache import cache_path

    source = "src"
    base = cache_path("digits-dvs", digits_dvs._events_repr(DEFAULT), source, "events")
    seen = {base}
    for field in dataclasses.fields(SaccadeDVS):
        value = getattr(DEFAULT, field.name)
        changed = dataclasses.replace(DEFAULT, **{field.name: value * 2 if value else 1})
        path = cache_path("digits-dvs", digits_dvs._events_repr(changed), source, "events")
        assert path not in seen, field.name
        seen.add(path)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="multiple of step_us"):
        SaccadeDVS(duration_us=1000, step_us=300)
    with pytest.raises(ValueError, match="noise_hz must be >= 0"):
        SaccadeDVS(noise_hz=-1.0)
    with pytest.raises(ValueError, match="sample ids"):
        DEFAULT.record(np.zeros((2, 8, 8)), [0])
