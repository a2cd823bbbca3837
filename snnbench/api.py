"""The public Python API: what `snnbench evaluate` and `snnbench train` do, callable from Python.

    import snnbench
    outcome = snnbench.evaluate(task="digits", model="submissions/template.py", limit=64)
    outcome.run["result_id"], outcome.rows          # the run row and metric rows, as stored
    result = snnbench.train(task="digits", model="submissions/template.py", epochs=1)
    snnbench.load_task("digits"), snnbench.Store(path)

Arguments take ids and paths or the objects themselves (a Task, a SubmissionRef, a Store). Input
that keeps anything from running raises before anything is stored, with a one-line message:
InputError (a submission, checkpoint, store or device that is not usable), TaskError (unknown
task), FamilyError (unknown metric family) or DataError (the dataset is missing); INPUT_ERRORS
names them all. A submission that breaks during evaluation is not an exception: it is a stored
run whose status says so (`Outcome.exit_code`). The command line is a thin layer over this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import tomllib

from snnbench.data import DataError
from snnbench.metrics.registry import FamilyError, check
from snnbench.store import Store, default_store_path
from snnbench.submission import SubmissionRef, resolve
from snnbench.tasks import Task, TaskError, get_task, parse_task

__all__ = ["INPUT_ERRORS", "InputError", "evaluate", "load_task", "train"]


class InputError(ValueError):
    """An argument that keeps the run from starting (nothing was run or stored); str() is one line.

    `argument` names the parameter at fault (model, checkpoint, device, limit, ...) and `detail`
    says what is wrong with it, so a caller (the CLI) can word the message in its own terms."""

    def __init__(self, message: str, argument: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.argument, self.detail = argument, detail


def _bad(argument: str, detail: str, subject: str | None = None) -> InputError:
    return InputError(f"{subject or argument} {detail}", argument, detail)


# Everything evaluate() and train() raise for bad input, before anything runs or is stored.
INPUT_ERRORS = (InputError, TaskError, FamilyError, DataError)


def load_task(task: str | os.PathLike | Task) -> Task:
    """A Task from its id (see `snnbench tasks`), from a task .toml file, or the Task itself."""
    if isinstance(task, Task):
        return task
    text = os.fspath(task)
    if text.endswith(".toml"):
        path = Path(text)
        try:
            raw = tomllib.loads(path.read_text())
        except OSError as exc:
            raise TaskError(f"task file {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise TaskError(f"{path}: not valid TOML ({exc})") from None
        return parse_task(raw, str(path))
    return get_task(text)


def load_submission(model: str | os.PathLike | SubmissionRef) -> SubmissionRef:
    """A SubmissionRef from a .py file or package folder, or the ref itself."""
    if isinstance(model, SubmissionRef):
        return model
    try:
        return resolve(model)
    except ValueError as exc:
        raise _bad("model", str(exc).removeprefix("submission "), "submission") from None


def open_store(store: str | os.PathLike | Store | None) -> Store:
    """The Store to write: a Store, a folder, or None for the default (SNNBENCH_STORE, else the
    user's store ~/.local/share/snnbench/results)."""
    if isinstance(store, Store):
        return store
    try:
        return Store(default_store_path(store))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def resolve_device(name: str | None) -> str:
    """A torch device name this machine can run: `name` checked, or cuda when torch sees one, else cpu."""
    import torch

    if not name:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise _bad("device", f"{name!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise _bad("device", f"{name}: torch sees no CUDA device here; use cpu")
    if device.type not in ("cpu", "cuda"):
        raise _bad("device", f"{name}: only cpu and cuda devices are supported")
    return str(device)


def metric_families(metrics: str | Iterable[str]) -> tuple[str, ...]:
    """Extra metric families as a tuple: from an iterable of names or a comma-separated string."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    return tuple(m.strip() for m in names if m and m.strip())


def evaluate(
    task: str | os.PathLike | Task,
    model: str | os.PathLike | SubmissionRef,
    *,
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    timesteps: int | None = None,
    limit: int | None = None,
    metrics: str | Iterable[str] = (),
    store: str | os.PathLike | Store | None = None,
    device: str | None = None,
    timeout: float = 600.0,
    data_root: str | os.PathLike | None = None,
    progress: bool = False,
):
    """Evaluate `model` on `task` in an isolated child process and write the run to `store`.

    Returns the Outcome: `run` (the run row as stored, with `result_id`), `rows` (its metric rows),
    `log_path` (the traceback of a failed run) and `exit_code` (0 ok, 1 failed, 3 timeout). The
    same arguments give the same result id as `snnbench evaluate` with the same flags.
    """
    from snnbench.evaluate import evaluate as run_evaluation

    _at_least_one(timesteps=timesteps, limit=limit)
    task = load_task(task)
    ref = load_submission(model)
    extra = metric_families(metrics)
    check(extra, task.kind, source="metrics")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise _bad("checkpoint", f"{checkpoint}: no such file; train one with `snnbench train`")
    device = resolve_device(device)
    store = open_store(store)
    return run_evaluation(
        task,
        ref,
        store,
        checkpoint=None if checkpoint is None else os.fspath(checkpoint),
        seed=seed,
        timesteps=timesteps,
        limit=limit,
        timeout=timeout,
        data_root=None if data_root is None else os.fspath(data_root),
        progress=progress,
        extra_metrics=extra,
        device=device,
    )


def train(
    task: str | os.PathLike | Task,
    model: str | os.PathLike | SubmissionRef,
    *,
    seed: int = 0,
    timesteps: int | None = None,
    epochs: int | None = None,
    wall_time_s: float | None = None,
    out: str | os.PathLike | None = None,
    device: str | None = None,
    data_root: str | os.PathLike | None = None,
    progress: bool = False,
    resume: bool = False,
):
    """Train `model` on `task` (its own train() or the default recipe) in this process; write the
    checkpoint (default checkpoints/<task>/<method>-seed<S>-T<T>.pt) and its training record.
    `resume` keeps a resumable recipe's state in `<checkpoint>.state/` and continues from it.

    Returns the TrainResult (checkpoint, sha256, seconds, history, recipe, record). A submission
    that breaks the contract raises SubmissionError.
    """
    from snnbench.training import train as run_training

    _at_least_one(timesteps=timesteps, epochs=epochs)
    if wall_time_s is not None and not wall_time_s > 0:
        raise _bad("wall_time_s", f"must be a positive number of seconds, got {wall_time_s!r}")
    task = load_task(task)
    ref = load_submission(model)
    device = resolve_device(device)
    return run_training(
        task,
        ref,
        seed=seed,
        timesteps=timesteps,
        data_root=None if data_root is None else os.fspath(data_root),
        out=out,
        epochs=epochs,
        wall_time_s=wall_time_s,
        device=device,
        progress=progress,
        resume=resume,
    )


def _at_least_one(**values) -> None:
    for name, value in values.items():
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _bad(name, f"must be a whole number of at least 1, got {value!r}")


def __getattr__(name: str):
    # Outcome and TrainResult live beside the code that fills them (and import torch): on demand.
    if name == "Outcome":
        from snnbench.evaluate import Outcome

        return Outcome
    if name == "TrainResult":
        from snnbench.training import TrainResult

        return TrainResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
