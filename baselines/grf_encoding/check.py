"""METHODS.md small-scale check for grf_encoding (digits, T=4 and T=8, 3 seeds).

Claim: with the same LIF MLP (hidden 128), GRF population coding (M >= 5) beats single-neuron
latency coding. Variants: GRF M=8 (the baseline), GRF M=5, latency (snnbench.encoding.Latency).

    .venv/bin/python baselines/grf_encoding/check.py [--seeds 0,1,2] [--epochs 30] [--timesteps 4,8]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("grf_submission", HERE / "submission.py")
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)

VARIANTS = {"GRF M=8": ("grf", 8), "GRF M=5": ("grf", 5), "latency (1 neuron)": ("latency", 0)}


@torch.no_grad()
def accuracy(model, x, y, t: int) -> float:
    model.eval()
    out = model(x.unsqueeze(0).expand(t, *x.shape)).mean(0)
    return float((out.argmax(1) == y).float().mean())


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=None, help="default: the task's [train] epochs (30)")
    p.add_argument("--timesteps", default="4,8")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    task = get_task("digits")
    epochs = args.epochs or task.train["epochs"]
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    train_set = load_split(task, "train").dataset
    test = load_split(task, "test").dataset
    xs, ys = zip(*[test[i] for i in range(len(test))])
    x, y = torch.stack([torch.as_tensor(v) for v in xs]).float(), torch.as_tensor(ys)
    started = time.monotonic()
    results: dict[tuple[int, str], list[float]] = {}
    seconds: list[float] = []
    for t in (int(v) for v in args.timesteps.split(",")):
        for name, (enc, m) in VARIANTS.items():
            for seed in (int(s) for s in args.seeds.split(",")):
                torch.manual_seed(seed)
                model = sub.build(task, encoding=enc, fields=m or sub.FIELDS)
                t0 = time.monotonic()
                sub.train(model, task, TrainingData(task, train_set, t, seed), budget)
                if name == "GRF M=8":
                    seconds.append(time.monotonic() - t0)
                results.setdefault((t, name), []).append(accuracy(model, x, y, t))
    print(
        f"grf_encoding check: digits, same LIF MLP (hidden {sub.HIDDEN}), {epochs} epochs, seeds {args.seeds}"
    )
    print("| T | coding | mean acc | std | per seed |")
    print("|---|---|---|---|---|")
    ok = True
    for (t, name), v in results.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"| {t} | {name} | {statistics.mean(v):.4f} | {sd:.4f} | {', '.join(f'{a:.4f}' for a in v)} |")
    for t in sorted({k[0] for k in results}):
        lat = statistics.mean(results[(t, "latency (1 neuron)")])
        for name in ("GRF M=8", "GRF M=5"):
            gain = statistics.mean(results[(t, name)]) - lat
            ok &= gain > 0
            print(f"T={t}: {name} - latency = {gain:+.4f} (claim > 0: {gain > 0})")
    print(f"verdict: {'reproduced' if ok else 'not reproduced'}")
    print(f"GRF M=8 train time per run: {statistics.mean(seconds):.1f} s")
    print(f"check wall time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
