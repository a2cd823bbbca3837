"""Model footprint: parameters, their bytes, and the sparsity of synaptic weights.

Parameters, not buffers: snnTorch keeps membrane potentials in buffers that grow with the batch,
so a footprint that counted buffers would change after the first forward (NeuroBench's does).
Shared parameters count once. Measured at attach, before any forward.
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench.metrics import MetricRow
from snnbench.metrics.activity import SYNAPTIC_TYPES


class FootprintProbe:
    """params (every nn.Parameter: the trainable state), param_bytes, weight_sparsity."""

    def __init__(self) -> None:
        self.uncounted: list[str] = []
        self._rows: list[MetricRow] | None = None

    def attach(self, model: nn.Module, task=None) -> None:
        self._rows = footprint_rows(model)

    def before_batch(self, batch_size: int, timesteps: int) -> None:
        pass

    def after_batch(self, outputs=None) -> None:
        pass

    def detach(self) -> None:
        pass

    def rows(self) -> list[MetricRow]:
        if self._rows is None:
            raise RuntimeError("FootprintProbe.rows() before attach()")
        return list(self._rows)


def footprint_rows(model: nn.Module) -> list[MetricRow]:
    """params, param_bytes and (if the model has synaptic layers) weight_sparsity."""
    params = list(model.parameters())  # deduplicated: a shared tensor counts once
    n_params = sum(p.numel() for p in params)
    n_bytes = sum(p.numel() * p.element_size() for p in params)
    rows = [MetricRow("params", float(n_params), "count"), MetricRow("param_bytes", float(n_bytes), "bytes")]
    zeros = total = 0
    seen: set[int] = set()
    for m in model.modules():
        if isinstance(m, SYNAPTIC_TYPES):
            w = m.weight  # with torch pruning this is weight_orig * mask: the weights in effect
            if isinstance(w, nn.parameter.UninitializedParameter) or id(w) in seen:
                continue
            seen.add(id(w))
            with torch.no_grad():
                zeros += int((w == 0).sum())
            total += w.numel()
    if total:
        rows.append(MetricRow("weight_sparsity", zeros / total, "fraction"))
    return rows
