"""`snnbench train`: run a submission's train() or a default recipe, save a checkpoint and its record.

The recipes live in snnbench.recipes (bptt for classification, dqn for RL tasks); this module is
the command's logic around them: build, train, write the checkpoint and the training record.

Training runs in this process (it is the user's own recipe on the training split); evaluation is
the step that runs isolated. The checkpoint is a plain state_dict that `evaluate --checkpoint`
loads into build(task)'s model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from snnbench.data import load_split
from snnbench.metrics.training_energy import RECORD_KEY as TRAINING_RECORD_KEY
from snnbench.metrics.training_energy import TrainingProbe
from snnbench.recipes.bptt import Budget, TrainingData, default_train, readout
from snnbench.submission import (
    GlobalTorchState,
    SubmissionRef,
    build_seeded,
    declared_timesteps,
)

# The recipe's types and the BPTT recipe live in snnbench.recipes.bptt; importable from here too.
__all__ = [
    "Budget",
    "TrainResult",
    "TrainingData",
    "checkpoint_bytes",
    "default_train",
    "read_record",
    "readout",
    "record_path",
    "train",
]


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    sha256: str
    seconds: float
    history: list[dict]
    recipe: str
    record: dict = field(default_factory=dict)

    @property
    def budget_complete(self) -> bool:
        return bool(self.record.get("budget_complete", True))


def default_checkpoint_path(task_id: str, method: str, seed: int, timesteps: int) -> Path:
    return Path("checkpoints") / task_id / f"{method}-seed{seed}-T{timesteps}.pt"


def record_path(checkpoint: str | Path) -> Path:
    """The training record written beside a checkpoint: `<checkpoint>.json`."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".json")


def state_path(checkpoint: str | Path) -> Path:
    """Where a resumable recipe keeps its training state: `<checkpoint>.state/`."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".state")


def checkpoint_bytes(state_dict: dict) -> bytes:
    """The serialised state_dict, byte-identical for identical weights.

    torch.save to a path names the zip archive's records after the file it writes to (here a
    random temporary name), so the same weights gave a different file, hash and result id on every
    training; saved to a buffer the archive is always called "archive".
    """
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buffer)
    return buffer.getvalue()


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_record(checkpoint: str | Path, checkpoint_sha256: str | None = None) -> dict | None:
    """The training record of a checkpoint, if one was written for exactly these bytes."""
    path = record_path(checkpoint)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if checkpoint_sha256 is not None and record.get("checkpoint_sha256") != checkpoint_sha256:
        return None  # the checkpoint was replaced after this record was written
    return record


def _epochs_done(history: list[dict]) -> int | None:
    epochs = [h["epoch"] for h in history if isinstance(h, dict) and isinstance(h.get("epoch"), int)]
    return max(epochs) if epochs else None


def train(
    task,
    ref: SubmissionRef,
    *,
    seed: int = 0,
    timesteps: int | None = None,
    data_root: str | None = None,
    out: str | Path | None = None,
    epochs: int | None = None,
    wall_time_s: float | None = None,
    device: str = "cpu",
    progress: bool = True,
    measure_training: bool = True,
    resume: bool = False,
) -> TrainResult:
    """Train `ref` on `task`'s training split; write its state_dict and a training record beside it.

    The checkpoint bytes depend only on the weights, so the same seed, code and machine give the
    same checkpoint hash and the same result id. The record (`<checkpoint>.json`) says which recipe
    ran under which budget, how long it took, and whether a wall-time cap cut it short; evaluation
    copies that into the run row. `measure_training` (default on) also records the sparsities and
    shapes the training-energy model prices (`training_activity`; snnbench.metrics.training_energy).

    `resume`: recipes that can resume (the DQN recipe) keep their state in `<checkpoint>.state/`,
    saved every so often and when the wall time stops them, and continue from it when it is there;
    the record's wall time then adds up over all the runs. A resumed training stores no
    `training_activity` (its probe saw only the last segment), so it gets no training energy.
    """
    steps = task.resolve_timesteps(timesteps, declared_timesteps(ref))
    split = None if task.kind == "rl" else load_split(task, "train", data_root, steps)
    spec = dict(task.train)
    if epochs is not None:
        spec["epochs"] = epochs
    if wall_time_s is not None:
        spec["wall_time_s"] = wall_time_s
    spec["device"] = device
    spec["seed"] = seed
    path = Path(out) if out else default_checkpoint_path(task.id, ref.method, seed, steps)
    # a training continued from a saved state: the probe would see only this last segment
    resumed = resume and (state_path(path) / "state.pt").is_file()
    if resume:
        spec["state_dir"] = str(state_path(path))
    budget = Budget(**{k: v for k, v in spec.items() if k in Budget.__dataclass_fields__})
    state = GlobalTorchState.capture()
    task = dataclasses.replace(task, timesteps=steps)  # build(task) sees the T it will be run at
    module, model = build_seeded(ref, task, seed, state)
    # RL tasks have no dataset: their recipes build environments with snnbench.rl.make_env(task)
    data = None if split is None else TrainingData(task, split.dataset, steps, seed)
    # sparsities and shapes for the training-energy model, whatever train() runs (metrics.training_energy)
    probe = TrainingProbe(steps) if measure_training else None
    if probe is not None:
        probe.attach(model)
        if data is not None:  # modules train() trains besides the model: data.track_training
            data._probe = probe
    started = time.monotonic()
    history: list[dict] = []
    if callable(getattr(module, "train", None)):
        recipe = f"{ref.method}.train"
        trained = module.train(model, task, data, budget)
        model = trained if isinstance(trained, nn.Module) else model
    elif task.kind == "rl":
        from snnbench.recipes.dqn import train_dqn

        recipe = "snnbench default DQN (double DQN, replay, target network, Huber, surrogate BPTT)"
        model = train_dqn(model, task, budget, seed, progress, history=history)
    else:
        recipe = "snnbench default BPTT (Adam, cross-entropy on mean output)"
        model = default_train(model, task, data, budget, progress)
    seconds = time.monotonic() - started
    if probe is not None:
        probe.detach()
        if data is not None:
            data._probe = None
    state.restore()
    if data is not None:
        history = data.history
    elif not history:  # an RL submission's own train(): the shared DQN loop leaves its history here
        history = list(getattr(model, "dqn_history", []))
    payload = checkpoint_bytes(model.state_dict())
    _write_atomic(path, payload)
    sha = hashlib.sha256(payload).hexdigest()  # the bytes just written, not read back
    done = _epochs_done(history)
    cut_by_clock = bool(budget.wall_time_s) and seconds >= float(budget.wall_time_s)
    # a resumed training's history carries the wall time of all its runs
    seconds = max([seconds] + [float(h["wall_time_s"]) for h in history if "wall_time_s" in h])
    complete = not cut_by_clock and (done is None or done >= budget.epochs)
    record = {
        "task": task.id,
        "task_version": task.version,
        "method": ref.method,
        "submission_sha256": ref.sha256,
        "checkpoint_sha256": sha,
        "seed": seed,
        "timesteps": steps,
        "recipe": recipe,
        "budget": asdict(budget),
        "epochs_completed": done,
        "budget_complete": complete,
        "stopped_by": "wall_time_s" if cut_by_clock else (None if complete else "recipe"),
        "train_wall_time_s": round(seconds, 3),
        "history": _jsonable(history),
    }
    if probe is not None and resumed:  # never price a fraction of the training as all of it
        record["training_activity_missing"] = (
            "resumed from a saved state: the probe saw only the last segment of the training, so "
            "no training energy is stored for this checkpoint"
        )
        print(f"note: {record['training_activity_missing']}", file=sys.stderr)
    elif probe is not None:  # what the training-energy model prices (training_energy_j at evaluation)
        record[TRAINING_RECORD_KEY] = probe.record()
    _write_atomic(record_path(path), json.dumps(record, indent=1, sort_keys=True).encode())
    return TrainResult(path, sha, seconds, history, recipe, record)


def _jsonable(history: list[dict]) -> list[dict]:
    """History entries as JSON can hold them (numbers and strings; tensors become floats)."""
    out = []
    for entry in history:
        if not isinstance(entry, dict):
            continue
        clean = {}
        for k, v in entry.items():
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                v = v.item()
            if isinstance(v, (int, float, str, bool)) or v is None:
                clean[str(k)] = v
        out.append(clean)
    return out
