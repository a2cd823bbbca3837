"""The default recipe of `snnbench train` on classification tasks: surrogate-gradient BPTT.

Also the contract's training types: `Budget` (what a recipe may spend) and `TrainingData` (what a
submission's train(model, task, data, budget) receives). Like the DQN recipe
(snnbench.recipes.dqn) the recipe returns the trained model and appends one dict per epoch to the
history (`data.history`): `epoch`, `loss`, `train_accuracy`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader

from snnbench.encoding import encoder_for
from snnbench.frameworks import reset_state
from snnbench.metrics.training_energy import PART_KINDS, TrackedTraining


@dataclass(frozen=True)
class Budget:
    """How much training a recipe may spend. Recipes must stop at `epochs` (and `wall_time_s` if set)."""

    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 64
    wall_time_s: float | None = None
    device: str = "cpu"
    seed: int = 0  # the run's seed, for recipes that draw their own randomness (RL recipes get no data)
    # A folder where a recipe that can resume keeps its training state (`snnbench train --resume`):
    # long RL trainings save it every so often and continue from it when it is there.
    state_dir: str | None = None


@dataclass
class TrainingData:
    """What train() receives: the training split, already encoded to [T, B, ...] by loader()."""

    task: object
    dataset: object
    timesteps: int
    seed: int = 0
    history: list[dict] = field(default_factory=list)
    _calls: int = field(default=0, repr=False)
    # set by `snnbench train` while it measures the training (snnbench.metrics.training_energy)
    _probe: object = field(default=None, repr=False, compare=False)

    def track_training(
        self, module: nn.Module, kind: str = "snn", *, name: str | None = None, timesteps: int | None = None
    ) -> TrackedTraining:
        """Declare a module train() trains besides the submitted model, so that its training is
        priced too (training_energy_j): kind "snn" (BPTT at `timesteps`, default the task's T),
        "ann" (ANN mode) or "stdp" (local learning; declare its synaptic updates with the handle's
        count_updates(n)). Measured until train() returns, or until the handle's stop() / the end of
        its `with` block. Every forward pass of `module` with gradients enabled counts (for "stdp":
        every pass), so run its evaluation passes under torch.no_grad(). A no-op outside
        `snnbench train`."""
        if kind not in PART_KINDS:
            raise ValueError(f"track_training: kind must be one of {', '.join(PART_KINDS)}, got {kind!r}")
        if self._probe is None:
            return TrackedTraining(None)
        return self._probe.track(module, kind, name=name, timesteps=timesteps)

    def loader(self, batch_size: int = 64, shuffle: bool = True):
        """Yield (x [T, B, ...], y [B]) batches; every call draws a new order (and new Poisson
        spikes), reproducibly for the seed, whether or not the recipe appends to `history`."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self._calls)
        self._calls += 1
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
    device = torch.device(budget.device)
    model.to(device)
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
            x, y = x.to(device), y.to(device)
            reset_state(model)  # state kept in modules (snnTorch, SpikingJelly): one graph per batch
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
            break  # recorded: train() compares the epochs done with budget.epochs
    if bar is not None:
        bar.close()
    model.eval()
    return model
