"""Frozen per-class splits, the test-list hash and its pin, and the overlap check."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from snnbench.data import DataError
from snnbench.data.splits import check_disjoint, list_sha256, n_train, per_class_split, pin_check
from snnbench.tasks import get_task


def test_ninety_ten_per_class_by_stem_in_str_order():
    files = {
        "cat": [f"cifar10_cat_{i}.aedat" for i in range(20)],  # 0, 1, 10, 11, ..., 19, 2, ..., 9 in str order
        "ant": ["b.bin", "a.bin", "c.bin"],
    }
    train, test = per_class_split(files)
    cat = sorted(f"cifar10_cat_{i}" for i in range(20))  # independent: plain sorted() of the stems
    assert cat[:3] == ["cifar10_cat_0", "cifar10_cat_1", "cifar10_cat_10"]
    assert train == ["ant/a", "ant/b"] + [f"cat/{s}" for s in cat[:18]]
    assert test == ["ant/c"] + [f"cat/{s}" for s in cat[18:]]


@pytest.mark.parametrize("n, k", [(1000, 900), (31, 27), (10, 9), (9, 8), (1, 0), (0, 0)])
def test_train_count_is_floor_of_nine_tenths(n, k):
    assert n_train(n) == k == int(n * 9 // 10)


def test_extension_does_not_change_the_split_or_the_hash():
    names = [f"cifar10_dog_{i}" for i in range(30)]
    a = per_class_split({"dog": [f"{s}.aedat" for s in names]})
    b = per_class_split({"dog": [f"{s}.aedat4" for s in names]})
    assert a == b
    assert list_sha256(a[1]) == list_sha256(b[1])


def test_hash_is_sha256_of_sorted_lines():
    ids = ["b/2", "a/1", "b/10"]
    expected = hashlib.sha256(b"a/1\nb/10\nb/2\n").hexdigest()
    assert list_sha256(ids) == expected
    assert list_sha256(reversed(ids)) == expected


def test_duplicate_stems_in_a_class_are_an_error():
    with pytest.raises(DataError, match="several files named 'x'"):
        per_class_split({"cat": ["x.aedat", "x.aedat4", "y.aedat"]})


def test_overlap_is_an_error_naming_the_recording():
    check_disjoint(["a/1", "a/2"], ["a/3"], "somewhere")
    with pytest.raises(DataError, match=r"somewhere: train and test overlap in 'a/2' and 1 more"):
        check_disjoint(["a/1", "a/2", "a/3"], ["a/3", "a/2"], "somewhere")


def test_pin_states_never_accept_an_empty_pin():
    task = get_task("cifar10dvs")
    test_ids = ["airplane/x", "truck/y"]
    digest = list_sha256(test_ids)
    unpinned = pin_check(dataclasses.replace(task, data={**task.data, "test_list_sha256": ""}), test_ids)
    assert (
        unpinned.state == "unpinned" and digest in unpinned.describe() and "not pinned" in unpinned.describe()
    )
    assert "matches" not in unpinned.describe()
    pinned = pin_check(
        dataclasses.replace(task, data={**task.data, "test_list_sha256": digest.upper()}), test_ids
    )
    assert pinned.state == "match" and "matches tasks/cifar10dvs.toml" in pinned.describe()
    wrong = pin_check(dataclasses.replace(task, data={**task.data, "test_list_sha256": "0" * 64}), test_ids)
    assert wrong.state == "mismatch" and "does not match" in wrong.describe()


def test_shipped_tasks_record_the_pin_field():
    for tid in ("cifar10dvs", "ncaltech101"):
        assert "test_list_sha256" in get_task(tid).data, tid
