"""Small-scale check of takd (METHODS.md): digits, wide teacher, tiny SNN student, 5 seeds.

Claim: teacher -> TA -> student >= direct KD (teacher -> student), read with a 95% confidence
interval on the paired per-seed difference (t distribution, 4 degrees of freedom).
Per seed 0-4: teacher = cached "xlarge" ANN of that seed; TA = "medium" ANN distilled from it
(takd.train_assistant); the same tiny spiking student (32 LIF hidden, spike-count output, same
init and batches) distilled (a) from the teacher directly (kd_vanilla's loss) and (b) from the TA;
(c) CE only for reference. Task budget (30 epochs, full training split, T=4).
Prints test accuracy and spikes per test sample.
Run: nice -n 5 .venv/bin/python baselines/takd/check.py
"""

from __future__ import annotations

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
    return load_baseline(HERE / "submission.py", "takd_submission")


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits")
    steps = task.timesteps
    train_set = load_split(task, "train").dataset
    test_set = load_split(task, "test").dataset
    spec = task.train
    budget = Budget(epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"])
    names = ("CE only", "direct KD (teacher -> student)", f"TAKD (teacher -> {sub.TA_SIZE} TA -> student)")
    rows = {n: {"acc": [], "spikes": []} for n in names}
    ann = {"teacher": [], "TA": []}
    started = time.monotonic()
    for seed in SEEDS:
        b = Budget(epochs=budget.epochs, lr=budget.lr, batch_size=budget.batch_size, seed=seed)
        teacher = get_teacher(task, TrainingData(task, train_set, steps, seed), sub.TEACHER_SIZE, seed)
        assistant = sub.train_assistant(task, TrainingData(task, train_set, steps, seed), b, teacher)
        for key, net in (("teacher", teacher), ("TA", assistant)):
            with torch.no_grad():
                hits = sum(
                    int((net(x).argmax(1) == y).sum())
                    for x, y in TrainingData(task, test_set, steps, 0).loader(256, shuffle=False)
                )
            ann[key].append(hits / len(test_set))
        for name in names:
            torch.manual_seed(seed)
            model = sub.build(task)
            data = TrainingData(task, train_set, steps, seed)
            if name == "CE only":
                distill_train(model, task, data, b, None, alpha=0.0, student_logits=sub.spike_count)
            elif name == names[1]:  # direct KD: kd_vanilla's loss from the teacher itself, no TA
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
            else:
                sub.train(model, task, data, b, assistant=assistant)
            acc, spikes = evaluate(model, task, test_set, steps)
            rows[name]["acc"].append(acc)
            rows[name]["spikes"].append(spikes)
        print(f"seed {seed} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    print(
        f"digits, T={steps}, {budget.epochs} epochs, tau={sub.TAU:g}, alpha={sub.ALPHA:g}, seeds {SEEDS}: mean ± sd"
    )
    print(
        f"teacher ({sub.TEACHER_SIZE} ANN) {mean_sd(ann['teacher'])}; TA ({sub.TA_SIZE} ANN) {mean_sd(ann['TA'])}"
    )
    print(f"| student ({sub.HIDDEN} LIF hidden) | accuracy | spikes / sample |")
    print("|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {mean_sd(r['acc'])} | {mean_sd(r['spikes'], 1)} |")
    diffs = [a - b for a, b in zip(rows[names[2]]["acc"], rows[names[1]]["acc"])]
    d, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = T_975_DF4 * sd / math.sqrt(len(diffs))
    ok = d >= 0
    print()
    print(
        f"TAKD - direct KD: {d * 100:+.2f} points, 95% CI [{(d - half) * 100:+.2f}, {(d + half) * 100:+.2f}],"
        f" better in {sum(x > 0 for x in diffs)}/{len(diffs)} seeds, equal in {sum(x == 0 for x in diffs)}"
        f" -> {'PASS' if ok else 'FAIL'} (mean >= 0); CI excludes 0: {'yes' if d - half > 0 or d + half < 0 else 'no'}"
    )
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
