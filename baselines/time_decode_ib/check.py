"""Small-scale check of time_decode_ib (METHODS.md), digits-dvs at T=8 (the task's 10 bins
re-binned to 8 by the reader): (1) the learned ANN decoder reading the whole raster beats a linear
decoder fitted on the same frozen encoder's spike counts; (2) encoder firing falls as beta rises
(beta = 0.1, 1, 10). 3 seeds per beta, 10 epochs (of the task's 15) to fit the CPU budget."""

from __future__ import annotations

import dataclasses
import importlib.util
import statistics
import time
from pathlib import Path

import torch

from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("time_decode_sub", HERE / "submission.py")
td = importlib.util.module_from_spec(spec)
spec.loader.exec_module(td)

STEPS = 8
BETAS = (0.1, 1.0, 10.0)


def main():
    torch.set_num_threads(1)
    started = time.monotonic()
    task = dataclasses.replace(get_task("digits-dvs"), timesteps=STEPS)
    train_split = load_split(task, "train", timesteps=STEPS)
    test_split = load_split(task, "test", timesteps=STEPS)
    xs = torch.stack([test_split.dataset[i][0] for i in range(len(test_split.dataset))]).float()
    ys = torch.tensor([int(test_split.dataset[i][1]) for i in range(len(test_split.dataset))])
    x = xs.transpose(0, 1).contiguous()  # [T, B, 2, 32, 32]
    rows = {}
    for beta in BETAS:
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            model = td.build(task)
            data = TrainingData(task, train_split.dataset, STEPS, seed)
            t0 = time.monotonic()
            td.train(model, task, data, Budget(epochs=10, lr=2e-3, batch_size=64), beta=beta)
            secs = time.monotonic() - t0
            lin = td.fit_count_decoder(model, data, task.outputs, epochs=20)
            with torch.no_grad():
                raster = model.encode(x)
                acc = float((model.decode(raster).argmax(1) == ys).float().mean())
                acc_lin = float((lin(raster.sum(0)).argmax(1) == ys).float().mean())
                firing = float(raster.mean())
            rows.setdefault(beta, []).append((acc, acc_lin, acc - acc_lin, firing, secs))
            print(
                f"beta {beta} seed {seed}: learned decoder {acc:.4f} count-linear {acc_lin:.4f} "
                f"firing {firing:.4f} train {secs:.0f}s",
                flush=True,
            )
    print(
        "\n| beta | learned decoder acc | linear spike-count decoder acc | difference "
        "| encoder firing (spikes / neuron / step) | train s / seed |"
    )
    print("|---|---|---|---|---|---|")
    for beta, r in rows.items():
        cols = [f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" for v in list(zip(*r))[:4]]
        cols.append(f"{statistics.mean(row[4] for row in r):.0f}")
        print(f"| {beta} | " + " | ".join(cols) + " |")
    wins = all(statistics.mean(row[2] for row in r) > 0 for r in rows.values())
    fire = [statistics.mean(row[3] for row in rows[b]) for b in BETAS]
    falls = all(a > b for a, b in zip(fire, fire[1:]))
    print(
        f"\nlearned > count-linear at every beta: {wins}; firing falls with beta: {falls} -> "
        f"{'reproduced' if wins and falls else 'not reproduced'}"
    )
    print(f"check ran {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
