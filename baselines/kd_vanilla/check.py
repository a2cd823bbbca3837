"""Small-scale check of kd_vanilla, the KD control: does plain Hinton KD beat cross-entropy alone?

Per task (digits: 30 epochs, T=4; digits-dvs: 15 epochs, T=10; the tasks' budgets, full training
splits) and seed 0, 1, 2: the same spiking student trained (a) with CE only (alpha = 0) and (b)
with kd_vanilla's loss (tau = 4, alpha = 0.5) from the cached "large" ANN teacher of that seed.
Prints test accuracy and spikes per test sample (all LIF outputs, output layer included), mean ±
sd over the seeds. Claims read: KD >= CE in accuracy (Hinton et al.), and (METHODS.md,
kd_hetero_temp) the standard-KD student fires more than the CE-only one.
Run: nice -n 5 .venv/bin/python baselines/kd_vanilla/check.py [digits,digits-dvs]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

from snnbench.checks import accuracy_and_spikes as evaluate
from snnbench.checks import load_baseline, mean_sd
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.teachers import get_teacher
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)


def load_submission():
    return load_baseline(HERE / "submission.py", "kd_vanilla_submission")


def teacher_accuracy(teacher, task, dataset, steps: int) -> float:
    correct = seen = 0
    with torch.no_grad():
        for x, y in TrainingData(task, dataset, steps, 0).loader(256, shuffle=False):
            correct += int((teacher(x).argmax(1) == y).sum())
            seen += y.numel()
    return correct / seen


def run_task(sub, task_id: str, started: float) -> bool:
    task = get_task(task_id)
    steps = task.timesteps
    train_set = load_split(task, "train").dataset
    test_set = load_split(task, "test").dataset
    spec = task.train
    budget = Budget(epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"])
    rows: dict[str, dict[str, list[float]]] = {}
    teacher_acc = []
    for seed in SEEDS:
        teacher = get_teacher(task, TrainingData(task, train_set, steps, seed), sub.TEACHER_SIZE, seed)
        teacher_acc.append(teacher_accuracy(teacher, task, test_set, steps))
        for name, alpha in (
            ("CE only (alpha=0)", 0.0),
            (f"KD tau={sub.TAU:g}, alpha={sub.ALPHA:g}", sub.ALPHA),
        ):
            torch.manual_seed(seed)
            model = sub.build(task)
            t0 = time.monotonic()
            sub.train(
                model, task, TrainingData(task, train_set, steps, seed), budget, alpha=alpha, teacher=teacher
            )
            acc, spikes = evaluate(model, task, test_set, steps)
            r = rows.setdefault(name, {"acc": [], "spikes": [], "s": []})
            r["acc"].append(acc)
            r["spikes"].append(spikes)
            r["s"].append(time.monotonic() - t0)
        print(f"{task_id} seed {seed} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    print(
        f"\n{task_id}, T={steps}, {budget.epochs} epochs, test split ({len(test_set)}), seeds {SEEDS}: mean ± sd;"
        f" teacher ({sub.TEACHER_SIZE} ANN) accuracy {mean_sd(teacher_acc)}"
    )
    print("| student | accuracy | spikes / sample | train time (s) |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {mean_sd(r['acc'])} | {mean_sd(r['spikes'], 1)} | {mean_sd(r['s'], 1)} |")
    ce, kd = rows.values()
    gain = statistics.mean(kd["acc"]) - statistics.mean(ce["acc"])
    fires = statistics.mean(kd["spikes"]) / statistics.mean(ce["spikes"]) - 1
    ok = gain >= 0
    print(f"KD - CE accuracy: {gain * 100:+.2f} points -> {'PASS' if ok else 'FAIL'} (KD >= CE)")
    print(f"KD spikes vs CE: {fires * 100:+.1f}% -> {'fires more' if fires > 0 else 'does not fire more'}")
    return ok


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    tasks = sys.argv[1].split(",") if len(sys.argv) > 1 else ["digits", "digits-dvs"]
    started = time.monotonic()
    results = [run_task(sub, t, started) for t in tasks]
    print(f"\ncheck wall time: {time.monotonic() - started:.0f} s")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
