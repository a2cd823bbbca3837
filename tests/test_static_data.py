"""CIFAR-10 / CIFAR-100 / TinyImageNet readers on tiny fixtures written in the real formats."""

from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest
import torch

from snnbench.data import DataError, DataMissing, check, load_split
from snnbench.data.images import channel_stats
from snnbench.tasks import get_task
from tests.fixtures_writers import (
    truncate,
    write_cifar10,
    write_cifar100,
    write_pickle,
    write_tinyimagenet,
    zero,
)

pytestmark = pytest.mark.usefixtures("private_cache")  # each test caches on its own


def small(task_id: str, **data):
    task = get_task(task_id)
    return dataclasses.replace(task, data={**task.data, **data})


def independent_norm(train_x: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(x / 255 - mean) / std with numpy's own mean/std over every train pixel of each channel."""
    t = train_x.astype(np.float64) / 255.0
    mean = t.mean(axis=(0, 2, 3))
    std = t.std(axis=(0, 2, 3))
    return (x.astype(np.float64) / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]


def stack(dataset):
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(xs).numpy(), np.array(ys)


def assert_one_line_naming(exc_info, name: str):
    text = str(exc_info.value)
    assert "\n" not in text and name in text, text


# ---------------------------------------------------------------- CIFAR-10


def test_cifar10_reads_normalised_images_and_labels(tmp_path):
    truth = write_cifar10(tmp_path, train_rows=4, test_rows=6)
    task = small("cifar10", train_size=20, test_size=6)
    st = check(task, tmp_path)
    assert (st.word, st.layout) == ("present", "cifar-10-batches-py pickles")
    assert st.folder == str(tmp_path / "cifar-10-batches-py")
    split = load_split(task, "test", tmp_path)
    assert (split.status, split.reportable) == ("present", True)
    x, y = stack(split.dataset)
    assert x.dtype == np.float32 and x.shape == (6, 3, 32, 32)
    np.testing.assert_allclose(x, independent_norm(truth["train_x"], truth["test_x"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(y, truth["test_y"])
    assert split.dataset.class_names[0] == "airplane"
    train = load_split(task, "train", tmp_path)
    xt, yt = stack(train.dataset)
    np.testing.assert_array_equal(yt, truth["train_y"])
    # the training split is normalised to mean 0, std 1 per channel (exactly, up to float32)
    np.testing.assert_allclose(xt.astype(np.float64).mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(xt.astype(np.float64).std(axis=(0, 2, 3)), 1, atol=1e-5)


def test_channel_stats_match_numpy():
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, size=(7, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(imgs)
    np.testing.assert_allclose(mean, (imgs / 255.0).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, (imgs / 255.0).std(axis=(0, 2, 3)), rtol=1e-12)


def test_cifar10_files_smaller_than_published_are_partial(tmp_path):
    """Well-formed files holding fewer images than published: partial (n of N), loads with a warning."""
    truth = write_cifar10(tmp_path, train_rows=4, test_rows=6)
    task = get_task("cifar10")  # the real task: 10,000 images per batch
    st = check(task, tmp_path)
    assert st.word == "partial", st
    assert st.detail.startswith("26 of 60000 images"), st.detail
    assert st.summary == "partial (26 of 60000 images)"  # what `snnbench tasks` shows
    assert "data_batch_1 holds 4 of 10000 images" in st.detail and "test_batch holds 6 of 10000" in st.detail
    with pytest.warns(UserWarning, match="not reportable") as caught:
        split = load_split(task, "test", tmp_path)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "test_batch holds 6 of 10000 images" in split.note
    assert (split.status, split.reportable) == ("partial", False) and len(split.dataset) == 6
    x, y = stack(split.dataset)
    np.testing.assert_array_equal(y, truth["test_y"])
    np.testing.assert_allclose(x, independent_norm(truth["train_x"], truth["test_x"]), rtol=1e-5, atol=1e-5)


def test_cifar10_short_train_batches_make_the_test_split_partial(tmp_path):
    """Normalisation comes from the train batches: a short train split makes any run partial."""
    write_cifar10(tmp_path, train_rows=4, test_rows=6)
    task = small("cifar10", train_size=50, test_size=6)  # 10 per train batch published, 4 held
    st = check(task, tmp_path)
    assert st.word == "partial" and st.detail.startswith("26 of 56 images"), st
    for _ in range(2):  # the second load reads the row counts from the cache: same answer
        with pytest.warns(UserWarning, match="data_batch_1 holds 4 of 10 images"):
            split = load_split(task, "test", tmp_path)
        assert (split.status, split.reportable) == ("partial", False)


def test_cifar10_files_larger_than_published_are_corrupt(tmp_path):
    write_cifar10(tmp_path, train_rows=4, test_rows=6)
    task = small("cifar10", train_size=10, test_size=6)  # 2 per train batch published, 4 held
    st = check(task, tmp_path)
    assert st.word == "corrupt"
    assert "data_batch_1: holds 4 images; the published file holds 2" in st.detail
    with pytest.raises(DataError) as err:
        load_split(task, "train", tmp_path)
    assert_one_line_naming(err, "the published file holds 2")


def test_cifar100_smaller_than_published_is_partial(tmp_path):
    write_cifar100(tmp_path, train_rows=10, test_rows=6)
    task = get_task("cifar100")
    st = check(task, tmp_path)
    assert st.word == "partial" and st.detail.startswith("16 of 60000 images"), st
    with pytest.warns(UserWarning, match="not reportable"):
        split = load_split(task, "train", tmp_path)
    assert (split.status, split.reportable, len(split.dataset)) == ("partial", False, 10)


def test_cifar10_missing_names_layout_and_setting(tmp_path):
    task = get_task("cifar10")
    st = check(task, tmp_path)
    assert st.word == "missing" and "cifar-10-batches-py" in st.detail and "SNNBENCH_DATA" in st.detail
    with pytest.raises(DataMissing) as err:
        load_split(task, "test", tmp_path)
    assert_one_line_naming(err, "set --data-root or SNNBENCH_DATA")
    assert "data_batch_1" in str(err.value)


def test_cifar10_partial_loads_with_a_warning_and_is_not_reportable(tmp_path):
    write_cifar10(tmp_path, train_rows=4, test_rows=6)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    task = small("cifar10", train_size=20, test_size=6)
    st = check(task, tmp_path)
    assert st.word == "partial" and "6 of 7 files" in st.detail and "data_batch_3" in st.detail
    with pytest.warns(UserWarning, match="not reportable"):
        split = load_split(task, "test", tmp_path)
    assert (split.status, split.reportable) == ("partial", False) and len(split.dataset) == 6


def _wrong_keys(path):
    d = pickle.loads(path.read_bytes(), encoding="bytes")
    d[b"labelz"] = d.pop(b"labels")
    write_pickle(path, d)


def _float_data(path):
    d = pickle.loads(path.read_bytes(), encoding="bytes")
    d[b"data"] = d[b"data"].astype(np.float32)
    write_pickle(path, d)


def _code_pickle(path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))


def _bad_meta(path):
    write_pickle(path, {b"label_names": [b"just one"]})


def _label_range(path):
    d = pickle.loads(path.read_bytes(), encoding="bytes")
    d[b"labels"][0] = 10
    write_pickle(path, d)


@pytest.mark.parametrize(
    "name, damage, says",
    [
        ("data_batch_2", truncate, "not a readable CIFAR pickle"),
        ("test_batch", zero, "zero-byte"),
        ("data_batch_4", _wrong_keys, "lacks key(s) labels"),
        ("data_batch_1", _float_data, "must be uint8 [N, 3072]"),
        ("test_batch", lambda p: p.write_text("not a pickle"), "not a readable CIFAR pickle"),
        ("test_batch", _code_pickle, "refused global __builtin__.print"),
        ("batches.meta", _bad_meta, "label_names"),
        ("data_batch_5", _label_range, "outside 0..9"),
    ],
)
def test_cifar10_damage_is_corrupt_naming_the_file(tmp_path, name, damage, says, capsys):
    write_cifar10(tmp_path, train_rows=4, test_rows=6)
    path = tmp_path / "cifar-10-batches-py" / name
    damage(path)
    task = small("cifar10", train_size=20, test_size=6)
    st = check(task, tmp_path)
    assert st.word == "corrupt" and str(path) in st.detail and says in st.detail, st.detail
    split = "test" if name == "test_batch" else "train"
    with pytest.raises(DataError) as err:
        load_split(task, split, tmp_path)
    assert_one_line_naming(err, str(path))
    assert "pwned" not in capsys.readouterr().out


# ---------------------------------------------------------------- CIFAR-100


def test_cifar100_fine_label_is_y_and_coarse_is_exposed(tmp_path):
    truth = write_cifar100(tmp_path, train_rows=10, test_rows=6)
    task = small("cifar100", train_size=10, test_size=6)
    assert check(task, tmp_path).word == "present"
    split = load_split(task, "test", tmp_path)
    x, y = stack(split.dataset)
    np.testing.assert_array_equal(y, truth["test_y"])
    np.testing.assert_array_equal(split.dataset.coarse_labels, truth["test_coarse"])
    np.testing.assert_array_equal(split.dataset.fine_labels, truth["test_y"])
    np.testing.assert_allclose(x, independent_norm(truth["train_x"], truth["test_x"]), rtol=1e-5, atol=1e-5)


def test_cifar100_without_coarse_labels_is_corrupt(tmp_path):
    write_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python" / "train"
    d = pickle.loads(path.read_bytes(), encoding="bytes")
    del d[b"coarse_labels"]
    write_pickle(path, d)
    st = check(small("cifar100", train_size=10, test_size=6), tmp_path)
    assert st.word == "corrupt" and str(path) in st.detail and "coarse_labels" in st.detail


# ---------------------------------------------------------------- TinyImageNet


def decode_independently(items):
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p, _ in items])


def tiny_task(**data):
    task = get_task("tinyimagenet")
    return dataclasses.replace(task, classes=3, data={**task.data, "train_size": 9, "test_size": 6, **data})


def test_tinyimagenet_reads_jpegs_with_val_as_test(tmp_path):
    truth = write_tinyimagenet(tmp_path)
    task = tiny_task()
    st = check(task, tmp_path)
    assert st.word == "present" and "9 train, 6 val images" in st.detail, st
    split = load_split(task, "test", tmp_path)
    x, y = stack(split.dataset)
    assert x.shape == (6, 3, 64, 64) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [lab for _, lab in truth["test"]])
    expected = independent_norm(decode_independently(truth["train"]), decode_independently(truth["test"]))
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
    assert split.dataset.class_names == sorted(["n01443537", "n01629819", "n01641577"])
    xt, yt = stack(load_split(task, "train", tmp_path).dataset)
    np.testing.assert_array_equal(yt, [lab for _, lab in truth["train"]])
    assert list((tmp_path / "cache" / "tinyimagenet").glob("train-images-*.npz")), "decoded images are cached"


def test_tinyimagenet_fewer_classes_than_published_is_partial(tmp_path):
    truth = write_tinyimagenet(tmp_path)
    task = get_task("tinyimagenet")  # 200 classes, 100,000 + 10,000 images in the real task
    st = check(task, tmp_path)
    assert st.word == "partial", st
    assert st.detail.startswith("15 of 110000 images") and "3 of 200 classes" in st.detail, st.detail
    with pytest.warns(UserWarning, match="not reportable") as caught:
        split = load_split(task, "test", tmp_path)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert (split.status, split.reportable) == ("partial", False) and "3 of 200 classes" in split.note
    _, y = stack(split.dataset)  # labels: index of the wnid in sorted(wnids.txt), as for the full set
    np.testing.assert_array_equal(y, [lab for _, lab in truth["test"]])


def test_tinyimagenet_more_classes_than_the_task_is_corrupt(tmp_path):
    write_tinyimagenet(tmp_path)
    task = dataclasses.replace(tiny_task(), classes=2)
    st = check(task, tmp_path)
    assert st.word == "corrupt" and "lists 3 wnids; the task has 2 classes" in st.detail, st
    with pytest.raises(DataError) as err:
        load_split(task, "test", tmp_path)
    assert_one_line_naming(err, "wnids.txt")


def test_tinyimagenet_partial_against_published_totals(tmp_path):
    write_tinyimagenet(tmp_path)
    task = tiny_task(train_size=100000, test_size=10000)
    st = check(task, tmp_path)
    assert st.word == "partial" and "99991 of 100000 train images" in st.detail
    with pytest.warns(UserWarning, match="not reportable"):
        split = load_split(task, "test", tmp_path)
    assert (split.status, split.reportable) == ("partial", False)


def test_tinyimagenet_missing(tmp_path):
    st = check(tiny_task(), tmp_path)
    assert (
        st.word == "missing"
        and "tiny-imagenet-200" in st.detail
        and "set --data-root or SNNBENCH_DATA" in st.detail
    )


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda root, truth: truncate(truth["train"][1][0], 200), "not a readable JPEG"),
        (lambda root, truth: zero(truth["test"][0][0]), "zero-byte"),
        (lambda root, truth: truth["test"][2][0].unlink(), "val_annotations.txt lists it"),
        (lambda root, truth: (root / "tiny-imagenet-200" / "wnids.txt").unlink(), "wnids.txt: absent"),
        (
            lambda root, truth: (root / "tiny-imagenet-200" / "train" / "n09999999" / "images").mkdir(
                parents=True
            ),
            "not in wnids.txt",
        ),
        (
            lambda root, truth: truth["test"][0][0].write_bytes(b"\xff\xd8 not really a jpeg"),
            "not a readable JPEG",
        ),
    ],
)
def test_tinyimagenet_damage_is_a_one_line_error_naming_the_file(tmp_path, damage, says):
    truth = write_tinyimagenet(tmp_path)
    damage(tmp_path, truth)
    task = tiny_task()
    with pytest.raises(DataError) as err:
        load_split(task, "train", tmp_path)
        load_split(task, "test", tmp_path)
    assert "\n" not in str(err.value) and says in str(err.value), str(err.value)
    assert str(tmp_path / "tiny-imagenet-200") in str(err.value)


def test_tinyimagenet_wrong_image_size_is_corrupt(tmp_path):
    from PIL import Image

    truth = write_tinyimagenet(tmp_path)
    bad = truth["test"][1][0]
    Image.new("RGB", (32, 32)).save(bad, format="JPEG")
    with pytest.raises(DataError) as err:
        load_split(tiny_task(), "test", tmp_path)
    assert_one_line_naming(err, str(bad))
    assert "64x64" in str(err.value)


# ---------------------------------------------------------------- the CLI on partial data


def test_cli_evaluate_on_partial_data_warns_once(tmp_path, write_submission):
    """`snnbench evaluate` on a partial CIFAR-10 copy: it runs, and says "partial" on stderr once."""
    import subprocess
    import sys

    from tests.conftest import PLAIN_TORCH, REPO

    write_cifar10(tmp_path / "data", train_rows=4, test_rows=6)
    sub = write_submission(PLAIN_TORCH)
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    cmd = [sys.executable, "-m", "snnbench.cli", "evaluate", "--task", "cifar10", "--model", str(sub)]
    cmd += ["--data-root", str(tmp_path / "data"), "--store", str(tmp_path / "store"), "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if "partial" in ln]
    assert len(said) == 1, proc.stderr
    assert "6 of 10000 images" in said[0] and "not reportable" in said[0], said[0]
    assert "not reportable" in proc.stdout
