"""Small-scale check of noise_single_step (METHODS.md): digits, evaluated at T=16.

Claims: (a) noisy single-step training (sigma > 0) beats noiseless single-step training
(sigma = 0) when the weights run at T=16; (b) single-step training takes <= 1/2 the wall time
of surrogate BPTT of the same network at T=16 (same epochs, batch, optimiser).
Every run: the task's training budget (30 epochs, Adam 2e-3, batch 64), full training split,
test split, 3 seeds. Run: .venv/bin/python baselines/noise_single_step/check.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

from snnbench.checks import accuracy, load_baseline
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, default_train

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
SIGMAS = (0.0, 0.1, 0.3, 0.5)
EVAL_T = (4, 16)


def load_submission():
    return load_baseline(HERE / "submission.py", "noise_single_step_submission")


def mean_sd(values) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits")
    train_set = load_split(task, "train").dataset
    test_set = load_split(task, "test").dataset
    spec = task.train
    budget = Budget(epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"])
    rows: dict[str, dict[str, list[float]]] = {}
    started = time.monotonic()

    def record(name: str, key: str, value: float) -> None:
        rows.setdefault(name, {}).setdefault(key, []).append(value)

    for seed in SEEDS:
        for sigma in SIGMAS:
            torch.manual_seed(seed)
            model = sub.build(task, sigma=sigma)
            t0 = time.monotonic()
            sub.train(model, task, TrainingData(task, train_set, 16, seed), budget)
            name = f"single-step, sigma={sigma}"
            record(name, "train_s", time.monotonic() - t0)
            for steps in EVAL_T:
                record(name, f"acc_T{steps}", accuracy(model, task, test_set, steps))
        # control: the same network trained by surrogate BPTT at T=16 (noise off)
        torch.manual_seed(seed)
        model = sub.build(task, sigma=0.0)
        t0 = time.monotonic()
        default_train(model, task, TrainingData(task, train_set, 16, seed), budget, progress=False)
        record("BPTT at T=16, sigma=0", "train_s", time.monotonic() - t0)
        for steps in EVAL_T:
            record("BPTT at T=16, sigma=0", f"acc_T{steps}", accuracy(model, task, test_set, steps))
        print(f"seed {seed} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    print(f"digits, test split ({len(test_set)}), {budget.epochs} epochs, seeds {SEEDS}: mean ± sd")
    print("| training | acc T=4 | acc T=16 | train time (s) |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {mean_sd(r['acc_T4'])} | {mean_sd(r['acc_T16'])} | {mean_sd(r['train_s'])} |")
    best = max(
        (s for s in SIGMAS if s > 0),
        key=lambda s: statistics.mean(rows[f"single-step, sigma={s}"]["acc_T16"]),
    )
    noisy = rows[f"single-step, sigma={sub.SIGMA}"]
    clean = rows["single-step, sigma=0.0"]
    bptt = rows["BPTT at T=16, sigma=0"]
    gain = statistics.mean(noisy["acc_T16"]) - statistics.mean(clean["acc_T16"])
    wins = sum(a > b for a, b in zip(noisy["acc_T16"], clean["acc_T16"]))
    ratio = statistics.mean(noisy["train_s"]) / statistics.mean(bptt["train_s"])
    ok_a = gain > 0 and wins == len(SEEDS)
    ok_b = ratio <= 0.5
    print()
    print(
        f"(a) sigma={sub.SIGMA} (default) vs sigma=0 at T=16: {gain * 100:+.2f} points, "
        f"better in {wins}/{len(SEEDS)} seeds; best sigma at T=16: {best} -> {'PASS' if ok_a else 'FAIL'}"
    )
    print(
        f"(b) single-step train time / BPTT-T16 train time = {ratio:.3f} (<= 0.5) -> {'PASS' if ok_b else 'FAIL'}"
    )
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok_a and ok_b else 1


if __name__ == "__main__":
    sys.exit(main())
