"""Exact spike, SynOp, MAC, dense-op and neuron-update counts for any framework (PROTOCOLS.md 3).

ActivityProbe hooks the model's modules; it never changes what they compute.

Where counts come from
- Spikes: non-zero entries at the outputs of recognised neuron modules (snnbench.frameworks:
  snnbench, snnTorch, SpikingJelly, Norse, sinabs). Only when a model has no recognised neuron
  (a hand-written spike function) are spikes read at the spike-valued inputs of synaptic layers
  instead, each tensor once, and never the model's own input (data, not network activity); such
  spikes carry the receiving synaptic layer's name. So spikes are never counted twice.
- Synaptic layers are Conv1d/2d/3d and Linear (subclasses included). Each call is classified on
  the tensor the layer receives. Spike-valued (every entry an integer: binary, signed, or counts
  such as a SEW ADD's {0,1,2}; all below 2**24, past which every float32 is whole):
  synops += sum(|x| * F). Otherwise macs += sum((x != 0) * F). F is the layer's fan-out map: for
  each input entry, its connections through non-zero weights to output elements. F is the
  gradient of sum(conv(x; w != 0)) with respect to x (conv is linear in x), so stride, padding
  (any padding_mode), dilation, groups and borders are exact by construction. It is computed once
  per (layer, input shape), cached, and recomputed only if the weights change. Biases are not
  synaptic operations.
- dense_ops: output elements x fan-in (C_in/groups x prod(kernel), in_features) per call, padding
  taps included (thop's count).
- neuron_updates: neurons x timesteps of every spiking layer.

Time and samples: a layer may see [T*B, ...] (folded, t-major), [T, B, ...], [B, ...] once per
timestep (snnTorch/Norse loops; the call index is the timestep) or sinabs's [B, T, ...]. Each
call's counts are attributed to samples (and, for spikes, to timesteps) from before_batch's B and T.

Cost: on the CPU each tensor is read once by a numba kernel (one pass counts non-zeros; one pass
checks integrality and weighs by F; numba comes with snnbench through tonic -> librosa; its JIT
costs about a second per signature once per machine, as the compiled kernels are cached on disk).
Elsewhere (GPU, or without numba) torch ops run chunk by chunk through one small reused scratch
buffer. Either way the probe adds no tensor the size of an
activation, and tensors in any memory layout (channels-last included) are read in place, F
permuted to match. Row sums run in float32 (each integer term and partial sum < 2**24 is exact,
in any order; a row whose total reaches 2**24 is redone in float64) and accumulate per sample in
float64.

What is not understood (`uncounted`): module types holding parameters that are neither synaptic
layers, recognised neurons with at most 1-D parameters (PLIF's tau, learnable thresholds), nor
elementwise layers (BatchNorm/InstanceNorm/LayerNorm/GroupNorm/RMSNorm, PReLU: no synaptic
operations, foldable into the preceding layer); plus synaptic layers that were never called,
whose weights may have been used outside their forward. A run listing any is a lower bound.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from snnbench.frameworks import NeuronInfo, neuron_info, spike_output
from snnbench.metrics import MetricRow, mean_and_stderr

SYNAPTIC_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_ELEMENTWISE_TYPES: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.PReLU,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())

_PER_LAYER = (
    "spikes_per_sample",
    "synops_per_sample",
    "macs_per_sample",
    "dense_ops_per_sample",
    "neuron_updates_per_sample",
)
_EXACT_F32 = float(2**24)  # integers below this are exact in float32, and so are sums of them
_EXACT_F64 = float(2**53)


def understood_without_counts(module: nn.Module) -> bool:
    """True for parameterised layers that do no synaptic work (norms, PReLU)."""
    return isinstance(module, _ELEMENTWISE_TYPES)


@dataclass
class _Synapse:
    name: str
    module: nn.Module
    nd: int  # 0 for Linear, else the conv's spatial dims
    fan_in: int
    weight_key: tuple | None = None
    mask: torch.Tensor | None = None  # (w != 0) on CPU
    fanout: dict = field(default_factory=dict)  # (sample shape, device, dtype) -> flat F
    called: bool = False


@dataclass
class _Neuron:
    name: str
    info: NeuronInfo


@dataclass
class _Batch:
    """Per-batch accumulators, on the activations' device until after_batch."""

    size: int
    steps: int
    synops: dict = field(default_factory=dict)  # layer -> [B] float64
    macs: dict = field(default_factory=dict)
    dense: dict = field(default_factory=dict)  # layer -> int per sample
    spikes_multi: dict = field(default_factory=dict)  # layer -> [T, B] float64
    spikes_steps: dict = field(default_factory=dict)  # layer -> list of ([B] tensor, neurons)
    updates_multi: dict = field(default_factory=dict)  # layer -> neurons per timestep (int)


class ActivityProbe:
    """Counts spikes, SynOps, MACs, dense ops and neuron updates; see the module docstring.

    chunk_elements bounds the scratch buffer (elements per chunk); None picks a size that stays
    in cache on CPU and is large on GPU.
    """

    def __init__(self, chunk_elements: int | None = None) -> None:
        self._chunk = chunk_elements
        self._handles: list = []
        self._reset()

    def _reset(self) -> None:
        self.uncounted: list[str] = []
        self._synapses: dict[nn.Module, _Synapse] = {}
        self._neurons: dict[nn.Module, _Neuron] = {}
        self._has_neurons = False
        self._root_name = ""
        self._batch: _Batch | None = None
        self._scratch: dict = {}
        self._input_bases: list = []  # weakrefs to the bases of the model's inputs this batch
        self._counted_inputs: dict = {}  # fallback spikes: (data_ptr, numel) -> weakref(base)
        self._static_uncounted: set[str] = set()
        self._samples = 0  # finished batches
        self._done: list[dict] = []

    # ------------------------------------------------------------------ Probe protocol

    def attach(self, model: nn.Module, task=None) -> None:
        if self._handles:
            raise RuntimeError("ActivityProbe is already attached; call detach() first")
        self._reset()  # one probe counts one run: attaching again starts afresh
        self._root_name = type(model).__name__
        uncounted: set[str] = set()
        for name, m in model.named_modules():
            name = name or self._root_name
            info = neuron_info(m)
            own = list(m.parameters(recurse=False))
            if info is not None:
                self._neurons[m] = _Neuron(name, info)
                self._handles.append(m.register_forward_hook(self._neuron_hook))
                if any(p.dim() > 1 for p in own):
                    uncounted.add(type(m).__name__)  # e.g. Norse LIFRecurrent's weight matrices
            elif isinstance(m, SYNAPTIC_TYPES):
                syn = self._new_synapse(name, m)
                self._synapses[m] = syn
                self._handles.append(m.register_forward_hook(self._synapse_hook, with_kwargs=True))
            elif own and not understood_without_counts(m):
                uncounted.add(type(m).__name__)
        self._has_neurons = bool(self._neurons)
        self._handles.append(model.register_forward_pre_hook(self._input_hook, with_kwargs=True))
        self._static_uncounted = uncounted
        self.uncounted = sorted(uncounted)

    def before_batch(self, batch_size: int, timesteps: int) -> None:
        if batch_size < 1 or timesteps < 1:
            raise ValueError(
                f"before_batch needs batch_size >= 1 and timesteps >= 1, got {batch_size}, {timesteps}"
            )
        self._batch = _Batch(int(batch_size), int(timesteps))
        self._input_bases = []
        self._counted_inputs = {}

    def after_batch(self, outputs=None) -> None:
        b = self._require_batch()
        self._done.append(self._finish(b))
        self._samples += b.size
        self._batch = None
        self._input_bases = []
        self._counted_inputs = {}

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._update_uncounted()

    def rows(self) -> list[MetricRow]:
        if not self._done:
            raise RuntimeError(
                "ActivityProbe saw no batch: nothing to count (did the loop call after_batch?)"
            )
        self._update_uncounted()
        return _rows(self._done, self._samples)

    def per_sample(self) -> dict[str, torch.Tensor]:
        """Total per-sample counts (metric -> [samples] float64), e.g. for energy_rows' stderr."""
        if not self._done:
            raise RuntimeError("ActivityProbe saw no batch: nothing to count")
        per = _collect(self._done, self._samples)
        zero = torch.zeros(self._samples, dtype=torch.float64)
        return {m: sum(per[m].values(), zero.clone()) for m in _PER_LAYER}

    # ------------------------------------------------------------------ hooks

    def _input_hook(self, module, args, kwargs) -> None:
        for x in list(args) + list(kwargs.values()):
            if isinstance(x, torch.Tensor):
                self._input_bases.append(weakref.ref(_base(x)))

    @torch.no_grad()
    def _neuron_hook(self, module, args, output) -> None:
        b = self._require_batch()
        neuron = self._neurons[module]
        s = spike_output(output)
        if not isinstance(s, torch.Tensor):
            raise TypeError(
                f"activity: neuron {neuron.name} ({type(module).__name__}) returned {type(s).__name__}, "
                "not a spike tensor; snnbench cannot read its spikes"
            )
        info = neuron.info
        kind, n_lead = _resolve(
            neuron.name, tuple(s.shape), b.size, b.steps, info.layout, info.folded_batch_major
        )
        rows, _ = _rows_view(s, n_lead)
        self._record_spikes(neuron.name, kind, self._count_rows(rows), rows.numel(), b)

    @torch.no_grad()
    def _synapse_hook(self, module, args, kwargs, output) -> None:
        b = self._require_batch()
        syn = self._synapses[module]
        syn.called = True
        x = args[0] if args else next((v for v in kwargs.values() if isinstance(v, torch.Tensor)), None)
        if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
            raise TypeError(f"activity: synaptic layer {syn.name} was called without a tensor input/output")
        n_lead = x.dim() - (syn.nd + 1)
        if syn.nd and n_lead == 0:  # an unbatched conv input [C, ...]: one row
            x, n_lead = x.unsqueeze(0), 1
        if n_lead < 1 or (syn.nd and n_lead > 2):
            raise ValueError(
                f"activity: {syn.name} received a tensor of shape {tuple(x.shape)}; cannot count it"
            )
        lead = tuple(x.shape[:n_lead])
        kind, _ = _resolve(syn.name, lead, b.size, b.steps, "tb", False)
        rows, order = _rows_view(x, n_lead)
        fmap = self._fanout(syn, tuple(x.shape[n_lead:]), order, x)
        values, integral = self._weighted_rows(rows, fmap)
        per_sample = _per_sample(values, kind, b.size, b.steps)
        acc = b.synops if integral else b.macs
        prev = acc.get(syn.name)
        acc[syn.name] = per_sample if prev is None else prev + per_sample
        dense_total = output.numel() * syn.fan_in
        b.dense[syn.name] = b.dense.get(syn.name, 0) + dense_total // b.size
        if integral and not self._has_neurons and not self._is_model_input(x) and self._first_time(x):
            self._record_spikes(syn.name, kind, self._count_rows(rows), rows.numel(), b)

    # ------------------------------------------------------------------ counting

    def _record_spikes(self, name: str, kind: str, counts: torch.Tensor, numel: int, b: _Batch) -> None:
        """Add per-row spike counts (rows t-major or b-major by kind) to the batch's spike tallies."""
        row_count = b.size if kind == "b" else b.size * b.steps
        if counts.numel() % row_count or numel % row_count:
            raise ValueError(
                f"activity: {name}'s spikes do not split into {row_count} rows of B={b.size}, T={b.steps}"
            )
        if counts.numel() != row_count:
            counts = counts.view(row_count, -1).sum(-1)
        neurons = numel // row_count
        if kind == "b":
            b.spikes_steps.setdefault(name, []).append((counts, neurons))
            return
        tb = counts.view(b.steps, b.size) if kind == "tb" else counts.view(b.size, b.steps).t()
        prev = b.spikes_multi.get(name)
        b.spikes_multi[name] = tb.to(torch.float64) if prev is None else prev + tb
        b.updates_multi[name] = b.updates_multi.get(name, 0) + neurons

    def _buffer(self, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        # a buffer made under inference_mode cannot be written outside it, so keep one per mode
        key = (dtype, device, torch.is_inference_mode_enabled())
        buf = self._scratch.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=device)
            self._scratch[key] = buf
        return buf[:numel]

    def _chunk_rows(self, rows: torch.Tensor) -> int:
        chunk = self._chunk or (1 << 18 if rows.device.type == "cpu" else 1 << 24)
        return max(1, chunk // max(1, rows.shape[1]))

    def _work(self, rows: torch.Tensor) -> torch.Tensor:
        if rows.dtype in (torch.float32, torch.float64):
            return rows
        return rows.to(torch.float32)

    def _count_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Non-zero entries per row, exact."""
        rows = self._work(rows)
        kernels = _cpu_kernels(rows)
        if kernels is not None:
            out = np.empty(rows.shape[0], dtype=np.int64)
            kernels.count(_as_numpy(rows), out)
            return torch.from_numpy(out).to(torch.float64)
        n, d = rows.shape
        step = self._chunk_rows(rows)
        out_dtype = rows.dtype if d < _EXACT_F32 else torch.float64
        out = torch.empty(n, dtype=out_dtype, device=rows.device)
        scratch = self._buffer(min(n, step) * d, rows.dtype, rows.device)
        for r0 in range(0, n, step):
            c = rows[r0 : r0 + step]
            s = scratch[: c.numel()].view(c.shape)
            torch.ne(c, 0, out=s)
            out[r0 : r0 + c.shape[0]] = s.sum(-1, dtype=out_dtype)
        return out

    def _weighted_rows(self, rows: torch.Tensor, fmap: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Per row sum(|x| * F) if every entry is an integer, else sum((x != 0) * F); exact."""
        rows = self._work(rows)
        if fmap.dtype != rows.dtype:
            rows = rows.to(fmap.dtype) if fmap.dtype == torch.float64 else rows
            fmap = fmap.to(rows.dtype)
        n, d = rows.shape
        kernels = _cpu_kernels(rows)
        if kernels is not None:  # one pass: integrality check and weighted sum together
            xs, fs = _as_numpy(rows), _as_numpy(fmap)
            out_np = np.empty(n, dtype=xs.dtype)
            integral = kernels.synops(xs, fs, out_np) == 0
            if not integral:
                kernels.macs(xs, fs, out_np)
            out = torch.from_numpy(out_np)
        else:
            out, integral = self._weighted_rows_torch(rows, fmap)
        limit = _EXACT_F32 if rows.dtype == torch.float32 else _EXACT_F64
        if n and float(out.amax()) >= limit:
            out = self._weighted_rows_f64(rows, fmap, integral)
        return out.to(torch.float64), integral

    def _weighted_rows_torch(self, rows: torch.Tensor, fmap: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The same with torch ops, chunk by chunk through a small scratch buffer (GPU, no numba)."""
        n, d = rows.shape
        step = self._chunk_rows(rows)
        out = torch.empty(n, dtype=rows.dtype, device=rows.device)
        scratch = self._buffer(min(n, step) * d, rows.dtype, rows.device)
        integral = True
        for r0 in range(0, n, step):
            c = rows[r0 : r0 + step]
            s = scratch[: c.numel()].view(c.shape)
            lo, hi = (float(v) for v in torch.aminmax(c))
            if not max(abs(lo), abs(hi)) < _EXACT_F32:  # also NaN/inf: every float >= 2**24 is whole,
                integral = False  # so integrality says nothing there; such input is not spike counts
                break
            torch.frac(c, out=s)
            if lo >= 0:
                ok = float(s.amax()) == 0.0
            else:
                flo, fhi = (float(v) for v in torch.aminmax(s))
                ok = flo == 0.0 and fhi == 0.0
            if not ok:
                integral = False
                break
            if lo >= 0:
                torch.mv(c, fmap, out=out[r0 : r0 + c.shape[0]])
            else:
                torch.abs(c, out=s)
                torch.mv(s, fmap, out=out[r0 : r0 + c.shape[0]])
        if not integral:
            for r0 in range(0, n, step):
                c = rows[r0 : r0 + step]
                s = scratch[: c.numel()].view(c.shape)
                torch.ne(c, 0, out=s)
                torch.mv(s, fmap, out=out[r0 : r0 + c.shape[0]])
        return out, integral

    def _weighted_rows_f64(self, rows: torch.Tensor, fmap: torch.Tensor, integral: bool) -> torch.Tensor:
        """Slow exact path for rows whose sums do not fit float32's integers."""
        f64 = fmap.to(torch.float64)
        step = self._chunk_rows(rows)
        parts = []
        for r0 in range(0, rows.shape[0], step):
            c = rows[r0 : r0 + step].to(torch.float64)
            c = c.abs() if integral else (c != 0).to(torch.float64)
            parts.append(torch.mv(c, f64))
        out = torch.cat(parts)
        if float(out.amax()) >= _EXACT_F64:
            raise OverflowError("activity: a per-sample count exceeds 2**53; it cannot be stored exactly")
        return out

    # ------------------------------------------------------------------ fan-out maps

    def _new_synapse(self, name: str, m: nn.Module) -> _Synapse:
        if isinstance(m, nn.Linear):
            syn = _Synapse(name, m, 0, int(m.in_features))
        else:
            k = math.prod(m.kernel_size)
            syn = _Synapse(name, m, len(m.kernel_size), int(m.in_channels // m.groups * k))
        if not isinstance(m.weight, nn.parameter.UninitializedParameter):
            self._refresh_mask(syn)
        return syn

    def _refresh_mask(self, syn: _Synapse) -> None:
        w = syn.module.weight
        key = (id(w), w.data_ptr(), w._version, tuple(w.shape), w.device)
        if key == syn.weight_key:
            return
        mask = (w.detach() != 0).cpu()
        if syn.mask is None or syn.mask.shape != mask.shape or not torch.equal(mask, syn.mask):
            syn.mask = mask
            syn.fanout.clear()
        syn.weight_key = key

    def _fanout(self, syn: _Synapse, sample_shape: tuple, order: tuple, x: torch.Tensor) -> torch.Tensor:
        self._refresh_mask(syn)
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        key = (sample_shape, order, x.device, dtype)
        f = syn.fanout.get(key)
        if f is None:
            f = fanout_map(syn.module, sample_shape, syn.mask).permute(*order).reshape(-1)
            if dtype == torch.float32 and f.numel() and float(f.max()) >= _EXACT_F32:
                dtype = torch.float64  # absurdly wide layer: keep F exact
            f = f.to(device=x.device, dtype=dtype)
            syn.fanout[key] = f
        return f

    # ------------------------------------------------------------------ bookkeeping

    def _require_batch(self) -> _Batch:
        if self._batch is None:
            raise RuntimeError(
                "ActivityProbe: the model ran outside before_batch/after_batch; call before_batch(B, T) first"
            )
        return self._batch

    def _is_model_input(self, x: torch.Tensor) -> bool:
        base = _base(x)
        return any(ref() is base for ref in self._input_bases)

    def _first_time(self, x: torch.Tensor) -> bool:
        """False if this very tensor (same memory, still alive) was already counted this batch."""
        key = (x.data_ptr(), x.numel(), x.dtype)
        ref = self._counted_inputs.get(key)
        if ref is not None and ref() is not None:
            return False
        self._counted_inputs[key] = weakref.ref(_base(x))
        return True

    def _update_uncounted(self) -> None:
        never = (
            {type(s.module).__name__ for s in self._synapses.values() if not s.called}
            if self._done
            else set()
        )
        self.uncounted = sorted(self._static_uncounted | never)

    def _finish(self, b: _Batch) -> dict:
        """Move one batch's counts to the CPU, per sample (and per timestep for spikes)."""
        done = {"size": b.size, "steps": b.steps, "synops": {}, "macs": {}, "dense": dict(b.dense)}
        for name, v in b.synops.items():
            done["synops"][name] = v.cpu()
        for name, v in b.macs.items():
            done["macs"][name] = v.cpu()
        spikes: dict[str, torch.Tensor] = {}  # layer -> [T, B]
        updates: dict[str, list[int]] = {}  # layer -> neurons per timestep (length T)
        for name, tb in b.spikes_multi.items():
            spikes[name] = tb.cpu()
            updates[name] = [b.updates_multi[name]] * b.steps
        for name, calls in b.spikes_steps.items():
            n = len(calls)
            if n > b.steps and n % b.steps:
                raise ValueError(
                    f"activity: {name} ran {n} single-step calls in a batch of T={b.steps}; "
                    "cannot assign them to timesteps (expected at most T, or a multiple of T)"
                )
            group = n // b.steps if n > b.steps else 1
            tb = spikes.get(name)
            tb = torch.zeros(b.steps, b.size, dtype=torch.float64) if tb is None else tb.clone()
            upd = updates.get(name, [0] * b.steps)
            for i, (counts, neurons) in enumerate(calls):
                t = i // group
                tb[t] += counts.to(device="cpu", dtype=torch.float64)
                upd[t] += neurons
            spikes[name] = tb
            updates[name] = upd
        done["spikes"] = spikes
        done["updates"] = updates
        return done


# ---------------------------------------------------------------------- CPU kernels
#
# On the CPU, torch needs 2 passes to count non-zeros (compare into a buffer, sum) and 4 to check
# integrality and weigh by F. numba (installed with snnbench: tonic -> librosa -> numba) does each
# in one pass. Every sum is of non-negative integer terms, so reassociating it (vector lanes) is
# exact, and a float32 row total below 2**24 proves every partial sum was exact; larger totals are
# redone in float64 (_weighted_rows_f64). NaN and inf fail the integrality check (v != floor(v)
# or |v| >= 2**24), so such input counts as MACs, as on the torch path.


# The kernels are plain functions here, compiled by _Kernels on first use with cache=True: numba
# stores the machine code on disk, so only the first process on a machine (and the first after
# this file changes) pays the ~1 s per signature compile; later ones load it in milliseconds.
# Where the cache goes: NUMBA_CACHE_DIR if set; else numba's own __pycache__ beside this file
# when that is writable (a checkout, an editable install); else <snnbench cache>/numba
# (SNNBENCH_CACHE or ~/.cache/snnbench; the sandbox child, which has no SNNBENCH_* variables,
# uses ~/.cache/snnbench). A cache that cannot be written only costs the compile, as before.


def _count_py(x, out):
    n, d = x.shape
    for i in range(n):
        c = 0
        for j in range(d):
            c += x[i, j] != 0
        out[i] = c


def _synops_py(x, f, out):  # sum(|x| * F) per row; returns how many entries are not counts
    n, d = x.shape
    bad = 0
    for i in range(n):
        out[i] = 0
        s = out[i]  # a zero of out's dtype
        for j in range(d):
            v = x[i, j]
            a = abs(v)
            bad += (v != np.floor(v)) | (a >= 16777216.0)
            s += a * f[j]
        out[i] = s
    return bad


def _macs_py(x, f, out):  # sum((x != 0) * F) per row
    n, d = x.shape
    for i in range(n):
        out[i] = 0
        s = out[i]
        for j in range(d):
            s += (x[i, j] != 0) * f[j]
        out[i] = s


def _numba_cache_dir() -> None:
    """Point numba's cache at <snnbench cache>/numba when it has no writable place of its own."""
    import os
    import tempfile

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    try:  # numba's in-tree locator uses this folder when it can create a file in it
        os.makedirs(here, exist_ok=True)
        tempfile.TemporaryFile(dir=here).close()
        return
    except OSError:
        pass
    from snnbench.data import cache_root

    os.environ["NUMBA_CACHE_DIR"] = str(cache_root() / "numba")
    from numba.core import config

    config.reload_config()


class _Kernels:
    def __init__(self) -> None:
        from numba import njit

        _numba_cache_dir()
        jit = njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
        self.count, self.synops, self.macs = jit(_count_py), jit(_synops_py), jit(_macs_py)


_KERNELS: list = []  # [] not tried yet, [None] unavailable, [_Kernels] ready
USE_NUMBA = True  # tests switch it off to check the torch path gives the same counts


def _cpu_kernels(rows: torch.Tensor) -> _Kernels | None:
    """The numba kernels if they apply to these rows (CPU, float32/64, row-contiguous)."""
    if not USE_NUMBA or rows.device.type != "cpu" or rows.dtype not in (torch.float32, torch.float64):
        return None
    if rows.stride(-1) != 1 or (rows.shape[0] > 1 and rows.stride(0) != rows.shape[1]):
        return None
    if not _KERNELS:
        try:
            _KERNELS.append(_Kernels())
        except ImportError:
            _KERNELS.append(None)
    return _KERNELS[0]


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _base(x: torch.Tensor) -> torch.Tensor:
    while x._base is not None:
        x = x._base
    return x


def _resolve(name: str, lead: tuple, batch: int, steps: int, layout: str, folded_bm: bool) -> tuple[str, int]:
    """How the leading dims index samples: ('tb', n) t-major [T, B, ...] (n=2) or [T*B, ...] (n=1);
    ('b', 1) one timestep [B, ...]; ('bt', n) batch-major [B, T, ...] or [B*T, ...]. The layout
    preference decides only when the shape fits more than one."""

    def tb() -> int:
        if len(lead) >= 2 and lead[0] == steps and lead[1] == batch:
            return 2
        return 1 if lead[0] == steps * batch else 0

    def one() -> int:
        return 1 if lead[0] == batch else 0

    def bt() -> int:
        if len(lead) >= 2 and lead[0] == batch and lead[1] == steps:
            return 2
        return 1 if folded_bm and lead[0] == batch * steps else 0

    tests = {"tb": tb, "b": one, "bt": bt}
    order = {"tb": ("tb", "b"), "b": ("b", "tb"), "bt": ("bt", "b")}[layout]
    for kind in order:
        n = tests[kind]() if lead else 0
        if n:
            return kind, n
    raise ValueError(
        f"activity: cannot attribute {name}'s tensor with leading shape {lead} to samples; expected "
        f"[T*B, ...], [T, B, ...] or [B, ...] with T={steps}, B={batch} (time-major, as the model gets it)"
    )


def _rows_view(x: torch.Tensor, n_lead: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """x as [rows, features] without a copy where memory allows: rows are the n_lead leading dims
    in order; features are the other dims in memory order (channels-last stays a view). Returns the
    view and that order of the feature dims (relative to x.shape[n_lead:]), to permute F alike."""
    feats = sorted(range(n_lead, x.dim()), key=lambda d: -x.stride(d) if x.shape[d] != 1 else 0)
    y = x.permute(*range(n_lead), *feats)
    rows = math.prod(x.shape[:n_lead])
    return y.reshape(rows, -1), tuple(d - n_lead for d in feats)


def _per_sample(values: torch.Tensor, kind: str, batch: int, steps: int) -> torch.Tensor:
    if kind == "tb":
        return values.view(steps, batch, -1).sum((0, 2))
    return values.view(batch, -1).sum(-1)  # 'b' and batch-major 'bt'


def fanout_map(module: nn.Module, sample_shape: tuple, mask: torch.Tensor | None = None) -> torch.Tensor:
    """F: for each input entry of one sample, its connections through non-zero weights (float64).

    For a conv, the gradient of sum(conv(x; w != 0)) with respect to x, which is a transposed
    convolution of ones with the padding, stride, dilation and groups of the layer, and folds any
    padding mode (reflect, circular, ...) back onto the input. For Linear, the non-zero weights of
    each input column.
    """
    if mask is None:
        mask = module.weight.detach().cpu() != 0
    w = mask.to(torch.float64)
    if isinstance(module, nn.Linear):
        return w.sum(0)
    with torch.enable_grad():
        x = torch.zeros((1, *sample_shape), dtype=torch.float64, requires_grad=True)
        y = module._conv_forward(x, w, None)
        (g,) = torch.autograd.grad(y.sum(), x)
    return g[0]


# ---------------------------------------------------------------------- rows


def _collect(done: list[dict], samples: int) -> dict[str, dict[str, torch.Tensor]]:
    """metric -> layer -> per-sample values over all finished batches (zeros where not run)."""
    offsets = []
    start = 0
    for d in done:
        offsets.append(start)
        start += d["size"]
    out: dict[str, dict[str, torch.Tensor]] = {m: {} for m in _PER_LAYER}
    for d, off in zip(done, offsets):
        sl = slice(off, off + d["size"])
        for metric, key in (
            ("synops_per_sample", "synops"),
            ("macs_per_sample", "macs"),
            ("dense_ops_per_sample", "dense"),
        ):
            for name, v in d[key].items():
                full = out[metric].setdefault(name, torch.zeros(samples, dtype=torch.float64))
                full[sl] += v if isinstance(v, torch.Tensor) else float(v)
        for name, tb in d["spikes"].items():
            full = out["spikes_per_sample"].setdefault(name, torch.zeros(samples, dtype=torch.float64))
            full[sl] += tb.sum(0)
            upd = out["neuron_updates_per_sample"].setdefault(name, torch.zeros(samples, dtype=torch.float64))
            upd[sl] += float(sum(d["updates"][name]))
    return out


def _rows(done: list[dict], samples: int) -> list[MetricRow]:
    """Per-sample means with stderr, per layer and total, from the finished batches."""
    per = _collect(done, samples)
    spikes_layers = per["spikes_per_sample"]
    updates_layers = per["neuron_updates_per_sample"]
    rows: list[MetricRow] = []

    def emit(metric: str, unit: str, per_layer: dict[str, torch.Tensor], total_always: bool = True) -> None:
        total = torch.zeros(samples, dtype=torch.float64)
        for name in sorted(per_layer):
            v = per_layer[name]
            total += v
            rows.append(_row(metric, unit, v, layer=name))
        if per_layer or total_always:
            rows.append(_row(metric, unit, total))

    for metric in _PER_LAYER:
        emit(metric, "count", per[metric])

    for name in sorted(spikes_layers):
        rate = _ratio(spikes_layers[name], updates_layers[name])
        if rate is not None:
            rows.append(_row("firing_rate", "fraction", rate, layer=name))
    if spikes_layers:
        tot_s = sum(spikes_layers.values())
        tot_u = sum(updates_layers.values())
        rate = _ratio(tot_s, tot_u)
        if rate is not None:
            rows.append(_row("firing_rate", "fraction", rate))

    if not spikes_layers:
        return rows
    # per timestep, summed over layers (the anytime plot)
    steps = max(d["steps"] for d in done)
    for t in range(steps):
        s_vals, rates = [], []
        for d in done:
            if t >= d["steps"]:
                continue
            st = torch.zeros(d["size"], dtype=torch.float64)
            neurons = 0
            for name, tb in d["spikes"].items():
                st += tb[t]
                neurons += d["updates"][name][t]
            s_vals.append(st)
            if neurons:
                rates.append(st / neurons)
        if not s_vals:
            continue
        # timesteps are counted from 1, as for the anytime accuracy (README, Design)
        rows.append(_row("spikes_per_sample", "count", torch.cat(s_vals), timestep=t + 1))
        if rates and len(rates) == len(s_vals):
            rows.append(_row("firing_rate", "fraction", torch.cat(rates), timestep=t + 1))
    return rows


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor | None:
    keep = den > 0
    if not bool(keep.any()):
        return None
    return num[keep] / den[keep]


def _row(
    metric: str, unit: str, values: torch.Tensor, layer: str | None = None, timestep: int | None = None
) -> MetricRow:
    mean, stderr = mean_and_stderr(values)
    return MetricRow(metric, mean, unit, n=int(values.numel()), stderr=stderr, layer=layer, timestep=timestep)
