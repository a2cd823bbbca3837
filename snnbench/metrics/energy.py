"""Inference energy from the activity counts, priced by named cost cards (PROTOCOLS.md 3).

Counts are facts; an energy model is a set of coefficients over them. ENERGY_MODELS is the one
table of cards: to add a model, add one entry. energy_rows() prices the total count rows of every
card and returns one energy_uj_per_sample row per card, `condition` naming it.

Constants are 45 nm, 0.9 V (Horowitz, ISSCC 2014): fp32 add 0.9 pJ, fp32 multiply 3.7 pJ, a 32-bit
load or store from an 8 KB SRAM 5 pJ.

Crossbar cards (CROSSBAR_MODELS, priced by crossbar_rows from the per-layer counts and the
footprint's layer shapes; see CrossbarModel for the model). Constants and where they come from:
- converter energy fom_fj x 2^bits: the Walden figure of merit P / (2^ENOB f_s), the FOM of
  Murmann's ADC Performance Survey. 50 fJ per step: about the 8-bit 1.28 GS/s, 16 mW ADC of ISAAC
  (Shafiee et al., ISCA 2016: 12.5 pJ per conversion), figures recalled, not re-checked;
- a 1-bit sense amplifier priced by the same FOM at n = 1 (reconstruction);
- cell read 2 fJ (reconstruction: ISAAC's 128x128 crossbar, about 0.3 mW at a 100 ns read,
  recalled, not re-checked);
- R = 64 rows (the ADC-less paper uses 64 or 128, METHODS.md); the 6-bit ADC shared by 8 columns,
  1 ns per array read and per SAR bit (reconstruction);
- the digital partial-sum accumulate: a 32-bit integer add, 0.1 pJ (Horowitz, ISSCC 2014).
"""

from __future__ import annotations

import math
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
    return out + crossbar_rows(rows, per_sample=per_sample) if models is ENERGY_MODELS else out


# ---------------------------------------------------------------- crossbar (in-memory computing) cards


@dataclass(frozen=True)
class CrossbarModel:
    """An analog in-memory-computing card: every synaptic layer is mapped onto R-row crossbars.

    Per layer with fan-in N, C output channels, D dense ops and A = SynOps + MACs per sample
    (all from the stored rows: activity per layer, footprint's layer_fan_in / layer_out_channels):
      outputs O = D / N (output elements x T), partial sums per output ceil(N / R);
      conversions = O x ceil(N / R), each read by the converter and added digitally (+ scale);
      energy = cell_pj x A + (conversion_pj + add_pj) x conversions;
      reads = O / C sequential matrix-vector reads (all tiles of a layer in parallel), each
      costing array_ns + min(share, C) x conversion_ns (a converter serves `share` columns);
      latency = the sum over layers (layer after layer, no pipelining).
    A converter of n bits costs fom_fj x 2^n (the Walden figure of merit); n = 1 is the
    ADC-less sense amplifier. Inputs that are not spikes (MACs) are charged as one read each:
    the input DACs or bit-serial cycles of a direct-coded first layer are not modelled.
    """

    name: str
    rows: int  # R
    converter_bits: int  # 1 = sense amplifier (ADC-less)
    share: int  # columns per converter
    fom_fj: float = 50.0  # Walden FOM, fJ per conversion step
    cell_pj: float = 0.002  # per active cell read
    add_pj: float = 0.1  # digital partial-sum accumulate: 32-bit integer add, 45 nm (Horowitz 2014)
    cycle_ns: float = 1.0  # one array read; one SAR bit decision
    reading: str = ""

    @property
    def conversion_pj(self) -> float:
        return self.fom_fj * 2.0**self.converter_bits / 1000.0

    @property
    def conversion_ns(self) -> float:
        return self.cycle_ns * self.converter_bits  # SAR: one cycle per bit; a sense amp: one

    def layer_cost(
        self, fan_in: float, out_channels: float, dense: float, active: float
    ) -> tuple[float, float]:
        """(energy pJ, latency ns) of one layer per sample."""
        outputs = dense / fan_in
        conversions = outputs * math.ceil(fan_in / self.rows)
        energy = self.cell_pj * active + (self.conversion_pj + self.add_pj) * conversions
        reads = outputs / out_channels
        latency = reads * (self.cycle_ns + min(self.share, out_channels) * self.conversion_ns)
        return energy, latency


CROSSBAR_MODELS: dict[str, CrossbarModel] = {
    m.name: m
    for m in (
        CrossbarModel(
            "imc-adcless-r64",
            rows=64,
            converter_bits=1,
            share=1,
            reading="ADC-less IMC (Apolinario et al. 2022): a 1-bit sense amplifier per column",
        ),
        CrossbarModel(
            "imc-adc6-r64",
            rows=64,
            converter_bits=6,
            share=8,
            reading="the same crossbars read by 6-bit SAR ADCs, one per 8 columns (high-precision ADC IMC)",
        ),
    )
}


def crossbar_rows(
    rows: list[MetricRow],
    models: dict[str, CrossbarModel] | None = None,
    per_sample: dict[str, torch.Tensor] | None = None,
) -> list[MetricRow]:
    """Per card: energy_uj_per_sample and crossbar_latency_ns_per_sample (condition = card name),
    from the per-layer activity rows and the footprint's per-layer shape rows. No shape rows (the
    footprint family did not run): no crossbar rows. A layer with counts but no shape raises."""
    models = CROSSBAR_MODELS if models is None else models
    shape: dict[str, dict[str, float]] = {}
    layer_counts: dict[str, dict[str, float]] = {}
    n = None
    for r in rows:
        if r.layer is None or r.timestep is not None or r.condition is not None:
            continue
        if r.metric in ("layer_fan_in", "layer_out_channels"):
            shape.setdefault(r.layer, {})[r.metric] = r.value
        elif r.metric in ("dense_ops_per_sample", "synops_per_sample", "macs_per_sample"):
            layer_counts.setdefault(r.layer, {})[r.metric] = r.value
            n = r.n if n is None else min(n, r.n or n)
    if not shape:
        return []
    active_layers = [name for name, c in layer_counts.items() if c.get("dense_ops_per_sample", 0) > 0]
    missing = [name for name in active_layers if len(shape.get(name, {})) < 2]
    if missing:
        raise ValueError(
            f"crossbar energy: no layer_fan_in/layer_out_channels rows for {', '.join(sorted(missing))}; "
            "pass the footprint rows of the same model"
        )
    out = []
    for name, card in models.items():
        if name != card.name:
            raise ValueError(
                f"energy: CROSSBAR_MODELS key {name!r} differs from the card's name {card.name!r}"
            )
        energy_pj = latency_ns = 0.0
        for layer in active_layers:
            c, s = layer_counts[layer], shape[layer]
            active = c.get("synops_per_sample", 0.0) + c.get("macs_per_sample", 0.0)
            e, t = card.layer_cost(
                s["layer_fan_in"], s["layer_out_channels"], c["dense_ops_per_sample"], active
            )
            energy_pj += e
            latency_ns += t
        stderr, rows_n = None, n
        if per_sample is not None:  # only the cell reads vary between samples; conversions are fixed
            active = (per_sample["synops_per_sample"] + per_sample["macs_per_sample"]).to(torch.float64)
            _, se = mean_and_stderr(card.cell_pj * active)
            stderr = None if se is None else se / PJ_PER_UJ
            rows_n = int(active.numel())
        out.append(
            MetricRow(
                "energy_uj_per_sample",
                energy_pj / PJ_PER_UJ,
                "microjoule",
                n=rows_n,
                stderr=stderr,
                condition=name,
            )
        )
        out.append(
            MetricRow("crossbar_latency_ns_per_sample", latency_ns, "nanosecond", n=rows_n, condition=name)
        )
    return out
