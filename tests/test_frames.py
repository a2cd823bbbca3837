"""Event-to-frame binning (snnbench.data.frames) and the derived-array cache (snnbench.data.cache)."""

from __future__ import annotations

import numpy as np
import pytest

from snnbench.data import cache_root
from snnbench.data.cache import cache_key, cache_path, cached, content_hash, load_cached, save_cached
from snnbench.data.frames import EVENT_DTYPE, EventFrames, events_to_frames, make_events

pytestmark = pytest.mark.usefixtures("private_cache")  # each test caches on its own


def tiny_events() -> np.ndarray:
    #              x  y  t   p
    rows = [(0, 0, 0, 1), (1, 0, 10, 1), (1, 0, 20, 1), (2, 1, 35, 0), (3, 2, 70, 0), (3, 2, 99, 1)]
    x, y, t, p = zip(*rows)
    return make_events(x, y, t, p)


def test_make_events_layout():
    ev = tiny_events()
    assert ev.dtype == EVENT_DTYPE
    assert ev.dtype.names == ("x", "y", "t", "p")
    assert ev["t"].tolist() == [0, 10, 20, 35, 70, 99]
    with pytest.raises(ValueError, match="differ in length"):
        make_events([0], [0, 1], [0], [0])


def test_tonic_time_bins_match_a_hand_count():
    # tonic's n_time_bins: width (99 - 0) // 3 = 33 from the first event: [0,33) [33,66) [66,99);
    # the last event (t = 99) falls after the last bin and is not counted.
    frames = EventFrames(sensor_size=(4, 3, 2), n_time_bins=3)(tiny_events())
    expected = np.zeros((3, 2, 3, 4), np.float32)
    expected[0, 1, 0, 0] = 1
    expected[0, 1, 0, 1] = 2
    expected[1, 0, 1, 2] = 1
    expected[2, 0, 2, 3] = 1
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, expected)


def test_fixed_duration_bins_match_a_hand_count():
    ev = np.concatenate([tiny_events(), make_events([0, 0], [0, 0], [100, 250], [0, 0])])
    frames = EventFrames(sensor_size=(4, 3, 2), n_time_bins=4, duration_us=100)(ev)
    # bins of 25 us over [0, 100): t 0,10,20 -> 0; 35 -> 1; 70 -> 2; 99 -> 3; t >= 100 dropped.
    expected = np.zeros((4, 2, 3, 4), np.float32)
    expected[0, 1, 0, 0] = 1
    expected[0, 1, 0, 1] = 2
    expected[1, 0, 1, 2] = 1
    expected[2, 0, 2, 3] = 1
    expected[3, 1, 2, 3] = 1
    np.testing.assert_array_equal(frames, expected)


def test_fixed_duration_with_uneven_bins_counts_every_event_once():
    rng = np.random.default_rng(3)
    n, duration, t_bins = 5000, 300_000, 7  # 300000 / 7 is not an integer
    xy = rng.integers(0, 32, (2, n))
    ev = make_events(xy[0], xy[1], np.sort(rng.integers(0, duration, n)), rng.integers(0, 2, n))
    frames = EventFrames((32, 32, 2), t_bins, duration_us=duration)(ev)
    assert frames.shape == (t_bins, 2, 32, 32)
    assert frames.sum() == n
    per_bin = np.bincount(ev["t"] * t_bins // duration, minlength=t_bins)
    np.testing.assert_array_equal(frames.sum(axis=(1, 2, 3)), per_bin)


def test_downsampling_maps_coordinates_by_floor_of_the_ratio():
    xs, ys = np.meshgrid(np.arange(8), np.arange(6))
    ev = make_events(xs.ravel(), ys.ravel(), np.arange(48), np.ones(48, int))
    frames = EventFrames(sensor_size=(8, 6, 2), n_time_bins=1, size=(3, 4), duration_us=48)(ev)
    assert frames.shape == (1, 2, 3, 4)
    np.testing.assert_array_equal(frames[0, 1], np.full((3, 4), 4.0))  # x -> x // 2, y -> y // 2
    assert frames[0, 0].sum() == 0


def test_downsampling_128_to_48_is_floor_of_x_times_w_over_w():
    x = np.arange(128)
    ev = make_events(x, np.zeros(128, int), np.zeros(128, int), np.zeros(128, int))
    frames = EventFrames((128, 128, 2), 1, size=(48, 48), duration_us=1)(ev)
    expected = np.bincount(x * 48 // 128, minlength=48)
    np.testing.assert_array_equal(frames[0, 0, 0], expected)
    assert frames.sum() == 128


def test_unsorted_events_bin_as_sorted():
    ev = tiny_events()
    spec = EventFrames((4, 3, 2), 3)
    np.testing.assert_array_equal(spec(ev[::-1].copy()), spec(ev))


def test_empty_recording_gives_zero_frames_of_the_right_shape():
    ev = make_events([], [], [], [])
    assert EventFrames((5, 3, 2), 4)(ev).shape == (4, 2, 3, 5)
    assert EventFrames((5, 3, 2), 4, size=(2, 2), duration_us=10)(ev).shape == (4, 2, 2, 2)


def test_events_outside_the_sensor_or_bad_polarity_are_rejected():
    spec = EventFrames((4, 3, 2), 2)
    with pytest.raises(ValueError, match="event x spans 0..4"):
        spec(make_events([0, 4], [0, 0], [0, 5], [0, 0]))
    with pytest.raises(ValueError, match="event y spans -1..0"):
        spec(make_events([0, 0], [-1, 0], [0, 5], [0, 0]))
    with pytest.raises(ValueError, match="event p spans -1..1"):
        spec(make_events([0, 0], [0, 0], [0, 5], [-1, 1]))
    with pytest.raises(ValueError, match="missing t"):
        events_to_frames(np.zeros(2, dtype=[("x", "i2"), ("y", "i2"), ("p", "i1")]), spec)


def test_int16_overflow_inside_tonic_is_caught():
    n = 32768  # one more than tonic's int16 frames hold in one pixel and bin
    ev = make_events(np.zeros(n, int), np.zeros(n, int), np.zeros(n, int), np.zeros(n, int))
    with pytest.raises(ValueError, match="32767"):
        EventFrames((2, 2, 2), 1, duration_us=1)(ev)


def test_spec_repr_is_deterministic_and_names_every_parameter():
    a = EventFrames(sensor_size=[34, 34, 2], n_time_bins=10, size=[17, 17])
    b = EventFrames(sensor_size=(34, 34, 2), n_time_bins=10, size=(17, 17))
    assert a == b and hash(a) == hash(b)
    assert (
        repr(a)
        == repr(b)
        == "EventFrames(sensor_size=(34, 34, 2), n_time_bins=10, size=(17, 17), duration_us=None)"
    )
    assert repr(EventFrames((34, 34, 2), 11)) != repr(EventFrames((34, 34, 2), 10))
    assert a.shape == (10, 2, 17, 17)
    with pytest.raises(ValueError, match="n_time_bins"):
        EventFrames((34, 34, 2), 0)
    with pytest.raises(ValueError, match="sensor_size"):
        EventFrames((34, 34), 1)


def test_content_hash_matches_hashlib_and_tells_dtypes_apart(tmp_path):
    import hashlib

    path = tmp_path / "blob.bin"
    path.write_bytes(b"abc" * 1000)
    assert content_hash(path) == content_hash(b"abc" * 1000)
    assert content_hash(b"abc") == hashlib.sha256(b"abc\x00").hexdigest()
    assert content_hash(np.zeros(4, np.int32)) != content_hash(np.zeros(4, np.float32))
    assert content_hash(np.zeros((2, 2))) != content_hash(np.zeros(4))
    assert content_hash("a", "bc") != content_hash("ab", "c")
    with pytest.raises(TypeError, match="content_hash takes"):
        content_hash(3)


def test_cache_round_trip_is_atomic_and_keyed(tmp_path):
    arrays = {"frames": np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "labels": np.array([3, 1])}
    path = save_cached("toy", "EventFrames(...)", "abc", arrays, label="frames-T3")
    assert path == cache_root() / "toy" / f"frames-T3-{cache_key('toy', 'EventFrames(...)', 'abc')}.npz"
    assert str(path).startswith(str(tmp_path / "cache"))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    back = load_cached("toy", "EventFrames(...)", "abc", label="frames-T3")
    assert set(back) == {"frames", "labels"}
    np.testing.assert_array_equal(back["frames"], arrays["frames"])
    assert back["frames"].dtype == np.uint8
    # Any part of the key changes the file.
    keys = [
        ("toy2", "EventFrames(...)", "abc"),
        ("toy", "EventFrames(..)", "abc"),
        ("toy", "EventFrames(...)", "abd"),
    ]
    others = {cache_path(*key) for key in [*keys, ("toy", "EventFrames(...)", "abc")]}
    assert len(others) == 4
    assert load_cached("toy", "EventFrames(...)", "abd", label="frames-T3") is None


def test_cached_computes_once_and_recomputes_a_damaged_file():
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5)}

    first = cached("toy", "r", "s", compute)
    second = cached("toy", "r", "s", compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["a"], second["a"])
    path = cache_path("toy", "r", "s")
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable"):
        third = cached("toy", "r", "s", compute)
    assert len(calls) == 2
    np.testing.assert_array_equal(third["a"], np.arange(5))
    assert load_cached("toy", "r", "s") is not None  # rewritten


def test_save_refuses_the_reserved_name_and_bad_labels():
    with pytest.raises(ValueError, match="reserved"):
        save_cached("toy", "r", "s", {"__meta__": np.zeros(1)})
    with pytest.raises(ValueError, match="label"):
        cache_path("toy", "r", "s", label="../x")


def test_a_second_writer_replaces_the_entry_whole():
    a = save_cached("toy", "r", "s", {"v": np.full(1000, 1)})
    b = save_cached("toy", "r", "s", {"v": np.full(1000, 2)})
    assert a == b
    np.testing.assert_array_equal(load_cached("toy", "r", "s")["v"], np.full(1000, 2))
    assert [p.name for p in a.parent.iterdir()] == [a.name]
