"""Small-scale check of kd_hetero_temp (METHODS.md): digits, spikes of KD students.

Claims: (a) a standard-KD student (tau_s = tau_t = 4) fires more than a CE-only student; (b) the
heterogeneous-temperature student (tau_s = 1, tau_t = 4) fires >= 20% fewer spikes than the
standard-KD student, (c) within 0.5 points of its accuracy.
Per seed 0, 1, 2: the same spiking student (kd_vanilla's network, z_s = output spike count),
the same cached "large" ANN teacher of that seed, alpha = 0.5, the task budget (30 epochs, full
training split, T=4). Also shown: tau_s = 2 (the other end of METHODS.md's 1-2 range).
Prints accuracy and spikes per test sample (every LIF output, output layer included).
Run: nice -n 5 .venv/bin/python baselines/kd_hetero_temp/check.py
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
    return load_baseline(HERE / "submission.py", "kd_hetero_temp_submission")


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits")
    steps = task.timesteps
    train_set = load_split(task, "train").dataset
    test_set = load_split(task, "test").dataset
    spec = task.train
    budget = Budget(epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"])
    tt = sub.TAU_TEACHER
    arms = {
        "CE only (alpha=0)": dict(alpha=0.0),
        f"standard KD tau_s=tau_t={tt:g} (kd_vanilla)": dict(t_student=tt),
        f"hetero tau_s=1, tau_t={tt:g} (default)": dict(t_student=1.0),
        f"hetero tau_s=2, tau_t={tt:g}": dict(t_student=2.0),
    }
    rows = {name: {"acc": [], "spikes": []} for name in arms}
    started = time.monotonic()
    for seed in SEEDS:
        teacher = get_teacher(task, TrainingData(task, train_set, steps, seed), sub.TEACHER_SIZE, seed)
        for name, kw in arms.items():
            torch.manual_seed(seed)
            model = sub.build(task)
            data = TrainingData(task, train_set, steps, seed)
            sub.train(model, task, data, budget, t_teacher=tt, teacher=teacher, **kw)
            acc, spikes = evaluate(model, task, test_set, steps)
            rows[name]["acc"].append(acc)
            rows[name]["spikes"].append(spikes)
        print(f"seed {seed} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    print(f"digits, T={steps}, {budget.epochs} epochs, alpha={sub.ALPHA:g}, test split ({len(test_set)}),")
    print(f"seeds {SEEDS}: mean ± sd")
    print("| student | accuracy | spikes / sample |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {mean_sd(r['acc'])} | {mean_sd(r['spikes'], 1)} |")
    ce, kd, het = (rows[n] for n in list(arms)[:3])

    def m(r, k):
        return statistics.mean(r[k])

    more = m(kd, "spikes") / m(ce, "spikes") - 1
    fewer = 1 - m(het, "spikes") / m(kd, "spikes")
    gap = m(het, "acc") - m(kd, "acc")
    ok_a, ok_b, ok_c = more > 0, fewer >= 0.20, gap >= -0.005
    print()
    print(f"(a) standard KD fires {more * 100:+.1f}% vs CE only -> {'PASS' if ok_a else 'FAIL'} (> 0)")
    print(
        f"(b) hetero fires {fewer * 100:.1f}% fewer spikes than standard KD -> {'PASS' if ok_b else 'FAIL'} (>= 20%)"
    )
    print(
        f"(c) hetero - standard KD accuracy: {gap * 100:+.2f} points -> {'PASS' if ok_c else 'FAIL'} (>= -0.5)"
    )
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok_a and ok_b and ok_c else 1


if __name__ == "__main__":
    sys.exit(main())
