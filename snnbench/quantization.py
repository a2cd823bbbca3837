"""Fake quantization of weights, thresholds and membrane potentials (METHODS.md, shared blocks).

Why fake-quant: values stay float tensors on a uniform grid of `bits` levels, so training, the
harness and every probe run unchanged, while what the network computes is what b-bit hardware
would compute. Two uses:
- post-training (PTQ): `freeze_(model, bits, rounding)` snaps the weights once;
- in training (QAT): Quant layers quantize their weight in every forward with a straight-through
  estimator (STE: the backward pass treats the rounding as the identity), then `freeze_` at the
  end so the checkpoint holds grid values.

Grid: signed symmetric, q in [-(2^(b-1)-1), 2^(b-1)-1], value = q * scale, scale = max|x| / qmax
(per tensor) unless a scale is given (a fixed-point grid: scale = 2^-fraction_bits).

Rounding of v = x / scale: "nearest" (torch.round: half to even), "trunc" (floor: dropping the
low bits of a two's-complement number), "stochastic" (floor(v + u), u ~ U[0, 1): unbiased,
E = v).

How a submission declares bit widths (read by the footprint probe for `param_bytes`): a module
holding parameter `<name>` may hold a buffer (or int attribute) `<name>_bits`; its bytes are then
ceil(numel * bits / 8), plus the bytes of a `<name>_scale` buffer if there is one. The probe
checks the claim: the stored tensor must have at most 2^bits distinct values (so freeze_ before
the checkpoint is written). Quant layers declare `weight_bits` and `weight_scale`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnbench.neurons import LIF

ROUNDINGS = ("nearest", "trunc", "stochastic")


def _check(bits: int, rounding: str) -> None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")
    if int(bits) != bits or bits < 2:
        raise ValueError(f"bits must be an integer >= 2 for a signed grid, got {bits}")


def qmax(bits: int) -> int:
    """Largest level of the signed symmetric b-bit grid."""
    return 2 ** (int(bits) - 1) - 1


def round_(v: torch.Tensor, rounding: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Round to integers by the named scheme (see the module docstring)."""
    if rounding == "nearest":
        return torch.round(v)
    if rounding == "trunc":
        return torch.floor(v)
    if rounding == "stochastic":
        u = torch.rand(v.shape, generator=generator, dtype=v.dtype, device=v.device)
        return torch.floor(v + u)
    raise ValueError(f"unknown rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")


def max_scale(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-tensor scale max|x| / qmax (1 for an all-zero tensor, so zeros stay zeros)."""
    m = x.detach().abs().max()
    return torch.where(m > 0, m / qmax(bits), torch.ones_like(m))


def quantize(
    x: torch.Tensor,
    bits: int,
    scale: torch.Tensor | float | None = None,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x on the signed b-bit grid: clamp(round(x / scale), -qmax, qmax) * scale. No gradient rule."""
    _check(bits, rounding)
    s = max_scale(x, bits) if scale is None else torch.as_tensor(scale, dtype=x.dtype, device=x.device)
    q = qmax(bits)
    return torch.clamp(round_(x / s, rounding, generator), -q, q) * s


def fake_quant(
    x: torch.Tensor,
    bits: int,
    scale: torch.Tensor | float | None = None,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """quantize() forward, identity backward (straight-through estimator)."""
    q = quantize(x.detach(), bits, scale, rounding, generator)
    return x + (q - x).detach()


def pow2_scale(max_abs: float, bits: int) -> float:
    """Smallest power-of-two step whose b-bit signed grid reaches max_abs (a fixed-point format)."""
    if max_abs <= 0:
        raise ValueError(f"pow2_scale needs max_abs > 0, got {max_abs}")
    return 2.0 ** math.ceil(math.log2(max_abs / qmax(bits)))


# ---------------------------------------------------------------- layers


class _QuantWeight:
    """Mixin for a synaptic layer whose weight is fake-quantized (bits 0 = full precision)."""

    weight: nn.Parameter

    def _init_quant(self, bits: int, rounding: str) -> None:
        if bits:
            _check(bits, rounding)
        self.rounding = rounding
        self.register_buffer("weight_bits", torch.tensor(int(bits)))
        self.register_buffer("weight_scale", torch.tensor(0.0))  # 0: from max|w| (QAT); > 0: frozen

    def quantized_weight(self) -> torch.Tensor:
        bits = int(self.weight_bits)
        if bits == 0:
            return self.weight
        frozen = float(self.weight_scale) > 0
        scale = self.weight_scale if frozen else None
        # after freeze_ the stored weights are on the grid: nearest snaps them back exactly
        rounding = self.rounding if self.training and not frozen else "nearest"
        return fake_quant(self.weight, bits, scale, rounding)

    @torch.no_grad()
    def freeze_(self, bits: int | None = None, rounding: str | None = None) -> None:
        """Write the quantized weight into the parameter and fix the scale (PTQ, or end of QAT)."""
        if bits is not None:
            if bits:
                _check(bits, rounding or self.rounding)
            self.weight_bits.fill_(int(bits))
            self.weight_scale.fill_(0.0)
        if rounding is not None:
            self.rounding = rounding
        b = int(self.weight_bits)
        if b == 0:
            return
        scale = max_scale(self.weight, b) if float(self.weight_scale) <= 0 else self.weight_scale.clone()
        self.weight.copy_(quantize(self.weight, b, scale, self.rounding))
        self.weight_scale.copy_(scale)


class QuantLinear(_QuantWeight, nn.Linear):
    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, bits: int = 8, rounding: str = "nearest"
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_quant(bits, rounding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.quantized_weight(), self.bias)


class QuantConv2d(_QuantWeight, nn.Conv2d):
    def __init__(self, *args, bits: int = 8, rounding: str = "nearest", **kwargs) -> None:
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._init_quant(bits, rounding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.quantized_weight(), self.bias)


def set_bits_(model: nn.Module, bits: int, rounding: str | None = None) -> None:
    """Every Quant layer of the model to b bits (0 = full precision), scales back to dynamic."""
    for m in model.modules():
        if isinstance(m, _QuantWeight):
            if bits:
                _check(bits, rounding or m.rounding)
            m.weight_bits.fill_(int(bits))
            m.weight_scale.fill_(0.0)
            if rounding is not None:
                m.rounding = rounding
        if isinstance(m, QuantLIF):
            m.set_bits_(bits, rounding)


def freeze_(model: nn.Module, bits: int | None = None, rounding: str | None = None) -> nn.Module:
    """Post-training quantization of every Quant layer (or the end of QAT: bits None keeps each
    layer's own). Returns the model."""
    for m in model.modules():
        if isinstance(m, _QuantWeight):
            m.freeze_(bits, rounding)
    return model


def quant_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters as the footprint probe counts them (declared bits)."""
    from snnbench.metrics.footprint import footprint_rows

    return int(next(r.value for r in footprint_rows(model) if r.metric == "param_bytes"))


# ---------------------------------------------------------------- neuron


class QuantLIF(LIF):
    """LIF whose membrane potential, threshold and leak live on fixed-point grids.

    Potential: b-bit signed grid with step 2*theta / 2^(b-1), so it spans about +-2 theta and the
    threshold is exactly 2^(b-2) steps. Leak 1/tau: `leak_bits` fraction bits. Every charged
    potential is fake-quantized (STE) with the neuron's rounding; potential_bits 0 = float.
    """

    fused = False

    def __init__(
        self, potential_bits: int = 8, rounding: str = "nearest", leak_bits: int = 8, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.register_buffer("potential_bits", torch.tensor(0))
        self.leak_bits = int(leak_bits)
        self.rounding = rounding
        if potential_bits:
            self.set_bits_(potential_bits, rounding)

    def set_bits_(self, bits: int, rounding: str | None = None) -> None:
        """b-bit potentials (0 = float)."""
        if bits:
            _check(bits, rounding or self.rounding)
        self.potential_bits.fill_(int(bits))
        if rounding is not None:
            self.rounding = rounding

    def potential_step(self) -> float:
        return 2.0 * self.v_threshold / 2 ** (int(self.potential_bits) - 1)

    def _decay(self) -> float:
        if int(self.potential_bits) == 0:
            return 1.0 / self.tau
        return round((1.0 / self.tau) * 2**self.leak_bits) / 2**self.leak_bits

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = LIF.charge(self, v, x)
        bits = int(self.potential_bits)
        if bits == 0:
            return h
        return fake_quant(h, bits, self.potential_step(), self.rounding)

    def extra_repr(self) -> str:
        return f"potential_bits={int(self.potential_bits)}, rounding={self.rounding}, " + super().extra_repr()
