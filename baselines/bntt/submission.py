"""bntt: Batch Normalization Through Time (Kim & Panda 2021, Frontiers in Neuroscience).

Mechanism
- Every BN layer keeps its own running mean/var and scale gamma_t per timestep, no shift; the
  conv/linear layers are bias-free (snnbench.norm.TimeBatchNorm).
- LIF neurons, leak lambda = 0.95 (h = lambda * v + x), threshold 1, hard reset to 0, triangle
  surrogate; average pooling as in the paper's VGGs.
- Poisson (Bernoulli) input on static data, drawn inside the model at every step from the analog
  frame the harness passes (task encoding "direct"); event frames (digits-dvs) are fed as they are.
- Readout: a non-spiking, non-leaky output integrator, U_t = sum_{k<=t} W s_k; the prediction is
  U_T / T, the mean membrane. The model returns the per-step increments W s_t as [T, B, C], so the
  harness's time mean is exactly U_T / T.
- Early exit (reconstruction: threshold 0.1): after training, `exit_step` (a buffer, saved in the
  checkpoint) is the first step t (0-based) at which the layer-mean gamma_t of the output-side BN
  (the BN before the output layer) falls below `exit_threshold`; T if none does (at least 1).
  Inference then runs only steps 0..exit_step-1 and returns zeros at the later steps: the mean
  over T is U_exit / T, which has the same argmax as the mean membrane at the exit, and the
  skipped steps cost no spikes or synaptic operations.
- Training: surrogate BPTT, cross-entropy on the mean membrane. Optimiser: Adam with the task's
  lr and a cosine schedule (the paper used SGD with momentum and step decay; Adam fits the small
  budgets here).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from snnbench.neurons import LIF, MultiStep
from snnbench.norm import TimeBatchNorm

CITATION = """@article{kim2021bntt,
  author  = {Kim, Youngeun and Panda, Priyadarshini},
  title   = {Revisiting Batch Normalization for Training Low-Latency Deep Spiking Neural Networks
             From Scratch},
  journal = {Frontiers in Neuroscience},
  volume  = {15},
  pages   = {773954},
  year    = {2021},
  doi     = {10.3389/fnins.2021.773954}
}"""

# METHODS.md (unverified): deep VGGs in 25-30 steps.
TASKS = ("digits", "digits-dvs")  # the embedded tasks it applies to (snnbench sweep leaves out others)
REPORTED = {
    "cifar10 accuracy (unverified)": 0.905,
    "cifar100 accuracy (unverified)": 0.666,
    "tinyimagenet accuracy (unverified)": 0.578,
    "cifar10dvs accuracy (unverified)": 0.63,
}

LEAK = 0.95  # lambda: h = LEAK * v + x  (snnbench LIF, decay_input=False, tau = 1 / (1 - LEAK))
EXIT_THRESHOLD = 0.1  # (reconstruction)
SURROGATE = "triangle"


class PoissonInput(nn.Module):
    """Bernoulli spikes with p = clamp(|x|, 0, 1) times sign(x) at every step (the paper's
    PoissonGen). Skipped (identity) when `active` is False, i.e. for event frames."""

    def __init__(self, active: bool) -> None:
        super().__init__()
        self.active = active

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        return (torch.rand_like(x) < x.abs().clamp(max=1.0)).to(x.dtype) * torch.sign(x)


def _norm(kind: str, features: int, timesteps: int) -> nn.Module:
    if kind == "bntt":
        return TimeBatchNorm(features, timesteps)
    if kind == "shared":  # control: one BN for all steps, same no-shift form
        return TimeBatchNorm(features, timesteps, shared=True)
    if kind == "none":  # control: no normalisation at all
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def _lif() -> LIF:
    return LIF(tau=1.0 / (1.0 - LEAK), decay_input=False, v_threshold=1.0, v_reset=0.0, surrogate=SURROGATE)


class BNTTNet(nn.Module):
    """conv16-BN-LIF-avgpool, conv32-BN-LIF-avgpool, fc128-BN-LIF, fc(classes) -> integrator."""

    def __init__(self, task, norm: str = "bntt", timesteps: int | None = None, hidden: int = 128) -> None:
        super().__init__()
        steps = int(timesteps or task.timesteps)
        channels, height, width = task.input_shape
        self.encode = PoissonInput(active=task.encoding.get("kind") != "frames")
        self.conv1 = MultiStep(nn.Conv2d(channels, 16, 3, padding=1, bias=False))
        self.bn1 = _norm(norm, 16, steps)
        self.sn1 = _lif()
        self.pool1 = MultiStep(nn.AvgPool2d(2))
        self.conv2 = MultiStep(nn.Conv2d(16, 32, 3, padding=1, bias=False))
        self.bn2 = _norm(norm, 32, steps)
        self.sn2 = _lif()
        self.pool2 = MultiStep(nn.AvgPool2d(2))
        self.flat = MultiStep(nn.Flatten())
        self.fc1 = MultiStep(nn.Linear(32 * (height // 4) * (width // 4), hidden, bias=False))
        self.bn3 = _norm(norm, hidden, steps)  # the output-side BN: its gamma_t drives the exit
        self.sn3 = _lif()
        self.fc2 = MultiStep(nn.Linear(hidden, task.outputs, bias=False))
        self.timesteps = steps
        self.register_buffer("exit_step", torch.tensor(steps, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[0]
        run = min(steps, int(self.exit_step))
        h = self.encode(x[:run])
        h = self.pool1(self.sn1(self.bn1(self.conv1(h))))
        h = self.pool2(self.sn2(self.bn2(self.conv2(h))))
        h = self.sn3(self.bn3(self.fc1(self.flat(h))))
        out = self.fc2(h)  # increments of the non-leaky output membrane
        if run < steps:  # early exit: the skipped steps add nothing to the membrane
            out = torch.cat([out, out.new_zeros(steps - run, *out.shape[1:])])
        return out

    def output_gamma(self) -> torch.Tensor | None:
        """Layer-mean gamma_t of the output-side BN, [T] (None without per-step BN)."""
        return (
            self.bn3.gamma_per_step() if isinstance(self.bn3, TimeBatchNorm) and not self.bn3.shared else None
        )

    def set_exit(self, threshold: float = EXIT_THRESHOLD) -> int:
        """exit_step = first t with mean gamma_t < threshold (T if none, at least 1); returns it."""
        gamma = self.output_gamma()
        step = self.timesteps
        if gamma is not None:
            below = (gamma < threshold).nonzero()
            if len(below):
                step = max(1, int(below[0]))
        self.exit_step.fill_(step)
        return step


def build(task, norm: str = "bntt", timesteps: int | None = None) -> nn.Module:
    return BNTTNet(task, norm=norm, timesteps=timesteps)


def train(model: nn.Module, task, data, budget, exit_threshold: float | None = EXIT_THRESHOLD) -> nn.Module:
    """Surrogate BPTT with cross-entropy on the mean membrane; then fix the early-exit step."""
    model.exit_step.fill_(model.timesteps)  # train on every step
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    loss_fn = nn.CrossEntropyLoss()
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            logits = model(x).mean(0)
            loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        schedule.step()
        gamma = model.output_gamma()
        data.history.append(
            {
                "epoch": epoch + 1,
                "loss": total / seen,
                "train_accuracy": correct / seen,
                "output_gamma": None if gamma is None else [round(float(g), 4) for g in gamma],
            }
        )
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    if exit_threshold is not None:
        model.set_exit(exit_threshold)
    model.eval()
    return model
