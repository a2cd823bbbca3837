"""METHODS.md small-scale check for proxy_learning (digits, T=16, 3 seeds).

Claim: the proxy-trained IF SNN beats conversion of a separately trained ANN (same layers, plain
ReLU, snnbench.conversion with max-activation and 99.9th-percentile thresholds from the training
split, the same 16 steps), and is within 3 points of that ANN twin.

    .venv/bin/python baselines/proxy_learning/check.py [--seeds 0,1,2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from snnbench.conversion import convert
from snnbench.data import load_split
from snnbench.encoding import encoder_for
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("proxy_submission", HERE / "submission.py")
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)


def tensors(task, split: str):
    ds = load_split(task, split).dataset
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack([torch.as_tensor(x) for x in xs]).float(), torch.as_tensor(ys)


@torch.no_grad()
def accuracy(fn, x: torch.Tensor, y: torch.Tensor) -> float:
    out = torch.cat([fn(x[i : i + 256]) for i in range(0, len(x), 256)])
    return float((out.argmax(1) == y).float().mean())


def plain_ann(task) -> nn.Sequential:
    c, h, w = task.input_shape
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (h // 4) * (w // 4), task.outputs),
    )


def train_ann(ann: nn.Module, data: TrainingData, budget: Budget) -> nn.Module:
    opt = torch.optim.Adam(ann.parameters(), lr=budget.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=budget.epochs)
    for _ in range(budget.epochs):
        ann.train()
        for x, y in data.loader(budget.batch_size):
            loss = nn.functional.cross_entropy(ann(x[0]), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    return ann.eval()


def run(seed: int, epochs: int, task, train_set, xtr, xte, yte) -> dict:
    steps = sub.STEPS
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    # the ANN twin trains with the proxy recipe's step size (task lr x LR_SCALE)
    ann_budget = Budget(
        epochs=epochs, lr=task.train["lr"] * sub.LR_SCALE, batch_size=task.train["batch_size"]
    )
    enc = encoder_for(task)
    xte_t = enc(xte, steps)  # [T=16, N, ...] as the harness feeds it with --timesteps 16
    row = {}
    torch.manual_seed(seed)
    model = sub.build(task)
    t0 = time.monotonic()
    sub.train(model, task, TrainingData(task, train_set, steps, seed), budget)
    row["proxy_s"] = time.monotonic() - t0
    row["proxy SNN"] = accuracy(lambda i: model(xte_t[:, i]).mean(0), torch.arange(len(yte)), yte)
    row["proxy's ANN view"] = accuracy(model.ann, xte, yte)
    torch.manual_seed(seed)
    ann = train_ann(plain_ann(task), TrainingData(task, train_set, task.timesteps, seed), ann_budget)
    row["ANN twin"] = accuracy(ann, xte, yte)
    calib = [xtr[i : i + 256] for i in range(0, len(xtr), 256)]
    for mode, label in (("max", "conversion (max)"), ("percentile", "conversion (p99.9)")):
        snn = convert(ann, calib, mode=mode, percentile=99.9)
        row[label] = accuracy(lambda i, s=snn: s(xte_t[:, i]).mean(0), torch.arange(len(yte)), yte)
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=None, help="default: the task's [train] epochs (30)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    task = get_task("digits")
    epochs = args.epochs or task.train["epochs"]
    train_set = load_split(task, "train").dataset
    xtr, _ = tensors(task, "train")
    xte, yte = tensors(task, "test")
    started = time.monotonic()
    rows = [run(int(s), epochs, task, train_set, xtr, xte, yte) for s in args.seeds.split(",")]
    names = ["proxy SNN", "proxy's ANN view", "ANN twin", "conversion (max)", "conversion (p99.9)"]
    print(f"proxy_learning check: digits, SNN T={sub.STEPS}, {epochs} epochs, seeds {args.seeds}")
    print("| variant | mean acc | std | per seed |")
    print("|---|---|---|---|")
    stats = {}
    for n in names:
        v = [r[n] for r in rows]
        stats[n] = statistics.mean(v)
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"| {n} | {stats[n]:.4f} | {sd:.4f} | {', '.join(f'{a:.4f}' for a in v)} |")
    best_conv = max(stats["conversion (max)"], stats["conversion (p99.9)"])
    beats = stats["proxy SNN"] > best_conv
    within = stats["ANN twin"] - stats["proxy SNN"] <= 0.03
    print(
        f"proxy SNN beats best conversion at T={sub.STEPS}: {beats} ({stats['proxy SNN'] - best_conv:+.4f})"
    )
    print(
        f"proxy SNN within 3 points of its ANN twin: {within} ({stats['proxy SNN'] - stats['ANN twin']:+.4f})"
    )
    print(f"verdict: {'reproduced' if beats and within else 'not reproduced'}")
    print(f"proxy train time per seed: {statistics.mean(r['proxy_s'] for r in rows):.1f} s")
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
