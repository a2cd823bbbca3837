"""Grids of runs: every (task, submission, seed) evaluated into one store, optionally trained first.

Each cell is one `snnbench` process (train, then evaluate), exactly what a user would type, so a
sweep can never produce a number a single run would not. Locally the cells run in a thread pool
that waits on those processes; with `--ray ADDRESS` each cell is a Ray task (one CPU) on an
existing cluster whose nodes see the sweep's folder and the store (a shared filesystem, or a store
on a pyarrow filesystem URI such as s3://; `pip install 'snnbench[ray]'`). The store is safe for
concurrent writers, so cells need no coordination, and a cell whose run is already stored is not
run again: rerunning a sweep that was interrupted (or whose worker died) resumes it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cell:
    task: str
    model: str
    seed: int

    def label(self) -> str:
        return f"{self.task} {self.method} seed {self.seed}"

    @property
    def method(self) -> str:
        """The name the store gives the method (snnbench.submission.resolve's rule)."""
        path = Path(self.model)
        if not self.model.endswith(".py"):
            return path.name
        return path.parent.name if path.stem == "submission" else path.stem


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    exit_code: int
    tail: str
    skipped: bool = False  # its run was already in the store (status ok): nothing ran


class RayUnavailable(RuntimeError):
    """--ray cannot be used here (Ray not installed, or no cluster at the address); one line."""


def expand_models(patterns: Iterable[str]) -> list[str]:
    """Submission paths from globs: `baselines/*` means every baselines/<id>/submission.py."""
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) or [pattern]
        for m in matches:
            path = Path(m)
            if path.is_dir() and (path / "submission.py").is_file():
                found.append(str(path / "submission.py"))
            elif path.is_dir() and not (path / "__init__.py").is_file():
                continue  # a folder that is no submission (e.g. __pycache__)
            else:
                found.append(str(path))
    return list(dict.fromkeys(found))


def declared_tasks(model: str) -> tuple[str, ...] | None:
    """`TASKS = ("digits", ...)` of a submission (read statically): the tasks its method applies
    to. None when it declares none (it is then run on every task of the sweep)."""
    from snnbench.submission import static_constant

    value = static_constant(model, "TASKS")
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return tuple(value)
    return None


def grid(tasks: Iterable[str], models: Iterable[str], seeds: Iterable[int]) -> list[Cell]:
    """Every (task, model, seed), leaving out the tasks a model declares it does not apply to."""
    models, seeds = list(models), list(seeds)
    applies = {m: declared_tasks(m) for m in models}
    return [
        Cell(t, m, s) for t in tasks for m in models if applies[m] is None or t in applies[m] for s in seeds
    ]


def checkpoint_path(cell: Cell) -> Path:
    """Where `--train` puts a cell's checkpoint (relative to the sweep's folder)."""
    model = Path(cell.model)
    return Path("checkpoints") / "sweep" / cell.task / f"{model.parent.name}-{model.stem}-seed{cell.seed}.pt"


# A cell's process runs `snnbench.cli` through child_main, which first asks the kernel to kill it
# when the worker that started it dies (a killed Ray worker or sweep leaves no orphan evaluating on).
_CHILD = "import sys; from snnbench.sweep import child_main; sys.exit(child_main())"
_PARENT_ENV = "SNNBENCH_SWEEP_PARENT"


def cell_commands(
    cell: Cell,
    *,
    train: bool,
    store: str | None,
    limit: int | None = None,
    metrics: tuple[str, ...] = (),
    python: str | None = None,
) -> list[list[str]]:
    """The `snnbench train` (with `train`) and `snnbench evaluate` command lines of one cell."""
    base = [python or sys.executable, "-c", _CHILD]
    common = ["--task", cell.task, "--model", cell.model, "--seed", str(cell.seed)]
    commands = []
    evaluate = [*base, "evaluate", *common, "--quiet"]
    if limit:
        evaluate += ["--limit", str(limit)]
    if metrics:
        evaluate += ["--metrics", ",".join(metrics)]
    if train:
        ckpt = str(checkpoint_path(cell))
        commands.append([*base, "train", *common, "--quiet", "--out", ckpt])
        evaluate += ["--checkpoint", ckpt]
    if store:
        evaluate += ["--store", store]
    commands.append(evaluate)
    return commands


def child_main(argv: list[str] | None = None) -> int:
    """A cell's process: `snnbench` with these arguments, killed by the kernel when its parent dies."""
    _die_with_parent()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from snnbench.cli import main

    return main(sys.argv[1:] if argv is None else argv)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    parent = os.environ.get(_PARENT_ENV)
    if parent and parent != str(os.getppid()):  # the parent died before prctl took effect
        os._exit(1)


def run_cell(
    commands: list[list[str]], cell: Cell, threads: int | None = None, cwd: str | None = None
) -> CellResult:
    """Run one cell's commands in order; `threads` caps torch's intra-op threads of each (so
    `--jobs` cells do not oversubscribe the cores: on a loaded 2-core machine two 2-thread
    trainings ran 14x slower than two 1-thread ones)."""
    env = dict(os.environ)
    if threads and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    env[_PARENT_ENV] = str(os.getpid())
    output = []
    for command in commands:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
        output.append(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            return CellResult(cell, proc.returncode, "".join(output)[-2000:])
    return CellResult(cell, 0, "".join(output)[-2000:])


# ---------------------------------------------------------------------------------------------
# resuming: a cell whose run is already stored (status ok) is not run again


def planned_result_id(
    cell: Cell, *, limit: int | None = None, metrics: tuple[str, ...] = (), checkpoint: str | None = None
) -> str | None:
    """The result id `snnbench evaluate` will give this cell, from the same inputs (task file,
    submission hash, resolved T, limit, metric families, checkpoint hash); None when it cannot be
    known beforehand (an unreadable submission, or a --train cell not trained yet)."""
    import hashlib

    import snnbench
    from snnbench.metrics import registry
    from snnbench.store import result_id
    from snnbench.submission import declared_timesteps, resolve
    from snnbench.tasks import get_task

    try:
        task = get_task(cell.task)
        ref = resolve(cell.model)
        steps = task.resolve_timesteps(None, declared_timesteps(ref))
        families = registry.resolve(task.metrics, metrics, task.kind)
        checkpoint_sha = None
        if checkpoint is not None:
            checkpoint_sha = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    except Exception:  # evaluate will say what is wrong; here it only means "run it"
        return None
    return result_id(
        task=task.id,
        task_version=task.version,
        submission_sha256=ref.sha256,
        checkpoint_sha256=checkpoint_sha,
        seed=cell.seed,
        timesteps=steps,
        snnbench_version=snnbench.__version__,
        limit=limit,
        metrics_version=snnbench.METRICS_VERSION,
        families=families,
    )


def stored_cells(
    cells: list[Cell], store: str, *, train: bool, limit: int | None, metrics: tuple[str, ...]
) -> dict[Cell, str]:
    """{cell: result id} of the cells whose run is in the store with status ok. A --train cell
    counts only when its checkpoint from an earlier sweep is there with its training record, so
    its id is known; a failed or timed-out run is run again."""
    from snnbench.store import Store
    from snnbench.training import read_record

    st = Store(store)
    present = set(st.result_ids())
    if not present:
        return {}
    found = {}
    for cell in cells:
        checkpoint = None
        if train:
            path = checkpoint_path(cell)
            if not (path.is_file() and read_record(path) is not None):
                continue
            checkpoint = str(path)
        rid = planned_result_id(cell, limit=limit, metrics=metrics, checkpoint=checkpoint)
        if rid in present:
            try:
                if st.read_run(rid)["status"] == "ok":
                    found[cell] = rid
            except (KeyError, RuntimeError):  # removed meanwhile, or a corrupt part: run it again
                continue
    return found


def run(
    cells: list[Cell],
    *,
    train: bool = False,
    store: str | None = None,
    jobs: int = 1,
    ray_address: str | None = None,
    limit: int | None = None,
    metrics: tuple[str, ...] = (),
    progress: bool = True,
) -> list[CellResult]:
    """Run every cell whose run is not stored yet (a rerun of the same sweep resumes it); results
    come back in grid order whatever the completion order, stored cells as `skipped`."""
    done = stored_cells(cells, store, train=train, limit=limit, metrics=metrics) if store else {}
    todo = [c for c in cells if c not in done]
    options = dict(train=train, store=store, limit=limit, metrics=tuple(metrics))
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="sweep", unit="run", file=sys.stderr)
    if ray_address:
        ran = _run_ray(todo, options, ray_address, bar)
    else:
        ran = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
            futures = [pool.submit(run_cell, cell_commands(c, **options), c, threads) for c in todo]
            for f in futures:
                ran.append(f.result())
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    by_cell = dict(zip(todo, ran))
    return [
        by_cell[c] if c in by_cell else CellResult(c, 0, f"result {done[c]} -> {store}\n", skipped=True)
        for c in cells
    ]


_RESULT_RE = re.compile(r"^result ([0-9a-f]{12}) -> ", re.M)


def result_id_of(result: CellResult) -> str | None:
    """The result id the cell's evaluate printed (its last `result <id> -> store` line)."""
    found = _RESULT_RE.findall(result.tail)
    return found[-1] if found else None


def summary_table(results: list[CellResult], store: str) -> str:
    """One line per cell with its headline figures, read back from the store: what a sweep made."""
    import pandas as pd
    from tabulate import tabulate

    from snnbench.cite import headline
    from snnbench.store import Store

    try:
        metrics = Store(store).read(skip_corrupt=True).metrics
    except Exception:  # the table is a convenience; the store is the record
        metrics = pd.DataFrame()
    rows = []
    for r in results:
        rid = result_id_of(r)
        figures = headline(metrics[metrics["result_id"] == rid]) if rid and len(metrics) else {}
        acc = figures.get("accuracy", figures.get("episode_return_mean"))
        rows.append(
            [
                r.cell.task,
                r.cell.method,
                r.cell.seed,
                "stored" if r.skipped else "ok" if r.exit_code == 0 else f"exit {r.exit_code}",
                "–" if acc is None else f"{acc:.4g}",
                "–" if "spikes_per_sample" not in figures else f"{figures['spikes_per_sample']:.4g}",
                "–"
                if "energy_uj_per_sample[horowitz45nm-fp32]" not in figures
                else f"{figures['energy_uj_per_sample[horowitz45nm-fp32]']:.4g}",
                rid or "–",
            ]
        )
    headers = ["task", "model", "seed", "status", "accuracy/return", "spikes/sample", "µJ/sample", "result"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


# ---------------------------------------------------------------------------------------------
# Ray: every cell a task of one CPU on an existing cluster


def require_ray():
    """The ray module, or RayUnavailable naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray needs Ray, which is not installed: pip install 'snnbench[ray]'") from None
    return ray


def ray_cell(cell: Cell, options: dict, cwd: str) -> CellResult:
    """One cell on a Ray worker: the same commands as a local cell, run with this node's Python in
    the sweep's folder, which must exist on every node (a shared filesystem or the same checkout)."""
    if not os.path.isdir(cwd):
        import socket

        return CellResult(
            cell,
            2,
            f"the sweep's folder {cwd} does not exist on Ray node {socket.gethostname()}: run the sweep "
            "from a folder every node sees at the same path (a shared filesystem, or the same checkout)\n",
        )
    return run_cell(cell_commands(cell, **options, python=sys.executable), cell, threads=1, cwd=cwd)


def _run_ray(cells: list[Cell], options: dict, address: str, bar=None) -> list[CellResult]:
    """Submit every cell as a Ray task (1 CPU, no retry: a cell whose worker dies is reported
    failed, and rerunning the sweep resumes it) and collect the results as they finish."""
    ray = require_ray()
    if not cells:
        return []
    connected_here = not ray.is_initialized()
    if connected_here:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError, ... depending on the failure
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RayUnavailable(
                f"cannot connect to the Ray cluster at {address}: {first}; start one with `ray start --head` "
                "and pass the address it prints (host:port)"
            ) from None
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(ray_cell)
        refs = {task.remote(c, options, os.getcwd()): i for i, c in enumerate(cells)}
        results: list[CellResult | None] = [None] * len(cells)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                i = refs[ref]
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    results[i] = CellResult(
                        cells[i],
                        1,
                        f"the Ray task of this cell failed ({type(exc).__name__}: {first}); rerun the "
                        "sweep to resume it\n",
                    )
                if bar is not None:
                    bar.update(1)
        return [r for r in results if r is not None]
    finally:
        if connected_here:
            ray.shutdown()
