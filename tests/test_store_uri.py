"""The store on a pyarrow filesystem URI: file:// (pyarrow's LocalFileSystem), an in-memory
filesystem (fsspec's memory:// through pyarrow.fs.PyFileSystem, and pyarrow's mock filesystem
given as an object), read back, corrupt parts, atomic writes, the leaderboard, and a sweep that
resumes into a file:// store."""

from __future__ import annotations

import uuid

import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from snnbench import leaderboard
from snnbench.cli import main
from snnbench.store import CorruptStoreError, Store, default_store_path, is_uri
from tests import runs
from tests.conftest import PLAIN_TORCH


def _metric(rid: str, name: str, value: float, unit: str = "fraction", **extra) -> dict:
    return {"result_id": rid, "metric": name, "value": value, "unit": unit, **extra}


def _two_runs() -> list[tuple[dict, list[dict]]]:
    out = []
    for method, seed, acc in (("alpha", 0, 0.91), ("beta", 1, 0.95)):
        run = runs.make_run(method=method, seed=seed, submission_path=f"subs/{method}.py")
        rid = run["result_id"]
        out.append((run, [_metric(rid, "accuracy", acc, n=100), _metric(rid, "params", 10.0, "count")]))
    return out


def _memory_uri() -> str:
    return f"memory://snnbench-test-{uuid.uuid4().hex[:8]}/results"


def _check_round_trip(store: Store) -> None:
    assert store.result_ids() == []  # nothing exists yet
    written = _two_runs()
    for run, metrics in written:
        store.write(run, metrics)
    ids = sorted(run["result_id"] for run, _ in written)
    assert store.result_ids() == ids
    view = store.read()
    assert list(view.runs["result_id"]) == ids
    assert sorted(view.runs["method"]) == ["alpha", "beta"]
    acc = view.metrics[view.metrics["metric"] == "accuracy"].set_index("result_id")["value"]
    assert {r["method"]: acc[r["result_id"]] for r, _ in written} == {"alpha": 0.91, "beta": 0.95}
    assert store.read_run(ids[0])["result_id"] == ids[0]
    with pytest.raises(KeyError):
        store.read_run("0" * 12)
    names = set(store.snapshot())
    assert names == {f"{d}/{rid}.parquet" for d in ("runs", "metrics") for rid in ids}  # no temporaries
    assert store.corrupt_files() == [] and store.unreadable_parts() == []
    # rewriting the same id replaces it; a log lands beside the store and reads back
    store.write(written[0][0], [_metric(written[0][0]["result_id"], "accuracy", 0.5)])
    again = store.read().metrics
    assert list(again[again["result_id"] == written[0][0]["result_id"]]["value"]) == [0.5]
    log = store.write_log(ids[0], "Traceback: boom\n")
    assert str(log).endswith(f"/logs/{ids[0]}.txt")


def test_file_uri_store_is_the_same_files_as_the_folder(tmp_path):
    folder = tmp_path / "shared" / "results"
    uri = folder.as_uri()
    assert is_uri(uri) and not is_uri(str(folder))
    store = Store(uri)
    assert store.path == uri and not store.is_local
    _check_round_trip(store)
    # the very same part files, readable as a plain folder and by pandas
    assert Store(folder).result_ids() == store.result_ids()
    assert len(pd.read_parquet(folder / "runs")) == 2
    assert (folder / "logs").is_dir()


def test_memory_filesystem_store_through_fsspec():
    uri = _memory_uri()
    store = Store(uri)
    _check_round_trip(store)
    assert Store(uri).result_ids() == store.result_ids()  # fsspec's memory fs is one per process


def test_pyarrow_mock_filesystem_given_as_an_object():
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    store = Store("lab/results", filesystem=fs)
    _check_round_trip(store)
    assert Store("lab/results", filesystem=fs).result_ids() == store.result_ids()
    assert Store("other", filesystem=fs).result_ids() == []


def test_corrupt_part_on_a_uri_store_names_its_uri(tmp_path):
    uri = (tmp_path / "s").as_uri()
    store = Store(uri)
    (run, metrics), _ = _two_runs()
    store.write(run, metrics)
    bad = tmp_path / "s" / "runs" / "0123456789ab.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(CorruptStoreError) as info:
        store.read()
    assert str(info.value.path) == f"{uri}/runs/0123456789ab.parquet"
    assert f"{uri}/runs/0123456789ab.parquet" in str(info.value) and "\n" not in str(info.value)
    view = store.read(skip_corrupt=True)
    assert list(view.runs["result_id"]) == [run["result_id"]]
    assert view.corrupt == [f"{uri}/runs/0123456789ab.parquet"]
    assert store.unreadable_parts() == [f"{uri}/runs/0123456789ab.parquet"]


@pytest.mark.parametrize("atomic_put", [False, True])
def test_a_failed_write_leaves_nothing_visible(monkeypatch, atomic_put):
    """Temp-and-move (local, HDFS, memory) and one put (object stores): a writer that dies while
    serialising leaves no part file and no temporary behind; a later write of the id succeeds."""
    store = Store(_memory_uri())
    store._files.atomic_put = atomic_put
    (run, metrics), _ = _two_runs()

    def broken(table, where, **kw):
        where.write(b"PAR1 half a file")
        raise OSError("disk gone")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk gone"):
        store.write(run, metrics)
    monkeypatch.undo()
    assert store.snapshot() == {} and store.result_ids() == []
    store.write(run, metrics)
    assert store.result_ids() == [run["result_id"]]
    assert all(not name.rsplit("/", 1)[-1].startswith(".") for name in store.snapshot())


def test_temporaries_are_invisible_and_orphans_are_removed(tmp_path):
    uri = (tmp_path / "s").as_uri()
    store = Store(uri)
    (run, metrics), _ = _two_runs()
    store.write(run, metrics)
    orphan = tmp_path / "s" / "runs" / ".tmp-0123456789ab-1-deadbeef"
    orphan.write_bytes(b"half")
    assert store.result_ids() == [run["result_id"]]  # readers never see a temporary
    assert store.remove_orphans(older_than_s=3600) == []  # young: maybe a live writer's
    assert store.remove_orphans(older_than_s=-1) == [f"{uri}/runs/.tmp-0123456789ab-1-deadbeef"]
    assert not orphan.exists()


def test_leaderboard_renders_from_a_uri_store(tmp_path):
    uri = _memory_uri()
    store = Store(uri)
    for run, metrics in _two_runs():
        store.write(run, metrics)
    written = leaderboard.build(uri, tmp_path / "page")
    md = written[0].read_text()
    assert "alpha" in md and "beta" in md
    for run, _ in _two_runs():
        assert run["result_id"] in md
    assert "95.00" in md and "91.00" in md
    index = (tmp_path / "page" / "site" / "index.html").read_text()
    assert "beta" in index
    # a Store object (here on the mock filesystem) works the same
    fs, _ = pafs.FileSystem.from_uri("mock:///")
    mock = Store("r", filesystem=fs)
    for run, metrics in _two_runs():
        mock.write(run, metrics)
    md2 = leaderboard.build(mock, tmp_path / "page2")[0].read_text()
    assert md2 == md


def test_store_option_and_environment_keep_a_uri_whole(monkeypatch):
    assert default_store_path("s3://bucket/results") == "s3://bucket/results"
    monkeypatch.setenv("SNNBENCH_STORE", "gs://b/r")
    assert default_store_path() == "gs://b/r"
    with pytest.raises(ValueError, match="give a folder, or a URI"):
        Store("nosuchscheme-xyz://a/b")


def test_sweep_into_a_file_uri_store_resumes(write_submission, tmp_path, capsys):
    """Two cells into a file:// store; the second sweep finds both stored and runs nothing."""
    model = write_submission(PLAIN_TORCH, "alpha.py")
    uri = (tmp_path / "uri-store").as_uri()
    args = ["sweep", "--tasks", "digits", "--models", str(model), "--seeds", "0,1", "--limit", "8"]
    assert main([*args, "--store", uri, "--jobs", "2"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "2 of 2 runs ok" in out
    store = Store(uri)
    ids = store.result_ids()
    assert len(ids) == 2 and set(store.read().runs["status"]) == {"ok"}
    before = store.snapshot()
    assert main([*args, "--store", uri]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs ok (2 already stored, skipped)" in out
    assert store.snapshot() == before  # nothing was evaluated again


def test_cli_reads_a_uri_store(tmp_path, capsys):
    """leaderboard (with --out; one line without it), show and cite on a file:// store."""
    uri = (tmp_path / "s").as_uri()
    store = Store(uri)
    for run, metrics in _two_runs():
        store.write(run, metrics)
    rid = store.result_ids()[0]
    assert main(["leaderboard", "--store", uri, "--no-baselines", "--out", str(tmp_path / "page")]) == 0
    assert rid in (tmp_path / "page" / "LEADERBOARD.md").read_text()
    capsys.readouterr()
    assert main(["leaderboard", "--store", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "give --out FOLDER" in err
    assert main(["show", rid, "--store", uri]) == 0
    assert rid in capsys.readouterr().out
    assert main(["cite", rid, "--store", uri]) == 0
    assert rid in capsys.readouterr().out
