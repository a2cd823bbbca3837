"""time_decode_ib: learning to time-decode through the information bottleneck (Skatchkovsky,
Simeone & Jang, NeurIPS 2021).

A hybrid network: an SNN encoder turns the event frames into a spike raster; an ANN decoder reads
the WHOLE raster (every neuron at every step, so spike timing is available to it) and produces
the logits. Both are trained end to end with surrogate gradients on the directed-information-
bottleneck loss: decoder log-loss + beta * KL(encoder firing || Bernoulli(r)). No target spike
trains. Our encoder is deterministic LIF; its "firing probability" in the KL is the batch-mean
firing of each encoder neuron at each step, q_{t,n} (differentiable through the surrogate), and the
KL is averaged over neurons and steps (the paper's per-neuron stochastic firing probabilities are
replaced by this batch estimate: reconstruction).

Harness interface: input [T, B, 2, 32, 32] ON/OFF counts (digits-dvs). Encoder: 4x4 average
pooling -> 128 -> LIF(128) -> LIF(64) (snnbench.neurons.LIF, tau 2); decoder: flatten [B, T*64]
-> 128 ReLU -> C, returns [B, C]. The decoder's width fixes T (task.timesteps; build(task) with a
task whose timesteps differ for other T). The harness counts the decoder's first Linear on the
spike raster as SynOps.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from snnbench.neurons import LIF, MultiStep

CITATION = """@inproceedings{skatchkovsky2021learning,
  title     = {Learning to Time-Decode in Spiking Neural Networks Through the Information Bottleneck},
  author    = {Skatchkovsky, Nicolas and Simeone, Osvaldo and Jang, Hyeryung},
  booktitle = {Advances in Neural Information Processing Systems},
  volume    = {34},
  year      = {2021}
}"""

# The paper reports classification and reconstruction results but METHODS.md gives no number.
TASKS = ("digits-dvs",)  # the embedded tasks it applies to (snnbench sweep leaves out others)
REPORTED = {}

BETA = 1.0
RATE = 0.05  # r of the Bernoulli reference marginal
N_ENC = 64


class Encoder(nn.Module):
    def __init__(self, channels: int, side: int, pool: int = 4, hidden: int = 128) -> None:
        super().__init__()
        n_in = channels * (side // pool) ** 2
        self.net = nn.Sequential(
            MultiStep(nn.AvgPool2d(pool)),
            MultiStep(nn.Flatten()),
            MultiStep(nn.Linear(n_in, hidden)),
            LIF(tau=2.0),
            MultiStep(nn.Linear(hidden, N_ENC)),
            LIF(tau=2.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # [T, B, N_ENC] spikes


class TimeDecodeNet(nn.Module):
    def __init__(self, channels: int, side: int, steps: int, classes: int) -> None:
        super().__init__()
        self.encoder = Encoder(channels, side)
        self.decoder = nn.Sequential(nn.Linear(steps * N_ENC, 128), nn.ReLU(), nn.Linear(128, classes))
        self.steps = steps

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, raster: torch.Tensor) -> torch.Tensor:
        return self.decoder(raster.transpose(0, 1).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.steps:
            raise ValueError(f"this decoder reads T={self.steps} steps, got {x.shape[0]}")
        return self.decode(self.encode(x))


def build(task) -> nn.Module:
    channels, side, _ = task.input_shape
    return TimeDecodeNet(channels, side, task.timesteps, task.outputs)


def kl_bernoulli(raster: torch.Tensor, r: float = RATE, eps: float = 1e-6) -> torch.Tensor:
    """Mean over (t, n) of KL(Bern(q_tn) || Bern(r)), q_tn = batch-mean firing of neuron n at step t."""
    q = raster.mean(1).clamp(eps, 1 - eps)
    return (q * torch.log(q / r) + (1 - q) * torch.log((1 - q) / (1 - r))).mean()


def train(model, task, data, budget, beta: float = BETA, lr: float | None = None):
    opt = torch.optim.Adam(model.parameters(), lr=lr or budget.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, budget.epochs))
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total = rate = 0.0
        for x, y in data.loader(budget.batch_size):
            raster = model.encode(x)
            logits = model.decode(raster)
            kl = kl_bernoulli(raster)
            loss = F.cross_entropy(logits, y) + beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
            rate += float(raster.detach().mean()) * y.numel()
        sched.step()
        data.history.append(
            {
                "epoch": epoch + 1,
                "loss": total / seen,
                "train_accuracy": correct / seen,
                "firing": rate / seen,
            }
        )
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model


def fit_count_decoder(model, data, classes: int, epochs: int = 30, lr: float = 1e-2) -> nn.Linear:
    """The control: a linear decoder on the frozen encoder's spike counts (timing discarded)."""
    lin = nn.Linear(N_ENC, classes)
    opt = torch.optim.Adam(lin.parameters(), lr=lr)
    for _ in range(epochs):
        for x, y in data.loader(64):
            with torch.no_grad():
                counts = model.encode(x).sum(0)
            loss = F.cross_entropy(lin(counts), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return lin
