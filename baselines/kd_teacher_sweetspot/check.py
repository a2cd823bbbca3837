"""Small-scale check of kd_teacher_sweetspot (METHODS.md): digits.

Claims: (a) the student of the sweet-spot teacher (best score) >= the student of the
longest-trained teacher (batch 32, 40 epochs: the most epochs and steps); (b) the teacher score
correlates positively with the accuracy of the student distilled from it (Pearson, over every
seed x candidate). Control ("distillation hypothesis"): the same student trained with label
smoothing whose target entropy matches the chosen teacher's soft targets (tau = 4) on held-out data.
Per seed 0, 1, 2: the cached grid of "large" ANN teachers (batch 32 / 128 x 2 / 8 / 40 epochs,
trained on 80% of the training split); one student per candidate (kd_vanilla's network and loss,
tau = 4, alpha = 0.5, the task budget: 30 epochs, T=4). Test accuracy and spikes per test sample.
Run: nice -n 5 .venv/bin/python baselines/kd_teacher_sweetspot/check.py
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
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)


def load_submission():
    return load_baseline(HERE / "submission.py", "kd_teacher_sweetspot_submission")


def smoothing_for_entropy(target: float, classes: int) -> float:
    """epsilon whose label-smoothed target (1 - eps + eps/C on the label, eps/C elsewhere) has entropy `target`."""

    def entropy(eps: float) -> float:
        on, off = 1 - eps + eps / classes, eps / classes
        h = -on * math.log(on) if on > 0 else 0.0
        return h - (classes - 1) * (off * math.log(off) if off > 0 else 0.0)

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if entropy(mid) < target else (lo, mid)
    return (lo + hi) / 2


def pearson(xs, ys) -> float:
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxy = sum((a - mx) * (b - my) for a, b in zip(xs, ys))
    sxx = sum((a - mx) ** 2 for a in xs)
    syy = sum((b - my) ** 2 for b in ys)
    return sxy / math.sqrt(sxx * syy)


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits")
    steps = task.timesteps
    train_set = load_split(task, "train").dataset
    test_set = load_split(task, "test").dataset
    spec = task.train
    cands = sub.candidates()
    longest = cands.index((min(sub.BATCH_SIZES), max(sub.EPOCHS)))
    per = {c: {"held_acc": [], "score": [], "acc": [], "spikes": []} for c in cands}
    chosen = {"acc": [], "spikes": [], "which": []}
    smooth = {"acc": [], "spikes": [], "eps": []}
    started = time.monotonic()
    for seed in SEEDS:
        budget = Budget(epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"], seed=seed)
        data0 = TrainingData(task, train_set, steps, seed)
        grid = sub.teacher_grid(task, data0, seed)
        best, scores = sub.choose(task, data0, grid)
        for i, (c, teacher) in enumerate(zip(cands, grid)):
            z, y = sub.held_out_logits(task, data0, teacher)
            per[c]["held_acc"].append(float((z.argmax(1) == y).float().mean()))
            per[c]["score"].append(scores[i])
            torch.manual_seed(seed)
            model = sub.build(task)
            sub.train(model, task, TrainingData(task, train_set, steps, seed), budget, teacher=teacher)
            acc, spikes = evaluate(model, task, test_set, steps)
            per[c]["acc"].append(acc)
            per[c]["spikes"].append(spikes)
            if i == best:
                chosen["acc"].append(acc)
                chosen["spikes"].append(spikes)
                chosen["which"].append(c)
                p = torch.softmax(z / sub.TAU, 1)
                target_entropy = float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())
        eps = smoothing_for_entropy(target_entropy, task.outputs)
        torch.manual_seed(seed)
        model = sub.build(task)
        distill_train(
            model,
            task,
            TrainingData(task, train_set, steps, seed),
            budget,
            None,
            alpha=0.0,
            student_logits=sub.spike_count,
            label_smoothing=eps,
        )
        acc, spikes = evaluate(model, task, test_set, steps)
        smooth["acc"].append(acc)
        smooth["spikes"].append(spikes)
        smooth["eps"].append(eps)
        print(
            f"seed {seed} done, chose {cands[best]} ({time.monotonic() - started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"digits, T={steps}, student {spec['epochs']} epochs, tau={sub.TAU:g}, alpha={sub.ALPHA:g}, seeds {SEEDS}"
    )
    print("| teacher (batch, epochs) | held-out acc | score | student accuracy | student spikes / sample |")
    print("|---|---|---|---|---|")
    for c in cands:
        r = per[c]
        mark = " (longest)" if c == cands[longest] else ""
        print(
            f"| {c}{mark} | {mean_sd(r['held_acc'])} | {mean_sd(r['score'])} | {mean_sd(r['acc'])} |"
            f" {mean_sd(r['spikes'], 1)} |"
        )
    print(
        f"| sweet spot (chosen per seed: {chosen['which']}) | | | {mean_sd(chosen['acc'])} | {mean_sd(chosen['spikes'], 1)} |"
    )
    print(
        f"| label smoothing, matched entropy (eps {mean_sd(smooth['eps'], 3)}) | | | {mean_sd(smooth['acc'])} |"
        f" {mean_sd(smooth['spikes'], 1)} |"
    )
    gain = statistics.mean(chosen["acc"]) - statistics.mean(per[cands[longest]]["acc"])
    xs = [s for c in cands for s in per[c]["score"]]
    ys = [a for c in cands for a in per[c]["acc"]]
    r = pearson(xs, ys)
    ok_a, ok_b = gain >= 0, r > 0
    print()
    print(
        f"(a) sweet-spot student - longest-trained teacher's student: {gain * 100:+.2f} points -> {'PASS' if ok_a else 'FAIL'}"
    )
    print(
        f"(b) Pearson r(score, student accuracy) over {len(xs)} students = {r:+.3f} -> {'PASS' if ok_b else 'FAIL'} (> 0)"
    )
    ls_gap = statistics.mean(chosen["acc"]) - statistics.mean(smooth["acc"])
    print(f"control: sweet-spot KD - matched label smoothing: {ls_gap * 100:+.2f} points")
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok_a and ok_b else 1


if __name__ == "__main__":
    sys.exit(main())
