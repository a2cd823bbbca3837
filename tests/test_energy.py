"""energy_rows: the cost cards of PROTOCOLS.md section 3 applied to the activity totals."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from snnbench.frameworks import reset_state
from snnbench.metrics import MetricRow
from snnbench.metrics.activity import ActivityProbe
from snnbench.metrics.energy import ENERGY_MODELS, EnergyModel, energy_rows
from snnbench.neurons import LIF, MultiStep


def totals(synops: float, macs: float, updates: float, n: int = 10) -> list[MetricRow]:
    return [
        MetricRow("synops_per_sample", synops, "count", n=n),
        MetricRow("macs_per_sample", macs, "count", n=n),
        MetricRow("neuron_updates_per_sample", updates, "count", n=n),
        # per-layer and per-timestep rows are not totals and must be ignored
        MetricRow("synops_per_sample", 1e9, "count", n=n, layer="fc"),
        MetricRow("spikes_per_sample", 7.0, "count", n=n, timestep=0),
    ]


def test_cards_are_the_protocol_table():
    fp32, mem = ENERGY_MODELS["horowitz45nm-fp32"], ENERGY_MODELS["horowitz45nm-fp32-mem"]
    assert (fp32.synop_pj, fp32.mac_pj, fp32.neuron_update_pj) == (0.9, 4.6, 0.0)
    assert mem.synop_pj == pytest.approx(5.9, abs=1e-12)
    assert mem.mac_pj == pytest.approx(14.6, abs=1e-12)
    assert mem.neuron_update_pj == pytest.approx(15.5, abs=1e-12)
    assert all(name == card.name for name, card in ENERGY_MODELS.items())
    with pytest.raises(dataclasses.FrozenInstanceError):
        fp32.mac_pj = 1.0


def test_energy_by_hand():
    rows = energy_rows(totals(synops=1000, macs=10, updates=100))
    by_card = {r.condition: r for r in rows}
    assert set(by_card) == {"horowitz45nm-fp32", "horowitz45nm-fp32-mem"}
    assert by_card["horowitz45nm-fp32"].value == pytest.approx((0.9 * 1000 + 4.6 * 10) * 1e-6, rel=1e-12)
    assert by_card["horowitz45nm-fp32-mem"].value == pytest.approx(
        (5.9 * 1000 + 14.6 * 10 + 15.5 * 100) * 1e-6, rel=1e-12
    )
    for r in rows:
        assert (r.metric, r.unit, r.n, r.stderr, r.layer, r.timestep) == (
            "energy_uj_per_sample",
            "microjoule",
            10,
            None,
            None,
            None,
        )


def test_a_user_card_is_one_more_entry():
    cards = {**ENERGY_MODELS, "toy": EnergyModel("toy", synop_pj=1.0, mac_pj=2.0, neuron_update_pj=3.0)}
    rows = energy_rows(totals(synops=4, macs=5, updates=6), models=cards)
    assert len(rows) == 3
    assert next(r for r in rows if r.condition == "toy").value == pytest.approx(
        (4 + 10 + 18) * 1e-6, rel=1e-12
    )
    with pytest.raises(ValueError, match="differs from the card's name"):
        energy_rows(totals(1, 1, 1), models={"a": EnergyModel("b", 1, 1, 1)})


def test_missing_or_doubled_totals_fail():
    with pytest.raises(ValueError, match="no total row for macs_per_sample"):
        energy_rows([r for r in totals(1, 2, 3) if r.metric != "macs_per_sample"])
    with pytest.raises(ValueError, match="two total rows"):
        energy_rows(totals(1, 2, 3) + totals(1, 2, 3))


def test_from_the_probe_with_per_sample_stderr():
    torch.manual_seed(0)
    model = nn.Sequential(MultiStep(nn.Linear(6, 5)), LIF(), MultiStep(nn.Linear(5, 2)), LIF())
    with torch.no_grad():
        model[0].module.weight.mul_(3)
    probe = ActivityProbe()
    probe.attach(model, None)
    xs = [torch.rand(4, 3, 6), (torch.rand(4, 2, 6) < 0.5).float()]  # analog then binary: MACs and synops
    with torch.no_grad():
        for x in xs:
            reset_state(model)
            probe.before_batch(x.shape[1], x.shape[0])
            probe.after_batch(model(x))
    probe.detach()
    rows = probe.rows()
    per = probe.per_sample()
    plain = {r.condition: r for r in energy_rows(rows)}
    full = {r.condition: r for r in energy_rows(rows, per_sample=per)}
    for name, card in ENERGY_MODELS.items():
        e = (
            card.synop_pj * per["synops_per_sample"]
            + card.mac_pj * per["macs_per_sample"]
            + card.neuron_update_pj * per["neuron_updates_per_sample"]
        ) / 1e6
        assert plain[name].value == pytest.approx(float(e.mean()), rel=1e-12)
        assert full[name].value == pytest.approx(float(e.mean()), rel=1e-12)
        assert full[name].stderr == pytest.approx(float(e.std()) / math.sqrt(5), rel=1e-12)
        assert full[name].n == plain[name].n == 5
    assert float(per["macs_per_sample"].sum()) > 0 and float(per["synops_per_sample"].sum()) > 0
