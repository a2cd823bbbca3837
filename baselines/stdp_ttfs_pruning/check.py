"""METHODS.md small-scale check for stdp_ttfs_pruning (digits, T=16 TTFS window, 3 seeds).

Claims: pruning during STDP gives (1) >= 50% fewer connections (live conv synapses after learning)
and (2) >= 30% fewer learning-time synaptic updates (winner x live synapse pairs touched by STDP)
than the same STDP without pruning, (3) within 1 point of its test accuracy. Both variants share
architecture, seed, split, STDP epochs and classifier budget (the submission's train(), the task's
30 classifier epochs; pruning=False is the control).

    .venv/bin/python baselines/stdp_ttfs_pruning/check.py [--seeds 0,1,2] [--epochs 30]
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
spec = importlib.util.spec_from_file_location("stdp_ttfs_pruning_submission", HERE / "submission.py")
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)


def tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[dataset[i] for i in range(len(dataset))])
    return torch.stack([torch.as_tensor(x) for x in xs]).float(), torch.as_tensor(ys)


def run(task, train_set, x, y, seed: int, epochs: int, pruning: bool) -> dict:
    torch.manual_seed(seed)
    model = sub.build(task)
    data = TrainingData(task, train_set, sub.TIMESTEPS, seed)
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    started = time.monotonic()
    sub.train(model, task, data, budget, pruning=pruning)
    seconds = time.monotonic() - started
    with torch.no_grad():
        out = model(x.unsqueeze(0).expand(sub.TIMESTEPS, *x.shape)).mean(0)
    h = data.history[0]
    return {
        "acc": float((out.argmax(1) == y).float().mean()),
        "connections": h["connections"],
        "total": h["connections_total"],
        "updates": h["stdp_updates"],
        "stdp_seconds": h["stdp_seconds"],
        "seconds": seconds,
    }


def fmt(values: list[float], digits: int = 4) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.monotonic()
    task = get_task("digits")
    train_set = load_split(task, "train").dataset
    x, y = tensors(load_split(task, "test").dataset)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = {p: [run(task, train_set, x, y, s, args.epochs, p) for s in seeds] for p in (True, False)}
    print(
        f"stdp_ttfs_pruning check: digits, TTFS T={sub.TIMESTEPS}, {sub.STDP_EPOCHS} STDP epochs, "
        f"prune < {sub.PRUNE_THRESHOLD} every {sub.PRUNE_INTERVAL} batches, seeds {args.seeds}"
    )
    print("| variant | test acc | live conv synapses | STDP synaptic updates | STDP time (s) |")
    print("|---|---|---|---|---|")
    for p, label in ((True, "STDP + pruning"), (False, "STDP, no pruning")):
        rs = runs[p]
        print(
            f"| {label} | {fmt([r['acc'] for r in rs])} | {fmt([r['connections'] for r in rs], 1)} of {rs[0]['total']} | "
            f"{fmt([r['updates'] for r in rs], 0)} | {fmt([r['stdp_seconds'] for r in rs], 1)} |"
        )
    pruned, dense = runs[True], runs[False]
    cut_conn = 1 - statistics.mean(r["connections"] for r in pruned) / statistics.mean(
        r["connections"] for r in dense
    )
    cut_upd = 1 - statistics.mean(r["updates"] for r in pruned) / statistics.mean(r["updates"] for r in dense)
    d_acc = statistics.mean(r["acc"] for r in pruned) - statistics.mean(r["acc"] for r in dense)
    print(f"connections removed: {cut_conn:.1%} (>= 50%: {cut_conn >= 0.5})")
    print(f"learning-time synaptic updates saved: {cut_upd:.1%} (>= 30%: {cut_upd >= 0.3})")
    print(f"accuracy, pruned - unpruned: {d_acc:+.4f} (within 1 point: {abs(d_acc) <= 0.01})")
    ok = cut_conn >= 0.5 and cut_upd >= 0.3 and abs(d_acc) <= 0.01
    print(f"verdict: {'reproduced' if ok else 'not reproduced'}")
    print(f"train time per run: {statistics.mean(r['seconds'] for rs in runs.values() for r in rs):.1f} s")
    print(f"check wall time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
