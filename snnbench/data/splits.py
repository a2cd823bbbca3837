"""Frozen train/test splits for datasets without an official one, and the checks that pin them.

CIFAR10-DVS and N-Caltech101 ship no split, so published accuracies on them do not reproduce.
snnbench fixes one (PROTOCOLS.md section 1):

- per class, recordings sorted by file *stem* (the name without its extension, so the original
  `.aedat` release and tonic's `.aedat4` conversion sort alike), in Python's str order (code
  points: "x_10" < "x_2"; not a natural sort);
- the first floor(9 n / 10) recordings of a class of n train, the rest test (integer arithmetic,
  no float rounding): 900 / 100 per CIFAR10-DVS class;
- the test list is the sorted list of ids "<class>/<stem>", one per line, each line ending in
  "\\n", UTF-8; its sha256 is pinned in the task file as `[data] test_list_sha256`.

Pinning: `snnbench data check` prints the computed hash. An empty `test_list_sha256` means "not
yet pinned" and is reported as such, never as a match; runs on an unpinned split are stored as not
reportable. Once a complete copy of the dataset has been verified (file counts equal the published
totals, `data check` says present), copy the printed hash into the task file; that is a change of
the task's data, so bump the task's `version` in the same commit unless no run was ever stored.

A split whose train and test lists share an id is an error (DataError naming the ids).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from snnbench.data.base import DataError

TRAIN_PARTS, OF_PARTS = 9, 10  # first floor(9n/10) of each class train, the rest test
PIN_FIELD = "test_list_sha256"


def stem(name: str) -> str:
    """The sort key of a recording: its file name without the last extension."""
    return PurePosixPath(name).stem


def n_train(n: int) -> int:
    """How many of a class's n recordings train: floor(9 n / 10)."""
    return (TRAIN_PARTS * n) // OF_PARTS


def per_class_split(files_by_class: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
    """(train ids, test ids) as "<class>/<stem>", classes in sorted order, each class sorted by stem.

    Two files of one class with the same stem (e.g. a.aedat and a.aedat4) are an error: the split
    is defined on stems, so they would be one recording counted twice.
    """
    train: list[str] = []
    test: list[str] = []
    for cls in sorted(files_by_class):
        stems = sorted(stem(f) for f in files_by_class[cls])
        dupes = sorted({s for s in stems if stems.count(s) > 1})
        if dupes:
            raise DataError(
                f"class {cls!r} has several files named {dupes[0]!r} (different extensions?); "
                "keep one copy of each recording"
            )
        k = n_train(len(stems))
        train += [f"{cls}/{s}" for s in stems[:k]]
        test += [f"{cls}/{s}" for s in stems[k:]]
    return train, test


def list_sha256(ids: Iterable[str]) -> str:
    """sha256 (hex) of the sorted ids, one per line, each ending in a newline, UTF-8."""
    blob = "".join(f"{i}\n" for i in sorted(ids))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def check_disjoint(train: Iterable[str], test: Iterable[str], where: str) -> None:
    """Raise DataError when a recording id is in both lists."""
    both = sorted(set(train) & set(test))
    if both:
        more = f" and {len(both) - 1} more" if len(both) > 1 else ""
        raise DataError(
            f"{where}: train and test overlap in {both[0]!r}{more}; a split must not share recordings"
        )


@dataclass(frozen=True)
class PinCheck:
    """The computed test-list hash against the task file's pinned one."""

    computed: str
    pinned: str
    task_file: str

    @property
    def state(self) -> str:
        """'unpinned' (empty field), 'match' or 'mismatch'."""
        if not self.pinned:
            return "unpinned"
        return "match" if self.pinned == self.computed else "mismatch"

    def describe(self) -> str:
        if self.state == "match":
            return f"test list sha256 {self.computed} matches {self.task_file}"
        if self.state == "unpinned":
            return (
                f"test list sha256 {self.computed} is not pinned: once this copy is verified complete, "
                f'set [data] {PIN_FIELD} = "{self.computed}" in {self.task_file}'
            )
        return f"test list sha256 {self.computed} does not match the pinned {self.pinned} in {self.task_file}"


def pin_check(task, test_ids: Iterable[str]) -> PinCheck:
    """Compare the test list's hash with the task's `[data] test_list_sha256` ("" = not pinned)."""
    pinned = str(task.data.get(PIN_FIELD, "") or "").strip().lower()
    return PinCheck(list_sha256(test_ids), pinned, f"tasks/{task.id}.toml")
