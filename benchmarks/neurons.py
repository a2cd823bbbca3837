"""Benchmark: multi-step LIF networks in snnbench against snnTorch, SpikingJelly and Norse.

One network, written in each framework: Conv2d(2,12,5) - MaxPool2d(2) - LIF - Conv2d(12,32,5) -
MaxPool2d(2) - LIF - Flatten - Linear(800,10) - LIF, input [T, B, 2, 34, 34] of random events,
batch 32, T = 4, 16, 64, one CPU thread (plus the GPU when CUDA is available).

Every peer's neuron is configured so that its dynamics equal an snnbench twin bit for bit (same
charge, threshold, hard reset to 0 and surrogate), the twins get the peer's weights, and the run
checks it: output spikes must be identical and weight gradients equal to float rounding. The
headline compares the slowest snnbench twin with the fastest peer, and the most memory-hungry
twin with the leanest peer. benchmarks/README.md explains the timing and memory methods.

    python benchmarks/neurons.py                 # full run (about three minutes on one core)
    python benchmarks/neurons.py --T 16 --rounds 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnbench.neurons import LIF, MultiStep  # noqa: E402

IN_SHAPE = (2, 34, 34)
GAINS = (4.0, 8.0, 8.0)  # default init times these, so that all three layers fire (rates printed)
EVENT_P = 0.1  # probability of an event per input pixel, channel and step


# ---------------------------------------------------------------- the network in each framework


# float32's next value above 1: for float32 h, h >= ABOVE_ONE is exactly h > 1, the firing rule of
# snnTorch and Norse (snnbench and SpikingJelly fire at h >= v_threshold; the two differ only when a
# membrane lands exactly on the threshold, which does happen over millions of updates).
ABOVE_ONE = 1.0 + 2.0**-23


@dataclass(frozen=True)
class Variant:
    name: str
    twin: str | None  # for a peer: the snnbench variant with identical dynamics
    config: str = ""
    lif: dict | None = None  # for snnbench: the LIF settings
    info: bool = False  # shown for reference, not in the headline: snnbench with MultiStep.fast off

    @property
    def peer(self) -> bool:
        return self.twin is not None

    def describe(self) -> str:
        if self.lif is None:
            return self.config
        lif = "LIF(" + ", ".join(f"{k}={v!r}" for k, v in self.lif.items()) + "), fused loop"
        return lif + ("; MultiStep.fast = False, so only the neuron is snnbench's" if self.info else "")


_LIF = dict(tau=2.0, decay_input=True, v_reset=0.0, v_threshold=1.0, surrogate="atan", alpha=2.0)
VARIANTS = {
    v.name: v
    for v in [
        Variant("snnbench[sj]", None, lif=_LIF),
        Variant("snnbench[sj] plain layers", None, lif=_LIF, info=True),
        Variant("snnbench[snntorch]", None, lif={**_LIF, "decay_input": False, "v_threshold": ABOVE_ONE}),
        Variant(
            "snnbench[norse]",
            None,
            lif={**_LIF, "v_threshold": ABOVE_ONE, "surrogate": "triangle", "alpha": 1.0},
        ),
        Variant(
            "spikingjelly",
            "snnbench[sj]",
            "LIFNode(tau=2.0, decay_input=True, v_reset=0.0, v_threshold=1.0, ATan(alpha=2.0), step_mode='m') "
            "and layer.Conv2d/MaxPool2d/Flatten/Linear(step_mode='m'); SpikingJelly 2 has no backend argument "
            "and on CPU runs its torch loop under autograd",
        ),
        Variant(
            "snntorch",
            "snnbench[snntorch]",
            "Leaky(beta=0.5, threshold=1.0, spike_grad=atan(alpha=2.0), reset_mechanism='zero', "
            "reset_delay=False) looped over T; torch.nn layers on [T*B, ...]",
        ),
        Variant(
            "norse",
            "snnbench[norse]",
            "LIFBoxCell(LIFBoxParameters(tau_mem_inv=0.5, v_leak=0, v_th=1, v_reset=0, method='triangle', "
            "alpha=1), dt=1) looped over T; torch.nn layers on [T*B, ...]",
        ),
    ]
}


def reference_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """PyTorch's default init (seeded) times GAINS; every variant loads these."""
    torch.manual_seed(seed)
    layers = [nn.Conv2d(2, 12, 5), nn.Conv2d(12, 32, 5), nn.Linear(800, 10)]
    out = {}
    for i, (layer, gain) in enumerate(zip(layers, GAINS)):
        out[f"{i}.weight"] = layer.weight.detach() * gain
        out[f"{i}.bias"] = layer.bias.detach() * gain
    return out


class Net(nn.Module):
    """conv-pool-LIF, conv-pool-LIF, flatten-linear-LIF. `wrap` makes a layer multi-step (or returns
    the framework's own replacement); with `blocks`, each conv and its pooling share one wrapper."""

    def __init__(self, wrap, neuron, reset=None, blocks: bool = False) -> None:
        super().__init__()
        c1, p1, c2, p2 = nn.Conv2d(2, 12, 5), nn.MaxPool2d(2), nn.Conv2d(12, 32, 5), nn.MaxPool2d(2)
        fl, fc = nn.Flatten(), nn.Linear(800, 10)
        if blocks:
            b1, b2 = wrap(nn.Sequential(c1, p1)), wrap(nn.Sequential(c2, p2))
            self.layers = nn.Sequential(b1, neuron(), b2, neuron(), wrap(fl), w_fc := wrap(fc), neuron())
            self.syn = [c1, c2, fc]
        else:
            w1, w2, w_fc = wrap(c1), wrap(c2), wrap(fc)
            self.layers = nn.Sequential(
                w1, wrap(p1), neuron(), w2, wrap(p2), neuron(), wrap(fl), w_fc, neuron()
            )
            # the layers holding weights: the wrapped module, or the framework's own replacement
            self.syn = [getattr(m, "module", m) for m in (w1, w2, w_fc)]
        self._reset = reset

    def load(self, weights: dict[str, torch.Tensor]) -> Net:
        with torch.no_grad():
            for i, layer in enumerate(self.syn):
                layer.weight.copy_(weights[f"{i}.weight"])
                layer.bias.copy_(weights[f"{i}.bias"])
        return self

    def weight_grads(self) -> list[torch.Tensor]:
        return [p.grad for layer in self.syn for p in (layer.weight, layer.bias)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._reset is not None:
            self._reset(self.layers)
        return self.layers(x)

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Spikes of every snnbench neuron layer (for firing rates)."""
        out = []
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, LIF):
                out.append(x)
        return out


class Fold(nn.Module):
    """Plain-torch multi-step wrapper for the peers that have none: [T, B, ...] -> [T*B, ...]."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, (t, b))


def build(name: str) -> Net:
    if name in VARIANTS and VARIANTS[name].lif is not None:
        settings, plain = VARIANTS[name].lif, VARIANTS[name].info

        def wrap(m: nn.Module) -> MultiStep:
            ms = MultiStep(m)
            ms.fast = not plain
            return ms

        return Net(wrap, lambda: LIF(**settings), blocks=not plain)
    if name == "spikingjelly":
        return _spikingjelly_net()
    if name == "snntorch":
        return _snntorch_net()
    if name == "norse":
        return _norse_net()
    raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")


def _spikingjelly_net() -> Net:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def wrap(m: nn.Module) -> nn.Module:  # SpikingJelly's own multi-step layers
        if isinstance(m, nn.Conv2d):
            return layer.Conv2d(m.in_channels, m.out_channels, m.kernel_size, step_mode="m")
        if isinstance(m, nn.MaxPool2d):
            return layer.MaxPool2d(m.kernel_size, step_mode="m")
        if isinstance(m, nn.Flatten):
            return layer.Flatten(step_mode="m")
        return layer.Linear(m.in_features, m.out_features, step_mode="m")

    def lif() -> nn.Module:
        return neuron.LIFNode(
            tau=2.0,
            decay_input=True,
            v_threshold=1.0,
            v_reset=0.0,
            surrogate_function=surrogate.ATan(alpha=2.0),
            detach_reset=False,
            step_mode="m",
        )

    return Net(wrap, lif, reset=functional.reset_net)


class _SnnTorchLIF(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import snntorch
        from snntorch import surrogate

        self.lif = snntorch.Leaky(
            beta=0.5,
            threshold=1.0,
            spike_grad=surrogate.atan(alpha=2.0),
            reset_mechanism="zero",
            reset_delay=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem = self.lif.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk, mem = self.lif(x[t], mem)
            out.append(spk)
        return torch.stack(out)


def _snntorch_net() -> Net:
    return Net(Fold, _SnnTorchLIF)


class _NorseLIF(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from norse.torch import LIFBoxCell, LIFBoxParameters

        p = LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(0.5),
            v_leak=torch.as_tensor(0.0),
            v_th=torch.as_tensor(1.0),
            v_reset=torch.as_tensor(0.0),
            method="triangle",
            alpha=1.0,
        )
        self.cell = LIFBoxCell(p, dt=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state = None
        out = []
        for t in range(x.shape[0]):
            z, state = self.cell(x[t], state)
            out.append(z)
        return torch.stack(out)


def _norse_net() -> Net:
    return Net(Fold, _NorseLIF)


def available(name: str) -> str | None:
    """None if the variant can run here, else why not."""
    module = {"spikingjelly": "spikingjelly", "snntorch": "snntorch", "norse": "norse"}.get(name)
    if module is None:
        return None
    try:
        __import__(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not installed here"
        return f"{module} not importable ({type(exc).__name__}: {exc})"
    return None


# ---------------------------------------------------------------- workloads


def make_inputs(t: int, batch: int, device: str, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((t, batch, *IN_SHAPE), generator=g) < EVENT_P).float()
    grad = torch.randn((t, batch, 10), generator=g)
    return x.to(device), grad.to(device)


def forward_only(net: Net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


def train_step(net: Net, x: torch.Tensor, grad: torch.Tensor) -> None:
    net.zero_grad(set_to_none=True)
    out = net(x)
    (out * grad).sum().backward()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_once(net: Net, x, grad, device: str) -> dict[str, float]:
    """One no-grad forward and one training step, in milliseconds: on CPU the process's CPU time
    (user + sys, page faults included), which for a one-thread run equals its wall time on an idle
    core but is not inflated when other processes share the machine; on CUDA wall time."""
    clock = time.perf_counter if device == "cuda" else time.process_time
    _sync(device)
    t0 = clock()
    forward_only(net, x)
    _sync(device)
    t1 = clock()
    train_step(net, x, grad)
    _sync(device)
    t2 = clock()
    return {"fwd": (t1 - t0) * 1e3, "train": (t2 - t1) * 1e3}


def worker(name: str, batch: int, device: str) -> None:
    """Timing server in its own process, so that every framework runs with its own heap, as in a
    real training run, and none pays for another's. Reads a T per line, answers one JSON line."""
    torch.set_num_threads(1)
    weights = reference_weights()
    cache: dict[int, tuple] = {}
    print("ready", flush=True)
    for line in sys.stdin:
        t = int(line)
        if t not in cache:
            cache.clear()
            gc.collect()
            net = build(name).load(weights).to(device)
            x, grad = make_inputs(t, batch, device)
            for _ in range(3):  # warm-up: lazy init, oneDNN kernels, the heap's steady state
                time_once(net, x, grad, device)
            cache[t] = (net, x, grad)
        print(json.dumps(time_once(*cache[t], device)), flush=True)


# glibc's default heap trimming hands freed memory back to the OS and faults it in again on the
# next step, or not, depending on which block happens to sit at the top of the heap: the same
# network measured 0 to 13,000 page faults per step (~1.4 us each here) from one process to the
# next. The timing processes therefore all run with trimming off and mmap only above 32 MiB, the
# same for every framework, so that the times compare computation; --default-malloc runs glibc as is.
STEADY_HEAP = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


class Workers:
    """One timing process per variant; rounds interleave them, one measurement at a time."""

    def __init__(self, names: list[str], batch: int, device: str, env: dict[str, str]) -> None:
        self.procs = {}
        for n in names:
            cmd = [sys.executable, __file__, "--worker", n, str(batch), device]
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"timing worker for {n} failed to start")
            self.procs[n] = p

    def time(self, name: str, t: int) -> dict[str, float]:
        p = self.procs[name]
        p.stdin.write(f"{t}\n")
        p.stdin.flush()
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"timing worker for {name} died")
        return json.loads(line)

    def close(self) -> None:
        for p in self.procs.values():
            p.stdin.close()
            p.wait(timeout=60)


def time_all(workers: Workers, names: list[str], t: int, rounds: int) -> dict[str, dict[str, float]]:
    """Minimum over `rounds` interleaved repetitions, in milliseconds (the minimum is the run least
    disturbed by whatever else the machine is doing)."""
    best = {n: {"fwd": float("inf"), "train": float("inf")} for n in names}
    for _ in range(rounds):
        for n in names:
            m = workers.time(n, t)
            best[n] = {k: min(best[n][k], m[k]) for k in best[n]}
    return best


def compare(peer: Net, twin: Net, x, grad) -> tuple[int, int, float]:
    """(differing output spikes, output spikes compared, max relative weight-gradient difference)."""
    outs, grads = [], []
    for net in (peer, twin):
        net.zero_grad(set_to_none=True)
        out = net(x)
        (out * grad).sum().backward()
        outs.append(out.detach())
        grads.append(net.weight_grads())
    differ = int((outs[0] != outs[1]).sum())
    rel = 0.0
    for gp, gt in zip(*grads):
        scale = float(gt.abs().max()) or 1.0
        rel = max(rel, float((gp - gt).abs().max()) / scale)
    return differ, outs[0].numel(), rel


# ---------------------------------------------------------------- peak memory


MEMORY_METHOD = (
    "peak memory: growth of the resident set (VmHWM - VmRSS in /proc/self/status) over one no-grad forward "
    "and over one forward+backward, each framework and T in a fresh process after a small warm-up, the peak "
    "reset through /proc/self/clear_refs, with glibc's mmap threshold fixed at 64 KiB (MALLOC_MMAP_THRESHOLD_) "
    "so that freed tensors leave the resident set at once and the figure counts live memory, not allocator "
    "caching; it includes activations, saved tensors, gradients and temporaries, not the model, input or "
    "libraries. On CUDA: torch.cuda.max_memory_allocated minus what was allocated before."
)


def _proc_status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", text).group(1)) * 1024 for k in ("VmRSS", "VmHWM")}


def _peak_cpu(fn) -> float:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = _proc_status()["VmRSS"]
    keep = fn()
    peak = _proc_status()["VmHWM"]
    del keep
    return float(peak - base)


def _peak_cuda(fn) -> float:
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    keep = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del keep
    return float(peak - base)


def memory_child(name: str, t: int, batch: int, device: str) -> dict[str, float]:
    """Runs inside the fresh subprocess: peak bytes of a no-grad forward and of a training step."""
    torch.set_num_threads(1)
    net = build(name).load(reference_weights()).to(device)
    small_x, small_g = make_inputs(2, 2, device)
    forward_only(net, small_x)
    train_step(net, small_x, small_g)
    net.zero_grad(set_to_none=True)
    x, grad = make_inputs(t, batch, device)
    peak = _peak_cuda if device == "cuda" else _peak_cpu

    def train() -> None:
        out = net(x)
        (out * grad).sum().backward()

    fwd = peak(lambda: forward_only(net, x))
    net.zero_grad(set_to_none=True)
    return {"fwd": fwd, "train": peak(train)}


def measure_memory(name: str, t: int, batch: int, device: str) -> dict[str, float] | str:
    if device != "cuda" and not Path("/proc/self/clear_refs").exists():
        return "n/a (needs Linux /proc)"
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(64 << 10))
    cmd = [sys.executable, __file__, "--memory-child", name, str(t), str(batch), device]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return f"failed: {last[0]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def run_device(device: str, ts: list[int], batch: int, rounds: int, names: list[str], env) -> dict:
    results = {}
    weights = reference_weights()
    workers = Workers(names, batch, device, env)
    try:
        for t in ts:
            x, grad = make_inputs(t, batch, device)
            nets = {n: build(n).load(weights).to(device) for n in names}
            with torch.no_grad():
                rates = [float(s.mean()) for s in nets["snnbench[sj]"].hidden(x)]
            checks = {n: compare(nets[n], nets[VARIANTS[n].twin], x, grad) for n in names if VARIANTS[n].peer}
            del nets
            gc.collect()
            times = time_all(workers, names, t, rounds)
            memory = {n: measure_memory(n, t, batch, device) for n in names}
            results[t] = {"rates": rates, "checks": checks, "times": times, "memory": memory}
    finally:
        workers.close()
    return results


def summarize(times: dict, memory: dict, names: list[str]) -> dict[str, float]:
    """Fastest/leanest peer against the slowest/hungriest snnbench twin (the conservative pairing)."""
    peers = [n for n in names if VARIANTS[n].peer]
    ours = [n for n in names if not VARIANTS[n].peer and not VARIANTS[n].info]
    mem_ok = {n: m["train"] for n, m in memory.items() if isinstance(m, dict)}
    best_mem = min((mem_ok[n] for n in peers if n in mem_ok), default=float("nan"))
    worst_mem = max((mem_ok[n] for n in ours if n in mem_ok), default=float("nan"))
    return {
        "fastest": min(peers, key=lambda n: times[n]["train"]),
        "best_fwd": min(times[n]["fwd"] for n in peers),
        "best_train": min(times[n]["train"] for n in peers),
        "best_mem": best_mem,
        "speedup_fwd": min(times[n]["fwd"] for n in peers) / max(times[n]["fwd"] for n in ours),
        "speedup": min(times[n]["train"] for n in peers) / max(times[n]["train"] for n in ours),
        "mem": worst_mem / best_mem,
    }


def report(device: str, results: dict, names: list[str]) -> dict[int, dict[str, float]]:
    summary = {}
    for t, r in results.items():
        times, memory = r["times"], r["memory"]
        s = summary[t] = summarize(times, memory, names)
        rates = ", ".join(_fmt(v, 3) for v in r["rates"])
        print(f"\n[{device}] T={t}; firing rates of snnbench[sj] layers 1-3: {rates}")
        print(
            "| variant | spikes equal to twin | weight-grad max rel diff | fwd ms | fwd x fastest peer | "
            "fwd+bwd ms | fwd+bwd x fastest peer | fwd peak MiB | train peak MiB | train peak x lowest peer |"
        )
        print("|" + "---|" * 10)
        for n in names:
            if n in r["checks"]:
                differ, total, rel = r["checks"][n]
                eq = f"yes ({total} of {total})" if differ == 0 else f"NO ({differ} of {total} differ)"
                gr = f"{rel:.1e}"
            else:
                eq, gr = ("(reference row)" if VARIANTS[n].info else "(snnbench)"), ""
            m = memory[n]
            if isinstance(m, dict):
                mf, mt, mr = (
                    _fmt(m["fwd"] / 2**20),
                    _fmt(m["train"] / 2**20),
                    _fmt(m["train"] / s["best_mem"], 2),
                )
            else:
                mf, mt, mr = m, m, ""
            tm = times[n]
            print(
                f"| {n} | {eq} | {gr} | {_fmt(tm['fwd'])} | {_fmt(tm['fwd'] / s['best_fwd'], 2)} | "
                f"{_fmt(tm['train'])} | {_fmt(tm['train'] / s['best_train'], 2)} | {mf} | {mt} | {mr} |"
            )
        print(
            f"fastest peer (fwd+bwd): {s['fastest']}; slowest snnbench twin against the fastest peer: fwd "
            f"{s['speedup_fwd']:.2f}x, fwd+bwd {s['speedup']:.2f}x faster; hungriest twin's training peak "
            f"against the leanest peer's: {s['mem']:.2f}x"
        )
    print(f"\n[{device}] cost growth with T: fwd+bwd ms per time step")
    print("| variant | " + " | ".join(f"T={t}" for t in results) + " |")
    print("|---|" + "---|" * len(results))
    for n in names:
        cells = " | ".join(_fmt(results[t]["times"][n]["train"] / t, 2) for t in results)
        print(f"| {n} | {cells} |")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[4, 16, 64], help="time steps to run")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing repetitions (minimum kept)")
    ap.add_argument("--default-malloc", action="store_true", help="time with glibc's default heap settings")
    ap.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.memory_child:
        name, t, batch, device = args.memory_child
        print(json.dumps(memory_child(name, int(t), int(batch), device)))
        return 0
    if args.worker:
        name, batch, device = args.worker
        worker(name, int(batch), device)
        return 0

    torch.set_num_threads(1)
    names = []
    for n in VARIANTS:
        why = available(n)
        if why is None:
            names.append(n)
        else:
            print(f"skipping {n}: {why}")
    names = [
        n for n in names if VARIANTS[n].peer or VARIANTS[n].info or any(VARIANTS[p].twin == n for p in names)
    ]
    if not any(VARIANTS[n].peer for n in names):
        print("neurons: no peer framework importable; nothing to compare against")
        return 1
    env = dict(os.environ) if args.default_malloc else dict(os.environ, **STEADY_HEAP)

    print(
        "neurons benchmark: Conv2d(2,12,5)-MaxPool2d(2)-LIF-Conv2d(12,32,5)-MaxPool2d(2)-LIF-Flatten-Linear(800,10)-"
        f"LIF on [T, {args.batch}, 2, 34, 34] Bernoulli({EVENT_P}) events; weights: default init x {GAINS}, "
        f"loaded into every framework; loss: sum(spikes * fixed random tensor); torch {torch.__version__}, "
        "1 CPU thread"
    )
    print("configurations (each peer is timed and checked against the snnbench twin with its dynamics):")
    for n in names:
        v = VARIANTS[n]
        print(f"  {n}: {v.describe()}" + (f"  [twin: {v.twin}]" if v.peer else ""))
    print(
        "layers: snnbench writes each conv and its pooling as MultiStep(nn.Sequential(Conv2d, MaxPool2d)), which "
        "on CPU runs as one block in chunks of samples (channels_last; the conv output is never stored whole), "
        "the other layers as MultiStep(layer); SpikingJelly uses its own step_mode='m' layers; snnTorch and Norse "
        f"have no multi-step layers and get torch.nn folded over [T*B, ...]. v_threshold={ABOVE_ONE!r} is "
        "float32's next value above 1, so that the twins of snnTorch and Norse fire at h > 1 as those do"
    )
    print(
        "times: each framework in its own timing process, minimum of interleaved repetitions; CPU: process CPU "
        "time in ms (user+sys: equals wall time for one thread on an idle core, and is not inflated by other "
        "load); CUDA: wall time. Heap: "
        + ("glibc defaults" if args.default_malloc else " ".join(f"{k}={v}" for k, v in STEADY_HEAP.items()))
        + " (see STEADY_HEAP in this file for why)"
    )
    print(MEMORY_METHOD)

    summaries = {"cpu": report("cpu", run_device("cpu", args.T, args.batch, args.rounds, names, env), names)}
    if torch.cuda.is_available():  # informational: the targets are for CPU
        try:
            results = run_device("cuda", args.T, args.batch, args.rounds, names, env)
            summaries["cuda"] = report("cuda", results, names)
        except Exception as exc:  # noqa: BLE001 - a peer's GPU backend may be missing; CPU results stand
            print(f"\n[cuda] GPU timing failed: {type(exc).__name__}: {exc}")

    t_head = 16 if 16 in args.T else args.T[0]
    s = summaries["cpu"][t_head]
    if not args.default_malloc:  # the same timing with glibc as is, so that the heap setting is visible
        workers = Workers(names, args.batch, "cpu", dict(os.environ))
        try:
            plain = time_all(workers, names, t_head, args.rounds)
        finally:
            workers.close()
        d = summarize(plain, {}, names)
        print(
            f"\nwith glibc's default heap settings instead (T={t_head}, CPU): fwd {d['speedup_fwd']:.2f}x, "
            f"fwd+bwd {d['speedup']:.2f}x faster than the fastest peer ({d['fastest']}); page faults that "
            "depend on heap layout included"
        )
    if "cuda" in summaries:
        c = summaries["cuda"][t_head]
        print(
            f"\nGPU (no target): fwd+bwd speed-up vs fastest peer (T={t_head}) {c['speedup']:.2f}x, "
            f"peak training memory vs lowest peer {c['mem']:.2f}x"
        )
    print()
    print(f"neurons: fwd+bwd speed-up vs fastest peer (T={t_head}) {s['speedup']:.2f}x (target >= 1.5x)")
    print(f"neurons: peak training memory vs lowest peer (T={t_head}) {s['mem']:.2f}x (target <= 1.0x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
