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

Modules trained besides the model. The probe sees only the model `snnbench train` built; a train()
that trains another module (an ANN converted afterwards, a separate SNN whose weights it loads, a
layer trained on cached features) declares it with `data.track_training(module, kind)`
(snnbench.training.TrainingData), for the whole of train() or, as a context manager, for one stage.
Each tracked part is measured on its own (its samples, passes, shapes and densities) and priced by
its kind: "snn" by the BPTT model above at the part's T, "ann" by ANN mode from its measured counts
(its own samples and layer shapes; activations are the torch activation modules and
snnbench.conversion.TrainableClip; one a function calls is not seen), "stdp" as below. A tracked
part counts every forward pass of its module with gradients enabled, in train or eval mode (an
inversion through a frozen network is training work too: its layers price no weight gradient and
no weight update, measured per layer from `requires_grad`); a module called inside another part's
pass is counted by that part only. The record keeps the model's counts where version 1 had them
and adds `parts`; training_energy_j is the sum of the model and the parts.

Local learning without gradients ("stdp" parts; a reconstruction, not from SATA): every forward
pass of the tracked module counts (it runs under no_grad). Priced as the BPTT model's forward
phase (the same compute, GLB traffic and neuron updates; no potentials stored for a backward pass),
plus one trace update per input and per neuron and timestep (a MAC, the trace read and written in
the GLB), plus per synaptic update the train() declares with `handle.count_updates(n)` (one
(post event, synapse) pair) two MACs (trace term, soft bound) and three GLB words (trace read,
weight read and written), plus per pass the weights read from DRAM for the forward phase and read
and written for the update (3 W words). Updates not declared are not priced. A record with an stdp
part stores its rows under "sata-bptt+stdp/<card>", so they are never read as BPTT alone.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from snnbench.conversion import TrainableClip
from snnbench.frameworks import neuron_info, spike_output
from snnbench.metrics import MetricRow

SYNAPTIC_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
# An "ann" part's activations (priced as ReLUs by ANN mode): modules only, not torch.relu calls.
ACTIVATION_TYPES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    TrainableClip,
)
RECORD_KEY = "training_activity"
RECORD_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: the model's counts only (no parts, every weight updated)
MODEL_NAME = "sata-bptt"
STDP_MODEL_NAME = "sata-bptt+stdp"  # the condition's model when a part learned by STDP
PART_KINDS = ("snn", "ann", "stdp")
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
    needs_weight_grad: float = 1.0  # fraction of the inputs seen while the weight required a gradient


@dataclass(frozen=True)
class NeuronLayer:
    name: str
    neurons_per_step: float


@dataclass(frozen=True)
class Workload:
    """What the model prices: T, the samples trained on, the mean batch, the layers (and for
    "stdp" the synaptic updates per sample)."""

    timesteps: int
    samples: float
    batch: float
    layers: tuple[SynapseLayer, ...]
    neurons: tuple[NeuronLayer, ...] = field(default_factory=tuple)
    updates: float = 0.0


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

    mode "snn" prices the measured workload; "ann" the same shapes at T=1, dense, MACs, ReLU;
    "stdp" the forward phase, the traces and the declared synaptic updates (module docstring).
    """
    if mode not in PART_KINDS:
        raise ValueError(f"training energy: mode must be 'snn' or 'ann' (or 'stdp'), got {mode!r}")
    if work.batch <= 0 or work.timesteps < 1:
        raise ValueError("training energy: needs timesteps >= 1 and a batch > 0")
    if mode == "stdp":
        return _stdp_breakdown(work, card)
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
        grad_w = layer.needs_weight_grad  # nor for a frozen weight (an inversion's passes)
        for t in range(steps):
            din = 1.0 if ann else _at(layer.input_density, t, f"{layer.name} input_density")
            dgr = 1.0 if ann else _at(layer.grad_density, t, f"{layer.name} grad_density")
            ts = t + 1
            out += [
                (layer.name, ts, "forward_compute", d * din * op_in),
                (layer.name, ts, "backward_compute", d * dgr * grad_in * card.mac_pj),
                (layer.name, ts, "weight_grad_compute", d * din * op_in * grad_w),
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
                    (in_words + layer.out_per_step + 2 * w / b) * card.glb_pj * grad_w,
                ),
            ]
        # read for forward and backward; read and written by the update where there is one
        out.append((layer.name, None, "weight_dram", (2 + 2 * grad_w) * w / b * card.dram_pj))
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


def _stdp_breakdown(work: Workload, card: TrainingEnergyModel) -> list[tuple[str, int | None, str, float]]:
    """Local learning (reconstruction): the BPTT model's forward phase, one trace update per input
    and neuron and timestep (a MAC; the trace read and written in the GLB), per declared synaptic
    update two MACs and three GLB words, per pass the weights read from DRAM and, updated, read and
    written (3 W words)."""
    bit = 1.0 / card.word_bits
    trace = card.mac_pj + 2 * card.glb_pj
    out: list[tuple[str, int | None, str, float]] = []
    for layer in work.layers:
        d, w, b = layer.dense_ops_per_step, layer.weights, work.batch
        binary = layer.binary_input
        op_in = binary * card.ac_pj + (1 - binary) * card.mac_pj
        in_words = layer.in_per_step * (binary * bit + (1 - binary))
        for t in range(work.timesteps):
            din = _at(layer.input_density, t, f"{layer.name} input_density")
            ts = t + 1
            out += [
                (layer.name, ts, "forward_compute", d * din * op_in),
                (layer.name, ts, "forward_memory", (in_words + layer.out_per_step + w / b) * card.glb_pj),
                (layer.name, ts, "trace", layer.in_per_step * trace),
            ]
        out.append((layer.name, None, "weight_dram", 3 * w / b * card.dram_pj))
    for neuron in work.neurons:
        n = neuron.neurons_per_step
        for t in range(work.timesteps):
            out += [
                (neuron.name, t + 1, "forward_compute", n * card.lif_pj),
                (neuron.name, t + 1, "trace", n * trace),
            ]
    u = work.updates
    out += [
        ("synaptic_updates", None, "update_compute", u * 2 * card.mac_pj),
        ("synaptic_updates", None, "update_memory", u * 3 * card.glb_pj),
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
    """The model's Workload of a training record's `training_activity` (TrainingProbe.record());
    the tracked parts are in parts_from_record."""
    _check_version(activity)
    return _workload(activity)


def parts_from_record(activity: dict) -> list[tuple[str, str, Workload]]:
    """(name, kind, Workload) of everything the record measured that trained on some samples: the
    model ("model", "snn") and every tracked part."""
    _check_version(activity)
    out = []
    if activity.get("samples", 0) > 0:
        out.append(("model", "snn", _workload(activity)))
    for part in activity.get("parts", []):
        if part.get("kind") not in PART_KINDS:
            raise ValueError(f"training energy: unknown part kind {part.get('kind')!r}")
        if part.get("samples", 0) > 0:
            out.append((part["name"], part["kind"], _workload(part)))
    return out


def _check_version(activity: dict) -> None:
    if activity.get("version") not in READABLE_VERSIONS:
        raise ValueError(
            f"training energy: record version {activity.get('version')!r}, this snnbench reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}; retrain with `snnbench train` to refresh it"
        )


def _workload(activity: dict) -> Workload:
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
                needs_weight_grad=(
                    entry["wgrad_in_numel"] / entry["in_numel"]
                    if "wgrad_in_numel" in entry and entry["in_numel"]
                    else 1.0  # version 1: every layer of the model was trained
                ),
            )
        )
    neurons = tuple(
        NeuronLayer(n["name"], n["out_numel"] / per) for n in activity["neurons"] if n["out_numel"]
    )
    updates = float(activity.get("updates", 0.0)) / samples
    return Workload(steps, samples, samples / passes, tuple(layers), neurons, updates)


def _ratios(num: list[float], den: list[float]) -> tuple[float, ...]:
    """Per-timestep num/den; a timestep never seen (or never given a gradient) counts as dense."""
    return tuple(n / d if d else 1.0 for n, d in zip(num, den))


def has_data(record: dict | None) -> bool:
    activity = (record or {}).get(RECORD_KEY)
    if not activity:
        return False
    return any(
        part.get("samples", 0) > 0 and bool(part.get("layers") or part.get("neurons"))
        for part in [activity, *activity.get("parts", [])]
    )


def condition_model(kinds) -> str:
    """The model the rows' condition names: "sata-bptt", or "sata-bptt+stdp" with an stdp part."""
    return STDP_MODEL_NAME if "stdp" in set(kinds) else MODEL_NAME


def training_energy_rows(record: dict | None) -> list[MetricRow]:
    """One training_energy_j row per card from a checkpoint's training record: the model and every
    tracked part, each priced by its kind, added; n is their samples added. None without data
    (checkpoints trained before the probe existed) and none, with a warning, from a record this
    version cannot read."""
    if not has_data(record):
        return []
    try:
        parts = parts_from_record(record[RECORD_KEY])
        model = condition_model(kind for _, kind, _ in parts)
        rows = [
            MetricRow(
                "training_energy_j",
                sum(training_energy_j(work, card, kind) for _, kind, work in parts),
                "joule",
                n=int(sum(work.samples for _, _, work in parts)),
                condition=f"{model}/{name}",
            )
            for name, card in TRAINING_ENERGY_MODELS.items()
        ]
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        warnings.warn(f"training energy: the training record is not readable ({exc}); no row", stacklevel=2)
        return []
    return rows


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
    wgrad_in_numel: float = 0.0  # inputs seen while the weight required a gradient
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
    do not). The hooks read counts only; they change nothing the model computes. `track` adds the
    modules a train() trains besides the model (TrainingData.track_training).
    """

    def __init__(self, timesteps: int) -> None:
        if timesteps < 1:
            raise ValueError(f"TrainingProbe needs timesteps >= 1, got {timesteps}")
        self.steps = int(timesteps)
        self._model: _Part | None = None
        self._parts: list[_Part] = []
        self._current: _Part | None = None  # the part whose forward pass is being counted

    @property
    def samples(self) -> int:
        return self._model.samples if self._model else 0

    @property
    def forward_passes(self) -> int:
        return self._model.forward_passes if self._model else 0

    def attach(self, model: nn.Module) -> None:
        if self._model is not None and self._model.handles:
            raise RuntimeError("TrainingProbe is already attached")
        self._model = _Part(self, "model", "snn", self.steps, "train")
        self._model.attach(model)

    def track(
        self, module: nn.Module, kind: str = "snn", name: str | None = None, timesteps: int | None = None
    ) -> TrackedTraining:
        """Measure `module` as a part trained besides the model, until detach() or the handle's stop()."""
        if kind not in PART_KINDS:
            raise ValueError(f"track_training: kind must be one of {', '.join(PART_KINDS)}, got {kind!r}")
        steps = 1 if kind == "ann" else int(timesteps or self.steps)
        if steps < 1:
            raise ValueError(f"track_training needs timesteps >= 1, got {steps}")
        part = _Part(
            self,
            name or f"{kind}{len(self._parts)}:{type(module).__name__}",
            kind,
            steps,
            "all" if kind == "stdp" else "grad",
        )
        part.attach(module)
        self._parts.append(part)
        return TrackedTraining(part)

    def detach(self) -> None:
        for part in [self._model, *self._parts]:
            if part is not None:
                part.detach()

    def record(self) -> dict:
        """JSON-ready counts for the training record (`training_activity`): the model's where
        version 1 had them, the tracked parts under `parts`."""
        model = self._model or _Part(self, "model", "snn", self.steps, "train")
        out = {"version": RECORD_VERSION, "model": MODEL_NAME, **model.dump()}
        out["parts"] = [{"name": p.name, "kind": p.kind, **p.dump()} for p in self._parts]
        return out


class TrackedTraining:
    """A handle on a tracked part: `stop()` (or leaving a `with` block) ends its measurement;
    `count_updates(n)` declares n synaptic updates (one (post event, synapse) pair each) of an
    "stdp" part."""

    def __init__(self, part: _Part | None) -> None:
        self._part = part

    def count_updates(self, n: float) -> None:
        if self._part is not None:
            if self._part.kind != "stdp":
                raise ValueError(
                    "count_updates is for 'stdp' parts (gradient training prices its own updates)"
                )
            self._part.updates += float(n)

    def stop(self) -> None:
        if self._part is not None:
            self._part.detach()

    def __enter__(self) -> TrackedTraining:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class _Part:
    """The counts of one trained module (the model or a tracked part) and its hooks.

    rule: which passes count: "train" (train mode, gradients enabled: the model), "grad" (gradients
    enabled: a tracked ANN/SNN), "all" (every pass: local learning under no_grad)."""

    def __init__(self, probe: TrainingProbe, name: str, kind: str, steps: int, rule: str) -> None:
        self.probe, self.name, self.kind, self.steps, self.rule = probe, name, kind, steps, rule
        self.root: nn.Module | None = None
        self.handles: list = []
        self.counts: dict[nn.Module, _Counts] = {}
        self.calls_in_pass: dict[nn.Module, int] = {}
        self.batch = 0
        self.grad_enabled = False
        self.samples = 0
        self.forward_passes = 0
        self.updates = 0.0

    @property
    def active(self) -> bool:
        return self.probe._current is self

    def __deepcopy__(self, memo) -> _Part:
        """A deep copy of a hooked module (a DQN target net, a conversion's copy of a tracked ANN)
        keeps hooks bound to this part, which ignores it: its modules are not the ones counted."""
        return self

    def attach(self, root: nn.Module) -> None:
        self.root = root
        for name, m in root.named_modules():
            name = name or type(root).__name__
            if m in self.counts:
                continue
            if neuron_info(m) is not None or (self.kind == "ann" and isinstance(m, ACTIVATION_TYPES)):
                self.counts[m] = _Counts(name, "neuron", self.steps)
                self.handles.append(m.register_forward_hook(self._neuron_hook))
            elif isinstance(m, SYNAPTIC_TYPES):
                self.counts[m] = _Counts(name, "synapse", self.steps, m.weight.numel(), m.weight[0].numel())
                self.handles.append(m.register_forward_hook(self._synapse_hook))
        self.handles.append(root.register_forward_pre_hook(self._begin, with_kwargs=True))
        self.handles.append(root.register_forward_hook(self._end, always_call=True))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        if self.active:
            self.probe._current = None

    def dump(self) -> dict:
        entries = list(self.counts.values())
        out = {
            "timesteps": self.steps,
            "samples": self.samples,
            "forward_passes": self.forward_passes,
            "layers": [_dump(c) for c in entries if c.kind == "synapse"],
            "neurons": [_dump(c) for c in entries if c.kind == "neuron"],
        }
        if self.kind == "stdp":
            out["updates"] = self.updates
        return out

    # -------------------------------------------------------------- hooks

    def _begin(self, module, args, kwargs) -> None:
        if self.probe._current is not None or module is not self.root:  # another part's pass, a copy
            return
        x = next((a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)), None)
        if x is None or x.dim() < 1:
            return
        if self.rule == "train" and not (module.training and torch.is_grad_enabled()):
            return
        if self.rule == "grad" and not torch.is_grad_enabled():
            return
        self.probe._current = self
        self.grad_enabled = torch.is_grad_enabled()
        if self.kind == "ann":
            self.batch = int(x.shape[0])
        else:
            self.batch = int(x.shape[1]) if x.dim() >= 2 and x.shape[0] == self.steps else int(x.shape[0])
        self.calls_in_pass = {}
        self.samples += self.batch
        self.forward_passes += 1

    def _end(self, module, args, output) -> None:
        if self.active:
            self.probe._current = None

    def _slot(self, module: nn.Module, x: torch.Tensor) -> tuple[str, int]:
        """How x's entries map to timesteps: ('t', n_lead) for [T, B, ...] / [T*B, ...] (t-major),
        ('one', t) for one timestep [B, ...] (the call index), ('all', 0) when unknown."""
        k = self.calls_in_pass.get(module, 0)
        self.calls_in_pass[module] = k + 1
        t, b = self.steps, self.batch
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
        if not self.active or not args or not isinstance(args[0], torch.Tensor):
            return
        c = self.counts.get(module)  # None in a deep copy of the model (e.g. a DQN target net)
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
        if module.weight.requires_grad and self.grad_enabled:  # (the hook itself runs under no_grad)
            c.wgrad_in_numel += x.numel()
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(self._grad_counter(c, slot))

    @torch.no_grad()
    def _neuron_hook(self, module, args, output) -> None:
        if not self.active:
            return
        c = self.counts.get(module)
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
        wgrad_in_numel=c.wgrad_in_numel,
    )
    return out


def densities(activity: dict) -> dict[str, dict[str, float]]:
    """Per layer: mean input, gradient, spike and surrogate-gradient densities (for reports); a
    tracked part's layers are named "<part>/<layer>"."""
    out = {}
    for prefix, part in [("", activity)] + [(f"{p['name']}/", p) for p in activity.get("parts", [])]:
        for e in part["layers"]:
            out[prefix + e["name"]] = {
                "input_density": sum(e["in_nnz"]) / max(1.0, sum(e["in_count"])),
                "grad_density": sum(e["grad_nnz"]) / max(1.0, sum(e["grad_count"])),
            }
        for n in part["neurons"]:
            out[prefix + n["name"]] = {
                "spike_density": sum(n["spikes"]) / max(1.0, sum(n["spike_count"])),
                "surrogate_grad_density": sum(n["grad_nnz"]) / max(1.0, sum(n["grad_count"])),
            }
    return out


def compare(record: dict) -> dict[str, dict[str, float]]:
    """Per card: the model's SNN training energy, the ANN mode's, and their ratio (where the model
    itself trained); with tracked parts also `total_j`, what training_energy_j stores."""
    activity = record[RECORD_KEY]
    parts = parts_from_record(activity)
    model = condition_model(kind for _, kind, _ in parts)
    out = {}
    for name, card in TRAINING_ENERGY_MODELS.items():
        row: dict[str, float] = {}
        if activity.get("samples", 0) > 0:
            work = workload_from_record(activity)
            snn, ann = training_energy_j(work, card), training_energy_j(work, card, "ann")
            row.update(snn_j=snn, ann_j=ann, snn_over_ann=snn / ann)
        if activity.get("parts"):
            row["total_j"] = sum(training_energy_j(w, card, kind) for _, kind, w in parts)
        out[f"{model}/{name}"] = row
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
