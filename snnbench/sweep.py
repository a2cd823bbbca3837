"""Grids of runs: every (task, submission, seed) evaluated into one store, optionally trained first.

Each cell is one `snnbench` process (train, then evaluate), exactly what a user would type, so a
sweep can never produce a number a single run would not. Locally the cells run in a thread pool
that waits on those processes; with `--ray ADDRESS` each cell is a Ray task on a cluster whose
workers share the store folder (an existing engine; `pip install snnbench[ray]`). The store is safe
for concurrent writers, so cells need no coordination.
"""

from __future__ import annotations

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


def cell_commands(cell: Cell, *, train: bool, store: str | None, extra: list[str]) -> list[list[str]]:
    base = [sys.executable, "-m", "snnbench.cli"]
    common = ["--task", cell.task, "--model", cell.model, "--seed", str(cell.seed)]
    commands = []
    evaluate = [*base, "evaluate", *common, "--quiet", *extra]
    if train:
        ckpt = str(
            Path("checkpoints")
            / "sweep"
            / cell.task
            / f"{Path(cell.model).parent.name}-{Path(cell.model).stem}-seed{cell.seed}.pt"
        )
        commands.append([*base, "train", *common, "--quiet", "--out", ckpt])
        evaluate += ["--checkpoint", ckpt]
    if store:
        evaluate += ["--store", store]
    commands.append(evaluate)
    return commands


def run_cell(commands: list[list[str]], cell: Cell, threads: int | None = None) -> CellResult:
    """Run one cell's commands in order; `threads` caps torch's intra-op threads of each (so
    `--jobs` cells do not oversubscribe the cores: on a loaded 2-core machine two 2-thread
    trainings ran 14x slower than two 1-thread ones)."""
    env = dict(os.environ)
    if threads and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    output = []
    for command in commands:
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        output.append(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            return CellResult(cell, proc.returncode, "".join(output)[-2000:])
    return CellResult(cell, 0, "".join(output)[-2000:])


def run(
    cells: list[Cell],
    *,
    train: bool = False,
    store: str | None = None,
    jobs: int = 1,
    ray_address: str | None = None,
    extra: list[str] | None = None,
    progress: bool = True,
) -> list[CellResult]:
    """Run every cell; results come back in grid order whatever the completion order."""
    work = [(cell_commands(c, train=train, store=store, extra=extra or []), c) for c in cells]
    if ray_address:
        return _run_ray(work, ray_address)
    results: list[CellResult] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(work), desc="sweep", unit="run", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
        futures = [pool.submit(run_cell, cmds, c, threads) for cmds, c in work]
        for f in futures:
            results.append(f.result())
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return results


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
                "ok" if r.exit_code == 0 else f"exit {r.exit_code}",
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


def _run_ray(work, address: str) -> list[CellResult]:
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install 'snnbench[ray]'") from None
    ray.init(address=address)
    remote = ray.remote(run_cell)
    return ray.get([remote.remote(cmds, c) for cmds, c in work])
