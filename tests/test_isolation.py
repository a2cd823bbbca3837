"""PROTOCOLS.md section 7: every way a submission can break ends as a stored run, never a crash.

Each test writes a real submission file and runs it through the real CLI (parent + child process)
on the embedded digits task, limited to a few samples so the suite stays fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from snnbench.cli import main
from tests.conftest import PLAIN_TORCH

LIMIT = ["--limit", "32"]


def run_cli(path: Path, *extra: str) -> int:
    return main(["evaluate", "--task", "digits", "--model", str(path), "--quiet", *LIMIT, *extra])


def only_run(store: Path) -> pd.Series:
    runs = pd.read_parquet(store / "runs")
    assert len(runs) == 1, runs
    return runs.iloc[0]


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store"


def test_correct_submission_is_ok(write_submission, store, capsys):
    assert run_cli(write_submission(PLAIN_TORCH)) == 0
    run = only_run(store)
    assert run.status == "ok" and pd.isna(run.error)
    assert not run.reportable  # --limit runs are never reportable
    metrics = pd.read_parquet(store / "metrics")
    acc = metrics[(metrics.metric == "accuracy") & metrics.timestep.isna()]
    assert len(acc) == 1 and acc.n.iloc[0] == 32
    assert "result " in capsys.readouterr().out


CASES = {
    "missing build": ("import torch\n", "defines no build(task)"),
    "build raises": (
        "def build(task):\n    raise RuntimeError('boom')\n",
        "build(task) raised RuntimeError: boom",
    ),
    "build returns non-module": ("def build(task):\n    return 3\n", "must return a torch.nn.Module"),
    "import error": ("import not_a_module_xyz\n", "importing the submission raised ModuleNotFoundError"),
    "wrong shape": (
        PLAIN_TORCH.replace("task.outputs", "task.outputs + 1"),
        "expected one floating torch.Tensor",
    ),
    "tuple output": (
        PLAIN_TORCH.replace(
            "return self.fc(x.reshape(t * b, -1)).reshape(t, b, -1)",
            "y = self.fc(x.reshape(t * b, -1)).reshape(t, b, -1)\n        return y, y",
        ),
        "return one of them",
    ),
    "numpy output": (
        PLAIN_TORCH.replace(".reshape(t, b, -1)", ".reshape(t, b, -1).detach().numpy()"),
        "numpy.ndarray",
    ),
    "integer output": (
        PLAIN_TORCH.replace(".reshape(t, b, -1)\n", ".reshape(t, b, -1).long()\n"),
        "torch.int64",
    ),
    "nan output": (PLAIN_TORCH.replace(".reshape(t, b, -1)\n", ".reshape(t, b, -1) * float('nan')\n"), "NaN"),
    "inf output": (
        PLAIN_TORCH.replace(".reshape(t, b, -1)\n", ".reshape(t, b, -1) + float('inf')\n"),
        "infinite",
    ),
    "forward raises": (
        PLAIN_TORCH.replace("t, b = x.shape[:2]", "raise ValueError('bad forward')"),
        "forward raised ValueError: bad forward",
    ),
    "sys.exit in build": ("import sys\ndef build(task):\n    sys.exit(4)\n", "sys.exit(4)"),
    "hard exit in forward": (
        PLAIN_TORCH.replace("t, b = x.shape[:2]", "import os; os._exit(7)"),
        "exited with status 7",
    ),
    "crash in forward": (
        PLAIN_TORCH.replace("t, b = x.shape[:2]", "import os; os.abort()"),
        "killed by signal SIGABRT",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_submission_is_a_failed_run(case, write_submission, store, capsys):
    body, expected = CASES[case]
    code = run_cli(write_submission(body))
    run = only_run(store)
    assert code == 1, (case, run.error)
    assert run.status == "failed"
    assert expected in run.error, run.error
    assert "\n" not in run.error
    assert not (store / "metrics").exists() or pd.read_parquet(store / "metrics").empty
    err = capsys.readouterr().err
    assert expected in err


def test_traceback_goes_to_the_log(write_submission, store):
    run_cli(write_submission(CASES["forward raises"][0]))
    run = only_run(store)
    log = store / "logs" / f"{run.result_id}.txt"
    assert "Traceback" in log.read_text() and "bad forward" in log.read_text()


HANG = PLAIN_TORCH.replace("t, b = x.shape[:2]", "import time; time.sleep(600)")
HANG_IGNORING_SIGTERM = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + HANG


@pytest.mark.parametrize("body", [HANG, HANG_IGNORING_SIGTERM], ids=["hang", "hang-ignoring-sigterm"])
def test_hang_is_a_timeout(body, write_submission, store):
    started = time.monotonic()
    code = run_cli(write_submission(body), "--timeout", "8")
    assert code == 3
    assert time.monotonic() - started < 60
    run = only_run(store)
    assert run.status == "timeout" and "--timeout 8s" in run.error


def test_no_child_left_behind_after_timeout(write_submission, tmp_path):
    marker = tmp_path / "pid"
    body = f"import os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n" + HANG_IGNORING_SIGTERM
    run_cli(write_submission(body), "--timeout", "8")
    pid = int(marker.read_text())
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_model_sees_no_labels_paths_or_store(write_submission, store, tmp_path):
    """The submission itself checks what it can see, and breaks the contract if it sees too much."""
    spy = (
        PLAIN_TORCH
        + f"""
import os, dataclasses
def _check(task):
    assert not any(k.startswith("SNNBENCH_") for k in os.environ), "snnbench variables leaked"
    assert os.getcwd() != {str(Path.cwd())!r}, "child runs in the caller's folder"
    assert "snnbench-submission-" in os.getcwd()
    text = repr(dataclasses.asdict(task))
    assert {str(tmp_path)!r} not in text, "a path reached the task"
_build = build
def build(task):
    _check(task)
    net = _build(task)
    inner = net.forward
    def forward(*args, **kwargs):
        assert len(args) == 1 and not kwargs, "forward got more than the input"
        assert args[0].dtype.is_floating_point and args[0].dim() == 5
        return inner(*args)
    net.forward = forward
    return net
"""
    )
    assert run_cli(write_submission(spy)) == 0, only_run(store).error


def test_store_writes_are_detected_and_fail_the_run(write_submission, store):
    assert run_cli(write_submission(PLAIN_TORCH, "good.py")) == 0
    before = {p: p.read_bytes() for p in store.rglob("*.parquet")}
    victim = next(iter((store / "runs").glob("*.parquet")))
    hostile = (
        PLAIN_TORCH
        + f"""
import os
for where in (os.environ.get("SNNBENCH_STORE"), "leaderboard/results"):
    if where and os.path.isdir(where):
        raise SystemExit("found the store through " + where)
def build(task, _b=build):
    with open({str(victim)!r}, "ab") as fh:
        fh.write(b"tampered")
    return _b(task)
"""
    )
    code = run_cli(write_submission(hostile, "hostile.py"))
    assert code == 1
    hostile_runs = [p for p in (store / "runs").glob("*.parquet") if p != victim]
    assert len(hostile_runs) == 1
    row = pd.read_parquet(hostile_runs[0]).iloc[0]
    assert row.status == "failed" and "must not touch the store" in row.error and victim.name in row.error
    # every other file of the store is byte-identical
    for path, data in before.items():
        if path != victim:
            assert path.read_bytes() == data


def test_global_torch_state_is_restored(write_submission, store):
    """A submission that changes default dtype, threads and grad mode at import gets clean numbers."""
    clean = write_submission(PLAIN_TORCH, "clean.py")
    dirty = write_submission(
        "import torch\ntorch.set_grad_enabled(False)\ntorch.use_deterministic_algorithms(True)\n"
        + PLAIN_TORCH
        + "\n_b = build\ndef build(task):\n    net = _b(task)\n    torch.set_default_dtype(torch.float64)\n    torch.set_num_threads(1)\n    return net\n",
        "dirty.py",
    )
    assert run_cli(clean) == 0
    assert run_cli(dirty) == 0
    metrics = pd.read_parquet(store / "metrics")
    runs = pd.read_parquet(store / "runs").set_index("result_id")
    acc = metrics[(metrics.metric == "accuracy") & metrics.timestep.isna()]
    by_method = {runs.loc[r.result_id, "method"]: r.value for r in acc.itertuples()}
    assert by_method["clean"] == by_method["dirty"]


def test_same_run_twice_same_id_and_numbers(write_submission, store):
    sub = write_submission(PLAIN_TORCH)
    assert run_cli(sub, "--seed", "3") == 0
    first = pd.read_parquet(store / "metrics")
    assert run_cli(sub, "--seed", "3") == 0
    second = pd.read_parquet(store / "metrics")
    assert len(pd.read_parquet(store / "runs")) == 1  # replaced, not duplicated
    timing = {"latency_ms_per_sample", "throughput_samples_per_s"}
    a = first[~first.metric.isin(timing)].reset_index(drop=True)
    b = second[~second.metric.isin(timing)].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_failed_run_keeps_the_id_a_retry_replaces(write_submission, store, tmp_path):
    """A failed run is stored under the id its retry gets, so the retry replaces it (a flaky submission)."""
    flag = tmp_path / "fail"
    flag.write_text("1")
    body = (
        PLAIN_TORCH
        + f"\nimport os\n_b = build\ndef build(task):\n    if os.path.exists({str(flag)!r}):\n        raise RuntimeError('flaky')\n    return _b(task)\n"
    )
    sub = write_submission(body)
    assert run_cli(sub) == 1
    failed = only_run(store)
    flag.unlink()
    assert run_cli(sub) == 0
    ok = only_run(store)
    assert ok.result_id == failed.result_id and ok.status == "ok"


def test_eight_concurrent_evaluations_all_land(write_submission, store):
    subs = [write_submission(PLAIN_TORCH + f"\nSEED_TAG = {i}\n", f"s{i}.py") for i in range(8)]
    env = dict(os.environ, SNNBENCH_STORE=str(store))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snnbench.cli",
                "evaluate",
                "--task",
                "digits",
                "--model",
                str(s),
                "--quiet",
                "--limit",
                "16",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for s in subs
    ]
    codes = [p.wait(timeout=240) for p in procs]
    assert codes == [0] * 8, [p.stderr.read().decode()[-500:] for p in procs]
    runs = pd.read_parquet(store / "runs")
    assert len(runs) == 8 and set(runs.status) == {"ok"}
    assert not [p for p in store.rglob(".tmp-*")]


def test_sigkill_mid_run_leaves_no_partial_files(write_submission, store):
    slow = PLAIN_TORCH.replace("t, b = x.shape[:2]", "import time; time.sleep(0.5); t, b = x.shape[:2]")
    sub = write_submission(slow)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snnbench.cli",
            "evaluate",
            "--task",
            "digits",
            "--model",
            str(sub),
            "--quiet",
        ],
        env=dict(os.environ, SNNBENCH_STORE=str(store)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    committed = [p for p in store.rglob("*.parquet") if not p.name.startswith(".")]
    for path in committed:  # whatever exists must be whole
        pd.read_parquet(path)
    assert not (store / "runs").exists() or not list((store / "runs").glob("*.parquet"))


def test_corrupt_part_file_is_named_in_a_warning_and_the_run_still_lands(write_submission, store, capsys):
    (store / "runs").mkdir(parents=True)
    bad = store / "runs" / "0123456789ab.parquet"
    bad.write_bytes(b"not parquet at all")
    assert run_cli(write_submission(PLAIN_TORCH)) == 0
    err = capsys.readouterr().err
    assert f"warning: {bad} is not readable Parquet" in err
    assert bad.read_bytes() == b"not parquet at all"
    assert len([p for p in (store / "runs").glob("*.parquet") if p != bad]) == 1
