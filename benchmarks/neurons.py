"""Benchmark: multi-step LIF networks in snnbench against snnTorch, SpikingJelly and Norse.

One network, written in each framework: Conv2d(2,12,5) - MaxPool2d(2) - LIF - Conv2d(12,32,5) -
MaxPool2d(2) - LIF - Flatten - Linear(800,10) - LIF, input [T, B, 2, 34, 34] of random events,
batch 32, T = 4, 16, 64, one CPU thread (plus the GPU when CUDA is available).

Every peer's neuron is configured so that its dynamics equal an snnbench twin bit for bit (same
charge, threshold, hard reset to 0 and surrogate), the twins get the peer's weights, and the run
checks it: output spikes must be identical and weight gradients equal to float rounding. Each
peer is timed against its own twin; the headline compares the slowest snnbench twin with the
fastest peer, and the most memory-hungry twin with the leanest peer.

    python benchmarks/neurons.py                 # full run (about two minutes on one core)
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


@dataclass(frozen=True)
class Variant:
    name: str
    peer: bool
    twin: str  # the snnbench variant with identical dynamics ("" for snnbench itself)
    config: str


VARIANTS = {
    "snnbench[sj]": Variant(
        "snnbench[sj]",
        False,
        "",
        "LIF(tau=2, decay_input=True, v_reset=0, v_threshold=1, surrogate='atan', alpha=2); fused",
    ),
    "snnbench[snntorch]": Variant(
        "snnbench[snntorch]",
        False,
        "",
        "LIF(tau=2, decay_input=False, v_reset=0, v_threshold=1, surrogate='atan', alpha=2); fused",
    ),
    "snnbench[norse]": Variant(
        "snnbench[norse]",
        False,
        "",
        "LIF(tau=2, decay_input=True, v_reset=0, v_threshold=1, surrogate='triangle', alpha=1); fused",
    ),
    "spikingjelly": Variant(
        "spikingjelly",
        True,
        "snnbench[sj]",
        "LIFNode(tau=2.0, decay_input=True, v_reset=0.0, v_threshold=1.0, ATan(alpha=2.0), step_mode='m'), "
        "layer.Conv2d/MaxPool2d/Linear(step_mode='m'); its own multi-step kernel for the device",
    ),
    "snntorch": Variant(
        "snntorch",
        True,
        "snnbench[snntorch]",
        "Leaky(beta=0.5, threshold=1.0, atan(alpha=2.0), reset_mechanism='zero', reset_delay=False), "
        "looped over T; synaptic layers on [T*B, ...]",
    ),
    "norse": Variant(
        "norse",
        True,
        "snnbench[norse]",
        "LIFBoxCell(LIFBoxParameters(tau_mem_inv=0.5, v_leak=0, v_th=1, v_reset=0, method='triangle', "
        "alpha=1), dt=1), looped over T; synaptic layers on [T*B, ...]",
    ),
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


def _synapses() -> list[nn.Module]:
    return [
        nn.Conv2d(2, 12, 5),
        nn.MaxPool2d(2),
        nn.Conv2d(12, 32, 5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(800, 10),
    ]


class Net(nn.Module):
    """conv-pool-LIF, conv-pool-LIF, flatten-linear-LIF; `wrap` folds T into the batch."""

    def __init__(self, wrap, neuron, reset=None) -> None:
        super().__init__()
        c1, p1, c2, p2, fl, fc = _synapses()
        self.syn = nn.ModuleList([c1, c2, fc])
        self.layers = nn.Sequential(
            wrap(c1), wrap(p1), neuron(), wrap(c2), wrap(p2), neuron(), wrap(fl), wrap(fc), neuron()
        )
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
        """Spikes of every neuron layer (for firing rates)."""
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
    if name.startswith("snnbench"):
        decay_input = name != "snnbench[snntorch]"
        surrogate, alpha = ("triangle", 1.0) if name == "snnbench[norse]" else ("atan", 2.0)
        return Net(
            MultiStep,
            lambda: LIF(tau=2.0, decay_input=decay_input, v_reset=0.0, surrogate=surrogate, alpha=alpha),
        )
    if name == "spikingjelly":
        return _spikingjelly_net()
    if name == "snntorch":
        return _snntorch_net()
    if name == "norse":
        return _norse_net()
    raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")


def _spikingjelly_net() -> Net:
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def wrap(m: nn.Module) -> nn.Module:
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

    net = Net(wrap, lif, reset=functional.reset_net)
    # its own layers replace the plain ones; keep the weight handles pointing at them
    net.syn = nn.ModuleList([net.layers[0], net.layers[3], net.layers[7]])
    return net


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
    """Timing server in its own process, so every framework runs with its own allocator state (as it
    would in a real training run) and none pays for another's heap. Reads a T per line, answers JSON."""
    torch.set_num_threads(1)
    weights = reference_weights()
    cache: dict[int, tuple] = {}
    print("ready", flush=True)
    for line in sys.stdin:
        t = int(line)
        if t not in cache:
            net = build(name).load(weights).to(device)
            x, grad = make_inputs(t, batch, device)
            for _ in range(2):  # warm-up: lazy init, JIT kernels, the allocator's steady state
                time_once(net, x, grad, device)
            cache = {t: (net, x, grad)}
        print(json.dumps(time_once(*cache[t], device)), flush=True)


class Workers:
    """One timing process per variant; rounds interleave them, one measurement at a time."""

    def __init__(self, names: list[str], batch: int, device: str) -> None:
        self.procs = {}
        for n in names:
            cmd = [sys.executable, __file__, "--worker", n, str(batch), device]
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    """Minimum over `rounds` interleaved repetitions: the machine may be shared, and the minimum is
    the run least disturbed by other processes. Milliseconds."""
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
    "peak memory: on CPU, growth of the process's resident set (VmHWM - VmRSS, /proc/self/status) over one "
    "forward+backward, in a fresh subprocess per (framework, T) after a small warm-up, with the peak reset "
    "through /proc/self/clear_refs and glibc's mmap threshold fixed at 64 KiB (MALLOC_MMAP_THRESHOLD_) "
    "so freed tensors go back to the OS and the figure counts live memory, not allocator caching; it "
    "includes activations, saved tensors, gradients and temporaries, and excludes the model, input and "
    "libraries. On CUDA: torch.cuda.max_memory_allocated minus the memory allocated before the step."
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

    def train():
        out = net(x)
        (out * grad).sum().backward()
        return None

    fwd = peak(lambda: forward_only(net, x))
    net.zero_grad(set_to_none=True)
    return {"fwd": fwd, "train": peak(train)}


def measure_memory(name: str, t: int, batch: int, device: str) -> dict[str, float] | str:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    cmd = [sys.executable, __file__, "--memory-child", name, str(t), str(batch), device]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def run_device(device: str, ts: list[int], batch: int, rounds: int, names: list[str]) -> dict:
    results = {}
    weights = reference_weights()
    workers = Workers(names, batch, device)
    for t in ts:
        x, grad = make_inputs(t, batch, device)
        nets = {n: build(n).load(weights).to(device) for n in names}
        with torch.no_grad():
            rates = [float(s.mean()) for s in nets["snnbench[sj]"].hidden(x)]
        checks = {}
        for n in names:
            v = VARIANTS[n]
            if v.peer:
                checks[n] = compare(nets[n], nets[v.twin], x, grad)
        del nets
        gc.collect()
        times = time_all(workers, names, t, rounds)
        memory = {n: measure_memory(n, t, batch, device) for n in names}
        results[t] = {"rates": rates, "checks": checks, "times": times, "memory": memory}
    workers.close()
    return results


def report(device: str, results: dict, names: list[str], batch: int) -> dict[int, dict[str, float]]:
    peers = [n for n in names if VARIANTS[n].peer]
    ours = [n for n in names if not VARIANTS[n].peer]
    summary = {}
    for t, r in results.items():
        times, memory = r["times"], r["memory"]
        mem_ok = {n: m for n, m in memory.items() if isinstance(m, dict)}
        best = {
            "fwd": min(times[n]["fwd"] for n in peers),
            "train": min(times[n]["train"] for n in peers),
            "mem": min((mem_ok[n]["train"] for n in peers if n in mem_ok), default=float("nan")),
        }
        fastest = min(peers, key=lambda n: times[n]["train"])
        print(
            f"\n[{device}] T={t}, batch {batch}: firing rates of snnbench[sj] layers 1-3: "
            + ", ".join(_fmt(v, 3) for v in r["rates"])
        )
        header = (
            "| variant | spikes equal to twin | grad rel diff | fwd ms | fwd x fastest peer | "
            "fwd+bwd ms | fwd+bwd x fastest peer | fwd peak MiB | train peak MiB | train mem x lowest peer |"
        )
        print(header)
        print("|" + "---|" * 10)
        for n in names:
            tm = times[n]
            if n in r["checks"]:
                differ, total, rel = r["checks"][n]
                eq = f"yes ({total} spikes)" if differ == 0 else f"NO: {differ} of {total} differ"
                gr = f"{rel:.1e}"
            else:
                eq, gr = "(twin)", ""
            m = memory[n]
            if isinstance(m, dict):
                mf, mt, mr = (
                    _fmt(m["fwd"] / 2**20),
                    _fmt(m["train"] / 2**20),
                    _fmt(m["train"] / best["mem"], 2),
                )
            else:
                mf, mt, mr = m, m, ""
            print(
                f"| {n} | {eq} | {gr} | {_fmt(tm['fwd'])} | {_fmt(tm['fwd'] / best['fwd'], 2)} | "
                f"{_fmt(tm['train'])} | {_fmt(tm['train'] / best['train'], 2)} | {mf} | {mt} | {mr} |"
            )
        slowest_ours = max(times[n]["train"] for n in ours)
        slowest_ours_fwd = max(times[n]["fwd"] for n in ours)
        worst_mem = max((mem_ok[n]["train"] for n in ours if n in mem_ok), default=float("nan"))
        summary[t] = {
            "speedup": best["train"] / slowest_ours,
            "speedup_fwd": best["fwd"] / slowest_ours_fwd,
            "mem": worst_mem / best["mem"],
            "fastest": fastest,
        }
        print(
            f"fastest peer (fwd+bwd): {fastest}; slowest snnbench twin vs it: fwd "
            f"{summary[t]['speedup_fwd']:.2f}x, fwd+bwd {summary[t]['speedup']:.2f}x faster; "
            f"most memory-hungry twin vs leanest peer: {summary[t]['mem']:.2f}x"
        )
    print(f"\n[{device}] cost growth with T (fwd+bwd ms per time step):")
    print("| variant | " + " | ".join(f"T={t}" for t in results) + " |")
    print("|---|" + "|".join("---" for _ in results) + "|")
    for n in names:
        cells = " | ".join(_fmt(results[t]["times"][n]["train"] / t, 2) for t in results)
        print(f"| {n} | {cells} |")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[4, 16, 64], help="time steps to run")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing repetitions (minimum kept)")
    ap.add_argument(
        "--memory-child", nargs=4, metavar=("VARIANT", "T", "BATCH", "DEVICE"), help=argparse.SUPPRESS
    )
    ap.add_argument("--worker", nargs=3, metavar=("VARIANT", "BATCH", "DEVICE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        name, batch, device = args.worker
        worker(name, int(batch), device)
        return 0
    if args.memory_child:
        name, t, batch, device = args.memory_child
        print(json.dumps(memory_child(name, int(t), int(batch), device)))
        return 0

    torch.set_num_threads(1)
    names = []
    for n in VARIANTS:
        why = available(n)
        if why is None:
            names.append(n)
        else:
            print(f"skipping {n}: {why}")
    if not any(VARIANTS[n].peer for n in names):
        print("neurons: no peer framework importable; nothing to compare against")
        return 1
    names = [n for n in names if VARIANTS[n].peer or any(VARIANTS[p].twin == n for p in names)]

    print(
        "neurons benchmark: Conv2d(2,12,5)-MaxPool2d(2)-LIF-Conv2d(12,32,5)-MaxPool2d(2)-LIF-Flatten-"
        f"Linear(800,10)-LIF, input [T, {args.batch}, 2, 34, 34] Bernoulli({EVENT_P}) events, "
        f"weights = default init x {GAINS}, loss = sum(spikes * fixed random tensor), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU thread"
    )
    print("configurations (each peer against the snnbench twin with the same dynamics):")
    for n in names:
        v = VARIANTS[n]
        print(f"  {n}: {v.config}" + (f"  [twin: {v.twin}]" if v.peer else ""))
    print(
        "snnbench's MultiStep runs 2-D conv/pool/batch-norm layers in channels_last on CPU; peers use their "
        "own layers (SpikingJelly) or plain torch.nn folded over [T*B, ...] (snnTorch, Norse)"
    )
    print(
        "times: each framework in its own timing process (its own allocator state), minimum of interleaved "
        "repetitions, milliseconds of process CPU time on CPU (user+sys: equals wall time for one thread on an "
        "idle core, and is not inflated by other load), wall time on CUDA; ratios are to the fastest peer's figure"
    )
    print(MEMORY_METHOD)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    summaries = {}
    for device in devices:
        results = run_device(device, args.T, args.batch, args.rounds, names)
        summaries[device] = report(device, results, names, args.batch)

    t_head = 16 if 16 in args.T else args.T[0]
    s = summaries["cpu"][t_head]
    if "cuda" in summaries:
        c = summaries["cuda"][t_head]
        print(f"neurons: GPU fwd+bwd speed-up vs fastest peer (T={t_head}) {c['speedup']:.2f}x (no target)")
    print(f"neurons: fwd+bwd speed-up vs fastest peer (T={t_head}) {s['speedup']:.2f}x (target >= 1.5x)")
    print(f"neurons: peak training memory vs lowest peer (T={t_head}) {s['mem']:.2f}x (target <= 1.0x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
