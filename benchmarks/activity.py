"""Cost of exact activity counting, beside NeuroBench's and SpikingJelly's counters.

Model: 2 conv + 1 linear LIF layers (snnbench neurons, MultiStep-folded convs), T=16, batch 32,
2x34x34 binary random events (~10% density), one CPU thread. Measured in this one run:
- time: evaluation with ActivityProbe + FootprintProbe (the harness loop: reset_state, probes'
  before/after_batch, forward under no_grad) vs the bare no-grad forward over the same batches.
  Rounds alternate the two; times are the process's CPU time (one thread). The ratio is the
  median over rounds of (variant / the bare run just before it): on a shared machine the speed
  of the same forward drifts between rounds (other load, cache and memory-bandwidth sharing), and
  adjacent runs share the drift. Best-round times and the wall-clock ratio are printed beside it.
  The timing runs in a child process with pinned glibc malloc settings (TIMING_MALLOC); the
  probes' one-off numba JIT (about a second per process) is left out by a warm-up batch;
- peak memory: each variant in a fresh subprocess, peak RSS during the loop (VmHWM, reset after a
  warm-up batch) minus RSS before it (glibc told to return freed memory at once,
  MALLOC_MMAP_THRESHOLD_, the same for both);
- peers on the same model and data: NeuroBench 2.3 (SynapticOperations: effective ACs/MACs and
  Dense; ActivationSparsity) and SpikingJelly's DispatchCounterMode with SynOpCounter and
  MACCounter: their time vs the bare forward, and whether their counts equal ours.

Run: .venv/bin/python benchmarks/activity.py [--batches 8] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

T, B, SHAPE, DENSITY, CLASSES = 16, 32, (2, 34, 34), 0.10, 10

# glibc moves its mmap threshold as a process frees large blocks, so the same forward runs at
# very different speeds depending on what the process did before (page faults on every fresh
# mmap). Timing runs pin it where glibc's own adjustment tops out (32 MiB, trim at 2x): the
# fast, page-fault-light regime, where a probe's fixed cost weighs most.
TIMING_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}


def build_model():
    import torch
    from torch import nn

    from snnbench.neurons import LIF, MultiStep

    torch.manual_seed(0)
    model = nn.Sequential(
        MultiStep(nn.Conv2d(2, 16, 3, padding=1, bias=False)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Conv2d(16, 32, 3, padding=1, bias=False)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(32 * 8 * 8, CLASSES, bias=False)),
        LIF(tau=2.0),
    )
    with torch.no_grad():  # scale so every layer fires a few percent of the time
        for m, gain in ((model[0].module, 10.0), (model[3].module, 5.0), (model[7].module, 4.0)):
            m.weight.mul_(gain)
    return model.eval()


def make_batches(n: int):
    import torch

    g = torch.Generator().manual_seed(1)
    return [(torch.rand((T, B, *SHAPE), generator=g) < DENSITY).float() for _ in range(n)]


def bare(model, batches) -> None:
    import torch

    from snnbench.frameworks import reset_state

    with torch.no_grad():
        for x in batches:
            reset_state(model)
            model(x)


def probed(model, batches):
    import torch

    from snnbench.frameworks import reset_state
    from snnbench.metrics.activity import ActivityProbe
    from snnbench.metrics.footprint import FootprintProbe

    probes = [ActivityProbe(), FootprintProbe()]
    for p in probes:
        p.attach(model, None)
    with torch.no_grad():
        for x in batches:
            reset_state(model)
            for p in probes:
                p.before_batch(x.shape[1], x.shape[0])
            out = model(x)
            for p in probes:
                p.after_batch(out)
    for p in probes:
        p.detach()
    return [r for p in probes for r in p.rows()], probes[0]


def neurobench_run(model, batches) -> dict:
    import torch
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel
    from torch.utils.data import DataLoader, TensorDataset

    from snnbench.neurons import LIF

    class BatchFirst(torch.nn.Module):  # NeuroBench feeds [B, T, ...] and counts samples on dim 0
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.transpose(0, 1).contiguous())

    data = torch.cat([x.transpose(0, 1) for x in batches])
    loader = DataLoader(TensorDataset(data, torch.zeros(len(data), dtype=torch.long)), batch_size=B)
    nb_model = TorchModel(BatchFirst(model))
    nb_model.add_activation_module(LIF)
    bench = Benchmark(nb_model, loader, [], [], [[], [SynapticOperations, ActivationSparsity]])
    with torch.no_grad():
        res = bench.run(quiet=True)
    nb_model.cleanup_hooks()
    return res


def spikingjelly_run(model, batches) -> tuple[float, float]:
    import torch
    from spikingjelly.activation_based.op_counter import DispatchCounterMode, MACCounter, SynOpCounter

    from snnbench.frameworks import reset_state

    syn, mac = SynOpCounter(), MACCounter()
    with torch.no_grad(), DispatchCounterMode([syn, mac]):
        for x in batches:
            reset_state(model)
            model(x)
    n = sum(x.shape[1] for x in batches)
    return syn.get_total() / n, mac.get_total() / n


def float64_reference(model, batches) -> tuple[float, float]:
    """Exact synops and MACs per sample by a different route: every synaptic call redone in
    float64 with 0/1 weights (|x| for integer-valued input, x != 0 otherwise), summed whole."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    totals = {"syn": 0.0, "mac": 0.0}

    def hook(mod, args, out):
        x = args[0].double()
        integral = bool(torch.equal(x, x.round()))
        a = x.abs() if integral else (x != 0).double()
        w = (mod.weight != 0).double()
        y = F.linear(a, w) if isinstance(mod, nn.Linear) else mod._conv_forward(a, w, None)
        totals["syn" if integral else "mac"] += float(y.sum())

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    bare(model, batches)
    for h in handles:
        h.remove()
    n = sum(x.shape[1] for x in batches)
    return totals["syn"] / n, totals["mac"] / n


def timed(fn, *args) -> float:
    """CPU seconds of this (single-threaded) process: unlike wall time, not inflated by whatever
    else runs on a shared machine."""
    t0 = time.process_time()
    fn(*args)
    return time.process_time() - t0


def wall(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def memory_child(kind: str, n_batches: int) -> None:
    """Print peak RSS growth (bytes) of one variant over its loop, measured in this process."""
    import torch

    torch.set_num_threads(1)
    model = build_model()
    batches = make_batches(n_batches)
    bare(model, batches[:1])  # warm up one-time allocations (thread pools, kernels) in both variants
    if kind == "probes":
        probed(model, batches[:1])
    base = _status_kb("VmRSS")
    _reset_peak()
    (bare if kind == "bare" else probed)(model, batches)
    peak = _status_kb("VmHWM")
    print(json.dumps({"base": base, "peak": peak, "grew": peak - base}))


def _status_kb(field: str) -> int:
    """A /proc/self/status figure in bytes. VmHWM is this process image's own peak RSS (unlike
    ru_maxrss, which Linux carries over from the forked parent across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # "5" resets VmHWM to the current RSS
        f.write("5")


def peak_growth(kind: str, n_batches: int) -> int:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", kind, "--batches", str(n_batches)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["grew"]


def compare(name: str, theirs: float, ours: float, why: str = "") -> str:
    """'equal' only when identical (or, for fractions, within float rounding); else by how much."""
    if theirs == ours:
        return f"{name}: equal ({ours:.10g})"
    rel = (theirs - ours) / ours if ours else float("inf")
    if abs(ours) < 1 and abs(rel) < 1e-9:
        return f"{name}: equal to float rounding ({ours:.10g})"
    why = f"; {why}" if why else ""
    return f"{name}: differs by {rel * 100:+.3g}% (theirs {theirs:.10g}, ours {ours:.10g}{why})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--memory-child", choices=["bare", "probes"])
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batches)
        return 0
    if os.environ.get("SNNBENCH_BENCH_CHILD") != "1":  # time under pinned allocator settings
        env = dict(os.environ, SNNBENCH_BENCH_CHILD="1", OMP_NUM_THREADS="1", **TIMING_MALLOC)
        return subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env).returncode

    import torch

    torch.set_num_threads(1)
    model = build_model()
    batches = make_batches(args.batches)
    bare(model, batches[:1])
    probed(model, batches[:1])

    variants = {"probes": probed, "neurobench": neurobench_run, "spikingjelly": spikingjelly_run}
    for fn in variants.values():  # warm up
        fn(model, batches[:1])
    t_bare: list[float] = []
    t_var: dict[str, list[float]] = {k: [] for k in variants}
    pairs: dict[str, list[float]] = {k: [] for k in variants}
    wall_pairs: list[float] = []
    for r in range(args.rounds):  # each variant right after its own bare run
        for name, fn in variants.items():
            if name != "probes" and r % 3:  # the slow peers every third round
                continue
            b = timed(bare, model, batches)
            t_bare.append(b)
            t_var[name].append(timed(fn, model, batches))
            pairs[name].append(t_var[name][-1] / b)
        wall_pairs.append(wall(probed, model, batches) / wall(bare, model, batches))
    tb = min(t_bare)
    ratio = statistics.median(pairs["probes"])

    rows, probe = probed(model, batches)
    total = {
        r.metric: r.value for r in rows if r.layer is None and r.timestep is None and r.condition is None
    }
    nb = neurobench_run(model, batches)
    sj_syn, sj_mac = spikingjelly_run(model, batches)
    ref_syn, ref_mac = float64_reference(model, batches)
    m_bare = peak_growth("bare", args.batches)
    m_probe = peak_growth("probes", args.batches)

    n = B * args.batches
    print(f"model: 2 conv + 1 linear LIF (snnbench, MultiStep), T={T}, B={B}, {SHAPE}, density {DENSITY}")
    print(f"samples {n}, 1 CPU thread, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"allocator: {' '.join(f'{k}={v}' for k, v in TIMING_MALLOC.items())}")
    print(
        "time: CPU time of this process, best round; ratio: median over rounds of (variant / bare run before it)"
    )
    print(f"bare forward           {tb * 1e3 / args.batches:8.1f} ms/batch")
    for label, name in (("snnbench all probes", "probes"), ("NeuroBench 2.3", "neurobench"),
                        ("SpikingJelly counters", "spikingjelly")):  # fmt: skip
        q = sorted(pairs[name])
        best = min(t_var[name])
        print(
            f"{label:22s} {best * 1e3 / args.batches:8.1f} ms/batch  {statistics.median(q):.3f}x  "
            f"(pair ratios {q[0]:.3f}..{q[-1]:.3f}, n={len(q)})"
        )
    print(f"  snnbench wall-clock, median of paired rounds: {statistics.median(wall_pairs):.3f}x")
    print(f"peak memory growth: bare {m_bare / 2**20:.1f} MiB, with probes {m_probe / 2**20:.1f} MiB")
    print(
        f"ours: synops {total['synops_per_sample']:.1f}, macs {total['macs_per_sample']:.1f}, "
        f"dense {total['dense_ops_per_sample']:.1f}, spikes {total['spikes_per_sample']:.1f}, "
        f"firing rate {total['firing_rate']:.5f} per sample"
    )
    syn, mac = total["synops_per_sample"], total["macs_per_sample"]
    nb_ops = nb["SynapticOperations"]
    float32_sum = "NeuroBench sums its float32 conv outputs" if nb_ops["Effective_ACs"] != ref_syn else ""
    padding = "NeuroBench leaves out padding taps; thop and snnbench count them"
    lines = [
        ("exact float64 reference", "synops", ref_syn, syn, ""),
        ("exact float64 reference", "macs", ref_mac, mac, ""),
        ("NeuroBench Effective_ACs", "synops", nb_ops["Effective_ACs"], syn, float32_sum),
        ("NeuroBench Effective_MACs", "macs", nb_ops["Effective_MACs"], mac, ""),
        ("NeuroBench Dense", "dense_ops", nb_ops["Dense"], total["dense_ops_per_sample"], padding),
        (
            "NeuroBench 1 - ActivationSparsity",
            "firing_rate",
            1 - nb["ActivationSparsity"],
            total["firing_rate"],
            "",
        ),
        ("SpikingJelly SynOpCounter", "synops", sj_syn, syn, ""),
        ("SpikingJelly MACCounter", "macs", sj_mac, mac, "its MACs are dense, ours skip zeros"),
    ]
    for peer, ours_name, theirs, ours, why in lines:
        print(compare(f"{peer} vs our {ours_name}", theirs, ours, why))
    print(f"activity: eval time with all probes vs bare forward {ratio:.2f}x (target <= 1.15x)")
    print(f"activity: peak memory with all probes vs bare forward {m_probe / m_bare:.2f}x (target <= 1.2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
