"""`snnbench train`: run a submission's train() or the default surrogate-BPTT recipe, save a checkpoint.

Training runs in this process (it is the user's own recipe on the training split); evaluation is
the step that runs isolated. The checkpoint is a plain state_dict that `evaluate --checkpoint`
loads into build(task)'s model.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from snnbench.data import load_split
from snnbench.encoding import encoder_for
from snnbench.sandbox import GlobalTorchState, build_seeded
from snnbench.submission import SubmissionRef, file_sha256


@dataclass(frozen=True)
class Budget:
    """How much training a recipe may spend. Recipes must stop at `epochs` (and `wall_time_s` if set)."""

    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 64
    wall_time_s: float | None = None


@dataclass
class TrainingData:
    """What train() receives: the training split, already encoded to [T, B, ...] by loader()."""

    task: object
    dataset: object
    timesteps: int
    seed: int = 0
    history: list[dict] = field(default_factory=list)

    def loader(self, batch_size: int = 64, shuffle: bool = True):
        """Yield (x [T, B, ...], y [B]) batches; reshuffled every call, reproducibly for the seed."""
        epoch = len(self.history)
        gen = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        encoder = encoder_for(self.task)
        loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=shuffle, generator=gen)
        for x, y in loader:
            yield encoder(x.float(), self.timesteps, gen), y


def readout(out: torch.Tensor) -> torch.Tensor:
    """[T, B, C] -> [B, C] by the mean over time (PROTOCOLS.md section 2); [B, C] unchanged."""
    return out.mean(0) if out.dim() == 3 else out


def default_train(
    model: nn.Module, task, data: TrainingData, budget: Budget, progress: bool = True
) -> nn.Module:
    """Adam + cross-entropy on the time-averaged output, BPTT through the surrogate gradients."""
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    loss_fn = nn.CrossEntropyLoss()
    started = time.monotonic()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=budget.epochs, desc=f"train {task.id}", unit="epoch", file=sys.stderr)
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total_loss = 0.0
        for x, y in data.loader(budget.batch_size):
            logits = readout(model(x))
            loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total_loss += loss.item() * y.numel()
        schedule.step()
        data.history.append({"epoch": epoch + 1, "loss": total_loss / seen, "train_accuracy": correct / seen})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    if bar is not None:
        bar.close()
    model.eval()
    return model


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    sha256: str
    seconds: float
    history: list[dict]
    recipe: str


def default_checkpoint_path(task_id: str, method: str, seed: int, timesteps: int) -> Path:
    return Path("checkpoints") / task_id / f"{method}-seed{seed}-T{timesteps}.pt"


def train(
    task,
    ref: SubmissionRef,
    *,
    seed: int = 0,
    timesteps: int | None = None,
    data_root: str | None = None,
    out: str | Path | None = None,
    epochs: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train `ref` on `task`'s training split and write its state_dict atomically to `out`."""
    steps = timesteps or task.timesteps
    split = None if task.kind == "rl" else load_split(task, "train", data_root, steps)
    spec = dict(task.train)
    if epochs is not None:
        spec["epochs"] = epochs
    budget = Budget(**{k: v for k, v in spec.items() if k in Budget.__dataclass_fields__})
    state = GlobalTorchState.capture()
    module, model = build_seeded(ref, task, seed, state)
    # RL tasks have no dataset: their recipes build environments with snnbench.rl.make_env(task)
    data = None if split is None else TrainingData(task, split.dataset, steps, seed)
    started = time.monotonic()
    history: list[dict] = []
    if callable(getattr(module, "train", None)):
        recipe = f"{ref.method}.train"
        trained = module.train(model, task, data, budget)
        model = trained if isinstance(trained, nn.Module) else model
    elif task.kind == "rl":
        from snnbench.rl import train_dqn

        recipe = "snnbench default DQN (double DQN, replay, target network, Huber, surrogate BPTT)"
        model = train_dqn(model, task, budget, seed, progress)
        history = list(getattr(model, "dqn_history", []))
    else:
        recipe = "snnbench default BPTT (Adam, cross-entropy on mean output)"
        model = default_train(model, task, data, budget, progress)
    seconds = time.monotonic() - started
    state.restore()
    path = Path(out) if out else default_checkpoint_path(task.id, ref.method, seed, steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    os.close(fd)
    torch.save(model.state_dict(), tmp_name)
    os.replace(tmp_name, path)
    return TrainResult(path, file_sha256(path), seconds, data.history if data else history, recipe)
