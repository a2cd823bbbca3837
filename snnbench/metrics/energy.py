"""Inference energy from the activity counts, priced by named cost cards (PROTOCOLS.md 3).

Counts are facts; an energy model is a set of coefficients over them. ENERGY_MODELS is the one
table of cards: to add a model, add one entry. energy_rows() prices the total count rows of every
card and returns one energy_uj_per_sample row per card, `condition` naming it.

Constants are 45 nm, 0.9 V (Horowitz, ISSCC 2014): fp32 add 0.9 pJ, fp32 multiply 3.7 pJ, a 32-bit
load or store from an 8 KB SRAM 5 pJ.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnbench.metrics import MetricRow, mean_and_stderr


@dataclass(frozen=True)
class EnergyModel:
    """Picojoules per synaptic accumulate (AC), per MAC and per neuron-state update."""

    name: str
    synop_pj: float
    mac_pj: float
    neuron_update_pj: float
    reading: str = ""

    def energy_pj(self, synops: float, macs: float, neuron_updates: float) -> float:
        return self.synop_pj * synops + self.mac_pj * macs + self.neuron_update_pj * neuron_updates


ENERGY_MODELS: dict[str, EnergyModel] = {
    m.name: m
    for m in (
        EnergyModel(
            "horowitz45nm-fp32",
            synop_pj=0.9,
            mac_pj=4.6,
            neuron_update_pj=0.0,
            reading="compute only (an fp32 add per AC, multiply + add per MAC): most SNN papers' convention",
        ),
        EnergyModel(
            "horowitz45nm-fp32-mem",
            synop_pj=0.9 + 5.0,  # add + weight load
            mac_pj=4.6 + 5.0 + 5.0,  # multiply-add + weight load + input load
            neuron_update_pj=5.0 + 5.0 + 3.7 + 0.9 + 0.9,  # state load, store; leak, integrate, compare
            reading="adds the on-chip SRAM traffic of weights, inputs and neuron state",
        ),
    )
}

_COUNTS = ("synops_per_sample", "macs_per_sample", "neuron_updates_per_sample")
PJ_PER_UJ = 1e6


def energy_rows(
    rows: list[MetricRow],
    models: dict[str, EnergyModel] | None = None,
    per_sample: dict[str, torch.Tensor] | None = None,
) -> list[MetricRow]:
    """One energy_uj_per_sample row per card, from the total count rows (layer, timestep and
    condition all None) of synops, macs and neuron updates.

    The mean is exact from the totals. A standard error needs the counts' covariance, which the
    rows do not carry: pass per_sample (metric -> per-sample counts, ActivityProbe.per_sample())
    to get it; otherwise stderr is None.
    """
    models = ENERGY_MODELS if models is None else models
    totals: dict[str, MetricRow] = {}
    for r in rows:
        if r.metric in _COUNTS and r.layer is None and r.timestep is None and r.condition is None:
            if r.metric in totals:
                raise ValueError(f"energy: two total rows for {r.metric}; pass the rows of one run")
            totals[r.metric] = r
    missing = [m for m in _COUNTS if m not in totals]
    if missing:
        raise ValueError(
            f"energy: no total row for {', '.join(missing)}; run ActivityProbe and pass its rows"
        )
    n = min(totals[m].n or 0 for m in _COUNTS) or None
    out = []
    for name, card in models.items():
        if name != card.name:
            raise ValueError(f"energy: ENERGY_MODELS key {name!r} differs from the card's name {card.name!r}")
        mean_pj = card.energy_pj(*(totals[m].value for m in _COUNTS))
        stderr = None
        if per_sample is not None:
            values = card.energy_pj(*(per_sample[m].to(torch.float64) for m in _COUNTS))
            mean_pj, stderr_pj = mean_and_stderr(values)
            stderr = None if stderr_pj is None else stderr_pj / PJ_PER_UJ
            n = int(values.numel())
        out.append(
            MetricRow(
                "energy_uj_per_sample", mean_pj / PJ_PER_UJ, "microjoule", n=n, stderr=stderr, condition=name
            )
        )
    return out
