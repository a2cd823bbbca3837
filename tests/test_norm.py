"""snnbench.norm against independent computations: T separate nn.BatchNorm layers, nn.LayerNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnbench.norm import MembraneLayerNorm, TimeBatchNorm


def _separate(time_bn: TimeBatchNorm, dims: int) -> list[nn.Module]:
    """T independent torch BatchNorm layers holding the same gamma (and no shift)."""
    cls = nn.BatchNorm2d if dims == 4 else nn.BatchNorm1d
    layers = []
    for t in range(time_bn.timesteps):
        bn = cls(time_bn.num_features, momentum=time_bn.momentum, eps=time_bn.eps)
        with torch.no_grad():
            bn.weight.copy_(time_bn.weight[t])
            bn.bias.zero_()
        bn.bias.requires_grad_(False)
        layers.append(bn)
    return layers


@pytest.mark.parametrize("shape", [(4, 6, 3, 5, 5), (3, 8, 7)])
def test_per_timestep_bn_equals_t_separate_torch_batchnorms(shape):
    torch.manual_seed(0)
    steps, c = shape[0], shape[2]
    tbn = TimeBatchNorm(c, steps)
    with torch.no_grad():
        tbn.weight.copy_(torch.rand(steps, c) + 0.5)
    ref = _separate(tbn, len(shape) - 1)
    # each step drawn from a different distribution, so shared statistics would be wrong
    scale = torch.arange(1, steps + 1, dtype=torch.float32).view(steps, *[1] * (len(shape) - 1))
    for _ in range(3):  # training: batch statistics and running-stat updates
        x = (torch.randn(shape) * scale + scale).requires_grad_(True)
        y = tbn(x)
        x2 = x.detach().clone().requires_grad_(True)
        y2 = torch.stack([ref[t](x2[t]) for t in range(steps)])
        torch.testing.assert_close(y, y2, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(y)
        (y * g).sum().backward()
        (y2 * g).sum().backward()
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)
        for t in range(steps):
            torch.testing.assert_close(tbn.weight.grad[t], ref[t].weight.grad, rtol=1e-4, atol=1e-5)
        tbn.zero_grad()
        for r in ref:
            r.zero_grad()
    for t in range(steps):
        torch.testing.assert_close(tbn.running_mean[t], ref[t].running_mean)
        torch.testing.assert_close(tbn.running_var[t], ref[t].running_var)
    tbn.eval()
    for r in ref:
        r.eval()
    x = torch.randn(shape) * scale
    torch.testing.assert_close(
        tbn(x), torch.stack([ref[t](x[t]) for t in range(steps)]), rtol=1e-5, atol=1e-5
    )
    # fewer steps (early exit) use the first steps' statistics
    torch.testing.assert_close(
        tbn(x[:2]), torch.stack([ref[t](x[t]) for t in range(2)]), rtol=1e-5, atol=1e-5
    )


def test_statistics_differ_per_step_and_no_shift_by_default():
    torch.manual_seed(1)
    tbn = TimeBatchNorm(2, 3)
    x = torch.randn(3, 16, 2, 4, 4) + torch.tensor([0.0, 5.0, -5.0]).view(3, 1, 1, 1, 1)
    tbn(x)
    assert tbn.bias is None and [n for n, _ in tbn.named_parameters()] == ["weight"]
    means = tbn.running_mean.mean(1)
    assert means[1] > 0.4 and means[2] < -0.4 and abs(means[0]) < 0.1
    with pytest.raises(ValueError, match="holds 3 timesteps"):
        tbn(torch.randn(4, 2, 2, 4, 4))


def test_shared_bn_equals_one_batchnorm_over_folded_time():
    torch.manual_seed(2)
    tbn = TimeBatchNorm(3, 5, shared=True, shift=True)
    with torch.no_grad():
        tbn.weight.uniform_(0.5, 1.5)
        tbn.bias.uniform_(-1, 1)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(tbn.weight[0])
        bn.bias.copy_(tbn.bias[0])
    x = torch.randn(5, 4, 3, 6, 6) * 3 + 1
    torch.testing.assert_close(tbn(x), bn(x.reshape(20, 3, 6, 6)).reshape(x.shape), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tbn.running_var[0], bn.running_var)
    assert tbn(torch.randn(9, 4, 3, 6, 6)).shape == (9, 4, 3, 6, 6)  # any T when shared


def test_gamma_per_step_is_the_layer_mean_scale():
    tbn = TimeBatchNorm(4, 3)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor([[1.0, 2, 3, 4], [0, 0, 0, 0.4], [-1, 1, 0, 2]]))
    torch.testing.assert_close(tbn.gamma_per_step(), torch.tensor([2.5, 0.1, 0.5]))


def test_membrane_layer_norm_normalises_each_sample_and_step():
    torch.manual_seed(3)
    ln = MembraneLayerNorm((6,), elementwise_affine=False)
    x = torch.randn(4, 5, 6) * 7 + 3
    y = ln(x)
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    torch.testing.assert_close(y, (x - mu) / torch.sqrt(var + 1e-5))
