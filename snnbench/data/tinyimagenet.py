"""Reader for TinyImageNet-200 (JPEG folders, decoded with PIL). Nothing is ever downloaded.

Layout under the data root (the archive's own folder name):
  tiny-imagenet-200/    wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt
                        (the official val set is the test split; the unlabelled test/ folder is unused)

Items are (x, y) normalised as images.py says; y is the index of the wnid in sorted(wnids.txt).
check() validates the listing and file sizes; load() decodes every image of the split (cached).
Fewer classes or images than published is partial data (loads with a warning, not reportable);
more is damage.
"""

from __future__ import annotations

import os
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
    pool_map,
    status_from_error,
)
from snnbench.data.images import ImageDataset, cached_stats, channel_stats, finish

TINY_DECODE_REPR = "tinyimagenet PIL RGB -> uint8 [N,3,64,64] v1"

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

    mean, std = cached_stats(source, [p for p, _ in scan.train], scan.folder, compute)
    dataset = ImageDataset(images, labels, mean, std, class_names=scan.wnids)
    return finish(task, split, dataset, scan.absent, scan.folder)


# ---------------------------------------------------------------- reader contract


def load(task, split: str, root: Path, timesteps: int | None = None) -> Split:
    """The `split` ("train" or "test") of TinyImageNet, read from `root` (see module doc)."""
    source = task.data.get("source")
    if source != "tinyimagenet":
        raise DataError(f"task {task.id}: the TinyImageNet reader serves tinyimagenet, not {source!r}")
    try:
        return _tiny_load(task, split, Path(root))
    except OSError as exc:
        raise from_os_error(exc) from None


def check(task, root: Path) -> DataStatus:
    """present / partial / missing / corrupt for TinyImageNet; never raises for bad data."""
    try:
        return _tiny_check(task, Path(root))
    except OSError as exc:
        return status_from_error(from_os_error(exc), Path(root))
