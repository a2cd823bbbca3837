"""The Python API (snnbench.evaluate / train / load_task / Store) and the CLI are one code path:
the same run gives the same result id and the same stored rows either way."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import snnbench
from snnbench.cli import main
from snnbench.store import Store
from snnbench.submission import resolve
from tests.conftest import PLAIN_TORCH, REPO

# Measured with a clock, so they differ between two runs of the same thing.
TIMED = {"latency_ms_per_sample", "throughput_samples_per_s"}
RUN_CLOCK = {"created_at", "wall_time_s"}


def _comparable(metrics: pd.DataFrame) -> list[tuple]:
    keep = metrics[~metrics.metric.isin(TIMED)].drop(columns=["result_id"])
    rows = [tuple(_plain(v) for v in row) for row in keep.itertuples(index=False, name=None)]
    return sorted(rows, key=repr)


def _plain(value):
    """A stored cell as a comparable Python value (arrays as lists, nulls as None)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return None if pd.isna(value) else value


def _stored(path) -> tuple[dict, pd.DataFrame]:
    store = Store(path)
    (rid,) = store.result_ids()
    return store.read_run(rid), store.read_metrics(result_ids=[rid])


def test_api_and_cli_store_the_same_run(write_submission, tmp_path, capsys):
    sub = write_submission(PLAIN_TORCH)
    cli_store, api_store = tmp_path / "cli", tmp_path / "api"
    argv = ["evaluate", "--task", "digits", "--model", str(sub), "--limit", "8", "--seed", "3", "--quiet"]
    assert main([*argv, "--store", str(cli_store)]) == 0
    assert f"result {_stored(cli_store)[0]['result_id']}" in capsys.readouterr().out

    outcome = snnbench.evaluate(task="digits", model=str(sub), seed=3, limit=8, store=str(api_store))
    assert outcome.exit_code == 0
    cli_run, cli_rows = _stored(cli_store)
    api_run, api_rows = _stored(api_store)
    assert api_run["result_id"] == cli_run["result_id"] == outcome.run["result_id"]
    for column in set(cli_run) - RUN_CLOCK:
        assert _plain(api_run[column]) == _plain(cli_run[column]), column
    assert _comparable(api_rows) == _comparable(cli_rows)
    # the Outcome holds exactly what was stored
    returned = pd.DataFrame([{"result_id": outcome.run["result_id"], **r.as_dict()} for r in outcome.rows])
    assert _comparable(returned) == _comparable(api_rows)


def test_api_takes_objects_as_well_as_names(write_submission, tmp_path):
    sub = write_submission(PLAIN_TORCH)
    by_name = snnbench.evaluate(task="digits", model=sub, limit=8, store=tmp_path / "a")
    task_file = REPO / "tasks" / "digits.toml"
    by_object = snnbench.evaluate(
        task=snnbench.load_task(task_file),
        model=resolve(sub),
        limit=8,
        store=snnbench.Store(tmp_path / "b"),
        device="cpu",
    )
    assert by_name.run["result_id"] == by_object.run["result_id"]
    assert snnbench.load_task(task_file) == snnbench.load_task("digits")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"task": "digit"}, "TaskError", "did you mean 'digits'"),
        ({"model": "none.py"}, "InputError", "no such file or folder"),
        ({"checkpoint": "nope.pt"}, "InputError", "checkpoint nope.pt: no such file"),
        ({"metrics": "vibes"}, "FamilyError", "unknown metric family 'vibes'"),
        ({"metrics": ["robustness", "vibes"]}, "FamilyError", "unknown metric family 'vibes'"),
        ({"device": "tpu"}, "InputError", "device"),
        ({"limit": 0}, "InputError", "limit must be a whole number of at least 1"),
    ],
)
def test_bad_input_raises_before_anything_is_stored(kwargs, error, message, write_submission, tmp_path):
    from snnbench import api

    args = {"task": "digits", "model": str(write_submission(PLAIN_TORCH)), "store": tmp_path / "s"}
    args.update(kwargs)
    with pytest.raises(api.INPUT_ERRORS) as info:
        snnbench.evaluate(**args)
    assert type(info.value).__name__ == error
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "s").exists()


def test_api_and_cli_train_the_same_checkpoint(write_submission, tmp_path, capsys):
    sub = write_submission(PLAIN_TORCH)
    result = snnbench.train(task="digits", model=sub, epochs=1, out=tmp_path / "api.pt", device="cpu")
    assert isinstance(result, snnbench.TrainResult)
    assert [h["epoch"] for h in result.history] == [1]
    argv = ["train", "--task", "digits", "--model", str(sub), "--epochs", "1", "--quiet", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "cli.pt")]) == 0
    assert (tmp_path / "cli.pt").read_bytes() == result.checkpoint.read_bytes()


def test_import_snnbench_is_cheap_and_names_resolve():
    code = (
        "import sys, snnbench; assert 'torch' not in sys.modules, 'torch imported'; "
        "import snnbench.evaluate; from snnbench.evaluate import headline; "
        "assert callable(snnbench.evaluate) and snnbench.evaluate.__module__ == 'snnbench.api'; "
        "assert snnbench.Store.__name__ == 'Store' and snnbench.Outcome.__name__ == 'Outcome'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
