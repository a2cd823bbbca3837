"""Training energy (`training_energy_j`): a SATA-style analytical model of BPTT on a systolic array.

Model (METHODS.md `sata_energy`; Yin et al., "SATA: Sparsity-Aware Training Accelerator for
Spiking Neural Networks", IEEE TCAD 2023, arXiv:2204.05422, and its simulator's workload formulas,
github.com/RuokaiYin/SATA_Sim get_workload.py). Per synaptic layer (Linear/Conv), timestep and
phase, per training sample:

- forward: dense_ops x input density accumulates (zero inputs skipped); an AC for spike (binary)
  inputs, a MAC for real-valued ones (the direct-input first layer);
- backward: dense_ops x density of the gradient at the layer's output (the surrogate-masked dL/du
  the array multiplies by W^T; zeros skipped), each a MAC, only where the layer's input needs a
  gradient (autograd computes none for the network input);
- weight gradient: dense_ops x input density (dW += delta where the input spiked), AC or MAC as
  in the forward phase;
- neurons: one LIF update per neuron and timestep forward, one potential-gradient update (PGU,
  SATA's unit) backward;
- memory: every neuron's membrane potential (one word) and spike (one bit) stored to DRAM for all
  T in the forward phase and read back in the backward phase; per timestep and phase the layer's
  input/output words (spikes packed one bit each) through the global buffer (GLB), the weights
  read from the GLB once per timestep and phase and the gradient accumulator read and written;
  per optimiser step the weights read from DRAM for forward and backward and read and written by
  the update (4 W words), shared by the batch.

Energy is affine in T: the per-step weight terms do not grow with T. Each op and access is priced
by a named card of TRAINING_ENERGY_MODELS; the row's `condition` is "sata-bptt/<card>".

ANN mode (the comparison the SATA paper makes): the same layer shapes at T=1, every input, output
and gradient dense, every op a MAC, a ReLU instead of the neuron (one compare forward, one mask
backward) and one stored activation word per neuron instead of potential + spike.

TrainingProbe measures what the model needs while any train() runs (forward hooks on Linear/Conv
and on recognised neuron modules, tensor hooks for the gradients): per layer and timestep the
input density, the gradient density at the output, the neurons' spike density and the non-zero
fraction of their surrogate gradients, the layer shapes and the number of training samples
(train-mode forward passes with gradients enabled). `record()` is JSON for the training record.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from snnbench.frameworks import neuron_info, spike_output
from snnbench.metrics import MetricRow

SYNAPTIC_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
RECORD_KEY = "training_activity"
RECORD_VERSION = 1
MODEL_NAME = "sata-bptt"
PJ_PER_J = 1e12


# ---------------------------------------------------------------------- cost cards


@dataclass(frozen=True)
class TrainingEnergyModel:
    """Picojoules per op and per memory word; `word_bits` sets how many spikes pack in a word."""

    name: str
    word_bits: int
    ac_pj: float  # accumulate (spike input: forward and weight gradient)
    mac_pj: float  # multiply-accumulate (real input; every backward op)
    lif_pj: float  # one neuron update, forward
    pgu_pj: float  # one potential-gradient update, backward
    relu_fwd_pj: float  # ANN mode
    relu_bwd_pj: float  # ANN mode
    glb_pj: float  # one word to or from the on-chip global buffer
    dram_pj: float  # one word to or from DRAM
    reading: str = ""


TRAINING_ENERGY_MODELS: dict[str, TrainingEnergyModel] = {
    m.name: m
    for m in (
        TrainingEnergyModel(
            "horowitz45nm-fp32",
            word_bits=32,
            ac_pj=0.9,  # fp32 add
            mac_pj=3.7 + 0.9,  # fp32 multiply + add
            lif_pj=3.7 + 0.9 + 0.9,  # leak multiply, integrate add, threshold compare
            pgu_pj=2 * 3.7 + 2 * 0.9,  # surrogate derivative and leak products, two adds
            relu_fwd_pj=0.9,  # compare
            relu_bwd_pj=0.9,  # mask select
            glb_pj=5.0,  # 32-bit access of an 8 KB SRAM
            dram_pj=640.0,  # 32-bit DRAM access
            reading="Horowitz ISSCC 2014, 45 nm 0.9 V, fp32 (the inference cards' constants); DRAM 640 pJ "
            "per 32-bit word as tabulated by Han et al. 2015",
        ),
        TrainingEnergyModel(
            "satasim-16b",
            word_bits=16,
            ac_pj=0.0389 + 0.000794,  # acc + and (SATA fwd/wup "mac" unit)
            mac_pj=0.239 + 0.0389,  # mul + acc (SATA bwd "mac" unit; their ANN MAC 0.2779)
            lif_pj=0.00967 + 0.00309 + 2 * 0.00172 + 3 * 0.0301,  # add, comp, 2 mux, 3 reg
            pgu_pj=0.239 + 2 * 0.00967 + 0.00172,  # mul, 2 add, mux
            relu_fwd_pj=0.00309 + 0.00172 + 0.0301,  # comp, mux, reg (their ANN config)
            relu_bwd_pj=0.00172,  # mux (reconstruction)
            glb_pj=1.95,
            dram_pj=55.58,
            reading="SATA_Sim defaults (energy_configs.py, mem_configs.py, sata_config.yaml), 16-bit; "
            "shift ops omitted (no energy given there), units taken as pJ",
        ),
    )
}


# ---------------------------------------------------------------------- workload


@dataclass(frozen=True)
class SynapseLayer:
    """One synaptic layer, per sample and timestep: shapes, dense ops and measured densities.

    input_density / grad_density hold one value per timestep (or one value for all timesteps).
    """

    name: str
    in_per_step: float
    out_per_step: float
    dense_ops_per_step: float
    weights: float
    input_density: tuple[float, ...] = (1.0,)
    grad_density: tuple[float, ...] = (1.0,)
    binary_input: float = 1.0  # fraction of the non-zero inputs that were spikes (0/1)
    needs_input_grad: float = 1.0  # fraction of the inputs autograd computed a gradient for


@dataclass(frozen=True)
class NeuronLayer:
    name: str
    neurons_per_step: float


@dataclass(frozen=True)
class Workload:
    """What the model prices: T, the samples trained on, the mean batch, the layers."""

    timesteps: int
    samples: float
    batch: float
    layers: tuple[SynapseLayer, ...]
    neurons: tuple[NeuronLayer, ...] = field(default_factory=tuple)


def _at(values: tuple[float, ...], t: int, name: str) -> float:
    if len(values) == 1:
        return float(values[0])
    if t >= len(values):
        raise ValueError(f"training energy: {name} has {len(values)} per-timestep values, needs {t + 1}")
    return float(values[t])


def breakdown(
    work: Workload, card: TrainingEnergyModel, mode: str = "snn"
) -> list[tuple[str, int | None, str, float]]:
    """(layer, timestep, phase, pJ per sample) terms; timestep None for per-optimiser-step terms.

    mode "snn" prices the measured workload; "ann" the same shapes at T=1, dense, MACs, ReLU.
    """
    if mode not in ("snn", "ann"):
        raise ValueError(f"training energy: mode must be 'snn' or 'ann', got {mode!r}")
    if work.batch <= 0 or work.timesteps < 1:
        raise ValueError("training energy: needs timesteps >= 1 and a batch > 0")
    ann = mode == "ann"
    steps = 1 if ann else work.timesteps
    bit = 1.0 / card.word_bits
    out: list[tuple[str, int | None, str, float]] = []
    for layer in work.layers:
        d, w, b = layer.dense_ops_per_step, layer.weights, work.batch
        binary = 0.0 if ann else layer.binary_input
        op_in = binary * card.ac_pj + (1 - binary) * card.mac_pj  # price of one input-driven op
        in_words = layer.in_per_step * (binary * bit + (1 - binary))  # spikes pack one bit each
        grad_in = layer.needs_input_grad  # autograd computes no gradient for the network input
        for t in range(steps):
            din = 1.0 if ann else _at(layer.input_density, t, f"{layer.name} input_density")
            dgr = 1.0 if ann else _at(layer.grad_density, t, f"{layer.name} grad_density")
            ts = t + 1
            out += [
                (layer.name, ts, "forward_compute", d * din * op_in),
                (layer.name, ts, "backward_compute", d * dgr * grad_in * card.mac_pj),
                (layer.name, ts, "weight_grad_compute", d * din * op_in),
                (layer.name, ts, "forward_memory", (in_words + layer.out_per_step + w / b) * card.glb_pj),
                (
                    layer.name,
                    ts,
                    "backward_memory",
                    (layer.out_per_step + grad_in * (layer.in_per_step + w / b)) * card.glb_pj,
                ),
                (
                    layer.name,
                    ts,
                    "weight_grad_memory",
                    (in_words + layer.out_per_step + 2 * w / b) * card.glb_pj,
                ),
            ]
        out.append((layer.name, None, "weight_dram", 4 * w / b * card.dram_pj))
    for neuron in work.neurons:
        n = neuron.neurons_per_step
        for t in range(steps):
            ts = t + 1
            if ann:  # one activation word stored forward, read back backward
                out += [
                    (neuron.name, ts, "forward_compute", n * card.relu_fwd_pj),
                    (neuron.name, ts, "backward_compute", n * card.relu_bwd_pj),
                    (neuron.name, ts, "state_dram", 2 * n * card.dram_pj),
                ]
            else:  # potential (a word) and spike (a bit) stored for all T, read back in BPTT
                out += [
                    (neuron.name, ts, "forward_compute", n * card.lif_pj),
                    (neuron.name, ts, "backward_compute", n * card.pgu_pj),
                    (neuron.name, ts, "state_dram", 2 * n * (1 + bit) * card.dram_pj),
                ]
    return out


def energy_per_sample_pj(work: Workload, card: TrainingEnergyModel, mode: str = "snn") -> float:
    return sum(term[3] for term in breakdown(work, card, mode))


def training_energy_j(work: Workload, card: TrainingEnergyModel, mode: str = "snn") -> float:
    """Joules for all the samples the training processed."""
    return energy_per_sample_pj(work, card, mode) * work.samples / PJ_PER_J


def by_phase(work: Workload, card: TrainingEnergyModel, mode: str = "snn") -> dict[str, float]:
    """pJ per sample summed per phase (for reports)."""
    phases: dict[str, float] = {}
    for _, _, phase, pj in breakdown(work, card, mode):
        phases[phase] = phases.get(phase, 0.0) + pj
    return phases


# ---------------------------------------------------------------------- record -> workload and rows


def workload_from_record(activity: dict) -> Workload:
    """The Workload of a training record's `training_activity` (TrainingProbe.record())."""
    if activity.get("version") != RECORD_VERSION:
        raise ValueError(
            f"training energy: record version {activity.get('version')!r}, this snnbench reads "
            f"{RECORD_VERSION}; retrain with `snnbench train` to refresh it"
        )
    steps, samples, passes = (
        int(activity["timesteps"]),
        float(activity["samples"]),
        activity["forward_passes"],
    )
    per = samples * steps
    layers = []
    for entry in activity["layers"]:
        if not entry["calls"]:
            continue
        layers.append(
            SynapseLayer(
                name=entry["name"],
                in_per_step=entry["in_numel"] / per,
                out_per_step=entry["out_numel"] / per,
                dense_ops_per_step=entry["dense_ops"] / per,
                weights=float(entry["weights"]),
                input_density=_ratios(entry["in_nnz"], entry["in_count"]),
                grad_density=_ratios(entry["grad_nnz"], entry["grad_count"]),
                binary_input=entry["binary_nnz"] / entry["in_nnz_total"] if entry["in_nnz_total"] else 1.0,
                needs_input_grad=entry["in_grad_numel"] / entry["in_numel"] if entry["in_numel"] else 0.0,
            )
        )
    neurons = tuple(
        NeuronLayer(n["name"], n["out_numel"] / per) for n in activity["neurons"] if n["out_numel"]
    )
    return Workload(steps, samples, samples / passes, tuple(layers), neurons)


def _ratios(num: list[float], den: list[float]) -> tuple[float, ...]:
    """Per-timestep num/den; a timestep never seen (or never given a gradient) counts as dense."""
    return tuple(n / d if d else 1.0 for n, d in zip(num, den))


def has_data(record: dict | None) -> bool:
    activity = (record or {}).get(RECORD_KEY)
    return bool(activity) and activity.get("samples", 0) > 0 and bool(activity.get("layers"))


def training_energy_rows(record: dict | None) -> list[MetricRow]:
    """One training_energy_j row per card from a checkpoint's training record; none without data
    (checkpoints trained before the probe existed) and none, with a warning, from a record this
    version cannot read."""
    if not has_data(record):
        return []
    try:
        work = workload_from_record(record[RECORD_KEY])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        warnings.warn(f"training energy: the training record is not readable ({exc}); no row", stacklevel=2)
        return []
    return [
        MetricRow(
            "training_energy_j",
            training_energy_j(work, card),
            "joule",
            n=int(work.samples),
            condition=f"{MODEL_NAME}/{name}",
        )
        for name, card in TRAINING_ENERGY_MODELS.items()
    ]


# ---------------------------------------------------------------------- measurement


@dataclass
class _Counts:
    name: str
    kind: str  # "synapse" or "neuron"
    steps: int
    weights: int = 0
    fan_in: int = 0
    calls: int = 0
    in_numel: float = 0.0
    out_numel: float = 0.0
    dense_ops: float = 0.0
    in_nnz_total: float = 0.0
    binary_nnz: float = 0.0
    in_grad_numel: float = 0.0
    in_nnz: list = field(default_factory=list)  # per timestep: non-zero inputs (spikes for neurons)
    in_count: list = field(default_factory=list)  # per timestep: entries seen
    grad_nnz: list = field(default_factory=list)
    grad_count: list = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("in_nnz", "in_count", "grad_nnz", "grad_count"):
            setattr(self, name, [0.0] * self.steps)


class TrainingProbe:
    """Hooks a model during training and records what the SATA-style model needs (module docstring).

    Only forward passes in train mode with gradients enabled count (a recipe's evaluation passes
    do not). The hooks read counts only; they change nothing the model computes.
    """

    def __init__(self, timesteps: int) -> None:
        if timesteps < 1:
            raise ValueError(f"TrainingProbe needs timesteps >= 1, got {timesteps}")
        self.steps = int(timesteps)
        self._handles: list = []
        self._counts: dict[nn.Module, _Counts] = {}
        self._calls_in_pass: dict[nn.Module, int] = {}
        self._active = False
        self._batch = 0
        self.samples = 0
        self.forward_passes = 0

    def attach(self, model: nn.Module) -> None:
        if self._handles:
            raise RuntimeError("TrainingProbe is already attached")
        for name, m in model.named_modules():
            name = name or type(model).__name__
            if neuron_info(m) is not None:
                self._counts[m] = _Counts(name, "neuron", self.steps)
                self._handles.append(m.register_forward_hook(self._neuron_hook))
            elif isinstance(m, SYNAPTIC_TYPES):
                self._counts[m] = _Counts(name, "synapse", self.steps, m.weight.numel(), m.weight[0].numel())
                self._handles.append(m.register_forward_hook(self._synapse_hook))
        self._handles.append(model.register_forward_pre_hook(self._begin, with_kwargs=True))
        self._handles.append(model.register_forward_hook(self._end, always_call=True))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def record(self) -> dict:
        """JSON-ready counts for the training record (`training_activity`)."""
        entries = [c for c in self._counts.values()]
        return {
            "version": RECORD_VERSION,
            "model": MODEL_NAME,
            "timesteps": self.steps,
            "samples": self.samples,
            "forward_passes": self.forward_passes,
            "layers": [_dump(c) for c in entries if c.kind == "synapse"],
            "neurons": [_dump(c) for c in entries if c.kind == "neuron"],
        }

    # -------------------------------------------------------------- hooks

    def _begin(self, module, args, kwargs) -> None:
        x = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)), None)
        self._active = bool(module.training and torch.is_grad_enabled() and x is not None and x.dim() >= 1)
        if not self._active:
            return
        self._batch = int(x.shape[1]) if x.dim() >= 2 and x.shape[0] == self.steps else int(x.shape[0])
        self._calls_in_pass = {}
        self.samples += self._batch
        self.forward_passes += 1

    def _end(self, module, args, output) -> None:
        self._active = False

    def _slot(self, module: nn.Module, x: torch.Tensor) -> tuple[str, int]:
        """How x's entries map to timesteps: ('t', n_lead) for [T, B, ...] / [T*B, ...] (t-major),
        ('one', t) for one timestep [B, ...] (the call index), ('all', 0) when unknown."""
        k = self._calls_in_pass.get(module, 0)
        self._calls_in_pass[module] = k + 1
        t, b = self.steps, self._batch
        if x.dim() >= 2 and x.shape[0] == t and x.shape[1] == b:
            return "t", 2
        if x.dim() >= 1 and x.shape[0] == t * b:
            return "t", 1
        if x.dim() >= 1 and x.shape[0] == b:
            return "one", k % t
        return "all", 0

    def _add(self, nnz: list, count: list, x: torch.Tensor, slot: tuple[str, int]) -> float:
        """Adds x's per-timestep non-zeros and sizes; returns x's non-zero count.

        x.bool().sum() over a view: several times faster on CPU than torch.count_nonzero, and no
        copy of a channels-last tensor (reshape would make one)."""
        kind, arg = slot
        if kind == "t":
            xt = x.unflatten(0, (self.steps, -1)) if arg == 1 else x
            per_t = xt.bool().sum(tuple(range(1, xt.dim()))).tolist()
            size = x.numel() / self.steps
            for t in range(self.steps):
                nnz[t] += per_t[t]
                count[t] += size
            return float(sum(per_t))
        total = float(x.bool().sum())
        if kind == "one":
            nnz[arg] += total
            count[arg] += x.numel()
        else:
            for t in range(self.steps):
                nnz[t] += total / self.steps
                count[t] += x.numel() / self.steps
        return total

    @torch.no_grad()
    def _synapse_hook(self, module, args, output) -> None:
        if not self._active or not args or not isinstance(args[0], torch.Tensor):
            return
        c = self._counts.get(module)  # None in a deep copy of the model (e.g. a DQN target net)
        if c is None:
            return
        x = args[0]
        slot = self._slot(module, x)
        c.calls += 1
        c.in_numel += x.numel()
        c.out_numel += output.numel()
        c.dense_ops += output.numel() * c.fan_in
        nnz = self._add(c.in_nnz, c.in_count, x, slot)
        c.in_nnz_total += nnz
        if nnz and float(x.sum()) == nnz and float((x * x).sum()) == nnz:  # all non-zeros are 1
            c.binary_nnz += nnz
        if x.requires_grad:
            c.in_grad_numel += x.numel()
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(self._grad_counter(c, slot))

    @torch.no_grad()
    def _neuron_hook(self, module, args, output) -> None:
        if not self._active:
            return
        c = self._counts.get(module)
        s = spike_output(output)
        if c is None or not isinstance(s, torch.Tensor):
            return
        slot = self._slot(module, s)
        c.calls += 1
        c.out_numel += s.numel()
        self._add(c.in_nnz, c.in_count, s, slot)  # spikes, per timestep
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if x is not None and x.requires_grad and x.shape == s.shape:
            x.register_hook(self._grad_counter(c, slot))  # dL/du: the surrogate-masked gradient

    def _grad_counter(self, c: _Counts, slot: tuple[str, int]):
        def count(grad: torch.Tensor) -> None:
            with torch.no_grad():
                self._add(c.grad_nnz, c.grad_count, grad, slot)

        return count


def _dump(c: _Counts) -> dict:
    out = {
        "name": c.name,
        "calls": c.calls,
        "out_numel": c.out_numel,
        "grad_nnz": c.grad_nnz,
        "grad_count": c.grad_count,
    }
    if c.kind == "neuron":
        out.update(spikes=c.in_nnz, spike_count=c.in_count)
        return out
    out.update(
        weights=c.weights,
        fan_in=c.fan_in,
        in_numel=c.in_numel,
        dense_ops=c.dense_ops,
        in_nnz=c.in_nnz,
        in_count=c.in_count,
        in_nnz_total=c.in_nnz_total,
        binary_nnz=c.binary_nnz,
        in_grad_numel=c.in_grad_numel,
    )
    return out


def densities(activity: dict) -> dict[str, dict[str, float]]:
    """Per layer: mean input, gradient, spike and surrogate-gradient densities (for reports)."""
    out = {}
    for e in activity["layers"]:
        out[e["name"]] = {
            "input_density": sum(e["in_nnz"]) / max(1.0, sum(e["in_count"])),
            "grad_density": sum(e["grad_nnz"]) / max(1.0, sum(e["grad_count"])),
        }
    for n in activity["neurons"]:
        out[n["name"]] = {
            "spike_density": sum(n["spikes"]) / max(1.0, sum(n["spike_count"])),
            "surrogate_grad_density": sum(n["grad_nnz"]) / max(1.0, sum(n["grad_count"])),
        }
    return out


def compare(record: dict) -> dict[str, dict[str, float]]:
    """Per card: the SNN training energy of a training record, the ANN mode's, and their ratio."""
    work = workload_from_record(record[RECORD_KEY])
    out = {}
    for name, card in TRAINING_ENERGY_MODELS.items():
        snn, ann = training_energy_j(work, card), training_energy_j(work, card, "ann")
        out[f"{MODEL_NAME}/{name}"] = {"snn_j": snn, "ann_j": ann, "snn_over_ann": snn / ann}
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m snnbench.metrics.training_energy CHECKPOINT`: SNN vs ANN training energy, per card."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("checkpoint", help="a checkpoint written by `snnbench train` (its record beside it)")
    args = parser.parse_args(argv)
    from snnbench.training import read_record

    record = read_record(args.checkpoint)
    if not has_data(record):
        print(f"error: {args.checkpoint}.json has no training_activity; train it with `snnbench train`")
        return 2
    print(json.dumps({"densities": densities(record[RECORD_KEY]), "energy": compare(record)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
