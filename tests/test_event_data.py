"""Event-camera readers (CIFAR10-DVS, N-MNIST, DVS128 Gesture, N-Caltech101) on fixtures written in
the published formats, plus the two real recordings in tests/data/events read through the
same code path as user data."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from snnbench.data import DataError, DataMissing, check, cifar10dvs, decoders, framecache, load_split
from snnbench.data.cache import cache_path
from snnbench.tasks import get_task
from tests.conftest import EVENTS_DATA
from tests.fixtures_writers import (
    CIFAR10_CLASSES,
    random_events,
    truncate,
    write_aedat2,
    write_aedat4,
    write_aedat31,
    write_bin,
    write_cifar10dvs,
    write_dvsgesture_npy,
    write_dvsgesture_original,
    write_ncaltech101,
    write_nmnist,
    zero,
)

# partial / unpinned loads warn; tests that are about the warning catch it with pytest.warns
pytestmark = pytest.mark.filterwarnings("ignore:.*not reportable:UserWarning")


@pytest.fixture(autouse=True)
def _own_cache_one_worker(private_cache, monkeypatch):
    monkeypatch.setenv("SNNBENCH_DATA_WORKERS", "1")


def small(task_id: str, **data):
    task = get_task(task_id)
    return dataclasses.replace(task, data={**task.data, **data})


def expected_frames(ev, t_bins: int, sensor: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """Counts [T, 2, h, w] computed here with numpy: T bins of (t_last - t_first) // T from the first
    event (later events dropped), pixels x * w // W, y * h // H, channel = polarity."""
    t = np.asarray(ev["t"], dtype=np.int64)
    t0 = t.min()
    window = (t.max() - t0) // t_bins
    b = (t - t0) // window
    keep = b < t_bins
    (w_in, h_in), (h, w) = sensor, out
    x = np.asarray(ev["x"]) * w // w_in
    y = np.asarray(ev["y"]) * h // h_in
    counts = np.zeros((t_bins, 2, h, w))
    np.add.at(counts, (b[keep], np.asarray(ev["p"])[keep], y[keep], x[keep]), 1)
    return counts


def items(dataset) -> dict[str, tuple[torch.Tensor, int]]:
    return {rid: dataset[i] for i, rid in enumerate(dataset.rids)}


def one_line_naming(err, path) -> str:
    text = str(err.value)
    assert "\n" not in text and str(path) in text, text
    return text


# ---------------------------------------------------------------- CIFAR10-DVS


def c10_task(per_class: int = 10, **data):
    return small("cifar10dvs", total_recordings=10 * per_class, **data)


def test_cifar10dvs_aedat2_frames_labels_and_frozen_split(tmp_path):
    truth = write_cifar10dvs(tmp_path / "data", per_class=10)
    task = c10_task()
    st = check(task, tmp_path / "data")
    assert (st.word, st.layout) == ("present", "AEDAT 2.0 original release"), st
    # the frozen test list, computed independently: last 10% of each class's sorted stems
    test_ids = sorted(f"{c}/{sorted(f'cifar10_{c}_{i}' for i in range(10))[-1]}" for c in CIFAR10_CLASSES)
    digest = hashlib.sha256("".join(f"{i}\n" for i in test_ids).encode()).hexdigest()
    assert f"test list sha256 {digest} is not pinned" in st.detail
    assert "90 train / 10 test samples" in st.detail

    with pytest.warns(UserWarning, match="not pinned"):
        split = load_split(task, "test", tmp_path / "data")
    assert (split.status, split.reportable) == ("present", False)  # unpinned is never accepted
    got = items(split.dataset)
    assert sorted(got) == test_ids
    for rid, (x, y) in got.items():
        assert x.dtype == torch.float32 and tuple(x.shape) == (10, 2, 48, 48)
        assert y == CIFAR10_CLASSES.index(rid.split("/")[0])
        np.testing.assert_array_equal(x.numpy(), expected_frames(truth[rid], 10, (128, 128), (48, 48)))

    pinned = c10_task(test_list_sha256=digest)
    assert "matches tasks/cifar10dvs.toml" in check(pinned, tmp_path / "data").detail
    split = load_split(pinned, "train", tmp_path / "data")
    assert (split.status, split.reportable, len(split.dataset)) == ("present", True, 90)


def test_cifar10dvs_wrong_pin_is_corrupt_and_refused(tmp_path):
    write_cifar10dvs(tmp_path, per_class=10)
    task = c10_task(test_list_sha256="ab" * 32)
    st = check(task, tmp_path)
    assert st.word == "corrupt" and "does not match the pinned" in st.detail
    with pytest.raises(DataError, match="differ from the pinned release"):
        load_split(task, "test", tmp_path)


def test_cifar10dvs_aedat4_layout_gives_the_same_frames(tmp_path):
    write_cifar10dvs(tmp_path / "a", per_class=10, fmt="aedat", seed=5)
    write_cifar10dvs(tmp_path / "b", per_class=10, fmt="aedat4", seed=5)
    task = c10_task()
    assert check(task, tmp_path / "b").layout == "AEDAT4 (tonic conversion)"
    assert check(task, tmp_path / "a").detail == check(task, tmp_path / "b").detail  # same split, same hash
    with pytest.warns(UserWarning):
        a = load_split(task, "test", tmp_path / "a").dataset
        b = load_split(task, "test", tmp_path / "b").dataset
    assert a.rids == b.rids
    for i in range(len(a)):
        assert torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1]


def test_cifar10dvs_partial_against_the_published_total(tmp_path):
    write_cifar10dvs(tmp_path, per_class=10)
    task = get_task("cifar10dvs")
    st = check(task, tmp_path)
    assert st.word == "partial" and "100 of 10000 recordings" in st.detail and "not comparable" in st.detail
    with pytest.warns(UserWarning, match="partial: 100 of 10000 recordings"):
        split = load_split(task, "test", tmp_path)
    assert (split.status, split.reportable) == ("partial", False)


def test_cifar10dvs_missing(tmp_path):
    st = check(get_task("cifar10dvs"), tmp_path)
    assert st.word == "missing" and "CIFAR10DVS/<class>/*.aedat" in st.detail and "SNNBENCH_DATA" in st.detail
    with pytest.raises(DataMissing) as err:  # a type of its own: nothing matches the message text
        load_split(get_task("cifar10dvs"), "test", tmp_path)
    one_line_naming(err, tmp_path / "CIFAR10DVS")


def test_missing_is_told_from_damage_by_type_not_by_message(tmp_path):
    """A damaged file whose message happens to say "not found" is corrupt, not missing."""
    from snnbench.data.common import damaged, missing, status_from_error

    lookalike = damaged(tmp_path / "x.aedat", "not found; expected something")
    assert not isinstance(lookalike, DataMissing)
    assert status_from_error(lookalike, tmp_path).word == "corrupt"
    assert status_from_error(missing(tmp_path, "a layout"), tmp_path).word == "missing"


def _garble_header(path):
    path.write_bytes(b"#!AER-DAT9.9\r\n" + path.read_bytes()[14:])


def _unknown_class(path):
    shutil.copy(
        path, path.parent.parent.joinpath("zebra").mkdir() or path.parent.parent / "zebra" / path.name
    )
    return path.parent.parent / "zebra"


@pytest.mark.parametrize(
    "fmt, damage, says, in_check",
    [
        ("aedat", truncate, "truncated", False),
        ("aedat", zero, "zero-byte", True),
        ("aedat", _garble_header, "does not start with #!AER-DAT2", True),
        ("aedat", _unknown_class, "class folder not in the task's class_names", True),
        ("aedat4", lambda p: truncate(p, 40), "not a readable AEDAT4 file", False),
        ("aedat4", zero, "zero-byte", True),
        (
            "aedat4",
            lambda p: write_aedat4(p, random_events(np.random.default_rng(1), 50, 240, 180), 240, 180),
            "outside the 128x128 sensor",
            True,
        ),
        (
            "aedat4",
            lambda p: write_aedat4(
                p, {**random_events(np.random.default_rng(1), 3, 128, 128), "x": np.array([0, 130, 5])}
            ),
            "events outside the 128x128 sensor (x spans 0..130)",
            False,
        ),
    ],
)
def test_cifar10dvs_damage_is_one_line_naming_the_file(tmp_path, fmt, damage, says, in_check):
    write_cifar10dvs(tmp_path, per_class=10, fmt=fmt)
    path = tmp_path / "CIFAR10DVS" / "cat" / f"cifar10_cat_9.{fmt}"  # a test recording
    named = damage(path) if damage is _unknown_class else (damage(path), path)[1]
    task = c10_task(test_list_sha256="")
    st = check(task, tmp_path)
    if in_check:
        assert st.word == "corrupt" and str(named) in st.detail and says in st.detail, st
    with pytest.raises(DataError) as err:
        load_split(task, "test", tmp_path)
    assert says in one_line_naming(err, named)


def test_aedat2_header_with_lf_line_ends_is_parsed_without_tonic(tmp_path):
    ev = random_events(np.random.default_rng(0), 40, 128, 128)
    path = write_aedat2(tmp_path / "x.aedat", ev)
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n", 4))  # tonic's header parse needs CRLF
    assert decoders.aedat_header(path) == (2.0, path.read_bytes().index(b"us\n") + 3)
    got = decoders.decode(path, "aedat2", (128, 128))
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(got[name], ev[name])


def test_cifar10dvs_mixed_layouts_are_corrupt(tmp_path):
    write_cifar10dvs(tmp_path, per_class=10)
    write_aedat4(
        tmp_path / "CIFAR10DVS" / "cat" / "extra.aedat4", random_events(np.random.default_rng(0), 9, 128, 128)
    )
    st = check(c10_task(), tmp_path)
    assert st.word == "corrupt" and "mixes .aedat and .aedat4" in st.detail


def test_second_load_reads_the_cache_and_never_decodes(tmp_path, monkeypatch, capsys):
    write_cifar10dvs(tmp_path, per_class=10)
    task = c10_task()
    with pytest.warns(UserWarning):
        first = load_split(task, "train", tmp_path).dataset
    assert "binning events" in capsys.readouterr().err  # progress bar on the first pass, on stderr
    frames_first = [first[i][0] for i in range(len(first))]

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(decoders, "decode", boom)
    with pytest.warns(UserWarning):
        second = load_split(task, "train", tmp_path).dataset
    assert "binning events" not in capsys.readouterr().err
    assert all(torch.equal(frames_first[i], second[i][0]) for i in range(len(second)))
    # another T is another cache entry, and so is a touched source file
    with pytest.raises(AssertionError, match="decoded again"), pytest.warns(UserWarning):
        load_split(task, "train", tmp_path, timesteps=5)[0]
    monkeypatch.undo()
    monkeypatch.setenv("SNNBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SNNBENCH_DATA_WORKERS", "1")
    with pytest.warns(UserWarning):
        t5 = load_split(task, "train", tmp_path, timesteps=5).dataset
    assert tuple(t5[0][0].shape) == (5, 2, 48, 48)
    rec = tmp_path / "CIFAR10DVS" / "airplane" / "cifar10_airplane_0.aedat"
    e = next(e for e in second.entries if e.path == str(rec))
    os.utime(rec, ns=(rec.stat().st_atime_ns, rec.stat().st_mtime_ns + 10**9))
    with pytest.warns(UserWarning):
        third = load_split(task, "train", tmp_path).dataset
    e3 = next(e for e in third.entries if e.path == str(rec))
    assert e3.source_hash != e.source_hash
    assert cache_path("cifar10dvs", third.transform, e3.source_hash, e3.cache_label).is_file()


def test_process_pool_first_pass_matches_in_process(tmp_path, monkeypatch):
    write_cifar10dvs(tmp_path, per_class=5)
    task = c10_task(per_class=5)
    found = cifar10dvs.scan(task, tmp_path)
    recs = [r for r in found.recordings if r.split == "train"]
    pooled = framecache.build_frames(task, recs, found.folder, 10, progress=False, n_workers=2)
    assert len(pooled) == 40 and all(
        cache_path("cifar10dvs", pooled.transform, e.source_hash, e.cache_label).is_file()
        for e in pooled.entries
    )
    monkeypatch.setenv("SNNBENCH_CACHE", str(tmp_path / "cache2"))
    serial = framecache.build_frames(task, recs, found.folder, 10, progress=False, n_workers=1)
    assert all(torch.equal(pooled[i][0], serial[i][0]) for i in range(len(serial)))


def test_dataset_items_batch_in_a_dataloader(tmp_path):
    from torch.utils.data import DataLoader

    write_cifar10dvs(tmp_path, per_class=10)
    with pytest.warns(UserWarning):
        split = load_split(c10_task(), "test", tmp_path)
    assert split.dataset.recommended_num_workers >= 0
    clone = pickle.loads(pickle.dumps(split.dataset))  # spawn-started DataLoader workers get a copy
    assert torch.equal(clone[3][0], split.dataset[3][0])
    x, y = next(iter(DataLoader(split.dataset, batch_size=4)))
    assert tuple(x.shape) == (4, 10, 2, 48, 48) and y.dtype == torch.int64


# ---------------------------------------------------------------- N-MNIST


def nm_task(train=3, test=2):
    return small("nmnist", train_size=10 * train, test_size=10 * test, total_recordings=10 * (train + test))


def test_nmnist_official_split_and_frames(tmp_path):
    truth = write_nmnist(tmp_path, 3, 2)
    task = nm_task()
    st = check(task, tmp_path)
    assert (st.word, st.layout) == (
        "present",
        "N-MNIST .bin original release",
    ) and "30 train / 20 test" in st.detail
    split = load_split(task, "test", tmp_path)
    assert (split.status, split.reportable) == ("present", True)
    got = items(split.dataset)
    assert sorted(got) == sorted(k for k in truth if k.startswith("Test/"))
    for rid, (x, y) in got.items():
        assert y == int(rid.split("/")[1])
        np.testing.assert_array_equal(x.numpy(), expected_frames(truth[rid], 10, (34, 34), (34, 34)))


def test_nmnist_partial_and_damage(tmp_path):
    write_nmnist(tmp_path, 3, 2)
    st = check(get_task("nmnist"), tmp_path)
    assert st.word == "partial" and "50 of 70000 recordings" in st.detail
    bad = tmp_path / "NMNIST" / "Test" / "4" / "00039.bin"
    ev = random_events(np.random.default_rng(0), 20, 34, 34)
    ev["x"][3] = 40
    write_bin(bad, ev)
    with pytest.raises(DataError) as err:
        load_split(nm_task(), "test", tmp_path)
    assert "events outside the 34x34 sensor (x spans 0..40)" in one_line_naming(err, bad)
    truncate(bad, 2)
    st = check(nm_task(), tmp_path)
    assert (
        st.word == "corrupt" and str(bad) in st.detail and "not a whole number of 5-byte events" in st.detail
    )


def test_nmnist_missing(tmp_path):
    (tmp_path / "NMNIST").mkdir()
    st = check(get_task("nmnist"), tmp_path)
    assert st.word == "missing" and "NMNIST/Train/<digit>/*.bin" in st.detail


# ---------------------------------------------------------------- DVS128 Gesture


def gesture_task(**data):
    return small("dvsgesture", trials_train=2, trials_test=1, npy_train=22, npy_test=11, **data)


@pytest.mark.parametrize("subdir", ["", "DvsGesture"])
def test_dvsgesture_original_release_samples_from_labels_csv(tmp_path, subdir):
    truth = write_dvsgesture_original(tmp_path, subdir=subdir)
    task = gesture_task()
    st = check(task, tmp_path)
    assert (st.word, st.layout) == (
        "present",
        "AEDAT 3.1 original release",
    ) and "22 train / 11 test" in st.detail
    split = load_split(task, "test", tmp_path)
    got = items(split.dataset)
    assert sorted(got) == sorted(f"user24_lab#{i}" for i in range(11))
    for i, (label, _t0, _t1, seg) in enumerate(truth["user24_lab"]):
        x, y = got[f"user24_lab#{i}"]
        assert y == label and tuple(x.shape) == (16, 2, 64, 64)
        np.testing.assert_array_equal(x.numpy(), expected_frames(seg, 16, (128, 128), (64, 64)))
    assert len(load_split(task, "train", tmp_path).dataset) == 22


def test_aedat31_decoder_skips_special_and_invalid_events(tmp_path):
    ev = random_events(np.random.default_rng(2), 100, 128, 128, 50_000, t0=(1 << 31) + 5)
    path = write_aedat31(tmp_path / "x.aedat", ev, packet_events=16, invalid_every=5)
    got = decoders.decode(path, "aedat31", (128, 128))
    keep = np.arange(100) % 5 != 4
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(got[name], ev[name][keep])


def test_dvsgesture_listed_files_must_exist(tmp_path):
    write_dvsgesture_original(tmp_path)
    folder = tmp_path / "DVSGesture"
    labels = (folder / "user02_led_labels.csv").read_text()
    (folder / "user02_led_labels.csv").unlink()
    st = check(gesture_task(), tmp_path)
    assert st.word == "corrupt" and str(folder / "user02_led_labels.csv") in st.detail
    (folder / "user02_led_labels.csv").write_text(labels)
    (folder / "user24_lab.aedat").unlink()
    with pytest.raises(DataError) as err:
        load_split(gesture_task(), "test", tmp_path)
    assert "trials_to_test.txt lists it" in one_line_naming(err, folder / "user24_lab.aedat")


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda f: truncate(f / "user01_fluorescent.aedat", 5), "truncated"),
        (
            lambda f: (f / "user01_fluorescent_labels.csv").write_text(
                "class,startTime_usec,endTime_usec\n3,x,9\n"
            ),
            "malformed labels file",
        ),
        (
            lambda f: (f / "user01_fluorescent_labels.csv").write_text(
                "class,startTime_usec,endTime_usec\n12,1,9\n"
            ),
            "class 1..11",
        ),
        (
            lambda f: write_aedat31(
                f / "user01_fluorescent.aedat",
                {**random_events(np.random.default_rng(3), 40, 200, 128), "t": np.arange(40) * 10},
            ),
            "events outside the 128x128 sensor (x spans",
        ),
        (
            lambda f: (f / "trials_to_test.txt").write_text("user24_lab.aedat\nuser01_fluorescent.aedat\n"),
            "train and test overlap in 'user01_fluorescent.aedat'",
        ),
    ],
)
def test_dvsgesture_damage_names_the_file(tmp_path, damage, says):
    write_dvsgesture_original(tmp_path)
    damage(tmp_path / "DVSGesture")
    with pytest.raises(DataError) as err:
        load_split(gesture_task(), "train", tmp_path)
    assert (
        says in str(err.value)
        and "\n" not in str(err.value)
        and str(tmp_path / "DVSGesture") in str(err.value)
    )


def test_dvsgesture_tonic_npy_layout(tmp_path):
    truth = write_dvsgesture_npy(tmp_path)
    task = gesture_task()
    st = check(task, tmp_path)
    assert (st.word, st.layout) == ("present", "tonic npy")
    assert check(get_task("dvsgesture"), tmp_path).detail.startswith("33 of 1341 samples")
    got = items(load_split(task, "train", tmp_path).dataset)
    assert sorted(got) == sorted(k for k in truth if k.startswith("ibmGestureTrain/"))
    for rid, (x, y) in got.items():
        assert y == int(rid.rsplit("/", 1)[1])
        np.testing.assert_array_equal(x.numpy(), expected_frames(truth[rid], 16, (128, 128), (64, 64)))


def test_dvsgesture_npy_damage(tmp_path):
    write_dvsgesture_npy(tmp_path)
    bad = tmp_path / "DVSGesture" / "ibmGestureTest" / "user24_lab" / "3.npy"
    np.save(bad, np.zeros((5, 3)))
    st = check(gesture_task(), tmp_path)
    assert st.word == "corrupt" and str(bad) in st.detail and "[N, 4]" in st.detail
    bad.unlink()
    np.save(bad.with_name("11.npy"), np.zeros((5, 4)))
    st = check(gesture_task(), tmp_path)
    assert st.word == "corrupt" and "11.npy" in st.detail


# ---------------------------------------------------------------- N-Caltech101


def test_ncaltech101_labels_index_the_pinned_class_list(tmp_path):
    classes = ["BACKGROUND_Google", "accordion", "yin_yang"]
    truth = write_ncaltech101(tmp_path, classes, per_class=10)
    task = small("ncaltech101", total_recordings=30)
    st = check(task, tmp_path)
    assert (st.word, st.layout) == (
        "present",
        "N-Caltech101 .bin original release",
    ) and "27 train / 3 test" in st.detail
    with pytest.warns(UserWarning, match="not pinned"):
        got = items(load_split(task, "test", tmp_path).dataset)
    names = task.data["class_names"]
    assert sorted(got) == [f"{c}/image_0010" for c in classes]
    for rid, (x, y) in got.items():
        assert y == names.index(rid.split("/")[0])
        np.testing.assert_array_equal(x.numpy(), expected_frames(truth[rid], 10, (240, 180), (48, 48)))
    # excluding the background folder drops its recordings and re-indexes the labels
    excl = small("ncaltech101", total_recordings=20, exclude_classes=["BACKGROUND_Google"])
    with pytest.raises(DataError, match="leaves 100 classes but classes = 101"):
        load_split(excl, "test", tmp_path)
    excl = dataclasses.replace(excl, classes=100)
    with pytest.warns(UserWarning):
        got = items(load_split(excl, "test", tmp_path).dataset)
    assert sorted(got) == ["accordion/image_0010", "yin_yang/image_0010"]
    assert got["accordion/image_0010"][1] == names.index("accordion") - 1


def test_ncaltech101_damage(tmp_path):
    write_ncaltech101(tmp_path, ["accordion"], per_class=10)
    faces = tmp_path / "NCALTECH101" / "Caltech101" / "Faces"
    write_bin(faces / "image_0001.bin", random_events(np.random.default_rng(0), 10, 240, 180))
    st = check(get_task("ncaltech101"), tmp_path)
    assert st.word == "corrupt" and str(faces) in st.detail and "not in the task's class_names" in st.detail
    shutil.rmtree(faces)
    bad = tmp_path / "NCALTECH101" / "Caltech101" / "accordion" / "image_0010.bin"
    ev = random_events(np.random.default_rng(0), 20, 240, 180)
    ev["y"][0] = 200
    write_bin(bad, ev)
    with pytest.raises(DataError) as err:
        load_split(get_task("ncaltech101"), "test", tmp_path)
    assert "outside the 240x180 sensor (y spans" in one_line_naming(err, bad)
    assert check(get_task("ncaltech101"), tmp_path).word == "partial"


# ---------------------------------------------------------------- frame parameters are part of the task


@pytest.mark.parametrize("tid", ["cifar10dvs", "nmnist", "dvsgesture", "ncaltech101"])
def test_task_files_pin_the_frame_parameters(tid):
    task = get_task(tid)
    assert task.encoding["frames"] == repr(framecache.frame_spec(task))
    _, h, w = task.input_shape
    assert framecache.frame_spec(task).shape == (task.timesteps, 2, h, w)


def test_changed_frame_parameters_refuse_to_run(tmp_path):
    task = get_task("nmnist")
    changed = dataclasses.replace(task, input_shape=(2, 17, 17))
    with pytest.raises(DataError, match="bump the task version"):
        load_split(changed, "test", tmp_path)
    assert check(changed, tmp_path).word == "corrupt"


# ---------------------------------------------------------------- the real recordings


REAL_RECORDINGS = {
    "sample_nmnist.bin": "3c9159329633efbb6879bba1b430598b78cc06a779a55d1259ec13e203ad00ee",
    "sample.aedat4": "b42f119af2548d4328e6c0f249e369a4b755d82eeb6ddceb14441492d979444c",
}


@pytest.fixture
def real_events():
    """tests/data/events, part of the repository: a missing or changed recording fails, never skips."""
    for name, sha in REAL_RECORDINGS.items():
        path = EVENTS_DATA / name
        assert path.is_file(), f"{path} is absent; it is part of the repository (see its README.md)"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{path} differs from the recording"
    return EVENTS_DATA


def _independent_nmnist(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    return {
        "x": raw[:, 0],
        "y": raw[:, 1],
        "p": raw[:, 2] >> 7,
        "t": ((raw[:, 2] & 127) << 16) | (raw[:, 3] << 8) | raw[:, 4],
    }


def test_real_nmnist_recording_through_the_reader(tmp_path, real_events):
    real = real_events / "sample_nmnist.bin"
    for part in ("Train/3/00001.bin", "Test/3/00002.bin"):
        link = tmp_path / "NMNIST" / part
        link.parent.mkdir(parents=True)
        link.symlink_to(real)
    task = small("nmnist", train_size=1, test_size=1, total_recordings=2)
    assert check(task, tmp_path).word == "present"
    x, y = load_split(task, "test", tmp_path).dataset[0]
    ev = _independent_nmnist(real)
    assert len(ev["t"]) == 4325 and ev["x"].max() == 33 and ev["t"].max() == 311_175
    assert y == 3
    np.testing.assert_array_equal(x.numpy(), expected_frames(ev, 10, (34, 34), (34, 34)))


def test_real_aedat4_recording_through_the_reader(tmp_path, real_events):
    real = real_events / "sample.aedat4"
    got = decoders.decode(real, "aedat4", (320, 240))
    assert len(got) == 111_954 and int(got["x"].max()) == 319 and int(got["y"].max()) == 239
    assert set(np.unique(got["p"]).tolist()) <= {0, 1} and np.all(np.diff(got["t"]) >= 0)
    # as a CIFAR10-DVS recording it comes from the wrong sensor: corrupt, naming the file
    for i in range(10):
        target = tmp_path / "CIFAR10DVS" / "airplane" / f"cifar10_airplane_{i}.aedat4"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(real)
    st = check(c10_task(per_class=1), tmp_path)
    assert st.word == "corrupt" and "outside the 128x128 sensor (the file is from a 320x240 one)" in st.detail
    assert str(tmp_path / "CIFAR10DVS" / "airplane") in st.detail
    with pytest.raises(DataError) as err:
        load_split(c10_task(per_class=1), "test", tmp_path)
    one_line_naming(err, tmp_path / "CIFAR10DVS" / "airplane" / "cifar10_airplane_9.aedat4")


def test_real_aedat4_recording_loads_as_frames_on_its_own_sensor(tmp_path, real_events):
    """The same path as user data (scan, header check, tonic decode, binning, cache) on a task whose
    sensor is the recording's 320x240; frames checked against events read with `aedat` directly."""
    import aedat

    real = real_events / "sample.aedat4"
    for i in range(10):
        target = tmp_path / "CIFAR10DVS" / "ship" / f"cifar10_ship_{i}.aedat4"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(real)
    base = c10_task(per_class=1)
    encoding = {k: v for k, v in base.encoding.items() if k != "frames"}
    task = dataclasses.replace(base, encoding={**encoding, "sensor_size": [320, 240]})
    x, y = load_split(task, "test", tmp_path).dataset[0]
    packets = [p["events"] for p in aedat.Decoder(str(real)) if "events" in p]
    raw = np.concatenate(packets)
    ev = {
        "x": raw["x"].astype(np.int64),
        "y": raw["y"].astype(np.int64),
        "t": raw["t"].astype(np.int64),
        "p": raw["on"].astype(np.int64),
    }
    assert y == CIFAR10_CLASSES.index("ship") and len(raw) == 111_954
    np.testing.assert_array_equal(x.numpy(), expected_frames(ev, 10, (320, 240), (48, 48)))
