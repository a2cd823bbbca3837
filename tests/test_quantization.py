"""snnbench.quantization against independent computations, and param_bytes at declared bits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from snnbench.metrics.footprint import footprint_rows
from snnbench.neurons import LIF
from snnbench.quantization import (
    QuantConv2d,
    QuantLIF,
    QuantLinear,
    fake_quant,
    freeze_,
    pow2_scale,
    quantize,
    set_bits_,
)


def by_metric(rows):
    return {r.metric: r for r in rows if r.layer is None}


def test_nearest_and_trunc_by_hand():
    x = torch.tensor([0.0, 0.26, -0.26, 0.74, -1.0, 1.0, 0.5])
    # 3 bits: qmax 3, scale max|x|/3 = 1/3; v = x * 3 = [0, .78, -.78, 2.22, -3, 3, 1.5]
    s = 1.0 / 3.0
    near = quantize(x, 3, rounding="nearest")
    assert torch.allclose(near, torch.tensor([0.0, 1, -1, 2, -3, 3, 2]) * s, atol=1e-7)  # 1.5 -> 2 (even)
    trunc = quantize(x, 3, rounding="trunc")
    assert torch.allclose(trunc, torch.tensor([0.0, 0, -1, 2, -3, 3, 1]) * s, atol=1e-7)  # floor
    # a given scale clamps: 2 bits (levels -1, 0, 1) of step 0.5
    assert quantize(torch.tensor([2.0, -0.2, 0.3]), 2, scale=0.5).tolist() == [0.5, -0.0, 0.5]


def test_against_numpy_on_random_tensors():
    rng = np.random.default_rng(3)
    for bits in (2, 4, 8):
        x = rng.normal(size=(50,)).astype(np.float64)
        qm = 2 ** (bits - 1) - 1
        scale = np.abs(x).max() / qm
        ref_near = np.clip(np.round(x / scale), -qm, qm) * scale  # numpy rounds half to even too
        ref_trunc = np.clip(np.floor(x / scale), -qm, qm) * scale
        t = torch.from_numpy(x)
        assert np.allclose(quantize(t, bits).numpy(), ref_near, atol=1e-12)
        assert np.allclose(quantize(t, bits, rounding="trunc").numpy(), ref_trunc, atol=1e-12)
        assert len(np.unique(quantize(t, bits).numpy())) <= 2 * qm + 1


def test_stochastic_rounding_is_unbiased_and_on_the_two_neighbours():
    g = torch.Generator().manual_seed(0)
    x = torch.full((20000,), 0.3)
    q = quantize(x, 4, scale=1.0, rounding="stochastic", generator=g)
    assert set(q.unique().tolist()) == {0.0, 1.0}
    assert abs(float(q.mean()) - 0.3) < 0.01  # E = 0.3; std of the mean 0.0032
    with pytest.raises(ValueError, match="choose one of"):
        quantize(x, 4, rounding="banker")
    with pytest.raises(ValueError, match="bits must be"):
        quantize(x, 1)


def test_straight_through_gradient_is_identity():
    x = torch.tensor([0.1, -0.7, 0.4], requires_grad=True)
    y = fake_quant(x, 3)
    assert torch.equal(y.detach(), quantize(x.detach(), 3))
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, 3.0]


def test_pow2_scale():
    assert pow2_scale(1.0, 8) == 2.0**-6  # 127 * 2^-7 < 1 <= 127 * 2^-6
    assert pow2_scale(127.0, 8) == 1.0


def test_quant_linear_qat_then_freeze():
    torch.manual_seed(0)
    lin = QuantLinear(6, 4, bits=4, rounding="stochastic")
    x = torch.randn(5, 6)
    lin.train()
    lin(x).sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    lin.eval()
    expected = nn.functional.linear(x, quantize(lin.weight.detach(), 4), lin.bias)  # eval: nearest
    assert torch.allclose(lin(x), expected, atol=1e-6)
    freeze_(lin)
    assert lin.weight.unique().numel() <= 15 and float(lin.weight_scale) > 0
    frozen = lin.weight.detach().clone()
    assert torch.equal(lin.quantized_weight().detach(), frozen)  # idempotent after freeze
    # the checkpoint round trip keeps bits and scale
    fresh = QuantLinear(6, 4, bits=8)
    fresh.load_state_dict(lin.state_dict())
    assert int(fresh.weight_bits) == 4 and torch.equal(fresh.quantized_weight().detach(), frozen)


def test_ptq_trunc_and_conv_matches_functional():
    torch.manual_seed(1)
    conv = QuantConv2d(2, 3, 3, padding=1, bits=0)
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias, padding=1))  # 0 bits: float
    w = conv.weight.detach().clone()
    freeze_(conv, bits=3, rounding="trunc")
    s = w.abs().max() / 3
    assert torch.allclose(conv.weight, torch.clamp(torch.floor(w / s), -3, 3) * s, atol=1e-7)


def test_param_bytes_at_declared_bits():
    torch.manual_seed(0)
    model = nn.Sequential(QuantLinear(10, 7, bits=4), nn.Linear(7, 3))
    float_bytes = (70 + 7 + 21 + 3) * 4
    set_bits_(model, 0)
    assert by_metric(footprint_rows(model))["param_bytes"].value == float_bytes
    set_bits_(model, 4)
    with pytest.raises(ValueError, match="freeze_"):  # declared 4 bits, 70 distinct floats stored
        footprint_rows(model)
    freeze_(model)
    # 70 weights at 4 bits = 35 bytes, + the float32 scale; bias and the plain layer stay fp32
    assert by_metric(footprint_rows(model))["param_bytes"].value == 35 + 4 + 7 * 4 + (21 + 3) * 4
    freeze_(model, bits=3)
    assert by_metric(footprint_rows(model))["param_bytes"].value == math.ceil(70 * 3 / 8) + 4 + 7 * 4 + 96


def test_layer_shape_rows():
    model = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.Flatten(), nn.Linear(24, 5))
    rows = [r for r in footprint_rows(model) if r.layer is not None]
    got = {(r.metric, r.layer): r.value for r in rows}
    assert got == {
        ("layer_fan_in", "0"): 2 * 9,
        ("layer_out_channels", "0"): 6,
        ("layer_fan_in", "2"): 24,
        ("layer_out_channels", "2"): 5,
    }


def hand_lif(x, step, rnd):
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) * 0.5
        h = torch.clamp(rnd(h / step), -7, 7) * step
        s = (h >= 1.0).float()
        out.append(s)
        v = h * (1 - s)
    return torch.stack(out)


def test_quant_lif_matches_a_hand_loop():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 4) * 2.2
    n = QuantLIF(potential_bits=4, tau=2.0, leak_bits=4, v_threshold=1.0)
    step = 2.0 / 8  # 2*theta / 2^(b-1)
    assert n.potential_step() == step and n._decay() == 0.5
    near = hand_lif(x, step, torch.round)
    assert torch.equal(n(x), near) and 0 < float(near.sum()) < near.numel()
    n.set_bits_(4, "trunc")
    trunc = hand_lif(x, step, torch.floor)
    assert torch.equal(n(x), trunc) and not torch.equal(trunc, near)
    plain = QuantLIF(potential_bits=0, tau=2.0)
    assert torch.equal(plain(x), LIF(tau=2.0)(x))  # 0 bits: the float LIF
