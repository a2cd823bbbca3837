"""Helpers shared by the real-dataset readers (cifar, tinyimagenet and the event layouts): status words, one-line errors,
cheap file fingerprints for cache keys, and the parallel first pass with a progress bar.

Cache keys of derived arrays (decoded images, binned frames, normalisation statistics) use a cheap
fingerprint of each source file, "<path relative to the dataset folder> <size in bytes>
<mtime in ns>", not its bytes: hashing 10 GB of recordings on every evaluation would cost more than
the binning the cache saves. Editing or replacing a file changes its size or mtime, so the key.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TypeVar

from snnbench.data.base import DataError, DataMissing, DataStatus
from snnbench.data.cache import content_hash

HINT = "set --data-root or SNNBENCH_DATA"
WORKERS_ENV = "SNNBENCH_DATA_WORKERS"

T = TypeVar("T")
R = TypeVar("R")


def one_line(text: object) -> str:
    """Collapse an exception or message onto one line (DataError messages are one line)."""
    return " ".join(str(text).split())


def missing(folder: Path, layout: str) -> DataMissing:
    """The error for a dataset that is not there: names the folder, the expected layout and the fix."""
    return DataMissing(one_line(f"{folder}: not found; expected {layout}; {HINT}"))


def damaged(path: Path, what: str) -> DataError:
    """The error for a damaged file: names the file first."""
    return DataError(one_line(f"{path}: {what}"))


def from_os_error(exc: OSError) -> DataError:
    """An unreadable file or folder (permissions, I/O error) as a one-line DataError naming it."""
    return DataError(one_line(f"{exc.filename or '?'}: cannot be read ({exc.strerror or exc})"))


def status_from_error(err: DataError, folder: Path, layout: str = "") -> DataStatus:
    """check()'s report for a scan that raised: `missing` for a DataMissing, else `corrupt`."""
    word = "missing" if isinstance(err, DataMissing) else "corrupt"
    return DataStatus(word, str(folder), str(err), layout)


def partial_detail(n: int, total: int, unit: str) -> str:
    return f"{n} of {total} {unit}"


def fingerprint(paths: Iterable[str | Path], base: str | Path) -> str:
    """Cheap content key of files: sha256 over "<path relative to base> <size> <mtime_ns>" lines."""
    prefix = os.path.join(os.fspath(base), "")
    lines = []
    for p in paths:
        p = os.fspath(p)
        st = os.stat(p)
        rel = p[len(prefix) :] if p.startswith(prefix) else p
        lines.append(f"{rel.replace(os.sep, '/')} {st.st_size} {st.st_mtime_ns}")
    return content_hash("\n".join(lines))


def workers() -> int:
    """Processes for a first pass: SNNBENCH_DATA_WORKERS, else every CPU (at least 1)."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise DataError(f"{WORKERS_ENV} must be a whole number, got {env!r}") from None
    return max(1, os.cpu_count() or 1)


def recommended_num_workers() -> int:
    """num_workers for a DataLoader over a cached split: the CPUs but one, at least 0, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def pool_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    desc: str,
    progress: bool = True,
    n_workers: int | None = None,
    chunk: int = 16,
) -> list[R]:
    """[fn(item) for item in items] on a process pool, in order, with a tqdm bar on stderr.

    Small jobs (or one worker) run in this process. An exception in `fn` (a DataError naming
    the file) propagates after the pool is shut down.
    """
    from tqdm import tqdm

    n_workers = workers() if n_workers is None else max(1, n_workers)
    bar = tqdm(total=len(items), desc=desc, file=sys.stderr, disable=not progress or not items, leave=False)
    try:
        if n_workers == 1 or len(items) <= 2 * chunk:
            out = []
            for item in items:
                out.append(fn(item))
                bar.update(1)
            return out
        chunks = [list(items[i : i + chunk]) for i in range(0, len(items), chunk)]
        results: list[list[R] | None] = [None] * len(chunks)
        with warnings.catch_warnings():
            # fork after torch is imported is safe here: workers run numpy / tonic code only.
            warnings.simplefilter("ignore", DeprecationWarning)
            with ProcessPoolExecutor(max_workers=min(n_workers, len(chunks))) as pool:
                futures = {pool.submit(_run_chunk, fn, c): i for i, c in enumerate(chunks)}
                try:
                    for fut in as_completed(futures):
                        i = futures[fut]
                        results[i] = fut.result()
                        bar.update(len(chunks[i]))
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        return [r for part in results for r in (part or [])]
    finally:
        bar.close()


def _run_chunk(fn: Callable[[T], R], chunk: list[T]) -> list[R]:
    return [fn(item) for item in chunk]
