"""Model footprint: parameters, their bytes, and the sparsity of synaptic weights.

Parameters, not buffers: snnTorch keeps membrane potentials in buffers that grow with the batch,
so a footprint that counted buffers would change after the first forward (NeuroBench's does).
Shared parameters count once. Measured at attach, before any forward.
"""

from __future__ import annotations

import math

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
    """params, param_bytes and (if the model has synaptic layers) weight_sparsity, plus the
    per-layer shape rows layer_fan_in and layer_out_channels (for the crossbar energy cards)."""
    params = list(model.parameters())  # deduplicated: a shared tensor counts once
    n_params = sum(p.numel() for p in params)
    n_bytes = declared_param_bytes(model)
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
    return rows + layer_shape_rows(model)


def _declared_bits(module: nn.Module, name: str) -> int | None:
    """`<name>_bits` of the module owning parameter `name` (buffer or int), or None."""
    bits = getattr(module, f"{name}_bits", None)
    if bits is None:
        return None
    bits = int(bits.item()) if isinstance(bits, torch.Tensor) else int(bits)
    return bits if bits > 0 else None


def declared_param_bytes(model: nn.Module) -> int:
    """Bytes of the parameters, at the bit width a module declares for one (`<name>_bits`, see
    snnbench.quantization) plus its `<name>_scale` buffer, else at the tensor's element size.
    A declaration the stored tensor contradicts (more than 2^bits distinct values) raises."""
    total = 0
    seen: set[int] = set()
    for mod_name, m in model.named_modules():
        for name, p in m.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            bits = _declared_bits(m, name)
            if bits is None or bits >= 8 * p.element_size():
                total += p.numel() * p.element_size()
                continue
            with torch.no_grad():
                distinct = int(torch.unique(p.detach()).numel())
            if distinct > 2**bits:
                raise ValueError(
                    f"footprint: {mod_name or type(model).__name__}.{name} declares {name}_bits={bits} but holds "
                    f"{distinct} distinct values; snap it to the grid before saving "
                    "(snnbench.quantization.freeze_(model))"
                )
            total += math.ceil(p.numel() * bits / 8)
            scale = getattr(m, f"{name}_scale", None)
            if isinstance(scale, torch.Tensor):
                total += scale.numel() * scale.element_size()
    return total


def layer_shape_rows(model: nn.Module) -> list[MetricRow]:
    """Per synaptic layer (named as the activity probe names it): layer_fan_in (C_in/groups x
    kernel, or in_features) and layer_out_channels (out_channels or out_features)."""
    rows = []
    root = type(model).__name__
    for name, m in model.named_modules():
        if not isinstance(m, SYNAPTIC_TYPES):
            continue
        if isinstance(m, nn.Linear):
            fan_in, out = m.in_features, m.out_features
        else:
            fan_in, out = m.in_channels // m.groups * math.prod(m.kernel_size), m.out_channels
        rows.append(MetricRow("layer_fan_in", float(fan_in), "count", layer=name or root))
        rows.append(MetricRow("layer_out_channels", float(out), "count", layer=name or root))
    return rows
