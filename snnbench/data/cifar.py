"""Reader for CIFAR-10 / CIFAR-100 (the python pickle batches). Nothing is ever downloaded.

Layouts under the data root (the archives' own folder names):
  cifar-10-batches-py/  data_batch_1 .. data_batch_5, test_batch, batches.meta
  cifar-100-python/     train, test, meta

Items are (x, y) normalised as images.py says; y an int. CIFAR-100: y is the fine label (100
classes); `dataset.coarse_labels` holds the 20 superclass labels.

Pickles are read with an unpickler that only admits numpy's array reconstruction, so a tampered
file cannot run code. check() validates the pickles fully (a few hundred MB, under a second).
A well-formed batch holding fewer images than published (train_size / test_size over the files)
is partial data, like an absent batch: it loads with a warning and its runs are not reportable;
more images than published is damage.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnbench.data.base import DataError, DataStatus, Split
from snnbench.data.cache import cached
from snnbench.data.common import (
    damaged,
    fingerprint,
    from_os_error,
    missing,
    one_line,
    status_from_error,
)
from snnbench.data.images import ImageDataset, cached_stats, channel_stats, finish

ROWS_REPR = "cifar rows v1: images per pickle"


@dataclass(frozen=True)
class CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_keys: tuple[bytes, ...]  # the first is the task's label
    label_counts: tuple[int, ...]  # classes per label key
    meta_keys: tuple[tuple[bytes, int], ...]  # (key, number of names)

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, *self.test_files, self.meta_file)

    def describe(self) -> str:
        return f"{self.folder}/ ({', '.join(self.files)}), the python version of the dataset"


CIFAR = {
    "cifar10": CifarLayout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        (b"labels",),
        (10,),
        ((b"label_names", 10),),
    ),
    "cifar100": CifarLayout(
        "cifar-100-python",
        ("train",),
        ("test",),
        "meta",
        (b"fine_labels", b"coarse_labels"),
        (100, 20),
        ((b"fine_label_names", 100), (b"coarse_label_names", 20)),
    ),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR pickle needs (numpy arrays); any other global is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def read_pickle(path: Path) -> dict:
    """A CIFAR pickle as a dict with bytes keys; any failure is a DataError naming the file."""
    if not path.is_file():
        raise damaged(path, "absent, but the layout lists it; restore it from the archive")
    if path.stat().st_size == 0:
        raise damaged(path, "zero-byte file; restore it from the archive")
    try:
        with open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # truncated, not a pickle, refused global, ...
        raise damaged(path, f"not a readable CIFAR pickle ({type(exc).__name__}: {one_line(exc)})") from None
    if not isinstance(obj, dict):
        raise damaged(path, f"holds a {type(obj).__name__}, a CIFAR pickle holds a dict")
    return {(k.encode() if isinstance(k, str) else k): v for k, v in obj.items()}


def read_batch(
    path: Path, layout: CifarLayout, rows: int | None
) -> tuple[np.ndarray, dict[bytes, np.ndarray]]:
    """(images uint8 [N, 3, 32, 32], {label key: int64 [N]}) of one batch, every field checked."""
    d = read_pickle(path)
    lacking = [k.decode() for k in (b"data", *layout.label_keys) if k not in d]
    if lacking:
        have = ", ".join(sorted(k.decode(errors="replace") for k in d if isinstance(k, bytes)))
        raise damaged(path, f"pickle lacks key(s) {', '.join(lacking)} (has: {have or 'none'})")
    data = d[b"data"]
    if not (
        isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
    ):
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise damaged(path, f"b'data' must be uint8 [N, 3072], got {what}")
    n = data.shape[0]
    if rows is not None and n > rows:  # fewer is partial data (see cifar_shortfall), more is damage
        raise damaged(path, f"holds {n} images; the published file holds {rows}")
    labels = {}
    for key, k in zip(layout.label_keys, layout.label_counts):
        try:
            lab = np.asarray(d[key], dtype=np.int64)
        except (TypeError, ValueError):
            raise damaged(path, f"{key!r} is not a list of integers") from None
        if lab.shape != (n,):
            raise damaged(path, f"{key!r} has {lab.size} entries for {n} images")
        if n and (lab.min() < 0 or lab.max() >= k):
            raise damaged(path, f"{key!r} holds labels {lab.min()}..{lab.max()}, outside 0..{k - 1}")
        labels[key] = lab
    return data.reshape(n, 3, 32, 32), labels


def read_meta(path: Path, layout: CifarLayout) -> dict[bytes, list[str]]:
    d = read_pickle(path)
    out = {}
    for key, count in layout.meta_keys:
        names = d.get(key)
        if not isinstance(names, list) or len(names) != count:
            raise damaged(path, f"meta needs {key!r} with {count} names")
        out[key] = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return out


def _rows(task, layout: CifarLayout, name: str) -> int | None:
    """Published images per file, from the task's train_size / test_size."""
    if name in layout.train_files and "train_size" in task.data:
        return int(task.data["train_size"]) // len(layout.train_files)
    if name in layout.test_files and "test_size" in task.data:
        return int(task.data["test_size"]) // len(layout.test_files)
    return None


def _published_images(task, layout: CifarLayout) -> int | None:
    """Images the published archive holds (train_size + test_size), when the task names both."""
    if "train_size" in task.data and "test_size" in task.data:
        return int(task.data["train_size"]) + int(task.data["test_size"])
    return None


def cifar_shortfall(task, layout: CifarLayout, counts: dict[str, int]) -> list[str]:
    """Partial-data notes for the batches present ({file name: images it holds}): one per file holding
    fewer images than published, e.g. "data_batch_1 holds 4 of 10000 images"."""
    notes = []
    for name, n in counts.items():
        want = _rows(task, layout, name)
        if want is not None and n < want:
            notes.append(f"{name} holds {n} of {want} images")
    return notes


def _cifar_partial(task, layout: CifarLayout, counts: dict[str, int], absent: list[str]) -> list[str]:
    """The partial-data details, headline first ("n of N images", else "n of N files"), or []."""
    short = cifar_shortfall(task, layout, counts)
    if not short and not absent:
        return []
    details = []
    published = _published_images(task, layout)
    if published is not None:
        details.append(f"{sum(counts.values())} of {published} images")
    if absent:
        n_files = len(layout.files)
        details.append(f"{n_files - len(absent)} of {n_files} files; absent: {', '.join(absent)}")
    return details + short


def _cifar_check(task, root: Path) -> DataStatus:
    layout = CIFAR[task.data["source"]]
    folder = root / layout.folder
    if not folder.is_dir() or not any((folder / f).is_file() for f in layout.files):
        return status_from_error(missing(folder, layout.describe()), folder)
    present = [f for f in layout.files if (folder / f).is_file()]
    counts: dict[str, int] = {}
    try:
        for name in present:
            if name == layout.meta_file:
                read_meta(folder / name, layout)
            else:
                counts[name] = len(read_batch(folder / name, layout, _rows(task, layout, name))[0])
    except DataError as exc:
        return DataStatus("corrupt", str(folder), str(exc), f"{layout.folder} pickles")
    partial = _cifar_partial(task, layout, counts, [f for f in layout.files if f not in present])
    if partial:
        return DataStatus("partial", str(folder), "; ".join(partial), f"{layout.folder} pickles")
    return DataStatus("present", str(folder), "", f"{layout.folder} pickles")


def _row_counts(task, layout: CifarLayout, folder: Path, names: list[str]) -> dict[str, int]:
    """{file: images it holds} of the batches `names`, from the cache when their fingerprint matches
    (counting means unpickling, which an evaluation of the test split should not repeat)."""

    def compute():
        return {
            "rows": np.array(
                [len(read_batch(folder / f, layout, _rows(task, layout, f))[0]) for f in names], np.int64
            )
        }

    paths = [folder / f for f in names]
    arrays = cached(task.data["source"], ROWS_REPR, fingerprint(paths, folder), compute, label="rows")
    return dict(zip(names, (int(n) for n in arrays["rows"])))


def _cifar_load(task, split: str, root: Path) -> Split:
    layout = CIFAR[task.data["source"]]
    folder = root / layout.folder
    if not folder.is_dir() or not any((folder / f).is_file() for f in layout.files):
        raise missing(folder, layout.describe())
    wanted = layout.train_files if split == "train" else layout.test_files
    have = [f for f in wanted if (folder / f).is_file()]
    if not have:
        raise damaged(
            folder / wanted[0], f"absent: the {split} split cannot be read; expected {layout.describe()}"
        )
    absent = [f for f in layout.files if not (folder / f).is_file()]
    if (folder / layout.meta_file).is_file():
        meta = read_meta(folder / layout.meta_file, layout)
        class_names = meta[layout.meta_keys[0][0]]
    else:
        class_names = None
    batches = [read_batch(folder / f, layout, _rows(task, layout, f)) for f in have]
    images = np.concatenate([b[0] for b in batches])
    batch_files = [f for f in (*layout.train_files, *layout.test_files) if (folder / f).is_file()]
    counts = {f: len(b[0]) for f, b in zip(have, batches)}
    others = [f for f in batch_files if f not in counts]
    counts.update(_row_counts(task, layout, folder, others) if others else {})
    partial = _cifar_partial(task, layout, counts, absent)  # this split's files first
    labels = {k: np.concatenate([b[1][k] for b in batches]) for k in layout.label_keys}

    train_files = [folder / f for f in layout.train_files if (folder / f).is_file()]
    if not train_files:
        raise damaged(folder / layout.train_files[0], "absent: normalisation needs the training split")

    def compute():
        imgs = (
            images
            if split == "train"
            else np.concatenate([read_batch(p, layout, None)[0] for p in train_files])
        )
        mean, std = channel_stats(imgs)
        return {"mean": mean, "std": std}

    mean, std = cached_stats(task.data["source"], train_files, folder, compute)
    extra = {"class_names": class_names}
    if len(layout.label_keys) > 1:
        extra["fine_labels"] = labels[layout.label_keys[0]]
        extra["coarse_labels"] = labels[layout.label_keys[1]]
    dataset = ImageDataset(images, labels[layout.label_keys[0]], mean, std, **extra)
    return finish(task, split, dataset, partial, folder)


# ---------------------------------------------------------------- reader contract


def load(task, split: str, root: Path, timesteps: int | None = None) -> Split:
    """The `split` ("train" or "test") of a CIFAR task, read from `root` (see module doc)."""
    source = task.data.get("source")
    if source not in CIFAR:
        raise DataError(f"task {task.id}: the CIFAR reader serves cifar10, cifar100, not {source!r}")
    try:
        return _cifar_load(task, split, Path(root))
    except OSError as exc:
        raise from_os_error(exc) from None


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt for a CIFAR task; never raises for bad data."""
    source = task.data.get("source")
    if source not in CIFAR:
        return DataStatus("missing", str(root), f"the CIFAR reader has no data source {source!r}")
    try:
        return _cifar_check(task, Path(root))
    except OSError as exc:
        return status_from_error(from_os_error(exc), Path(root))
