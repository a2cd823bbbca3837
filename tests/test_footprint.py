"""FootprintProbe: parameters (not buffers), their bytes, and zero synaptic weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from snnbench.metrics import Probe
from snnbench.metrics.activity import ActivityProbe
from snnbench.metrics.footprint import FootprintProbe, footprint_rows
from snnbench.neurons import PLIF


def as_dict(rows):
    return {r.metric: r for r in rows}


def test_params_bytes_and_sparsity_by_hand():
    lin = nn.Linear(4, 3)  # 12 weights + 3 biases
    conv = nn.Conv2d(2, 2, 3, bias=False).half()  # 36 weights, 2 bytes each
    with torch.no_grad():
        lin.weight.copy_(torch.arange(12.0).reshape(3, 4) % 4)  # 3 zeros
        conv.weight.fill_(1.0)
        conv.weight[0, 0] = 0  # 9 zeros
        lin.bias.zero_()  # biases are not weights
    model = nn.Sequential(lin, nn.BatchNorm1d(3), PLIF(), conv)
    rows = as_dict(footprint_rows(model))
    n_params = 12 + 3 + 3 + 3 + 1 + 36  # linear, batchnorm weight+bias, PLIF's w, conv
    assert rows["params"].value == n_params
    assert rows["param_bytes"].value == (n_params - 36) * 4 + 36 * 2
    assert rows["param_bytes"].unit == "bytes"
    assert rows["weight_sparsity"].value == pytest.approx((3 + 9) / (12 + 36), rel=1e-15)
    assert rows["weight_sparsity"].unit == "fraction"


def test_shared_weights_count_once_and_pruning_is_seen():
    lin = nn.Linear(5, 5, bias=False)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert as_dict(footprint_rows(model))["params"].value == 25
    prune.l1_unstructured(lin, "weight", amount=10)  # weight = weight_orig * mask
    rows = as_dict(footprint_rows(model))
    assert rows["weight_sparsity"].value == pytest.approx(10 / 25, rel=1e-15)
    assert rows["params"].value == 25  # weight_orig is the parameter; the mask is a buffer


def test_snntorch_membrane_buffers_are_not_parameters():
    import snntorch as snn

    model = nn.Sequential(nn.Linear(3, 4), snn.Leaky(beta=0.9, init_hidden=True))
    probe = FootprintProbe()
    probe.attach(model, None)
    before = probe.rows()
    with torch.no_grad():
        model(torch.rand(8, 3))  # grows the membrane buffer to [8, 4]
    assert model[1].mem.numel() == 32
    assert as_dict(footprint_rows(model)) == as_dict(before)
    assert as_dict(before)["params"].value == 16


def test_no_synaptic_layer_means_no_sparsity_row():
    rows = as_dict(footprint_rows(nn.Sequential(nn.BatchNorm1d(3))))
    assert "weight_sparsity" not in rows
    assert rows["params"].value == 6


def test_probes_follow_the_protocol():
    for probe in (FootprintProbe(), ActivityProbe()):
        assert isinstance(probe, Probe)
    with pytest.raises(RuntimeError, match="before attach"):
        FootprintProbe().rows()
