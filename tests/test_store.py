"""The Parquet result store: schema, atomic commit order, corruption, concurrency, crash safety."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import snnbench
from snnbench.store import (
    COMMITTED_STORE,
    METRICS_SCHEMA,
    RUN_SCHEMA,
    CorruptStoreError,
    Store,
    default_store_path,
    result_id,
)
from tests import runs

# No torch import at module level: spawned writer processes import this module.

ID_FIELDS = ("task", "task_version", "submission_sha256", "checkpoint_sha256", "seed", "timesteps")


def make_run(**over) -> dict:
    """A valid run dict; any column can be overridden, and the id follows the id fields."""
    return runs.make_run(**{"wall_time_s": 1.25, **over})


def metric_dicts(n: int, scale: float = 1.0) -> list[dict]:
    return [
        {"metric": "spikes_per_sample", "value": scale * i, "unit": "count", "layer": f"l{i}"}
        for i in range(n)
    ]


def failed(**over) -> dict:
    return make_run(status="failed", error="model returned a tuple; return one tensor", **over)


# ---------------------------------------------------------------------------------------------
# schema


def test_empty_store_reads_typed_and_creates_nothing(tmp_path):
    store = Store(tmp_path / "s")
    runs, metrics = store.read_runs(), store.read_metrics()
    assert list(runs.columns) == RUN_SCHEMA.names and len(runs) == 0
    assert list(metrics.columns) == METRICS_SCHEMA.names and len(metrics) == 0
    assert str(runs["created_at"].dtype) == "datetime64[us, UTC]"
    assert not (tmp_path / "s").exists()
    assert store.snapshot() == {}


def test_all_failed_store_reads_with_typed_columns(tmp_path):
    store = Store(tmp_path)
    store.write(failed(seed=0), [])
    store.write(failed(seed=1), [])
    runs = store.read_runs()
    assert list(runs["status"]) == ["failed", "failed"]
    assert runs["seed"].dtype == pd.Int64Dtype() and runs["wall_time_s"].dtype == np.float64
    assert runs["limit"].isna().all() and runs["checkpoint_sha256"].isna().all()
    assert list(store.read_metrics().columns) == METRICS_SCHEMA.names and store.read_metrics().empty
    # Readers that know nothing of snnbench: pandas over the folders, the metrics part files empty.
    direct = pd.read_parquet(tmp_path / "metrics")
    assert list(direct.columns) == METRICS_SCHEMA.names and len(direct) == 0
    assert (
        pq.read_schema(tmp_path / "metrics" / f"{runs['result_id'][0]}.parquet").field("value").type
        == pa.float64()
    )


def test_all_null_error_column_is_still_typed_string(tmp_path):
    store = Store(tmp_path)
    store.write(make_run(), [])
    rid = make_run()["result_id"]
    schema = pq.read_schema(tmp_path / "runs" / f"{rid}.parquet")
    assert schema.field("error").type == pa.string()
    assert schema.field("limit").type == pa.int64()
    assert schema.field("uncounted").type == pa.list_(pa.string())
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")


def test_ok_and_failed_rows_read_together_with_pandas(tmp_path):
    store = Store(tmp_path)
    ok = make_run(seed=0, uncounted=["LSTM"])
    bad = failed(seed=1)
    store.write(ok, metric_dicts(3))
    store.write(bad, [])
    df = pd.read_parquet(tmp_path / "runs").sort_values("seed").reset_index(drop=True)
    assert list(df["status"]) == ["ok", "failed"]
    assert pd.isna(df["error"][0]) and df["error"][1] == bad["error"]
    assert list(df["uncounted"][0]) == ["LSTM"] and list(df["uncounted"][1]) == []
    assert df["created_at"][0] == pd.Timestamp("2026-01-02T03:04:05Z")
    metrics = pd.read_parquet(tmp_path / "metrics")
    assert len(metrics) == 3 and set(metrics["result_id"]) == {ok["result_id"]}
    ours = store.read_runs()
    assert list(ours["result_id"]) == sorted([ok["result_id"], bad["result_id"]])
    assert ours.loc[ours["seed"] == 0, "uncounted"].iloc[0] == ["LSTM"]


def test_metric_rows_accept_metricrow_and_dicts(tmp_path):
    from snnbench.metrics import MetricRow

    store = Store(tmp_path)
    run = make_run()
    rows = [
        MetricRow("accuracy", 0.9, "fraction", n=450, stderr=0.01),
        MetricRow("accuracy", 0.5, "fraction", n=450, timestep=0),
        {
            "metric": "energy_uj_per_sample",
            "value": 2,
            "unit": "microjoule",
            "condition": "horowitz45nm-fp32",
        },
    ]
    store.write(run, rows)
    m = store.read_metrics()
    assert list(m["value"]) == [0.9, 0.5, 2.0]
    assert m["timestep"].dtype == pd.Int64Dtype() and pd.isna(m["timestep"][0]) and m["timestep"][1] == 0
    assert m["n"][0] == 450 and m["stderr"][0] == 0.01 and np.isnan(m["stderr"][1])
    assert m["condition"][2] == "horowitz45nm-fp32" and pd.isna(m["layer"][2])


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda r: r.pop("device"), ["missing", "device"]),
        (lambda r: r.update(colour="red"), ["unknown", "colour"]),
        (lambda r: r.update(seed="0"), ["seed", "int64"]),
        (lambda r: r.update(reportable=1), ["reportable"]),
        (lambda r: r.update(method=None), ["method", "None"]),
        (lambda r: r.update(status="crashed"), ["status", "crashed"]),
        (lambda r: r.update(created_at=datetime(2026, 1, 1)), ["timezone"]),
        (lambda r: r.update(result_id="0123456789ab"), ["result_id", "store.result_id"]),
        (lambda r: r.update(uncounted="LSTM"), ["uncounted"]),
    ],
)
def test_bad_run_is_one_line_value_error(tmp_path, change, words):
    run = make_run()
    change(run)
    with pytest.raises(ValueError) as err:
        Store(tmp_path).write(run, [])
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_metric_rows_are_rejected(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="unknown column.*colour"):
        store.write(make_run(), [{"metric": "a", "value": 1.0, "unit": "count", "colour": 1}])
    with pytest.raises(ValueError, match="missing column.*unit"):
        store.write(make_run(), [{"metric": "a", "value": 1.0}])
    with pytest.raises(ValueError, match="differs from the run"):
        store.write(make_run(), [{"result_id": "ffffffffffff", "metric": "a", "value": 1.0, "unit": "count"}])
    assert store.read_runs().empty


# ---------------------------------------------------------------------------------------------
# atomic commit


def test_metrics_committed_before_runs_through_fsynced_temps(tmp_path, monkeypatch):
    events = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src, dst):
        events.append(("replace", Path(src), Path(dst)))
        real_replace(src, dst)

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    run = make_run()
    rid = run["result_id"]
    Store(tmp_path).write(run, metric_dicts(2))
    replaces = [e for e in events if e[0] == "replace"]
    assert [e[2] for e in replaces] == [
        tmp_path / "metrics" / f"{rid}.parquet",
        tmp_path / "runs" / f"{rid}.parquet",
    ]
    for _, src, dst in replaces:
        assert src.parent == dst.parent and src.name.startswith(f".tmp-{rid}-{os.getpid()}-")
        # the temp file itself was fsynced before it was renamed
        i = events.index(("replace", src, dst))
        assert ("fsync", str(src)) in events[:i]


def test_temp_and_underscore_files_are_ignored_by_every_reader(tmp_path):
    store = Store(tmp_path)
    run = make_run()
    store.write(run, metric_dicts(2))
    for d in ("runs", "metrics"):
        (tmp_path / d / f".tmp-{run['result_id']}-1-deadbeef").write_bytes(b"half a parquet fi")
        (tmp_path / d / "_SUCCESS").write_bytes(b"")
    assert len(pd.read_parquet(tmp_path / "runs")) == 1
    assert len(pd.read_parquet(tmp_path / "metrics")) == 2
    assert len(store.read_runs()) == 1 and len(store.read_metrics()) == 2
    assert store.corrupt_files() == []


def test_same_result_id_replaces_both_files(tmp_path):
    store = Store(tmp_path)
    run = make_run()
    store.write(run, metric_dicts(3))
    store.write(failed(), [])
    runs = store.read_runs()
    assert len(runs) == 1 and runs["status"][0] == "failed"
    assert store.read_metrics().empty  # the old metrics were replaced by an empty part, not kept
    store.write(run, metric_dicts(2, scale=10.0))
    assert list(store.read_metrics()["value"]) == [0.0, 10.0]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [f"{run['result_id']}.parquet"]


def test_metrics_without_runs_row_is_not_a_result(tmp_path):
    store = Store(tmp_path)
    store.write(make_run(seed=0), metric_dicts(1))
    orphan = make_run(seed=1)["result_id"]
    table = pa.Table.from_pylist([dict(m, result_id=orphan) for m in metric_dicts(4)], schema=METRICS_SCHEMA)
    pq.write_table(table, tmp_path / "metrics" / f"{orphan}.parquet")
    assert len(store.read_metrics()) == 1
    assert len(store.read_metrics(result_ids=[orphan])) == 0


# ---------------------------------------------------------------------------------------------
# corrupt files


def test_corrupt_part_file_raises_one_line_and_can_be_skipped(tmp_path):
    store = Store(tmp_path)
    good = make_run(seed=0)
    store.write(good, metric_dicts(2))
    store.write(make_run(seed=1), metric_dicts(1))
    bad_run = tmp_path / "runs" / "0123456789ab.parquet"
    bad_run.write_bytes(b"this is not parquet")
    # a real part file cut in half, as a copy over a flaky link leaves it
    full = (tmp_path / "metrics" / f"{make_run(seed=1)['result_id']}.parquet").read_bytes()
    (tmp_path / "metrics" / f"{make_run(seed=1)['result_id']}.parquet").write_bytes(full[: len(full) // 2])

    with pytest.raises(CorruptStoreError) as err:
        store.read_runs()
    msg = str(err.value)
    assert "\n" not in msg and str(bad_run) in msg and "--skip-corrupt" in msg
    with pytest.raises(CorruptStoreError):
        store.read()

    view = store.read(skip_corrupt=True)
    assert sorted(view.runs["seed"]) == [0, 1]
    assert set(view.metrics["result_id"]) == {good["result_id"]}
    half = tmp_path / "metrics" / f"{make_run(seed=1)['result_id']}.parquet"
    assert view.corrupt == sorted([bad_run, half])
    assert view.runs.attrs["corrupt_files"] == [str(p) for p in sorted([bad_run, half])]
    assert store.corrupt_files() == sorted([bad_run, half])
    assert store.read_runs(skip_corrupt=True).attrs["corrupt_files"] == [str(bad_run)]


def test_part_file_with_wrong_content_is_corrupt(tmp_path):
    store = Store(tmp_path)
    run = make_run()
    store.write(run, [])
    # readable Parquet, but a runs file whose row belongs to another id
    other = make_run(seed=5)
    pq.write_table(pa.Table.from_pylist([{**other, "created_at": other["created_at"]}], schema=RUN_SCHEMA),
                   tmp_path / "runs" / "aaaaaaaaaaaa.parquet")  # fmt: skip
    # readable Parquet without the columns of a run
    pq.write_table(pa.table({"x": [1]}), tmp_path / "runs" / "bbbbbbbbbbbb.parquet")
    assert [p.name for p in store.corrupt_files()] == ["aaaaaaaaaaaa.parquet", "bbbbbbbbbbbb.parquet"]
    with pytest.raises(CorruptStoreError, match="not its file name"):
        store.read_runs()


# ---------------------------------------------------------------------------------------------
# concurrency and crashes


def _writer(root: str, seed: int, barrier) -> None:
    store = Store(root)
    barrier.wait(timeout=60)
    store.write(make_run(seed=seed, method=f"w{seed}"), metric_dicts(50, scale=seed))
    # every writer also races on one shared id: whoever renames last wins, nobody breaks
    store.write(make_run(seed=99, method=f"shared{seed}"), metric_dicts(5, scale=seed))


def test_eight_concurrent_writers_all_land(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(8)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), i, barrier)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    store = Store(tmp_path)
    runs = store.read_runs()
    assert sorted(runs["seed"]) == [*range(8), 99]
    metrics = store.read_metrics()
    assert len(metrics) == 8 * 50 + 5
    for i in range(8):
        rid = make_run(seed=i)["result_id"]
        values = metrics.loc[metrics["result_id"] == rid, "value"].to_numpy()
        np.testing.assert_array_equal(values, np.arange(50.0) * i)
    assert not [p for d in ("runs", "metrics") for p in (tmp_path / d).iterdir() if p.name.startswith(".")]
    assert len(pd.read_parquet(tmp_path / "runs")) == 9


def _killed_writer(root: str) -> None:
    """Commits the metrics file, then dies by SIGKILL just before the runs rename."""
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst)

    os.replace = replace
    Store(root).write(make_run(seed=7), metric_dicts(3))


def test_sigkilled_writer_leaves_nothing_partial_and_next_writer_cleans_up(tmp_path):
    store = Store(tmp_path)
    store.write(make_run(seed=0), metric_dicts(1))
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_killed_writer, args=(str(tmp_path),))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    rid = make_run(seed=7)["result_id"]
    temps = list((tmp_path / "runs").glob(f".tmp-{rid}-*"))
    assert len(temps) == 1  # the fsynced, never renamed runs row
    assert (tmp_path / "metrics" / f"{rid}.parquet").exists()
    # readers see no trace of the killed run
    assert list(store.read_runs()["seed"]) == [0]
    assert set(store.read_metrics()["result_id"]) == {make_run(seed=0)["result_id"]}
    assert len(pd.read_parquet(tmp_path / "runs")) == 1
    assert store.corrupt_files() == []

    # A young temp survives the next writer (it may be a live writer's); an old one is removed.
    fresh = tmp_path / "metrics" / ".tmp-ffffffffffff-1-00000000"
    fresh.write_bytes(b"in flight")
    old = time.time() - 2 * 3600
    os.utime(temps[0], (old, old))
    store.write(make_run(seed=1), [])
    assert not temps[0].exists() and fresh.exists()
    # a retry of the killed run commits it whole
    store.write(make_run(seed=7), metric_dicts(2))
    assert sorted(store.read_runs()["seed"]) == [0, 1, 7]
    assert len(store.read_metrics(result_ids=[rid])) == 2


def test_orphan_cleanup_threshold(tmp_path):
    store = Store(tmp_path)
    store.write(make_run(seed=0), [])
    ages = {"runs/.tmp-a-1-x": 3601 + 60, "logs/.tmp-b-1-x": 7200, "metrics/.tmp-c-1-x": 3000}
    for rel, age in ages.items():
        p = tmp_path / rel
        p.write_bytes(b"x")
        t = time.time() - age
        os.utime(p, (t, t))
    removed = store.remove_orphans()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == [
        "logs/.tmp-b-1-x",
        "runs/.tmp-a-1-x",
    ]
    assert (tmp_path / "metrics/.tmp-c-1-x").exists()


# ---------------------------------------------------------------------------------------------
# result ids


def _expected_id(**fields) -> str:
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def test_result_id_is_a_hash_of_canonical_json_and_stable_across_processes():
    fields = {
        "task": "cifar10dvs",
        "task_version": 2,
        "submission_sha256": "b" * 64,
        "checkpoint_sha256": "c" * 64,
        "seed": 3,
        "timesteps": 10,
        "snnbench_version": "0.1.0",
        "limit": None,
        "metrics_version": "1",
    }
    rid = result_id(**fields)
    assert rid == _expected_id(**fields)
    assert len(rid) == 12 and int(rid, 16) >= 0
    code = f"from snnbench.store import result_id; print(result_id(**{fields!r}))"
    for hashseed in ("1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.strip() == rid


def test_result_id_changes_when_any_input_changes():
    base = dict(
        task="digits",
        task_version=1,
        submission_sha256="a" * 64,
        checkpoint_sha256=None,
        seed=0,
        timesteps=4,
        snnbench_version="0.1.0",
        limit=None,
    )
    variants = dict(
        task="digits-dvs",
        task_version=2,
        submission_sha256="b" * 64,
        checkpoint_sha256="a" * 64,
        seed=1,
        timesteps=8,
        snnbench_version="0.1.1",
        limit=10,
    )
    ids = {result_id(**base)}
    assert result_id(**base) == result_id(**base, metrics_version=snnbench.METRICS_VERSION)
    variants["metrics_version"] = snnbench.METRICS_VERSION + "-next"
    for key, value in variants.items():
        ids.add(result_id(**{**base, key: value}))
    assert len(ids) == 1 + len(variants)
    # a checkpoint hash that equals the submission's is not confused with "no checkpoint"
    assert result_id(**{**base, "checkpoint_sha256": ""}) != result_id(**base)


# ---------------------------------------------------------------------------------------------
# isolation check, logs, location


def test_snapshot_and_changed_since(tmp_path):
    store = Store(tmp_path)
    a, b = make_run(seed=0), make_run(seed=1)
    store.write(a, metric_dicts(1))
    store.write_log(a["result_id"], "a's traceback")
    snap = store.snapshot()
    assert sorted(snap) == sorted(
        [f"runs/{a['result_id']}.parquet", f"metrics/{a['result_id']}.parquet", f"logs/{a['result_id']}.txt"]
    )
    assert all(isinstance(s, int) and isinstance(m, int) for s, m in snap.values())

    # the caller's own run and log, and temporaries, are not changes
    store.write(b, metric_dicts(2))
    store.write_log(b["result_id"], "b")
    (tmp_path / "runs" / ".tmp-x-1-y").write_bytes(b"")
    assert store.changed_since(snap, allowed_ids=[b["result_id"]]) == []
    assert store.changed_since(snap) == sorted(
        [f"logs/{b['result_id']}.txt", f"metrics/{b['result_id']}.parquet", f"runs/{b['result_id']}.parquet"]
    )

    # a touched, an added and a removed file are all reported
    a_runs = tmp_path / "runs" / f"{a['result_id']}.parquet"
    st = a_runs.stat()
    os.utime(a_runs, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    (tmp_path / "runs" / "evil.parquet").write_bytes(b"x")
    (tmp_path / "logs" / f"{a['result_id']}.txt").unlink()
    changed = store.changed_since(snap, allowed_ids=[b["result_id"]])
    assert changed == sorted(
        [f"logs/{a['result_id']}.txt", "runs/evil.parquet", f"runs/{a['result_id']}.parquet"]
    )
    assert "runs/evil.parquet" not in store.changed_since(
        snap, allowed_ids=[b["result_id"]], ignore_added=True
    )


def test_write_log_is_atomic_and_replaces(tmp_path):
    store = Store(tmp_path)
    rid = make_run()["result_id"]
    assert store.log_path(rid) == tmp_path / "logs" / f"{rid}.txt"
    store.write_log(rid, "Traceback 1\n")
    store.write_log(rid, "Traceback 2 µ\n")
    assert store.log_path(rid).read_text(encoding="utf-8") == "Traceback 2 µ\n"
    assert [p.name for p in (tmp_path / "logs").iterdir()] == [f"{rid}.txt"]
    with pytest.raises(ValueError, match="12 lowercase hex"):
        store.log_path("../../etc/passwd")


def test_default_store_path(tmp_path, monkeypatch):
    monkeypatch.delenv("SNNBENCH_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # a user's runs never land in the git-tracked baselines store by default
    assert default_store_path() == tmp_path / "xdg" / "snnbench" / "results"
    assert default_store_path() != COMMITTED_STORE
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "share" / "snnbench" / "results"
    monkeypatch.setenv("SNNBENCH_STORE", str(tmp_path / "env"))
    assert default_store_path() == tmp_path / "env"
    assert default_store_path(tmp_path / "cli") == tmp_path / "cli"
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError) as err:
        default_store_path(a_file)
    assert "--store" in str(err.value) and "is a file" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv("SNNBENCH_STORE", str(a_file))
    with pytest.raises(ValueError, match="SNNBENCH_STORE"):
        default_store_path()
    with pytest.raises(ValueError, match="is a file"):
        Store(a_file)


def test_resolve_id_prefixes(tmp_path):
    store = Store(tmp_path)
    ids = sorted(make_run(seed=s)["result_id"] for s in range(40))
    for s in range(40):
        store.write(make_run(seed=s), [])
    assert store.result_ids() == ids
    assert store.resolve_id(ids[0]) == ids[0]
    unique = next(i[:4] for i in ids if sum(j.startswith(i[:4]) for j in ids) == 1)
    assert store.resolve_id(unique.upper()) in ids
    shared = next(i[:1] for i in ids if sum(j.startswith(i[:1]) for j in ids) > 1)
    with pytest.raises(ValueError, match="matches .* results.*snnbench leaderboard"):
        store.resolve_id(shared)
    with pytest.raises(ValueError, match="no result 'zzz'.*snnbench leaderboard"):
        store.resolve_id("zzz")
