"""Readers for the static-image tasks: CIFAR-10 / CIFAR-100 (python pickle batches) and
TinyImageNet-200 (JPEG folders, decoded with PIL). Nothing is ever downloaded.

Layouts under the data root (the archives' own folder names):
  cifar-10-batches-py/  data_batch_1 .. data_batch_5, test_batch, batches.meta
  cifar-100-python/     train, test, meta
  tiny-imagenet-200/    wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt
                        (the official val set is the test split; the unlabelled test/ folder is unused)

Items are (x, y): x float32 [3, H, W] = (pixel / 255 - mean_c) / std_c, where mean_c and std_c are
the population mean and standard deviation of channel c over every pixel of the training split,
computed exactly from the train data (256-bin histograms) and cached, not published constants; y
an int. CIFAR-100: y is the fine label (100 classes); `dataset.coarse_labels` holds the 20
superclass labels. TinyImageNet: y is the index of the wnid in sorted(wnids.txt).

Pickles are read with an unpickler that only admits numpy's array reconstruction, so a tampered
file cannot run code. check() validates the CIFAR pickles fully (a few hundred MB, under a second)
and TinyImageNet's listing and file sizes; load() decodes every image of the split.
"""

from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from snnbench.data import DataError, DataStatus, Split
from snnbench.data.common import (
    damaged,
    fingerprint,
    from_os_error,
    missing,
    one_line,
    pool_map,
    status_from_error,
)

STATS_REPR = "channel-stats v1: population mean/std of train pixels / 255, per channel"
ROWS_REPR = "cifar rows v1: images per pickle"
TINY_DECODE_REPR = "tinyimagenet PIL RGB -> uint8 [N,3,64,64] v1"


# ---------------------------------------------------------------- dataset object


class ImageDataset(Dataset):
    """uint8 images [N, C, H, W] kept in memory, normalised per item to float32 on access."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: np.ndarray, std: np.ndarray, **extra):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.mean = torch.as_tensor(np.asarray(mean, dtype=np.float32)).view(-1, 1, 1)
        self.std = torch.as_tensor(np.asarray(std, dtype=np.float32)).view(-1, 1, 1)
        for key, value in extra.items():  # e.g. coarse_labels, class_names
            setattr(self, key, value)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(np.ascontiguousarray(self.images[i])).to(torch.float32).div_(255.0)
        return (x - self.mean) / self.std, int(self.labels[i])


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float64 [C] of uint8 images [N, C, H, W] on the [0, 1] scale, exact (histograms)."""
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"channel_stats needs non-empty uint8 [N, C, H, W], got {images.dtype} {images.shape}"
        )
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = np.bincount(images[:, c].ravel(), minlength=256).astype(np.float64)
        n = hist.sum()
        mean = float((hist * levels).sum() / n)
        means.append(mean)
        stds.append(float(np.sqrt((hist * (levels - mean) ** 2).sum() / n)))
    return np.array(means), np.array(stds)


def _cached_stats(source: str, files: list[Path], base: Path, compute) -> tuple[np.ndarray, np.ndarray]:
    from snnbench.data.frames import cached

    arrays = cached(source, STATS_REPR, fingerprint(files, base), compute, label="channel-stats")
    return arrays["mean"], arrays["std"]


# ---------------------------------------------------------------- CIFAR


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
    from snnbench.data.frames import cached

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

    mean, std = _cached_stats(task.data["source"], train_files, folder, compute)
    extra = {"class_names": class_names}
    if len(layout.label_keys) > 1:
        extra["fine_labels"] = labels[layout.label_keys[0]]
        extra["coarse_labels"] = labels[layout.label_keys[1]]
    dataset = ImageDataset(images, labels[layout.label_keys[0]], mean, std, **extra)
    return _finish(task, split, dataset, partial, folder)


def _finish(task, split: str, dataset, partial: list[str], folder: Path) -> Split:
    """The Split; partial data (details `partial`, headline first) warns once and is not reportable."""
    if not partial:
        return Split(dataset)
    note = f"partial data under {folder}: {'; '.join(partial[:6])}" + (" ..." if len(partial) > 6 else "")
    warnings.warn(f"{task.id} {split}: {note}; runs are stored as not reportable", stacklevel=3)
    return Split(dataset, status="partial", reportable=False, note=note)


# ---------------------------------------------------------------- TinyImageNet

TINY_FOLDER = "tiny-imagenet-200"
TINY_LAYOUT = (
    f"{TINY_FOLDER}/ (wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt)"
)


@dataclass
class TinyScan:
    folder: Path
    wnids: list[str]  # sorted: the label is the index
    train: list[tuple[Path, int]]
    test: list[tuple[Path, int]]
    absent: list[str]  # published parts not there (partial), headline first


def _tiny_scan(task, root: Path) -> TinyScan:
    """List TinyImageNet's files; a listed-but-absent, zero-byte or unknown-class file is a DataError."""
    folder = root / TINY_FOLDER
    if not folder.is_dir():
        raise missing(folder, TINY_LAYOUT)
    wnids_file = folder / "wnids.txt"
    if not wnids_file.is_file():
        if not (folder / "train").is_dir() and not (folder / "val").is_dir():
            raise missing(folder, TINY_LAYOUT)
        raise damaged(wnids_file, f"absent, but the layout lists it; expected {TINY_LAYOUT}")
    wnids = sorted({w.strip() for w in wnids_file.read_text(errors="replace").splitlines() if w.strip()})
    if not wnids:
        raise damaged(wnids_file, "lists no wnids")
    classes = int(task.classes or len(wnids))
    if len(wnids) > classes:
        raise damaged(wnids_file, f"lists {len(wnids)} wnids; the task has {classes} classes")
    index = {w: i for i, w in enumerate(wnids)}
    absent: list[str] = []
    if len(wnids) < classes:  # a trimmed copy: partial; labels stay the index in sorted(wnids.txt)
        absent.append(f"{len(wnids)} of {classes} classes (wnids.txt)")

    train: list[tuple[Path, int]] = []
    train_dir = folder / "train"
    if train_dir.is_dir():
        unknown = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and p.name not in index)
        if unknown:
            raise damaged(train_dir / unknown[0], "class folder not in wnids.txt")
        for w in wnids:
            img_dir = train_dir / w / "images"
            if not img_dir.is_dir():
                absent.append(f"train/{w}/images")
                continue
            train += [(img_dir / e.name, index[w]) for e in _jpegs(img_dir)]
    else:
        absent.append("train/")

    test: list[tuple[Path, int]] = []
    ann = folder / "val" / "val_annotations.txt"
    if ann.is_file():
        img_dir = folder / "val" / "images"
        on_disk = {e.name: e for e in _jpegs(img_dir)} if img_dir.is_dir() else {}
        for n, line in enumerate(ann.read_text(errors="replace").splitlines(), 1):
            parts = line.split("\t")
            if not line.strip():
                continue
            if len(parts) < 2 or parts[1] not in index:
                raise damaged(ann, f"line {n} is not '<file>\\t<wnid>...' with a wnid from wnids.txt")
            if parts[0] not in on_disk:
                raise damaged(img_dir / parts[0], "absent, but val_annotations.txt lists it")
            test.append((img_dir / parts[0], index[parts[1]]))
    elif (folder / "val").is_dir():
        raise damaged(ann, "absent, but the layout lists it (val labels)")
    else:
        absent.append("val/")

    for key, got in (("train_size", len(train)), ("test_size", len(test))):
        want = int(task.data.get(key, 0))
        if want and got < want:
            absent.append(f"{want - got} of {want} {key.split('_')[0]} images")
        elif want and got > want:
            raise damaged(folder, f"holds {got} {key.split('_')[0]} images, more than the published {want}")
    published = int(task.data.get("train_size", 0)) + int(task.data.get("test_size", 0))
    if absent and published:
        absent.insert(0, f"{len(train) + len(test)} of {published} images")
    return TinyScan(folder, wnids, train, test, absent)


def _jpegs(img_dir: Path) -> list:
    entries = sorted((e for e in _scandir(img_dir) if e.name.endswith(".JPEG")), key=lambda e: e.name)
    for e in entries:
        if e.stat().st_size == 0:
            raise damaged(Path(e.path), "zero-byte image; restore it from the archive")
    return entries


def _scandir(path: Path):
    import os

    with os.scandir(path) as it:
        return list(it)


def decode_jpeg(path: Path) -> np.ndarray:
    """uint8 [3, 64, 64] of one TinyImageNet JPEG (greyscale ones converted to RGB)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # truncated, not an image, ...
        raise damaged(path, f"not a readable JPEG ({type(exc).__name__}: {one_line(exc)})") from None
    if arr.shape != (64, 64, 3):
        raise damaged(path, f"image is {arr.shape[1]}x{arr.shape[0]}, TinyImageNet images are 64x64")
    return arr.transpose(2, 0, 1)


def _tiny_images(source: str, split: str, items: list[tuple[Path, int]], folder: Path, progress: bool):
    from snnbench.data.frames import cached

    paths = [p for p, _ in items]

    def compute():
        decoded = pool_map(
            decode_jpeg, paths, f"{source} {split}: decoding JPEGs", progress=progress, chunk=256
        )
        images = np.stack(decoded) if decoded else np.zeros((0, 3, 64, 64), np.uint8)
        return {"images": images, "labels": np.array([y for _, y in items], dtype=np.int64)}

    arrays = cached(source, TINY_DECODE_REPR, fingerprint(paths, folder), compute, label=f"{split}-images")
    return arrays["images"], arrays["labels"]


def _tiny_check(task, root: Path) -> DataStatus:
    try:
        scan = _tiny_scan(task, root)
    except DataError as exc:
        return status_from_error(exc, root / TINY_FOLDER, "TinyImageNet-200 JPEG folders")
    layout = "TinyImageNet-200 JPEG folders"
    detail = f"{len(scan.train)} train, {len(scan.test)} val images"
    if scan.absent:
        head, rest = (scan.absent[0], scan.absent[1:]) if " of " in scan.absent[0] else ("", scan.absent)
        parts = [p for p in (head, detail, f"absent: {'; '.join(rest)}" if rest else "") if p]
        return DataStatus("partial", str(scan.folder), "; ".join(parts), layout)
    return DataStatus("present", str(scan.folder), detail, layout)


def _tiny_load(task, split: str, root: Path, progress: bool = True) -> Split:
    scan = _tiny_scan(task, root)
    items = scan.train if split == "train" else scan.test
    if not items:
        what = "train/<wnid>/images" if split == "train" else "val/images + val/val_annotations.txt"
        raise damaged(scan.folder, f"has no {split} images; expected {what} ({TINY_LAYOUT})")
    if not scan.train:
        raise damaged(scan.folder / "train", "absent: normalisation needs the training split")
    source = task.data["source"]
    images, labels = _tiny_images(source, split, items, scan.folder, progress)

    def compute():
        imgs = (
            images
            if split == "train"
            else _tiny_images(source, "train", scan.train, scan.folder, progress)[0]
        )
        mean, std = channel_stats(imgs)
        return {"mean": mean, "std": std}

    mean, std = _cached_stats(source, [p for p, _ in scan.train], scan.folder, compute)
    dataset = ImageDataset(images, labels, mean, std, class_names=scan.wnids)
    return _finish(task, split, dataset, scan.absent, scan.folder)


# ---------------------------------------------------------------- reader contract


def load(task, split: str, root: Path, timesteps: int | None = None) -> Split:
    """The `split` ("train" or "test") of a static-image task, read from `root` (see module doc)."""
    source = task.data.get("source")
    try:
        if source in CIFAR:
            return _cifar_load(task, split, Path(root))
        if source == "tinyimagenet":
            return _tiny_load(task, split, Path(root))
    except OSError as exc:
        raise from_os_error(exc) from None
    raise DataError(
        f"task {task.id}: the static reader serves cifar10, cifar100, tinyimagenet, not {source!r}"
    )


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt for a static-image task; never raises for bad data."""
    source = task.data.get("source")
    try:
        if source in CIFAR:
            return _cifar_check(task, Path(root))
        if source == "tinyimagenet":
            return _tiny_check(task, Path(root))
    except OSError as exc:
        return status_from_error(from_os_error(exc), Path(root))
    return DataStatus("missing", str(root), f"the static reader has no data source {source!r}")
