"""Small-scale check of desire_bp (METHODS.md): on digits, a 64-32-10 net trained by desire
backpropagation beats the same net whose hidden layer stays frozen at its random init (only the
output layer learns, by the same rule). 3 seeds, 30 epochs (the digits budget), same data order."""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import torch

from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("desire_sub", HERE / "submission.py")
db = importlib.util.module_from_spec(spec)
spec.loader.exec_module(db)


def main():
    torch.set_num_threads(1)
    started = time.monotonic()
    task = get_task("digits")
    train_split, test_split = load_split(task, "train"), load_split(task, "test")
    xs = torch.stack([test_split.dataset[i][0] for i in range(len(test_split.dataset))]).float()
    ys = torch.tensor([int(test_split.dataset[i][1]) for i in range(len(test_split.dataset))])
    x = xs.unsqueeze(0).expand(task.timesteps, *xs.shape)
    rows = {}
    for variant in ("trained hidden", "frozen hidden"):
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            model = db.build(task)
            data = TrainingData(task, train_split.dataset, task.timesteps, seed)
            t0 = time.monotonic()
            db.train(
                model, task, data, Budget(epochs=task.train["epochs"]), train_hidden=variant.startswith("t")
            )
            secs = time.monotonic() - t0
            torch.manual_seed(100 + seed)
            with torch.no_grad():
                acc = float((model(x).argmax(1) == ys).float().mean())
            rows.setdefault(variant, []).append((acc, data.history[-1]["train_accuracy"], secs))
            print(
                f"{variant} seed {seed}: test {acc:.4f} train {data.history[-1]['train_accuracy']:.4f} "
                f"{secs:.0f}s",
                flush=True,
            )
    print("\n| variant | test accuracy | train accuracy (last epoch) | train s / seed |")
    print("|---|---|---|---|")
    for variant, r in rows.items():
        cols = [f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" for v in zip(*r)]
        cols[2] = f"{statistics.mean(row[2] for row in r):.0f}"
        print(f"| {variant} | " + " | ".join(cols) + " |")
    a = statistics.mean(row[0] for row in rows["trained hidden"])
    b = statistics.mean(row[0] for row in rows["frozen hidden"])
    print(f"\ntrained - frozen = {a - b:+.4f} -> {'reproduced' if a > b else 'not reproduced'}")
    print(f"check ran {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
