"""Small-scale check and grid of spiking_resnet_keys (METHODS.md): on digits-dvs the grid runs in
minutes; the recommended config is within 1 point of the best cell; no normalization costs >= 5
points.

Grid: norm {bn, none} x neuron {lif, plif} x pooling {max, avg}, depth 1, width 8, direct input,
3 seeds per cell, surrogate BPTT (Adam 2e-3, batch 64, cosine). Reduced to fit ~10 min of one
shared core: event frames binned to T=5 (task: 10), the first 640 training samples (of 1347),
4 epochs (task: 15); evaluated on the full test split (450). Run:
    .venv/bin/python baselines/spiking_resnet_keys/check.py
"""

from __future__ import annotations

import importlib.util
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, readout

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
STEPS = 5
EPOCHS = 4
TRAIN_SAMPLES = 640
GRID = {"norm": ("bn", "none"), "neuron": ("lif", "plif"), "pooling": ("max", "avg")}


def load_submission():
    spec = importlib.util.spec_from_file_location("spiking_resnet_keys_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accuracy(model, task, dataset, steps: int) -> float:
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for x, y in TrainingData(task, dataset, steps, 0).loader(225, shuffle=False):
            correct += int((readout(model(x)).argmax(1) == y).sum())
            seen += y.numel()
    return correct / seen


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits-dvs")
    train_set = Subset(load_split(task, "train", timesteps=STEPS).dataset, range(TRAIN_SAMPLES))
    test_set = load_split(task, "test", timesteps=STEPS).dataset
    budget = Budget(epochs=EPOCHS, lr=task.train["lr"], batch_size=task.train["batch_size"])
    cells = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    results: dict[tuple, list[float]] = {}
    started = time.monotonic()
    for seed in SEEDS:
        for cell in cells:
            torch.manual_seed(seed)
            model = sub.build(task, **cell)
            sub.train(model, task, TrainingData(task, train_set, STEPS, seed), budget)
            acc = accuracy(model, task, test_set, STEPS)
            results.setdefault(tuple(cell.values()), []).append(acc)
            print(
                f"seed {seed} {cell}: {acc:.4f} ({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    recommended = tuple(sub.RECOMMENDED[k] for k in GRID)
    means = {k: statistics.mean(v) for k, v in results.items()}
    print(
        f"digits-dvs, T={STEPS}, {EPOCHS} epochs, first {TRAIN_SAMPLES} training samples, test split "
        f"({len(test_set)}), depth 1, width 8, direct input, seeds {SEEDS}: test accuracy mean ± sd"
    )
    print("| norm | neuron | pooling | accuracy |")
    print("|---|---|---|---|")
    for key in sorted(results, key=lambda k: -means[k]):
        mark = " (recommended)" if key == recommended else ""
        print(
            f"| {key[0]} | {key[1]} | {key[2]}{mark} | {means[key]:.4f} ± {statistics.stdev(results[key]):.4f} |"
        )
    best = max(means, key=means.get)
    gap = (means[best] - means[recommended]) * 100
    pairs = [
        ((n, p), means[("bn", n, p)] - means[("none", n, p)]) for n in GRID["neuron"] for p in GRID["pooling"]
    ]
    rec_cost = (means[recommended] - means[("none", *recommended[1:])]) * 100
    mean_cost = statistics.mean(c for _, c in pairs) * 100
    ok_best = gap <= 1.0
    ok_norm = rec_cost >= 5.0 and mean_cost >= 5.0
    print()
    print(
        f"best cell {best}: {means[best]:.4f}; recommended {recommended}: {means[recommended]:.4f}; "
        f"gap {gap:.2f} points (<= 1) -> {'PASS' if ok_best else 'FAIL'}"
    )
    print(
        f"no normalization costs {rec_cost:.2f} points at the recommended config and {mean_cost:.2f} "
        f"on average over the 4 neuron x pooling pairs (>= 5) -> {'PASS' if ok_norm else 'FAIL'}"
    )
    print(f"grid wall time: {time.monotonic() - started:.0f} s ({len(cells)} cells x {len(SEEDS)} seeds)")
    return 0 if ok_best and ok_norm else 1


if __name__ == "__main__":
    sys.exit(main())
