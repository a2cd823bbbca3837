"""The on-disk cache of derived arrays (decoded images, emulated events, binned frames, statistics).

It stores named numpy arrays as one .npz per (dataset id, transform repr, content hash of the
source), under snnbench.data.cache_root()/<dataset id>/, written to a dot-prefixed temporary
name and renamed into place, so concurrent writers and crashes never leave half a file. An entry
records its own key (`__meta__`): a file written for other parameters is recomputed, never reused.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from snnbench.data.base import cache_root


def content_hash(*parts) -> str:
    """sha256 (hex) of the parts in order: bytes, str, numpy arrays (dtype, shape and data) or Paths
    (file bytes). Used as the `source_hash` of a cache entry."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"ndarray {part.dtype.str} {part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, Path):
            with open(part, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        elif isinstance(part, str):
            digest.update(part.encode())
        elif isinstance(part, bytes | bytearray | memoryview):
            digest.update(bytes(part))
        else:
            raise TypeError(
                f"content_hash takes bytes, str, numpy arrays or Paths, got {type(part).__name__}"
            )
        digest.update(b"\x00")
    return digest.hexdigest()


def cache_key(dataset_id: str, transform_repr: str, source_hash: str) -> str:
    """The 20-hex-digit key of one cache entry."""
    return content_hash(dataset_id, transform_repr, source_hash)[:20]


def cache_path(dataset_id: str, transform_repr: str, source_hash: str, label: str = "arrays") -> Path:
    """Where the entry lives: cache_root()/<dataset_id>/<label>-<key>.npz (label is for humans)."""
    if not label or "/" in label or label.startswith("."):
        raise ValueError(f"cache label must be a plain file-name prefix, got {label!r}")
    key = cache_key(dataset_id, transform_repr, source_hash)
    return cache_root() / dataset_id / f"{label}-{key}.npz"


def _meta(dataset_id: str, transform_repr: str, source_hash: str) -> np.ndarray:
    return np.array(f"{dataset_id}\n{transform_repr}\n{source_hash}")


def load_cached(
    dataset_id: str, transform_repr: str, source_hash: str, label: str = "arrays"
) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent. An unreadable or mismatched file warns and counts
    as absent (it is derived data: the caller recomputes and overwrites it)."""
    path = cache_path(dataset_id, transform_repr, source_hash, label)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"cache file {path} is unreadable ({exc}); recomputing it", stacklevel=2)
        return None
    meta = arrays.pop("__meta__", None)
    if meta is None or str(meta) != str(_meta(dataset_id, transform_repr, source_hash)):
        warnings.warn(f"cache file {path} was written for other parameters; recomputing it", stacklevel=2)
        return None
    return arrays


def save_cached(
    dataset_id: str,
    transform_repr: str,
    source_hash: str,
    arrays: Mapping[str, np.ndarray],
    label: str = "arrays",
) -> Path:
    """Store named arrays atomically (dot-prefixed temporary file in the same folder, then rename)."""
    if "__meta__" in arrays:
        raise ValueError("the array name __meta__ is reserved for the cache's own record")
    path = cache_path(dataset_id, transform_repr, source_hash, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.stem}-{os.getpid()}.npz"
    try:
        np.savez(tmp, __meta__=_meta(dataset_id, transform_repr, source_hash), **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def cached(
    dataset_id: str,
    transform_repr: str,
    source_hash: str,
    compute: Callable[[], Mapping[str, np.ndarray]],
    label: str = "arrays",
) -> dict[str, np.ndarray]:
    """The cached arrays for this key, computing and storing them first when absent."""
    arrays = load_cached(dataset_id, transform_repr, source_hash, label)
    if arrays is None:
        arrays = dict(compute())
        save_cached(dataset_id, transform_repr, source_hash, arrays, label)
    return arrays
