"""snnbench.conversion against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snnbench.conversion import (
    ConvertedSNN,
    TrainableClip,
    activations,
    calibrate,
    convert,
    fold_bn,
    fold_bn_into,
)
from snnbench.neurons import IF


def _randomise_bn(bn: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        n = bn.num_features
        bn.running_mean.copy_(torch.randn(n, generator=gen))
        bn.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
        bn.weight.copy_(torch.randn(n, generator=gen))
        bn.bias.copy_(torch.randn(n, generator=gen))


def test_folded_conv_equals_conv_then_bn_in_eval_mode():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5)
    _randomise_bn(bn, gen)
    bn.eval()
    x = torch.randn(4, 3, 6, 6, generator=gen)
    folded = fold_bn_into(conv, bn)
    torch.testing.assert_close(folded(x), bn(conv(x)), atol=1e-5, rtol=1e-5)
    assert folded.bias is not None and conv.bias is None  # the original is untouched


def test_folded_linear_with_bias_and_whole_sequential():
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))
    _randomise_bn(net[1], gen)
    net.eval()
    x = torch.randn(10, 6, generator=gen)
    folded = fold_bn(net)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in folded)
    torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)


def test_bn_without_a_preceding_layer_is_refused():
    with pytest.raises(ValueError, match="does not follow"):
        fold_bn(nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2)))


def test_percentile_threshold_equals_numpy_percentile():
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 4), nn.ReLU(), nn.Linear(4, 2))
    batches = [torch.randn(13, 5, generator=gen) for _ in range(3)]
    with torch.no_grad():
        h1 = torch.cat([torch.relu(net[0](b)) for b in batches])
        h2 = torch.relu(net[2](h1))
    got = calibrate(net, batches, mode="percentile", percentile=97.5)
    want = [np.percentile(h1.numpy().ravel(), 97.5), np.percentile(h2.numpy().ravel(), 97.5)]
    assert got == pytest.approx(want, rel=1e-6)
    assert calibrate(net, batches, mode="max") == pytest.approx([float(h1.max()), float(h2.max())])
    # (x, y) tuples work too, and labels are ignored
    assert calibrate(net, [(b, torch.zeros(13)) for b in batches], mode="max") == pytest.approx(
        [float(h1.max()), float(h2.max())]
    )


def test_clip_mode_reads_the_learned_clip_and_rejects_plain_relu():
    net = nn.Sequential(nn.Linear(3, 4), TrainableClip(2.5), nn.Linear(4, 2))
    assert calibrate(net, mode="clip") == [2.5]
    with pytest.raises(ValueError, match="plain ReLU"):
        calibrate(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), mode="clip")


def _tiny_ann(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 8),
        nn.ReLU(),
        nn.Linear(8, 3),
    )
    _randomise_bn(net[1], torch.Generator().manual_seed(seed))
    return net.eval()


def test_converted_rate_output_approaches_the_ann_as_t_grows():
    ann = _tiny_ann(3)
    gen = torch.Generator().manual_seed(3)
    calib = [torch.rand(32, 1, 8, 8, generator=gen) for _ in range(4)]  # synthetic calibration data
    x = torch.rand(16, 1, 8, 8, generator=gen)
    snn = convert(ann, calib, mode="max")
    assert isinstance(snn, ConvertedSNN)
    assert sum(isinstance(m, IF) and m.v_reset is None for m in snn.modules()) == 2
    with torch.no_grad():
        want = ann(x)
        errors = []
        for t in (4, 16, 64, 256):
            out = snn(x.unsqueeze(0).expand(t, *x.shape))
            assert out.shape == (t, 16, 3)
            errors.append(float((out.mean(0) - want).abs().max()))
    scale = float(want.abs().max())
    assert errors[-1] < 0.05 * scale, errors
    assert errors[-1] < errors[0] / 4, errors
    # the state_dict is the whole model: a fresh copy loaded from it gives the same output
    twin = convert(_tiny_ann(4), calib, mode="max")
    twin.load_state_dict(snn.state_dict())
    xt = x.unsqueeze(0).expand(8, *x.shape)
    torch.testing.assert_close(twin(xt), snn(xt))


def test_internal_steps_cycle_the_input_frames():
    ann = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    snn = convert(ann, thresholds=[1.0], steps=12)
    x = torch.rand(1, 5, 2)
    with torch.no_grad():
        out = snn(x.expand(4, 5, 2))
        ref = snn.net(x.expand(12, 5, 2))
    assert out.shape == (12, 5, 2)
    torch.testing.assert_close(out, ref)


def test_if_rate_equals_floor_of_t_times_current():
    # the fact conversion rests on, checked on the neuron itself: constant current a in [0, 1]
    # (dyadic currents, so the float sums are exact)
    a = torch.arange(17) / 16
    t = 40
    s = IF(v_threshold=1.0, v_reset=None)(a.unsqueeze(0).expand(t, 17).contiguous())
    torch.testing.assert_close(s.sum(0), torch.floor(t * a))


def test_activations_needs_data_and_maxpool_is_refused():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="no batches"):
        activations(net, [])
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(ValueError, match="MaxPool2d"):
        convert(pooled, thresholds=[1.0])


def test_calibration_from_a_time_first_training_loader_uses_the_mean_frame():
    from torch.utils.data import Subset

    from snnbench.data import load_split
    from snnbench.tasks import get_task
    from snnbench.training import TrainingData

    task = get_task("digits")
    torch.manual_seed(5)
    ann = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 64, 10))
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(40)), 4, 0)
    frames = torch.stack([torch.as_tensor(data.dataset[i][0]) for i in range(40)]).float()
    with torch.no_grad():
        want = float(torch.relu(ann[0](frames)).max())  # direct coding: every frame is the image
    got = calibrate(ann, data.loader(16), mode="max", time_first=True)
    assert got == pytest.approx([want], rel=1e-6)
    snn = convert(ann, data.loader(16), mode="max", time_first=True)
    torch.testing.assert_close(snn.net[0].module.weight, ann[0].weight / want)
    with pytest.raises(RuntimeError):  # without time_first the [T, B, C, H, W] batch is refused
        calibrate(ann, data.loader(16), mode="max")
