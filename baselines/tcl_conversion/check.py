"""METHODS.md small-scale check for tcl_conversion (digits, 3 seeds).

Claims: (1) the TCL ANN converted with its learned clips as thresholds beats max-activation
normalisation of the same architecture trained with plain ReLU at T=16 and T=32; (2) it comes
within 1 point of its own ANN at a smaller T than the max-normalised control does; (3) every
lambda_l is below its layer's maximum (pre-clip) activation on the training split.
Both ANNs share architecture, seed, split and budget (the task's: 30 epochs, Adam 2e-3, batch 64).
The p99.9 row (Rueckauer et al. 2017's robust normalisation of the plain ANN) is for reference.

    .venv/bin/python baselines/tcl_conversion/check.py [--seeds 0,1,2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

from snnbench.conversion import TrainableClip, convert
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("tcl_submission", HERE / "submission.py")
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)

STEPS = (4, 8, 16, 32, 64, 128)


def tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[dataset[i] for i in range(len(dataset))])
    return torch.stack([torch.as_tensor(x) for x in xs]).float(), torch.as_tensor(ys)


@torch.no_grad()
def accuracy(model, x, y) -> float:
    return float((model(x).argmax(1) == y).float().mean())


@torch.no_grad()
def accuracy_curve(snn, x, y, steps: int = STEPS[-1]) -> dict[int, float]:
    """Accuracy at every T = 1..steps from one run: a T-step run of the converted net on a constant
    (direct) input is the first T steps of a longer run, so its readout is the running mean."""
    out = snn(x.unsqueeze(0).expand(steps, *x.shape))
    running = out.cumsum(0) / torch.arange(1, steps + 1).reshape(-1, 1, 1)
    hits = (running.argmax(2) == y).float().mean(1)
    return {t: float(hits[t - 1]) for t in range(1, steps + 1)}


@torch.no_grad()
def preclip_max(net, x) -> list[float]:
    """max relu(input) of every TrainableClip: the layer's maximum activation without the clip."""
    seen = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: seen.append(float(inp[0].relu().max())))
        for m in net
        if isinstance(m, TrainableClip)
    ]
    net(x)
    for h in hooks:
        h.remove()
    return seen


def first_within(curve: dict[int, float], target: float, grid=STEPS) -> int | None:
    return next((t for t in grid if curve[t] >= target - 0.01), None)


def run_seed(task, train_set, xtr, xte, yte, seed: int, epochs: int) -> dict:
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    result = {}
    for name, clip in (("tcl", True), ("relu", False)):
        torch.manual_seed(seed)
        net = sub.ann(task, clip=clip)
        data = TrainingData(task, train_set, task.timesteps, seed)
        started = time.monotonic()
        sub.train_ann(net, data, budget, l2=sub.CLIP_L2 if clip else 0.0)
        result[f"{name}_seconds"] = time.monotonic() - started
        result[f"{name}_ann"] = accuracy(net, xte, yte)
        if clip:
            result["clips"] = [float(m.clip.detach()) for m in net if isinstance(m, TrainableClip)]
            result["preclip_max"] = preclip_max(net, xtr)
            snns = {"tcl": convert(net, mode="clip")}
        else:
            snns = {
                "max": convert(net, [xtr], mode="max"),
                "p99.9": convert(net, [xtr], mode="percentile", percentile=99.9),
            }
        for key, snn in snns.items():
            result[key] = accuracy_curve(snn, xte, yte)
    return result


def fmt(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.monotonic()
    task = get_task("digits")
    train_set = load_split(task, "train").dataset
    xtr, _ = tensors(train_set)
    xte, yte = tensors(load_split(task, "test").dataset)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = [run_seed(task, train_set, xtr, xte, yte, s, args.epochs) for s in seeds]

    print(f"tcl_conversion check: digits, {args.epochs} epochs, seeds {args.seeds}, test split {len(yte)}")
    print("| variant | " + " | ".join(f"T={t}" for t in STEPS) + " | ANN |")
    print("|---|" + "---|" * (len(STEPS) + 1))
    for key, label, ann_key in (
        ("tcl", "TCL (threshold = learned clip)", "tcl_ann"),
        ("max", "plain ReLU, max normalisation", "relu_ann"),
        ("p99.9", "plain ReLU, p99.9 normalisation", "relu_ann"),
    ):
        cells = [fmt([r[key][t] for r in runs]) for t in STEPS]
        print(f"| {label} | " + " | ".join(cells) + f" | {fmt([r[ann_key] for r in runs])} |")
    for i, r in enumerate(runs):
        pairs = ", ".join(
            f"lambda_{k}={c:.3f} < max {m:.3f}" for k, (c, m) in enumerate(zip(r["clips"], r["preclip_max"]))
        )
        print(f"seed {seeds[i]}: {pairs}")

    every = range(1, STEPS[-1] + 1)
    mean = {k: {t: statistics.mean(r[k][t] for r in runs) for t in every} for k in ("tcl", "max")}
    ann = {k: statistics.mean(r[f"{k}_ann"] for r in runs) for k in ("tcl", "relu")}
    beats = {t: mean["tcl"][t] > mean["max"][t] for t in (16, 32)}
    g_tcl, g_max = first_within(mean["tcl"], ann["tcl"]), first_within(mean["max"], ann["relu"])
    print(
        f"first T within 1 point of its own ANN on the grid {STEPS}: TCL {g_tcl}, max normalisation {g_max}"
    )
    t_tcl = first_within(mean["tcl"], ann["tcl"], every)
    t_max = first_within(mean["max"], ann["relu"], every)
    sooner = t_tcl is not None and (t_max is None or t_tcl < t_max)
    below = all(c < m for r in runs for c, m in zip(r["clips"], r["preclip_max"]))
    for t in (16, 32):
        print(f"TCL beats max normalisation at T={t}: {beats[t]} ({mean['tcl'][t] - mean['max'][t]:+.4f})")
    print(
        f"first T within 1 point of its own ANN, any T in 1-{STEPS[-1]} (mean of seeds): TCL {t_tcl}, max normalisation {t_max}: sooner {sooner}"
    )
    print(f"every lambda_l below its layer's max activation: {below}")
    ok = all(beats.values()) and sooner and below
    print(f"verdict: {'reproduced' if ok else 'not reproduced'}")
    print(
        f"ANN train time per seed: TCL {statistics.mean(r['tcl_seconds'] for r in runs):.1f} s, "
        f"plain {statistics.mean(r['relu_seconds'] for r in runs):.1f} s"
    )
    print(f"check wall time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
