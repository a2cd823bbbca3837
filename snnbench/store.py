"""The Parquet result store (PROTOCOLS.md section 6): one part file per run, committed by rename.

Layout under the store directory:

    runs/<result_id>.parquet      one row: the run and its provenance (RUN_SCHEMA)
    metrics/<result_id>.parquet   long table of metric rows (METRICS_SCHEMA)
    logs/<result_id>.txt          traceback and notes of the run

Every file is written to a dot-prefixed temporary name in its own folder, fsynced and renamed
into place, metrics first and the runs row last: the runs row is the commit point. A store can
also live on any pyarrow filesystem, given as a URI (s3://bucket/results, gs://..., hdfs://...,
file:///shared/results): there each part is one put on object stores (an object appears whole or
not at all) and a temporary plus a move elsewhere. Readers (ours,
and `pandas.read_parquet(store / "runs")` through pyarrow's dataset discovery) ignore names that
start with '.' or '_', so nobody ever sees half a file, and many processes or machines can write
the same store at once without locks. The module imports no torch: it is cheap to load in workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

STORE_ENV = "SNNBENCH_STORE"
# The baselines' rows, committed with the code (read-only for users; rebuilt by `sweep --train`).
COMMITTED_STORE = Path(__file__).resolve().parent.parent / "leaderboard" / "results"


def user_store_default() -> Path:
    """Where a user's runs go unless --store or SNNBENCH_STORE says otherwise: their own data
    folder, never the git-tracked baselines store (XDG_DATA_HOME, default ~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "snnbench" / "results"


STATUSES = ("ok", "failed", "timeout")
TMP_PREFIX = ".tmp-"
ORPHAN_AGE_S = 3600.0
_ID_RE = re.compile(r"^[0-9a-f]{12}$")


def _f(name: str, typ: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


RUN_SCHEMA = pa.schema(
    [
        _f("result_id", pa.string()),
        _f("task", pa.string()),
        _f("task_version", pa.int64()),
        _f("method", pa.string()),
        _f("submission_path", pa.string()),
        _f("submission_sha256", pa.string()),
        _f("checkpoint_sha256", pa.string(), nullable=True),
        _f("seed", pa.int64()),
        _f("timesteps", pa.int64()),
        _f("limit", pa.int64(), nullable=True),
        _f("reportable", pa.bool_()),
        _f("data_status", pa.string(), nullable=True),
        _f("device", pa.string()),
        _f("torch_version", pa.string()),
        _f("snnbench_version", pa.string()),
        _f("metrics_version", pa.string()),
        _f("git_commit", pa.string(), nullable=True),
        _f("created_at", pa.timestamp("us", tz="UTC")),
        _f("wall_time_s", pa.float64()),
        _f("status", pa.string()),
        _f("error", pa.string(), nullable=True),
        _f("uncounted", pa.list_(pa.string())),
        # added in snnbench 0.2 (older part files read them as null)
        _f("metrics", pa.list_(pa.string()), nullable=True),
        _f("spec_hash", pa.string(), nullable=True),
        _f("untrained", pa.bool_(), nullable=True),
        _f("train_recipe", pa.string(), nullable=True),
        _f("train_wall_time_s", pa.float64(), nullable=True),
        _f("train_budget_complete", pa.bool_(), nullable=True),
    ]
)
# Columns a run dict may leave out (they were added after the first stores were written).
OPTIONAL_RUN_COLUMNS = (
    "metrics",
    "spec_hash",
    "untrained",
    "train_recipe",
    "train_wall_time_s",
    "train_budget_complete",
)

METRICS_SCHEMA = pa.schema(
    [
        _f("result_id", pa.string()),
        _f("metric", pa.string()),
        _f("value", pa.float64()),
        _f("unit", pa.string()),
        _f("n", pa.int64(), nullable=True),
        _f("stderr", pa.float64(), nullable=True),
        _f("layer", pa.string(), nullable=True),
        _f("timestep", pa.int64(), nullable=True),
        _f("condition", pa.string(), nullable=True),
    ]
)


class CorruptStoreError(RuntimeError):
    """A part file under runs/ or metrics/ is not a readable part file; str() is one line."""

    def __init__(self, path: Path | str, reason: str):
        self.path = path if is_uri(path) else Path(path)  # a URI for a store on a pyarrow filesystem
        self.reason = reason
        super().__init__(
            f"corrupt result file {self.path} ({reason}); remove or restore it, "
            "or pass --skip-corrupt to build without it"
        )


# ---------------------------------------------------------------------------------------------
# result ids and the store location


def result_id(
    task: str,
    task_version: int,
    submission_sha256: str,
    checkpoint_sha256: str | None,
    seed: int,
    timesteps: int,
    snnbench_version: str,
    limit: int | None = None,
    metrics_version: str | None = None,
    families: Sequence[str] | None = None,
) -> str:
    """12 hex digits of sha256 over a canonical JSON of what decides a run's numbers.

    The same run gives the same id (a retry replaces its own files); `limit` is part of it so a
    `--limit` smoke run never replaces the full run of the same submission, `metrics_version`
    (default: the installed one) so a change of counting conventions never replaces older runs,
    and the metric `families` that ran, so `evaluate --metrics robustness` and a plain evaluate
    of the same checkpoint are two runs and neither erases the other's rows.
    """
    if metrics_version is None:
        from snnbench import METRICS_VERSION as metrics_version
    key = {
        "task": str(task),
        "task_version": int(task_version),
        "submission_sha256": str(submission_sha256),
        "checkpoint_sha256": None if checkpoint_sha256 is None else str(checkpoint_sha256),
        "seed": int(seed),
        "timesteps": int(timesteps),
        "snnbench_version": str(snnbench_version),
        "limit": None if limit is None else int(limit),
        "metrics_version": str(metrics_version),
    }
    if families is not None:
        key["metrics"] = sorted({str(f) for f in families})
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:12]


def default_store_path(explicit: str | os.PathLike | None = None) -> Path | str:
    """--store wins over SNNBENCH_STORE, else the user's store (user_store_default()); a regular
    file is an error. A filesystem URI (s3://bucket/results) comes back as the string itself."""
    if explicit is not None and str(explicit) != "":
        if is_uri(explicit):
            return str(explicit)
        path, origin = Path(explicit), "--store"
    elif os.environ.get(STORE_ENV):
        if is_uri(os.environ[STORE_ENV]):
            return os.environ[STORE_ENV]
        path, origin = Path(os.environ[STORE_ENV]), STORE_ENV
    else:
        path, origin = user_store_default(), "the default store"
    if path.is_file():
        raise ValueError(
            f"{origin} {path} is a file; give a directory for the result store (created on first write)"
        )
    return path


# ---------------------------------------------------------------------------------------------
# validation of what goes in


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_value(field_: pa.Field, value: Any, where: str) -> Any:
    """Return the value as the schema stores it, or raise one ValueError line naming the column."""
    name, typ = field_.name, field_.type
    missing = value is None or value is pd.NA or value is pd.NaT
    if missing or (isinstance(value, float) and math.isnan(value) and not pa.types.is_floating(typ)):
        if not field_.nullable:
            raise ValueError(f"{where}: column {name!r} may not be empty (None)")
        return None
    bad = f"{where}: column {name!r} must be {typ}, got {type(value).__name__} {value!r}"
    if pa.types.is_string(typ):
        if not isinstance(value, str):
            raise ValueError(bad)
        return value
    if pa.types.is_int64(typ):
        if not _is_int(value):
            raise ValueError(bad)
        return int(value)
    if pa.types.is_floating(typ):
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(bad)
        return float(value)
    if pa.types.is_boolean(typ):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(bad)
        return bool(value)
    if pa.types.is_timestamp(typ):
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(bad) from None
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if not isinstance(value, datetime):
            raise ValueError(bad)
        if value.tzinfo is None:
            raise ValueError(
                f"{where}: column {name!r} needs a timezone-aware time (use datetime.now(timezone.utc))"
            )
        return value.astimezone(timezone.utc)
    if pa.types.is_list(typ):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValueError(bad)
        items = list(value)
        if not all(isinstance(i, str) for i in items):
            raise ValueError(f"{where}: column {name!r} must be a list of strings, got {items!r}")
        return items
    raise AssertionError(f"unhandled type {typ}")  # pragma: no cover - schema and code move together


def _check_keys(row: Mapping[str, Any], schema: pa.Schema, where: str, optional: Sequence[str] = ()) -> None:
    names = set(schema.names)
    missing = [n for n in schema.names if n not in row and n not in optional]
    unknown = sorted(set(row) - names)
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise ValueError(f"{where}: {'; '.join(parts)}; the columns are {', '.join(schema.names)}")


def validate_run(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run dict checked against RUN_SCHEMA and normalised; every problem is one ValueError line."""
    if not isinstance(run, Mapping):
        raise ValueError(f"run must be a dict of the run columns, got {type(run).__name__}")
    _check_keys(run, RUN_SCHEMA, "run", optional=OPTIONAL_RUN_COLUMNS)
    out = {f.name: _check_value(f, run.get(f.name), "run") for f in RUN_SCHEMA}
    if out["status"] not in STATUSES:
        raise ValueError(f"run: status must be one of {', '.join(STATUSES)}, got {out['status']!r}")
    expected = result_id(
        out["task"],
        out["task_version"],
        out["submission_sha256"],
        out["checkpoint_sha256"],
        out["seed"],
        out["timesteps"],
        out["snnbench_version"],
        out["limit"],
        out["metrics_version"],
        out["metrics"],
    )
    if out["result_id"] != expected:
        raise ValueError(
            f"run: result_id {out['result_id']!r} does not match its columns (expected {expected!r}); "
            "compute it with snnbench.store.result_id(...)"
        )
    return out


def _metric_dict(row: Any, rid: str, i: int) -> dict[str, Any]:
    where = f"metrics row {i}"
    if hasattr(row, "as_dict"):
        d = dict(row.as_dict())
    elif isinstance(row, Mapping):
        d = dict(row)
    else:
        raise ValueError(f"{where}: expected a MetricRow or a dict, got {type(row).__name__}")
    if d.setdefault("result_id", rid) != rid:
        raise ValueError(f"{where}: result_id {d['result_id']!r} differs from the run's {rid!r}")
    optional = [f.name for f in METRICS_SCHEMA if f.nullable]
    _check_keys(d, METRICS_SCHEMA, where, optional=optional)
    out = {f.name: _check_value(f, d.get(f.name), where) for f in METRICS_SCHEMA}
    if not out["metric"]:
        raise ValueError(f"{where}: empty metric name")
    return out


# ---------------------------------------------------------------------------------------------
# atomic file writing


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _tmp_name(folder: Path, rid: str) -> Path:
    return folder / f"{TMP_PREFIX}{rid}-{os.getpid()}-{secrets.token_hex(4)}"


def _atomic_write(path: Path, write) -> None:
    """Write through `write(fileobj)` into a dot-prefixed temp beside `path`, fsync, rename."""
    tmp = _tmp_name(path.parent, path.name.split(".", 1)[0])
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _write_table(path: Path, table: pa.Table) -> None:
    _atomic_write(path, lambda fh: pq.write_table(table, fh))


# ---------------------------------------------------------------------------------------------
# file access: a local folder (os calls, fsync) or any pyarrow filesystem (a URI such as s3://)

_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Object stores publish an object whole when its single upload completes, so one put is atomic
# (and a rename would be a copy); on every other filesystem a part is written under a dot-prefixed
# temporary name and moved into place.
_OBJECT_STORES = frozenset({"s3", "s3a", "gcs", "gs", "abfs", "abfss", "az", "adl", "oss", "r2"})


def is_uri(location: Any) -> bool:
    """True for a filesystem URI (`s3://bucket/path`, `file:///abs/path`, `memory://x`): a store
    that is read and written through pyarrow.fs instead of os calls."""
    return isinstance(location, str) and bool(_URI_RE.match(location))


def filesystem_for(uri: str):
    """(pyarrow FileSystem, path inside it) for a URI: pyarrow's own schemes (file, s3, gs, hdfs,
    abfs, ...), else any scheme fsspec knows (memory, ...) wrapped in pyarrow.fs.PyFileSystem."""
    from pyarrow import fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise ValueError(
            f"store {uri}: {first} ({exc}); give a folder, or a URI of a filesystem pyarrow or fsspec "
            "knows (file://, s3://, gs://, hdfs://, memory://)"
        ) from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


class _LocalFiles:
    """A store folder on this machine: paths are Path objects, writes are fsynced and renamed."""

    def __init__(self, root: Path):
        self.root = root

    def join(self, base: Path, name: str) -> Path:
        return base / name

    def name(self, loc: Path) -> str:
        return loc.name

    def show(self, loc: Path) -> Path:
        return loc

    def is_file(self, loc: Path) -> bool:
        return loc.is_file()

    def files(self, folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file())

    def makedirs(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    def mtime(self, loc: Path) -> float | None:
        return loc.stat().st_mtime

    def remove(self, loc: Path) -> None:
        loc.unlink()

    def read_table(self, loc: Path) -> pa.Table:
        return pq.read_table(loc)

    def read_metadata(self, loc: Path):
        return pq.read_metadata(loc)

    def write(self, loc: Path, write) -> None:
        _atomic_write(loc, write)

    def walk(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        if not self.root.is_dir():
            return out
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                p = Path(dirpath) / name
                try:
                    st = p.lstat()
                except FileNotFoundError:
                    continue
                out[p.relative_to(self.root).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out


class _ArrowFiles:
    """A store on a pyarrow filesystem: paths are strings inside it, shown as URIs."""

    def __init__(self, fs, root: str, uri: str):
        self.fs, self.root, self.uri = fs, root.rstrip("/"), uri.rstrip("/")
        handler = getattr(fs, "handler", None)
        protocol = getattr(getattr(handler, "fs", None), "protocol", None)
        names = {fs.type_name, *(protocol if isinstance(protocol, (tuple, list)) else [protocol])}
        self.atomic_put = bool(names & _OBJECT_STORES)

    def join(self, base: str, name: str) -> str:
        return f"{base}/{name}" if base else name

    def name(self, loc: str) -> str:
        return loc.rsplit("/", 1)[-1]

    def show(self, loc: str) -> str:
        return self.uri + loc[len(self.root) :]

    def _info(self, loc: str):
        return self.fs.get_file_info(loc)

    def is_file(self, loc: str) -> bool:
        from pyarrow import fs as pafs

        return self._info(loc).type == pafs.FileType.File

    def files(self, folder: str) -> list[str]:
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File)

    def makedirs(self, folder: str) -> None:
        self.fs.create_dir(folder, recursive=True)

    def mtime(self, loc: str) -> float | None:
        from pyarrow import fs as pafs

        info = self._info(loc)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(loc)
        return None if info.mtime_ns is None else info.mtime_ns / 1e9

    def remove(self, loc: str) -> None:
        try:
            self.fs.delete_file(loc)
        except FileNotFoundError:
            raise
        except OSError:
            if not self.is_file(loc):
                raise FileNotFoundError(loc) from None
            raise

    def read_table(self, loc: str) -> pa.Table:
        with self.fs.open_input_file(loc) as fh:
            return pq.read_table(fh)

    def read_metadata(self, loc: str):
        with self.fs.open_input_file(loc) as fh:
            return pq.read_metadata(fh)

    def write(self, loc: str, write) -> None:
        """The whole file is made in memory first, so a failing `write` never opens the target.
        Object stores: one put (visible only once complete). Others: a dot-prefixed temporary
        beside the target, then a move (a rename on local and HDFS filesystems)."""
        buf = pa.BufferOutputStream()
        write(buf)
        payload = buf.getvalue()
        if self.atomic_put:
            with self.fs.open_output_stream(loc) as out:
                out.write(payload)
            return
        folder, name = loc.rsplit("/", 1) if "/" in loc else ("", loc)
        tmp = self.join(folder, f"{TMP_PREFIX}{name.split('.', 1)[0]}-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            with self.fs.open_output_stream(tmp) as out:
                out.write(payload)
            self.fs.move(tmp, loc)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.delete_file(tmp)
            raise

    def walk(self) -> dict[str, tuple[int, int]]:
        from pyarrow import fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True, allow_not_found=True))
        out = {}
        for i in infos:
            if i.type == pafs.FileType.File:
                rel = i.path[len(self.root) :].lstrip("/")
                out[rel] = (int(i.size or 0), int(i.mtime_ns or 0))
        return out


# ---------------------------------------------------------------------------------------------
# reading


_INT_MAPPER = {pa.int64(): pd.Int64Dtype()}


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """pandas frame with stable dtypes: integer columns are nullable Int64 whether or not null."""
    df = table.to_pandas(types_mapper=_INT_MAPPER.get)
    if "uncounted" in df.columns:
        df["uncounted"] = [[str(x) for x in v] if v is not None else [] for v in df["uncounted"]]
    return df


def _conform(table: pa.Table, schema: pa.Schema, path: Path | str) -> pa.Table:
    """The file's table cast to `schema`; a missing nullable column (older store) reads as null."""
    arrays = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            try:
                col = col.cast(f.type) if col.type != f.type else col
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise CorruptStoreError(path, f"column {f.name} is {col.type}, expected {f.type}") from None
            if not f.nullable and col.null_count:
                raise CorruptStoreError(path, f"column {f.name} has empty values")
        elif f.nullable:
            col = pa.nulls(table.num_rows, f.type)
        else:
            raise CorruptStoreError(path, f"column {f.name} is missing")
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=schema)


def _read_part(path: Path, schema: pa.Schema, kind: str, files=None) -> pa.Table:
    """One part file read and checked; `files` is the store's file access (default: a local path)."""
    files = files or _LocalFiles(Path(path).parent)
    name, shown = files.name(path), files.show(path)
    if not name.endswith(".parquet"):
        raise CorruptStoreError(shown, "not a .parquet part file; readers would still try to read it")
    rid = name[: -len(".parquet")]
    try:
        table = files.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptStoreError(shown, f"not readable Parquet: {reason}") from None
    table = _conform(table, schema, shown)
    if kind == "runs" and table.num_rows != 1:
        raise CorruptStoreError(shown, f"a runs part holds one row, this one has {table.num_rows}")
    ids = set(table.column("result_id").to_pylist())
    if ids - {rid}:
        raise CorruptStoreError(
            shown, f"holds result_id {sorted(ids - {rid})[0]!r}, not its file name {rid!r}"
        )
    return table


@dataclass
class StoreView:
    """What one read of the store saw: committed runs, their metrics, and skipped corrupt files."""

    runs: pd.DataFrame
    metrics: pd.DataFrame
    corrupt: list[Path] = field(default_factory=list)


def _visible(name: str) -> bool:
    # The same rule as pyarrow's dataset discovery (ignore_prefixes ['.', '_']).
    return not name.startswith((".", "_"))


class Store:
    """A result store: a folder, or a URI of any pyarrow filesystem (`s3://bucket/results`,
    `file:///shared/results`; fsspec schemes such as `memory://` too). Nothing is created until the
    first write. `filesystem`: a pyarrow FileSystem to use with `path` inside it (e.g. one built
    with credentials), instead of resolving a URI."""

    def __init__(self, path: str | os.PathLike, filesystem=None):
        if filesystem is not None:
            root = str(path).rstrip("/")
            self.path: Path | str = f"{filesystem.type_name}://{root}"
            self._files = _ArrowFiles(filesystem, root, self.path)
        elif is_uri(path):
            self.path = str(path).rstrip("/")
            fs, root = filesystem_for(self.path)
            self._files = _ArrowFiles(fs, root, self.path)
        else:
            self.path = Path(path)
            self._files = _LocalFiles(self.path)
        if self._files.is_file(self._files.root):
            raise ValueError(f"store {self.path} is a file; give a directory for the result store")

    @property
    def is_local(self) -> bool:
        """True for a folder on this machine (False for a store on a pyarrow filesystem URI)."""
        return isinstance(self._files, _LocalFiles)

    # -- layout ---------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path | str:
        return self._files.join(self._files.root, "runs")

    @property
    def metrics_dir(self) -> Path | str:
        return self._files.join(self._files.root, "metrics")

    @property
    def logs_dir(self) -> Path | str:
        return self._files.join(self._files.root, "logs")

    def log_path(self, result_id: str) -> Path | str:
        """Where the traceback and notes of a run go (logs/<result_id>.txt; a URI on a filesystem URI)."""
        _check_id(result_id)
        return self._files.show(self._files.join(self.logs_dir, f"{result_id}.txt"))

    def _parts(self, folder) -> list:
        return [p for p in self._files.files(folder) if _visible(self._files.name(p))]

    def result_ids(self) -> list[str]:
        """Ids of committed runs (a runs part file exists), sorted; reads no file contents."""
        names = (self._files.name(p) for p in self._parts(self.runs_dir))
        return [n[: -len(".parquet")] for n in names if n.endswith(".parquet")]

    # -- writing --------------------------------------------------------------------------------
    def _ensure_dirs(self) -> None:
        for d in (self.runs_dir, self.metrics_dir, self.logs_dir):
            self._files.makedirs(d)

    def remove_orphans(self, older_than_s: float = ORPHAN_AGE_S) -> list[Path | str]:
        """Delete temporary files left by killed writers, older than `older_than_s`; return them."""
        removed = []
        cutoff = time.time() - older_than_s
        for d in (self.runs_dir, self.metrics_dir, self.logs_dir):
            for p in self._files.files(d):
                if not self._files.name(p).startswith(TMP_PREFIX):
                    continue
                try:
                    mtime = self._files.mtime(p)
                    if mtime is not None and mtime < cutoff:
                        self._files.remove(p)
                        removed.append(self._files.show(p))
                except FileNotFoundError:  # another writer removed or renamed it first
                    continue
        return removed

    def write(self, run: Mapping[str, Any], metrics: Iterable[Any]) -> None:
        """Commit one run: metrics/<id>.parquet first, then runs/<id>.parquet (the commit point).

        Writing the same result_id again replaces both files; a run with no metric rows still
        writes an (empty) metrics file so an older run's metrics never survive beside it.
        """
        row = validate_run(run)
        rid = row["result_id"]
        metric_rows = [_metric_dict(m, rid, i) for i, m in enumerate(metrics)]
        run_table = pa.Table.from_pylist([row], schema=RUN_SCHEMA)
        metrics_table = pa.Table.from_pylist(metric_rows, schema=METRICS_SCHEMA)
        self._ensure_dirs()
        self.remove_orphans()
        for folder, table in ((self.metrics_dir, metrics_table), (self.runs_dir, run_table)):
            self._files.write(
                self._files.join(folder, f"{rid}.parquet"), lambda fh, t=table: pq.write_table(t, fh)
            )

    def write_log(self, result_id: str, text: str) -> Path | str:
        """Write logs/<result_id>.txt atomically (replacing an older log of the same id)."""
        _check_id(result_id)
        self._ensure_dirs()
        loc = self._files.join(self.logs_dir, f"{result_id}.txt")
        self._files.write(loc, lambda fh: fh.write(text.encode("utf-8")))
        return self._files.show(loc)

    # -- reading --------------------------------------------------------------------------------
    def _read_dir(self, folder, schema: pa.Schema, kind: str, skip_corrupt: bool, keep=None):
        tables, corrupt = [], []
        for p in self._parts(folder):
            if keep is not None and self._files.name(p)[: -len(".parquet")] not in keep:
                continue
            try:
                tables.append(_read_part(p, schema, kind, self._files))
            except CorruptStoreError:
                if not skip_corrupt:
                    raise
                corrupt.append(self._files.show(p))
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        return table, corrupt

    def read(self, skip_corrupt: bool = False) -> StoreView:
        """Every committed run and its metrics. Metrics without a runs row (an interrupted write)
        and metrics of a skipped corrupt runs file are left out. Raises CorruptStoreError on the
        first unreadable part file unless `skip_corrupt`, which lists them in `.corrupt`."""
        runs, bad_runs = self._read_dir(self.runs_dir, RUN_SCHEMA, "runs", skip_corrupt)
        committed = set(runs.column("result_id").to_pylist())
        metrics, bad_metrics = self._read_dir(
            self.metrics_dir, METRICS_SCHEMA, "metrics", skip_corrupt, committed
        )
        runs_df = _to_frame(runs).sort_values("result_id", kind="stable").reset_index(drop=True)
        metrics_df = _to_frame(metrics)
        corrupt = sorted(bad_runs + bad_metrics)
        runs_df.attrs["corrupt_files"] = [str(p) for p in corrupt]
        metrics_df.attrs["corrupt_files"] = [str(p) for p in corrupt]
        return StoreView(runs=runs_df, metrics=metrics_df, corrupt=corrupt)

    def read_runs(self, skip_corrupt: bool = False) -> pd.DataFrame:
        """Committed runs, one row each, sorted by result_id (skipped files in .attrs['corrupt_files'])."""
        table, corrupt = self._read_dir(self.runs_dir, RUN_SCHEMA, "runs", skip_corrupt)
        df = _to_frame(table).sort_values("result_id", kind="stable").reset_index(drop=True)
        df.attrs["corrupt_files"] = [str(p) for p in corrupt]
        return df

    def read_metrics(
        self, skip_corrupt: bool = False, result_ids: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Metric rows of committed runs (optionally only `result_ids`), in file-name order."""
        if result_ids is None:
            return self.read(skip_corrupt).metrics
        committed = set(self.result_ids()) & set(result_ids)
        table, corrupt = self._read_dir(self.metrics_dir, METRICS_SCHEMA, "metrics", skip_corrupt, committed)
        df = _to_frame(table)
        df.attrs["corrupt_files"] = [str(p) for p in corrupt]
        return df

    def read_run(self, result_id: str) -> dict[str, Any]:
        """One committed run as a dict (its metrics: read_metrics(result_ids=[id]))."""
        _check_id(result_id)
        path = self._files.join(self.runs_dir, f"{result_id}.parquet")
        if not self._files.is_file(path):
            raise KeyError(result_id)
        return _to_frame(_read_part(path, RUN_SCHEMA, "runs", self._files)).iloc[0].to_dict()

    def corrupt_files(self) -> list[Path | str]:
        """Part files under runs/ and metrics/ that are not readable part files (reads them all)."""
        bad = []
        for folder, schema, kind in (
            (self.runs_dir, RUN_SCHEMA, "runs"),
            (self.metrics_dir, METRICS_SCHEMA, "metrics"),
        ):
            for p in self._parts(folder):
                try:
                    _read_part(p, schema, kind, self._files)
                except CorruptStoreError:
                    bad.append(self._files.show(p))
        return sorted(bad)

    def unreadable_parts(self) -> list[Path | str]:
        """Part files whose Parquet footer cannot be read: a cheap check (no data pages are read)
        that `evaluate` runs before every run to warn about damage it did not cause."""
        bad = []
        for folder in (self.runs_dir, self.metrics_dir):
            for p in self._parts(folder):
                try:
                    self._files.read_metadata(p)
                except (pa.ArrowException, OSError, ValueError):
                    bad.append(self._files.show(p))
        return sorted(bad)

    def resolve_id(self, prefix: str) -> str:
        """The committed result id starting with `prefix`; unknown or ambiguous is one ValueError line."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise ValueError("empty result id; run `snnbench leaderboard` to list ids")
        hits = [r for r in self.result_ids() if r.startswith(prefix)]
        if not hits:
            raise ValueError(
                f"no result {prefix!r} in store {self.path}; run `snnbench leaderboard` to list ids"
            )
        if len(hits) > 1:
            shown = ", ".join(hits[:5]) + (", ..." if len(hits) > 5 else "")
            raise ValueError(
                f"result id prefix {prefix!r} matches {len(hits)} results ({shown}); give more characters "
                "(run `snnbench leaderboard` to list ids)"
            )
        return hits[0]

    # -- isolation check ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, tuple[int, int]]:
        """relative path -> (size, mtime_ns) of every file under the store (empty if none yet)."""
        return dict(sorted(self._files.walk().items()))

    def changed_since(
        self,
        snapshot: Mapping[str, tuple[int, int]],
        allowed_ids: Iterable[str] = (),
        ignore_added: bool = False,
    ) -> list[str]:
        """Paths added, removed or changed since `snapshot`, sorted.

        Files of `allowed_ids` (their runs, metrics and log files) are the caller's own and not
        reported; neither are temporary files (`.tmp-*`), which no reader ever reads and which
        concurrent writers create and clean up. `ignore_added` leaves out new files, for a sweep
        whose other workers commit runs into the same store meanwhile.
        """
        allowed = set()
        for rid in allowed_ids:
            allowed |= {f"runs/{rid}.parquet", f"metrics/{rid}.parquet", f"logs/{rid}.txt"}
        now = self.snapshot()

        def relevant(rel: str) -> bool:
            return rel not in allowed and not rel.rsplit("/", 1)[-1].startswith(TMP_PREFIX)

        changed = []
        for rel in sorted(set(snapshot) | set(now)):
            if not relevant(rel):
                continue
            before, after = snapshot.get(rel), now.get(rel)
            if before is None and ignore_added:
                continue
            if before is None or after is None or tuple(before) != tuple(after):
                changed.append(rel)
        return changed


def _check_id(rid: str) -> None:
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        raise ValueError(f"result id must be 12 lowercase hex digits, got {rid!r}")
