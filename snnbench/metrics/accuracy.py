"""Scorers that need labels: top-1, top-5, the anytime curve and the decision timestep.

Readout (PROTOCOLS.md section 2): the prediction is the argmax of the output averaged over time,
or the [B, C] output as given. Timesteps are counted from 1: `timestep=t` means "after the first
t steps", i.e. the average of outputs 1..t, so timestep=T is the final prediction.
"""

from __future__ import annotations

import torch

from snnbench.metrics import MetricRow, mean_and_stderr


def stack_outputs(batches: list[torch.Tensor]) -> torch.Tensor:
    """Join per-batch outputs into [N, T, C] (time-resolved) or [N, C]."""
    if all(b.dim() == 3 for b in batches):
        return torch.cat([b.transpose(0, 1) for b in batches])
    return torch.cat([b.mean(0) if b.dim() == 3 else b for b in batches])


def _row(metric: str, hits: torch.Tensor, **kw) -> MetricRow:
    mean, se = mean_and_stderr(hits.double())
    return MetricRow(metric, mean, "fraction", n=hits.numel(), stderr=se, **kw)


def accuracy_rows(outputs: torch.Tensor, labels: torch.Tensor) -> list[MetricRow]:
    """accuracy, accuracy_top5 (C >= 10), per-timestep accuracy and decision_timestep."""
    labels = labels.long()
    final = outputs.mean(1) if outputs.dim() == 3 else outputs
    rows = [_row("accuracy", final.argmax(1) == labels)]
    if final.shape[1] >= 10:
        top5 = final.topk(5, dim=1).indices
        rows.append(_row("accuracy_top5", (top5 == labels[:, None]).any(1)))
    if outputs.dim() == 3:
        steps = outputs.shape[1]
        running = outputs.cumsum(1) / torch.arange(1, steps + 1, dtype=outputs.dtype)[None, :, None]
        preds = running.argmax(2)  # [N, T]
        for t in range(steps):
            rows.append(_row("accuracy", preds[:, t] == labels, timestep=t + 1))
        rows.append(decision_timestep_row(preds))
    return rows


def decision_timestep_row(preds: torch.Tensor) -> MetricRow:
    """Mean over samples of the earliest t (1-based) after which the running prediction never changes."""
    steps = preds.shape[1]
    differs = preds != preds[:, -1:]  # [N, T]: step t disagrees with the final prediction
    idx = torch.arange(1, steps + 1).expand_as(preds)
    last_diff = torch.where(differs, idx, torch.zeros_like(idx)).max(1).values  # 0 when never different
    decision = (last_diff + 1).double()
    mean, se = mean_and_stderr(decision)
    return MetricRow("decision_timestep", mean, "steps", n=preds.shape[0], stderr=se)
