"""Small-scale check of nda (METHODS.md): digits-dvs, reduced training split.

Claim: NDA shrinks the train-test gap and raises test accuracy, against the same network trained
the same way without augmentation. Per seed 0-4: a random 20% of the digits-dvs training split
(269 of 1,347 samples, drawn with the seed, the same for both arms); the template network with the
same init and the same batches, trained by nda.train with augment=False (control) and
augment=True (NDA); 30 epochs (twice the task's 15, fixed before any NDA run so that the control
fits its small split: the overfitting regime the claim is about), batch 64, Adam 2e-3, cosine,
T=10. Train accuracy is measured on the clean (un-augmented) training subset, test accuracy on the
full test split (450); gap = train - test.

Verdict (fixed in advance): PASS when the paired NDA - control difference of test accuracy has a
95% confidence interval above 0 AND that of the gap has one below 0 (t distribution, 4 degrees of
freedom); otherwise FAIL.
Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python baselines/nda/check.py
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from snnbench.checks import accuracy, load_baseline
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2, 3, 4)
FRACTION = 0.2
EPOCHS = 30
T_975_DF4 = 2.776


def load_submission():
    return load_baseline(HERE / "submission.py", "nda_submission")


def paired(diffs: list[float]) -> tuple[float, float, float]:
    mean = statistics.mean(diffs)
    half = T_975_DF4 * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def ms(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> int:
    torch.set_num_threads(1)
    started = time.monotonic()
    sub = load_submission()
    task = get_task("digits-dvs")
    steps = task.timesteps
    train_set = load_split(task, "train", None, steps).dataset
    test_set = load_split(task, "test", None, steps).dataset
    n = round(FRACTION * len(train_set))
    results: dict[str, list[tuple[float, float]]] = {"control": [], "nda": []}
    for seed in SEEDS:
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(1000 + seed))
        subset = Subset(train_set, order[:n].tolist())
        for arm in ("control", "nda"):
            torch.manual_seed(seed)
            model = sub.build(task)
            data = TrainingData(task, subset, steps, seed)
            budget = Budget(epochs=EPOCHS, lr=float(task.train["lr"]), batch_size=64, seed=seed)
            t0 = time.monotonic()
            sub.train(model, task, data, budget, augment=arm == "nda")
            tr, te = accuracy(model, task, subset, steps), accuracy(model, task, test_set, steps)
            results[arm].append((tr, te))
            print(
                f"seed {seed} {arm:7s}: train {tr:.4f} test {te:.4f} gap {tr - te:+.4f} "
                f"({time.monotonic() - t0:.0f} s)",
                flush=True,
            )
    print(
        f"\ndigits-dvs, T={steps}, {n}/{len(train_set)} training samples ({FRACTION:.0%}), "
        f"{EPOCHS} epochs, seeds {SEEDS}: mean ± sd"
    )
    print("| arm | train accuracy (clean) | test accuracy | train - test gap |")
    print("|---|---|---|---|")
    for arm, label in (("control", "no augmentation"), ("nda", "NDA (one op per sample)")):
        tr = [r[0] for r in results[arm]]
        te = [r[1] for r in results[arm]]
        gap = [a - b for a, b in results[arm]]
        print(f"| {label} | {ms(tr)} | {ms(te)} | {ms(gap)} |")
    d_test = [b[1] - a[1] for a, b in zip(results["control"], results["nda"])]
    d_gap = [(b[0] - b[1]) - (a[0] - a[1]) for a, b in zip(results["control"], results["nda"])]
    m_t, lo_t, hi_t = paired(d_test)
    m_g, lo_g, hi_g = paired(d_gap)
    ok_test, ok_gap = lo_t > 0, hi_g < 0
    print(
        f"\nNDA - control, test accuracy: {100 * m_t:+.2f} points, 95% CI [{100 * lo_t:+.2f}, {100 * hi_t:+.2f}], "
        f"higher in {sum(d > 0 for d in d_test)}/{len(SEEDS)} seeds -> {'PASS' if ok_test else 'FAIL'} (CI > 0)"
    )
    print(
        f"NDA - control, train-test gap: {100 * m_g:+.2f} points, 95% CI [{100 * lo_g:+.2f}, {100 * hi_g:+.2f}], "
        f"smaller in {sum(d < 0 for d in d_gap)}/{len(SEEDS)} seeds -> {'PASS' if ok_gap else 'FAIL'} (CI < 0)"
    )
    print(f"verdict: {'PASS' if ok_test and ok_gap else 'FAIL'}")
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
