"""METHODS.md small-scale check for hoyer_one_step (digits, T=1, 3 seeds).

Claims: (1) the Hoyer net (lambda_H > 0) beats the same architecture with fixed-threshold LIF
neurons (theta=1, tau=2, atan surrogate, T=1) by >= 2 points; (2) lambda_H > 0 leaves fewer
potentials within 5% of the threshold than lambda_H = 0 (|z - E| <= 0.05 E over every hidden
neuron of every test sample; for the LIF net |h - 1| <= 0.05, shown for reference).

    .venv/bin/python baselines/hoyer_one_step/check.py [--seeds 0,1,2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from snnbench.data import load_split
from snnbench.neurons import LIF, MultiStep
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, default_train

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("hoyer_submission", HERE / "submission.py")
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)


def lif_net(task) -> nn.Sequential:
    c, h, w = task.input_shape
    return nn.Sequential(
        MultiStep(nn.Conv2d(c, 16, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(16)),
        LIF(tau=2.0, v_threshold=1.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Conv2d(16, 32, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(32)),
        LIF(tau=2.0, v_threshold=1.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(32 * (h // 4) * (w // 4), task.outputs)),
    )


def test_tensors(task):
    ds = load_split(task, "test").dataset
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    return torch.stack([torch.as_tensor(x) for x in xs]).float().unsqueeze(0), torch.as_tensor(ys)


@torch.no_grad()
def hoyer_eval(model, x, y) -> tuple[float, float]:
    model.eval()
    out = model(x)
    near = total = 0
    for m in model.spiking_layers():
        z, e = m.last_z, m.last_threshold
        near += int(((z - e).abs() <= 0.05 * e).sum())
        total += z.numel()
    return float((out.argmax(1) == y).float().mean()), near / total


@torch.no_grad()
def lif_eval(model, x, y) -> tuple[float, float]:
    model.eval()
    hs = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: hs.append(inp[0])) for m in model if isinstance(m, LIF)
    ]
    out = model(x).mean(0)
    for hk in hooks:
        hk.remove()
    # T=1, v starts at 0: the charged membrane is h = x / tau (decay_input)
    near = sum(int(((h / 2.0 - 1.0).abs() <= 0.05).sum()) for h in hs)
    total = sum(h.numel() for h in hs)
    return float((out.argmax(1) == y).float().mean()), near / total


def run(seed: int, epochs: int, task, train_set, x, y) -> dict:
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    row = {}
    for name, lam in ((f"Hoyer, lambda_H={sub.LAMBDA_H:g}", sub.LAMBDA_H), ("Hoyer, lambda_H=0", 0.0)):
        torch.manual_seed(seed)
        model = sub.build(task)
        t0 = time.monotonic()
        sub.train(model, task, TrainingData(task, train_set, 1, seed), budget, lambda_h=lam)
        row[name + " s"] = time.monotonic() - t0
        row[name] = hoyer_eval(model, x, y)
    torch.manual_seed(seed)
    lif = lif_net(task)
    default_train(lif, task, TrainingData(task, train_set, 1, seed), budget, progress=False)
    row["LIF theta=1, T=1"] = lif_eval(lif, x, y)
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
    x, y = test_tensors(task)
    started = time.monotonic()
    rows = [run(int(s), epochs, task, train_set, x, y) for s in args.seeds.split(",")]
    hoyer = f"Hoyer, lambda_H={sub.LAMBDA_H:g}"
    names = [hoyer, "Hoyer, lambda_H=0", "LIF theta=1, T=1"]
    print(f"hoyer_one_step check: digits, T=1, {epochs} epochs, seeds {args.seeds}")
    print("| variant | mean acc | std | per seed | near-threshold fraction (mean) | per seed |")
    print("|---|---|---|---|---|---|")
    acc, near = {}, {}
    for n in names:
        a = [r[n][0] for r in rows]
        f = [r[n][1] for r in rows]
        acc[n], near[n] = statistics.mean(a), statistics.mean(f)
        sd = statistics.stdev(a) if len(a) > 1 else 0.0
        print(
            f"| {n} | {acc[n]:.4f} | {sd:.4f} | {', '.join(f'{v:.4f}' for v in a)} | "
            f"{near[n]:.4f} | {', '.join(f'{v:.4f}' for v in f)} |"
        )
    gain = acc[hoyer] - acc["LIF theta=1, T=1"]
    fewer = near[hoyer] < near["Hoyer, lambda_H=0"]
    print(f"Hoyer - LIF accuracy: {gain:+.4f} (claim >= +0.02: {gain >= 0.02})")
    print(f"lambda_H>0 fewer near-threshold potentials than lambda_H=0: {fewer}")
    print(f"verdict: {'reproduced' if gain >= 0.02 and fewer else 'not reproduced'}")
    print(f"Hoyer train time per seed: {statistics.mean(r[hoyer + ' s'] for r in rows):.1f} s")
    print(f"check wall time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
