"""noise_single_step: noisy single-step training, weights reused unchanged at T=N (Jiang & Zhang 2022).

Training runs ONE timestep. Every spiking layer fires s = H(W x + b + eps - theta) with
eps ~ N(0, sigma^2) drawn afresh per neuron and sample, and the surrogate gradient of H (atan)
carries the error back. The noise spreads the membrane the way several steps of integration
would, so the single-step firing probability P(s = 1) = Phi((W x + b - theta) / sigma) stands in
for the multi-step firing rate. At evaluation the same weights run for T = N steps as plain
integrate-and-fire neurons with subtract (soft) reset and no noise; the model runs as many steps
as its input has (task.timesteps, or `--timesteps` at evaluation).

The model is a small MLP (64-256-256-10, biases, no normalization); the readout is the linear
output per step, averaged over time by the harness.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from snnbench.neurons import IF, MultiStep

CITATION = """@article{jiang2022noise,
  title   = {A Noise-Based Novel Strategy for Faster {SNN} Training},
  author  = {Jiang, Chunming and Zhang, Yilei},
  journal = {arXiv preprint},
  year    = {2022}
}"""

# The paper's own figures as METHODS.md gives them (training time saved against spike-based BP,
# 65-75%; inference more than 100x faster than ANN-SNN conversion).
TASKS = ("digits",)  # where the method applies (snnbench sweep leaves out the other tasks)
REPORTED = {
    "training time saved vs spike-based BP, low": 0.65,
    "training time saved vs spike-based BP, high": 0.75,
    "inference speed-up vs conversion, at least": 100.0,
}

SIGMA = 0.5  # noise std relative to the threshold (sigma / theta); METHODS.md: sweep 0.1-0.5
THETA = 1.0
HIDDEN = 256
TRAIN_STEPS = 1  # the method trains at T=1


class NoisyIF(IF):
    """IF neuron (subtract reset) that adds eps ~ N(0, sigma^2) to its input current in training.

    In eval mode, or with sigma = 0, it is exactly snnbench.neurons.IF. Training calls it with
    T = 1, where the output is s = H(x + eps - theta)."""

    def __init__(self, sigma: float = SIGMA, **kwargs) -> None:
        kwargs.setdefault("v_reset", None)  # subtract reset
        kwargs.setdefault("v_threshold", THETA)
        kwargs.setdefault("surrogate", "atan")
        super().__init__(**kwargs)
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.sigma > 0:
            x = x + self.sigma * self.v_threshold * torch.randn_like(x)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, " + super().extra_repr()


def build(task, sigma: float = SIGMA, hidden: int = HIDDEN) -> nn.Module:
    features = 1
    for s in task.input_shape:
        features *= s
    return nn.Sequential(
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(features, hidden)),
        NoisyIF(sigma),
        MultiStep(nn.Linear(hidden, hidden)),
        NoisyIF(sigma),
        MultiStep(nn.Linear(hidden, task.outputs)),
    )


def single_step_input(x: torch.Tensor, steps: int = TRAIN_STEPS) -> torch.Tensor:
    """The encoded [T, B, ...] batch cut to `steps` steps: the time-mean frame (for direct coding
    every frame is the same, so this is x[:1]; for rate coding it is the rate)."""
    return x.mean(0, keepdim=True).expand(steps, *x.shape[1:]).contiguous()


def train(model: nn.Module, task, data, budget, steps: int = TRAIN_STEPS) -> nn.Module:
    """Adam + cross-entropy at T=`steps` (1) with noisy neurons; budget.epochs and wall_time_s kept."""
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    loss_fn = nn.CrossEntropyLoss()
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            out = model(single_step_input(x, steps))
            logits = out.mean(0) if out.dim() == 3 else out
            loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        schedule.step()
        data.history.append(
            {
                "epoch": epoch + 1,
                "loss": total / seen,
                "train_accuracy": correct / seen,
                "train_timesteps": steps,
            }
        )
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model
