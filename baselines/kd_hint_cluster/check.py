"""Small-scale check of kd_hint_cluster (METHODS.md): digits, 5 seeds.

Claims: (1) clustered hints >= one middle-layer hint (FitNets' default), same student and budget,
read with a 95% confidence interval on the paired per-seed difference (t distribution, 4 degrees
of freedom); (2) the hint selection is deterministic for a fixed seed (asserted: selected twice,
from the cached teacher and from a fresh load of it, the hints are the same).
Per seed 0-4: teacher = cached "large" ANN of that seed; the same spiking student (init and
batches) trained four ways: CE only and output KD only (references), KD + one hint (teacher relu2
-> student middle tap), KD + the K = 3 clustered hints (kd_hint_cluster.train). Task budget
(30 epochs, full training split, T=4). Prints test accuracy and spikes per test sample.
Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python baselines/kd_hint_cluster/check.py
"""

from __future__ import annotations

import collections
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from snnbench.checks import accuracy_and_spikes as evaluate
from snnbench.checks import load_baseline, mean_sd
from snnbench.data import load_split
from snnbench.distill import distill_train
from snnbench.tasks import get_task
from snnbench.teachers import get_teacher
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2, 3, 4)
T_975_DF4 = 2.776


def load_submission():
    return load_baseline(HERE / "submission.py", "kd_hint_cluster_submission")


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits")
    steps = task.timesteps
    train_set = load_split(task, "train").dataset
    test_set = load_split(task, "test").dataset
    spec = task.train
    budget = Budget(epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"])
    middle = f"one middle hint ({sub.MIDDLE_HINT} -> tap {sub.MIDDLE_TAP})"
    clustered = f"clustered hints (K={sub.K_HINTS})"
    names = ("CE only", "output KD only", middle, clustered)
    rows = {n: {"acc": [], "spikes": []} for n in names}
    teacher_acc, selections = [], []
    started = time.monotonic()
    for seed in SEEDS:
        b = Budget(epochs=budget.epochs, lr=budget.lr, batch_size=budget.batch_size, seed=seed)
        teacher = get_teacher(task, TrainingData(task, train_set, steps, seed), sub.TEACHER_SIZE, seed)
        with torch.no_grad():
            hits = sum(
                int((teacher(x).argmax(1) == y).sum())
                for x, y in TrainingData(task, test_set, steps, 0).loader(256, shuffle=False)
            )
        teacher_acc.append(hits / len(test_set))
        probe = sub.probe_batch(task, TrainingData(task, train_set, steps, seed))
        hints = sub.select_hints(teacher, probe, sub.K_HINTS)
        reloaded = get_teacher(
            task, TrainingData(task, train_set, steps, seed), sub.TEACHER_SIZE, seed, progress=False
        )
        again = sub.select_hints(reloaded, sub.probe_batch(task, TrainingData(task, train_set, steps, 0)))
        assert hints == again, f"seed {seed}: selection not deterministic: {hints} vs {again}"
        selections.append(hints)
        for name in names:
            torch.manual_seed(seed)
            model = sub.build(task)
            data = TrainingData(task, train_set, steps, seed)
            if name == "CE only":
                distill_train(model, task, data, b, None, alpha=0.0, student_logits=sub.spike_count)
            elif name == "output KD only":  # kd_vanilla's loss on this student, no hint
                distill_train(
                    model,
                    task,
                    data,
                    b,
                    teacher,
                    alpha=sub.ALPHA,
                    t_student=sub.TAU,
                    student_logits=sub.spike_count,
                )
            elif name == middle:
                sub.train(
                    model, task, data, b, teacher=teacher, hints=(sub.MIDDLE_HINT,), tap_ids=(sub.MIDDLE_TAP,)
                )
            else:
                sub.train(model, task, data, b, teacher=teacher)
            acc, spikes = evaluate(model, task, test_set, steps)
            rows[name]["acc"].append(acc)
            rows[name]["spikes"].append(spikes)
        print(f"seed {seed} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    print(
        f"digits, T={steps}, {budget.epochs} epochs, tau={sub.TAU:g}, alpha={sub.ALPHA:g}, "
        f"hint weight {sub.HINT_WEIGHT:g} per hint, seeds {SEEDS}: mean ± sd"
    )
    print(f"teacher ({sub.TEACHER_SIZE} ANN) {mean_sd(teacher_acc)}")
    print(
        "hint points selected per seed: "
        + "; ".join(f"{s}: {', '.join(h)}" for s, h in zip(SEEDS, selections))
    )
    counts = collections.Counter(h for sel in selections for h in sel)
    print("selection counts: " + ", ".join(f"{h} {c}" for h, c in counts.most_common()))
    print("selection deterministic (selected twice per seed, fresh teacher load): yes (asserted)")
    print("| student (spiking CNN 8-16-64) | accuracy | spikes / sample |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {mean_sd(r['acc'])} | {mean_sd(r['spikes'], 1)} |")
    diffs = [a - b for a, b in zip(rows[clustered]["acc"], rows[middle]["acc"])]
    d, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = T_975_DF4 * sd / math.sqrt(len(diffs))
    ok = d >= 0
    print()
    print(
        f"clustered - middle hint: {d * 100:+.2f} points, 95% CI [{(d - half) * 100:+.2f}, {(d + half) * 100:+.2f}],"
        f" better in {sum(x > 0 for x in diffs)}/{len(diffs)} seeds, equal in {sum(x == 0 for x in diffs)}"
        f" -> {'PASS' if ok else 'FAIL'} (mean >= 0); CI excludes 0: {'yes' if d - half > 0 or d + half < 0 else 'no'}"
    )
    print("selection deterministic for a fixed seed -> PASS")
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
