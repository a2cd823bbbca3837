"""The embedded readers (snnbench.data.digits, digits_dvs): splits, items, the shared split, check()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from snnbench.data import DataStatus, Split, check, digits_dvs, load_split
from snnbench.data import digits as reader
from snnbench.data.frames import make_events
from snnbench.tasks import get_task

pytestmark = pytest.mark.usefixtures("private_cache")  # each test caches on its own


@pytest.fixture
def fake_emulator(monkeypatch):
    """Replace the (slow) emulation of all 1,797 digits by marker events: recording i has i % 7 + 1
    ON events at x = i % 32, y = label, spread over the recording, and one OFF event at (0, 0)."""
    calls = []
    _, labels = reader.digits_arrays()

    def fake(indices=None, emulator=digits_dvs.DEFAULT, progress=False, batch_size=64):
        calls.append(len(indices))
        out = []
        for i in indices:
            n = i % 7 + 1
            t = np.linspace(0, emulator.duration_us - 1, n + 1).astype(np.int64)
            x = np.r_[np.full(n, i % 32), 0]
            y = np.r_[np.full(n, labels[i]), 0]
            p = np.r_[np.ones(n, int), 0]
            order = np.argsort(t, kind="stable")
            out.append(make_events(x[order], y[order], t[order], p[order]))
        return out

    monkeypatch.setattr(digits_dvs, "generate", fake)
    return calls


def test_digits_split_sizes_stratified_and_disjoint():
    train, test = reader.split_indices()
    assert (len(train), len(test)) == (1347, 450)
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.union1d(train, test), np.arange(1797))
    labels = load_digits().target
    # Stratified: every class's share of the test split within one sample of 25%.
    for c in range(10):
        n_c = (labels == c).sum()
        assert abs((labels[test] == c).sum() - 0.25 * n_c) <= 1


def test_split_is_sklearns_train_test_split_with_seed_0():
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    _, expected_test = train_test_split(np.arange(1797), test_size=0.25, stratify=labels, random_state=0)
    np.testing.assert_array_equal(reader.split_indices()[1], np.sort(expected_test))


def test_digits_items_are_pixels_over_16():
    task = get_task("digits")
    bunch = load_digits()
    for split, size in (("train", 1347), ("test", 450)):
        loaded = load_split(task, split)
        assert isinstance(loaded, Split) and loaded.reportable and loaded.status == "embedded"
        ds = loaded.dataset
        assert len(ds) == size
        x, y = ds[5]
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and tuple(x.shape) == (1, 8, 8)
        assert isinstance(y, int)
        i = int(ds.indices[5])
        np.testing.assert_allclose(x.numpy()[0], bunch.images[i] / 16.0, rtol=0, atol=1e-7)
        assert y == bunch.target[i]
        assert float(x.max()) <= 1.0 and float(x.min()) >= 0.0


def test_items_cannot_corrupt_the_shared_arrays():
    ds = load_split(get_task("digits"), "train").dataset
    x, _ = ds[0]
    x += 100
    assert float(ds[0][0].max()) <= 1.0


def test_digits_dvs_pairs_with_digits_and_is_binned_per_t(fake_emulator):
    digits, dvs = get_task("digits"), get_task("digits-dvs")
    _, labels = reader.digits_arrays()
    for split in ("train", "test"):
        plain = load_split(digits, split).dataset
        events = load_split(dvs, split).dataset
        assert len(events) == len(plain)
        np.testing.assert_array_equal(events.indices, plain.indices)  # the same images
        for k in (0, 17, len(events) - 1):
            x, y = events[k]
            i = int(events.indices[k])
            assert tuple(x.shape) == (10, 2, 32, 32) and x.dtype == torch.float32
            assert y == plain[k][1] == labels[i]
            # The marker events: i % 7 + 1 ON at (x = i % 32, y = label), one OFF at (0, 0).
            assert float(x[:, 1].sum()) == float(x[:, 1, labels[i], i % 32].sum()) == i % 7 + 1
            assert float(x[:, 0].sum()) == float(x[-1, 0, 0, 0]) == 1  # at the last time: last bin
    assert fake_emulator == [1797]  # emulated once for both splits

    # --timesteps: frames re-binned from the cached events, not emulated again.
    x, _ = load_split(dvs, "test", timesteps=4).dataset[0]
    assert tuple(x.shape) == (4, 2, 32, 32)
    assert fake_emulator == [1797]


def test_check_reports_embedded_and_what_is_cached(fake_emulator, tmp_path):
    dvs = get_task("digits-dvs")
    before = check(dvs)
    assert isinstance(before, DataStatus) and before.word == "embedded"
    assert before.folder == str(tmp_path / "cache" / "digits-dvs")
    assert "not generated" in before.detail
    load_split(dvs, "test")
    after = check(dvs)
    assert after.word == "embedded" and "T=10 frames cached" in after.detail
    digits = check(get_task("digits"))
    assert digits.word == "embedded" and "load_digits" in digits.detail


def test_check_never_raises(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(digits_dvs, "cache_report", broken)
    status = check(get_task("digits-dvs"))
    assert status.word == "corrupt" and "disk on fire" in status.detail


def test_reader_refuses_other_sources_and_splits():
    from dataclasses import replace

    from snnbench.data import DataError

    task = get_task("digits")
    with pytest.raises(ValueError, match="split must be"):
        reader.load(task, "val")
    other = replace(task, data={**task.data, "source": "cifar10"})
    with pytest.raises(DataError, match="the digits reader serves digits, not 'cifar10'"):
        reader.load(other, "train")
    with pytest.raises(DataError, match="the digits-dvs reader serves digits-dvs, not 'cifar10'"):
        digits_dvs.load(other, "train")
