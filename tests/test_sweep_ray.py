"""`snnbench sweep --ray`: a 2 tasks x 2 models x 2 seeds grid on a local Ray instance bound to the
loopback address only, one Ray worker killed in the middle of a cell, and the sweep resumed.

The instance is started by the test (2 CPUs, a small object store, no dashboard) and shut down at
the end; the sweep is a separate driver process that connects to it, as on a real cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from snnbench.cli import main
from snnbench.store import Store
from tests.conftest import PLAIN_TORCH

REPO = Path(__file__).resolve().parent.parent

# The first cell of this model to start writes its sandbox process id to MARKER and then waits
# (until the test kills its Ray worker, which takes the cell's processes with it); later cells,
# and the same cell when the sweep resumes, run at once.
SLOW = (
    PLAIN_TORCH
    + """
import os, time

_build = build

def build(task):
    try:
        fd = os.open(MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return _build(task)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    parent = os.getppid()
    for _ in range(1200):  # at most 120 s; gone at once when the evaluate process dies
        time.sleep(0.1)
        if os.getppid() != parent:
            os._exit(0)
    return _build(task)
"""
)


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _pids_with(text: str) -> list[int]:
    return [pid for pid in _all_pids() if text in _cmdline(pid)]


def _listening(pids: list[int]) -> set[str]:
    """Local addresses (ip as /proc/net shows it, hex) of the TCP sockets these processes listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.add(cols[1].rsplit(":", 1)[0])
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}  # 127.0.0.1 in tcp and tcp6 (v4-mapped)


@pytest.fixture
def local_ray(monkeypatch):
    """A Ray instance on 127.0.0.1 with 2 CPUs; yields (address, its temp dir); shut down after."""
    # Ray would otherwise replace 127.0.0.1 by this machine's outward address and listen there
    # (the variable for the processes it starts and the sweep's driver, the constant for this one)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    import ray._private.ray_constants as ray_constants

    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    info = ray.init(
        num_cpus=2,
        object_store_memory=80 * 1024 * 1024,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        yield info.address_info["gcs_address"], temp
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 20
        while _pids_with(temp) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _pids_with(temp)
        for pid in left:  # ours, by id: whatever the shutdown left behind
            os.kill(pid, signal.SIGKILL)
        assert not left, f"Ray processes left after shutdown: {[_cmdline(p)[:80] for p in left]}"


def _worker_of(pid: int) -> int:
    """The Ray worker process above `pid` (its command line starts with 'ray::')."""
    while pid > 1:
        if _cmdline(pid).startswith("ray::"):
            return pid
        pid = _ppid(pid)
    raise AssertionError("no Ray worker above the cell's process")


def test_ray_sweep_survives_a_killed_worker_and_resumes(local_ray, write_submission, tmp_path):
    address, temp = local_ray
    assert address.startswith("127.0.0.1:")
    node = _pids_with(temp)  # GCS, raylet, monitors; then the workers under them and this driver
    node += [p for p in _all_pids() if _ppid(p) in node] + [os.getpid()]
    listening = _listening(node)
    assert listening and listening <= LOOPBACK, f"Ray must listen on 127.0.0.1 only, not {listening}"

    marker = tmp_path / "first-slow-cell.pid"
    fast = write_submission(PLAIN_TORCH, "fast.py")
    slow = write_submission(f"MARKER = {str(marker)!r}\n" + SLOW, "slow.py")
    store = tmp_path / "shared-store"
    command = [
        sys.executable,
        "-m",
        "snnbench.cli",
        "sweep",
        "--tasks",
        "digits,digits-dvs",
        "--models",
        f"{fast},{slow}",
        "--seeds",
        "0,1",
        "--limit",
        "4",
        "--ray",
        address,
        "--store",
        str(store),
    ]
    sweep = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600  # generous: CI machines can be very loaded
        while not (marker.is_file() and marker.read_text()):
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "the slow cell never started"
            time.sleep(0.1)
        sandbox = int(marker.read_text())
        worker = _worker_of(sandbox)
        cell_procs = []  # the cell's evaluate process and its sandbox: all must go with the worker
        pid = sandbox
        while pid != worker:
            cell_procs.append(pid)
            pid = _ppid(pid)
        os.kill(worker, signal.SIGKILL)
        out, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 1, err
    assert "slow seed" in err and "rerun the sweep to resume it" in err, err
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in cell_procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in cell_procs), "a killed worker's cell processes lived on"
    first = Store(store)
    assert len(first.result_ids()) == 7 and "7 of 8 runs ok" in out
    before = {name: sig for name, sig in first.snapshot().items() if name.startswith("runs/")}

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "8 of 8 runs ok (7 already stored, skipped)" in resumed.stdout

    view = Store(store).read()
    runs = view.runs
    assert len(runs) == 8 and set(runs["status"]) == {"ok"}
    cells = sorted(zip(runs["task"], runs["method"], runs["seed"]))
    assert cells == sorted(
        (t, m, s) for t in ("digits", "digits-dvs") for m in ("fast", "slow") for s in (0, 1)
    )
    after = Store(store).snapshot()
    assert {k: v for k, v in after.items() if k in before} == before  # the 7 stored runs were not redone
    assert not [name for name in after if Path(name).name.startswith(".")]  # no temporary, no half file
    assert Store(store).corrupt_files() == [] and len(view.metrics["result_id"].unique()) == 8


def test_ray_missing_is_one_line(monkeypatch, write_submission, capsys):
    """Without Ray installed, --ray says which extra to install (exit 2, one line)."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    model = write_submission(PLAIN_TORCH, "m.py")
    assert main(["sweep", "--tasks", "digits", "--models", str(model), "--ray", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'snnbench[ray]'" in err


def test_unreachable_cluster_is_one_line(write_submission, capsys):
    model = write_submission(PLAIN_TORCH, "m.py")
    code = main(["sweep", "--tasks", "digits", "--models", str(model), "--ray", "ray://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "cannot connect to the Ray cluster at ray://127.0.0.1:9" in err.splitlines()[-1]


def test_resume_skips_only_ok_runs(write_submission, tmp_path, capsys):
    """A stored failed run is not 'done': the rerun of the sweep runs that cell again (and only it)."""
    good = write_submission(PLAIN_TORCH, "good.py")
    bad = write_submission("def build(task):\n    raise RuntimeError('nope')\n", "bad.py")
    argv = ["sweep", "--tasks", "digits", "--models", f"{good},{bad}", "--limit", "4"]
    assert main(argv) == 1
    capsys.readouterr()
    store = Store(tmp_path / "store")
    good_part = next(n for n, sig in store.snapshot().items() if n.startswith("runs/"))
    before = store.snapshot()
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "1 of 2 runs ok (1 already stored, skipped)" in out
    after = store.snapshot()
    changed = sorted(n for n in after if n.startswith("runs/") and after[n] != before.get(n))
    assert len(store.result_ids()) == 2 and len(changed) == 1  # the failed cell's run was written again
    bad_id = store.read().runs.set_index("method").loc["bad", "result_id"]
    assert changed == [f"runs/{bad_id}.parquet"] and good_part not in changed


def test_a_node_without_the_sweep_folder_says_so(tmp_path):
    from snnbench.sweep import Cell, ray_cell

    result = ray_cell(Cell("digits", "m.py", 0), dict(train=False, store=None), str(tmp_path / "absent"))
    assert result.exit_code == 2 and "does not exist on Ray node" in result.tail
    assert "shared filesystem" in result.tail
