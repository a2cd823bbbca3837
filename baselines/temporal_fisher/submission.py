"""Temporal information dynamics (Kim et al. 2023, AAAI): Fisher information per timestep.

The network is a plain surrogate-gradient BPTT LIF conv net (the template's); what the method adds
is the measurement. After every epoch, train() computes FI_t, the trace of the empirical Fisher
information of the weights under the readout accumulated to step t (the mean of the outputs at
steps 1..t, as the harness's `fisher_information` metric defines it: snnbench.metrics.fisher),
on a fixed subset of the training split, and appends to `data.history`

    fisher_concentration = sum_{t <= ceil(T/3)} FI_t / sum_t FI_t

(the share of the first third of the steps) with the normalised FI_t per step. The paper's
claim: this share rises during training (information concentrates in the early steps).

`ANTI_WEIGHT` > 0 adds the anti-concentration loss (reconstruction): alpha * sum_t w_t CE(out_t, y)
with w_t proportional to t, which rewards late steps for carrying the decision. The default
recipe is plain BPTT (ANTI_WEIGHT = 0); check.py trains both.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from snnbench.metrics.fisher import timestep_cotangents
from snnbench.neurons import LIF, MultiStep

CITATION = """@inproceedings{kim2023temporal,
  title     = {Exploring Temporal Information Dynamics in Spiking Neural Networks},
  author    = {Kim, Youngeun and Li, Yuhang and Park, Hyoungseob and Venkatesha, Yeshwanth and Hambitzer, Anna and Panda, Priyadarshini},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  volume    = {37},
  number    = {7},
  pages     = {8308--8316},
  year      = {2023}
}"""

REPORTED = {}  # the paper reports trends (concentration is general), no headline accuracy
TASKS = ("digits", "digits-dvs")

FI_SAMPLES = 64  # training samples behind the per-epoch FI (METHODS.md: 512; reduced for CPU time)
ANTI_WEIGHT = 0.0  # alpha of the anti-concentration loss; 0 = plain BPTT


def build(task) -> nn.Module:
    channels, height, width = task.input_shape
    return nn.Sequential(
        MultiStep(nn.Conv2d(channels, 16, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(16)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Conv2d(16, 32, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(32)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(32 * (height // 4) * (width // 4), task.outputs)),
    )


def fisher_per_timestep(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """[N, T]: ||d log p_t(y_i | x_i) / dW||^2 per sample i and readout t (eval mode, one sample per
    forward, one backward per t) -- the same quantity the harness's fisher_information averages.

    xs: [T, N, ...] encoded inputs, ys: [N] labels."""
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(xs.shape[1]):
        with torch.enable_grad():
            out = model(xs[:, i : i + 1])
            cots = timestep_cotangents(out.detach(), int(ys[i]))
            norms = []
            for k in range(cots.shape[0]):
                grads = torch.autograd.grad(
                    out, params, grad_outputs=cots[k], retain_graph=k < cots.shape[0] - 1, allow_unused=True
                )
                norms.append(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))
        rows.append(norms)
    model.train(was_training)
    return torch.tensor(rows, dtype=torch.float64)


def concentration(fi: torch.Tensor) -> float:
    """Share of the FI (per-step means, [T]) held by the first ceil(T/3) steps."""
    window = math.ceil(len(fi) / 3)
    total = float(fi.sum())
    return float(fi[:window].sum()) / total if total > 0 else float("nan")


def anti_concentration_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_t w_t CE(out_t, y), w_t = t / sum(1..T): later steps weigh more (reconstruction)."""
    steps = out.shape[0]
    w = torch.arange(1, steps + 1, dtype=out.dtype) / (steps * (steps + 1) / 2)
    per_step = torch.stack([nn.functional.cross_entropy(out[t], y) for t in range(steps)])
    return (w * per_step).sum()


def fisher_probe(data, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed set of n (default FI_SAMPLES) encoded training samples: the split's first n, one
    deterministic encoding."""
    from snnbench.encoding import encoder_for

    count = min(FI_SAMPLES if n is None else n, len(data.dataset))
    xs, ys = zip(*[data.dataset[i] for i in range(count)])
    x = torch.stack([torch.as_tensor(v) for v in xs]).float()
    gen = torch.Generator().manual_seed(data.seed)
    return encoder_for(data.task)(x, data.timesteps, gen), torch.as_tensor(ys)


def train(model: nn.Module, task, data, budget, anti_weight: float | None = None) -> nn.Module:
    """Adam + CE on the time-mean output (+ the anti-concentration term), logging FI per epoch."""
    alpha = ANTI_WEIGHT if anti_weight is None else anti_weight
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    probe_x, probe_y = fisher_probe(data)
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            out = model(x)
            loss = nn.functional.cross_entropy(out.mean(0), y)
            if alpha:
                loss = loss + alpha * anti_concentration_loss(out, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += y.numel()
            correct += int((out.mean(0).argmax(1) == y).sum())
            total += loss.item() * y.numel()
        schedule.step()
        fi = fisher_per_timestep(model, probe_x, probe_y).mean(0)
        entry = {
            "epoch": epoch + 1,
            "loss": total / seen,
            "train_accuracy": correct / seen,
            "fisher_concentration": concentration(fi),
        }
        share = fi / fi.sum() if float(fi.sum()) > 0 else fi
        entry.update({f"fisher_share_t{t + 1}": float(v) for t, v in enumerate(share)})
        data.history.append(entry)
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model
