"""The crossbar (in-memory computing) energy cards: a hand count, and the probes' rows end to end."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snnbench.frameworks import reset_state
from snnbench.metrics import MetricRow
from snnbench.metrics.activity import ActivityProbe
from snnbench.metrics.energy import CROSSBAR_MODELS, CrossbarModel, crossbar_rows, energy_rows
from snnbench.metrics.footprint import footprint_rows
from snnbench.neurons import LIF, MultiStep


def layer_rows() -> list[MetricRow]:
    """Two layers: fc1 100 -> 10 (fan-in 100, so 2 tiles at R=64), fc2 10 -> 4 (1 tile); T=3."""
    return [
        MetricRow("layer_fan_in", 100.0, "count", layer="fc1"),
        MetricRow("layer_out_channels", 10.0, "count", layer="fc1"),
        MetricRow("layer_fan_in", 10.0, "count", layer="fc2"),
        MetricRow("layer_out_channels", 4.0, "count", layer="fc2"),
        MetricRow("dense_ops_per_sample", 3 * 10 * 100.0, "count", n=5, layer="fc1"),
        MetricRow("dense_ops_per_sample", 3 * 4 * 10.0, "count", n=5, layer="fc2"),
        MetricRow("synops_per_sample", 400.0, "count", n=5, layer="fc1"),
        MetricRow("macs_per_sample", 50.0, "count", n=5, layer="fc1"),
        MetricRow("synops_per_sample", 20.0, "count", n=5, layer="fc2"),
        MetricRow("synops_per_sample", 470.0, "count", n=5),  # totals are not per-layer rows
    ]


def test_crossbar_card_by_hand():
    card = CrossbarModel("toy", rows=64, converter_bits=4, share=8, fom_fj=10.0, cell_pj=0.01, add_pj=0.1)
    out = {(r.metric, r.condition): r for r in crossbar_rows(layer_rows(), {"toy": card})}
    # fc1: outputs 30, 2 partial sums each -> 60 conversions; fc2: outputs 12, 1 each -> 12
    conv_pj = 10.0 * 16 / 1000  # 0.16 pJ at 4 bits
    e = 0.01 * (400 + 50 + 20) + (conv_pj + 0.1) * (60 + 12)
    assert out[("energy_uj_per_sample", "toy")].value == pytest.approx(e * 1e-6, rel=1e-12)
    # reads: fc1 30/10 = 3 (1 ns + 8 columns x 4 ns), fc2 12/4 = 3 (1 + 4 columns x 4 ns)
    assert out[("crossbar_latency_ns_per_sample", "toy")].value == pytest.approx(3 * 33 + 3 * 17, rel=1e-12)
    assert out[("energy_uj_per_sample", "toy")].n == 5


def test_shipped_cards_adcless_beats_the_adc():
    cards = CROSSBAR_MODELS
    assert {c.converter_bits for c in cards.values()} == {1, 6} and all(c.rows == 64 for c in cards.values())
    assert cards["imc-adcless-r64"].conversion_pj == pytest.approx(0.1)  # 50 fJ x 2
    assert cards["imc-adc6-r64"].conversion_pj == pytest.approx(3.2)  # 50 fJ x 64
    out = {(r.metric, r.condition): r.value for r in crossbar_rows(layer_rows())}
    e_less, e_adc = (
        out[("energy_uj_per_sample", "imc-adcless-r64")],
        out[("energy_uj_per_sample", "imc-adc6-r64")],
    )
    assert e_less == pytest.approx((0.002 * 470 + 0.2 * 72) * 1e-6, rel=1e-12)
    assert e_adc == pytest.approx((0.002 * 470 + 3.3 * 72) * 1e-6, rel=1e-12)
    t_less = out[("crossbar_latency_ns_per_sample", "imc-adcless-r64")]
    t_adc = out[("crossbar_latency_ns_per_sample", "imc-adc6-r64")]
    assert (t_less, t_adc) == (pytest.approx(3 * 2 + 3 * 2), pytest.approx(3 * 49 + 3 * 25))


def test_no_shapes_no_rows_and_missing_shape_fails():
    counts = [r for r in layer_rows() if not r.metric.startswith("layer_")]
    assert crossbar_rows(counts) == []
    with pytest.raises(ValueError, match="no layer_fan_in/layer_out_channels rows for fc2"):
        crossbar_rows([r for r in layer_rows() if r.layer != "fc2" or not r.metric.startswith("layer_")])


def test_from_the_probes_end_to_end():
    torch.manual_seed(0)
    model = nn.Sequential(MultiStep(nn.Linear(70, 8)), LIF(), MultiStep(nn.Linear(8, 3)), LIF())
    probe = ActivityProbe()
    probe.attach(model, None)
    x = (torch.rand(4, 6, 70) < 0.3).float()
    with torch.no_grad():
        reset_state(model)
        probe.before_batch(6, 4)
        probe.after_batch(model(x))
    probe.detach()
    rows = probe.rows() + footprint_rows(model)
    per = probe.per_sample()
    got = {r.condition: r for r in energy_rows(rows, per_sample=per) if r.metric == "energy_uj_per_sample"}
    assert {"horowitz45nm-fp32", "horowitz45nm-fp32-mem", *CROSSBAR_MODELS} == set(got)
    # independent: 4 steps x (8 outputs x ceil(70/64)=2 + 3 outputs x 1) conversions per sample
    conversions = 4 * (8 * 2 + 3)
    synops = per["synops_per_sample"]  # spike inputs only here
    for name, card in CROSSBAR_MODELS.items():
        e = (card.cell_pj * synops + (card.conversion_pj + card.add_pj) * conversions) / 1e6
        assert got[name].value == pytest.approx(float(e.mean()), rel=1e-9)
        assert got[name].stderr == pytest.approx(float(e.std()) / math.sqrt(6), rel=1e-9)
