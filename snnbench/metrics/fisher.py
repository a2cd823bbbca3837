"""Fisher information per timestep (docs/PROTOCOLS.md section 3), the temporal-information metric
of Kim et al. 2023 (AAAI, "Exploring Temporal Information Dynamics in Spiking Neural Networks").

For timestep t the prediction is the softmax of the output averaged over steps 1..t (the anytime
readout of section 2), and FI_t is the trace of the empirical Fisher information of the weights
under it: the mean over samples of ||d log p_t(y | x) / d W||^2. The harness computes the
cotangents d log p_t(y)/d output from the labels it holds; the submission's process returns only
the squared weight-gradient norms (sandbox command `parameter_gradient_norms`), so labels never
reach it. A model that returns [B, C] has a single readout: its row has timestep = T.

This family is one module and one registry line: run it with `--metrics fisher_information`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from snnbench.metrics import MetricRow

SAMPLES = 128  # test samples, the first ones in split order: FI costs T backward passes per sample


def timestep_cotangents(out: Tensor, label: int) -> Tensor:
    """[T', *out.shape]: for each readout t, d log softmax(mean(out[:t]))[label] / d out.

    `out` is one sample's output, [T, 1, C] (T' = T) or [1, C] (T' = 1)."""
    leaf = out.detach().to(torch.float64).clone().requires_grad_(True)
    steps = leaf.shape[0] if leaf.dim() == 3 else 1
    cots = []
    with torch.enable_grad():
        for t in range(1, steps + 1):
            logits = leaf[:t].mean(0) if leaf.dim() == 3 else leaf
            logp = torch.log_softmax(logits, dim=-1)[0, label]
            (g,) = torch.autograd.grad(logp, leaf)
            cots.append(g)
    return torch.stack(cots).to(torch.float32)


def fisher_rows(squared_norms: Tensor, timesteps: int) -> list[MetricRow]:
    """Rows from per-sample squared gradient norms [N, T'] (T' = T, or 1 for [B, C] models)."""
    n, steps = squared_norms.shape
    rows = []
    for j in range(steps):
        values = squared_norms[:, j].double()
        t = j + 1 if steps > 1 else timesteps
        stderr = float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else None
        rows.append(
            MetricRow("fisher_information", float(values.mean()), "dimensionless", n, stderr, timestep=t)
        )
    return rows


def collect(box, task, dataset, timesteps: int, seed: int) -> list[MetricRow]:
    """The registry's entry point: FI_t on the first SAMPLES test items, one sample per forward."""
    from snnbench.encoding import encoder_for

    encoder = encoder_for(task)
    generator = torch.Generator().manual_seed(seed)
    count = min(len(dataset), SAMPLES)
    norms = []
    for i in range(count):
        x, y = dataset[i]
        x = torch.as_tensor(x).float().unsqueeze(0)
        out = box.call("forward_with_graph", encoder(x, timesteps, generator))
        norms.append(box.call("parameter_gradient_norms", timestep_cotangents(out, int(y))))
    return fisher_rows(torch.stack(norms), timesteps)
