"""Small-scale check of kd_modal_gram (METHODS.md): paired digits + digits-dvs, 5 seeds.

Claim: a two-branch SNN student distilled with the modality Gram loss (CE + alpha KD + beta Gram)
is at least as accurate as the KD-only student (beta = 0), and its test Gram matrices are closer
to the teacher's (mean over test samples of ||G_S - G_T||_F). Both read with a 95% confidence
interval of the paired per-seed difference (t distribution, 4 degrees of freedom).
True pairs: sample i of the digits split and sample i of the digits-dvs split are the same
load_digits() image (the readers share positions; asserted below), for training and test.
Per seed 0-4: the two-branch ANN teacher (kd_modal_gram.train_teacher, seed + offset) is trained
on the training pairs; the same student (init and batches) is trained three ways: CE only,
KD only (alpha, beta = 0), KD + Gram (alpha, beta). Budget: digits-dvs's (15 epochs, lr 2e-3,
batch 64, T = 10). Prints test accuracy, spikes per test sample and the mean Gram distance.
Run: OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python baselines/kd_modal_gram/check.py
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from snnbench.checks import load_baseline, mean_sd
from snnbench.data import load_split
from snnbench.neurons import BaseNeuron
from snnbench.tasks import get_task
from snnbench.training import Budget

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2, 3, 4)
T_975_DF4 = 2.776


def load_submission():
    return load_baseline(HERE / "submission.py", "kd_modal_gram_submission")


def paired(sub, split: str, steps: int, seed: int):
    """PairedData of the digits image and the digits-dvs frames of the same samples."""
    img = load_split(get_task("digits"), split).dataset
    dvs = load_split(get_task("digits-dvs"), split, timesteps=steps).dataset
    if not (np.array_equal(img.indices, dvs.indices) and np.array_equal(img.ys, dvs.ys)):
        raise SystemExit(f"{split}: digits and digits-dvs samples do not pair up by index")
    return sub.PairedData(np.asarray(img.xs), np.asarray(dvs.xs), np.asarray(img.ys), steps, seed)


@torch.no_grad()
def evaluate(model, pairs) -> tuple[float, float]:
    """Test accuracy (argmax of the output spike count) and spikes per sample over every neuron."""
    model.eval()
    total = [0.0]
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: total.__setitem__(0, total[0] + float(out.sum())))
        for m in model.modules()
        if isinstance(m, BaseNeuron)
    ]
    correct = seen = 0
    for img, dvs, y in pairs.loader(256, shuffle=False):
        out = model.forward_pair(img, dvs)[0]
        correct += int((out.sum(0).argmax(1) == y).sum())
        seen += y.numel()
    for h in hooks:
        h.remove()
    return correct / seen, total[0] / seen


@torch.no_grad()
def teacher_stats(teacher, pairs) -> tuple[float, float]:
    """Teacher test accuracy and its mean off-diagonal Gram entry (image-event cosine)."""
    from snnbench.distill import modality_gram

    correct = seen = 0
    cos = 0.0
    for img, dvs, y in pairs.loader(256, shuffle=False):
        z, e_img, e_dvs = teacher.forward_pair(img, dvs)
        correct += int((z.argmax(1) == y).sum())
        cos += float(modality_gram([e_img, e_dvs])[:, 0, 1].sum())
        seen += y.numel()
    return correct / seen, cos / seen


def paired_ci(diffs) -> tuple[float, float]:
    d, sd = statistics.mean(diffs), statistics.stdev(diffs)
    return d, T_975_DF4 * sd / math.sqrt(len(diffs))


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits-dvs")
    steps = task.timesteps
    spec = task.train
    names = (
        "CE only",
        f"KD only (alpha={sub.ALPHA:g}, beta=0)",
        f"KD + Gram (alpha={sub.ALPHA:g}, beta={sub.BETA:g})",
    )
    arms = {names[0]: (None, 0.0, 0.0), names[1]: ("t", sub.ALPHA, 0.0), names[2]: ("t", sub.ALPHA, sub.BETA)}
    rows = {n: {"acc": [], "spikes": [], "gram": []} for n in names}
    teach = {"acc": [], "cos": []}
    test = paired(sub, "test", steps, 0)
    started = time.monotonic()
    for seed in SEEDS:
        b = Budget(epochs=spec["epochs"], lr=spec["lr"], batch_size=spec["batch_size"], seed=seed)
        t_seed = seed + sub.TEACHER_SEED_OFFSET
        teacher = sub.train_teacher(task, paired(sub, "train", steps, t_seed), b, t_seed)
        acc, cos = teacher_stats(teacher, test)
        teach["acc"].append(acc)
        teach["cos"].append(cos)
        for name, (use, alpha, beta) in arms.items():
            torch.manual_seed(seed)
            model = sub.build(task)
            train = paired(sub, "train", steps, seed)  # same batches for every arm
            sub.distill_pairs(model, teacher if use else None, train, b, alpha=alpha, beta=beta, tau=sub.TAU)
            acc, spikes = evaluate(model, test)
            rows[name]["acc"].append(acc)
            rows[name]["spikes"].append(spikes)
            rows[name]["gram"].append(sub.gram_distance(model, teacher, test))
        print(f"seed {seed} done ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    print(
        f"paired digits + digits-dvs (true pairs), T={steps}, {spec['epochs']} epochs, tau={sub.TAU:g},"
        f" seeds {SEEDS}: mean ± sd"
    )
    print(
        f"teacher (two-branch {sub.TEACHER_SIZE} ANN) accuracy {mean_sd(teach['acc'])};"
        f" its image-event cosine (off-diagonal G_T) {mean_sd(teach['cos'], 3)}"
    )
    print(f"| student ({sub.EMBED} LIF per branch) | accuracy | spikes / sample | mean ||G_S - G_T||_F |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {mean_sd(r['acc'])} | {mean_sd(r['spikes'], 1)} | {mean_sd(r['gram'], 4)} |")
    print()
    acc_diffs = [a - b for a, b in zip(rows[names[2]]["acc"], rows[names[1]]["acc"])]
    d, half = paired_ci(acc_diffs)
    acc_ok = d >= 0
    print(
        f"accuracy, Gram - KD only: {d * 100:+.2f} points, 95% CI [{(d - half) * 100:+.2f}, {(d + half) * 100:+.2f}],"
        f" better in {sum(x > 0 for x in acc_diffs)}/{len(acc_diffs)} seeds, equal in {sum(x == 0 for x in acc_diffs)}"
        f" -> {'PASS' if acc_ok else 'FAIL'} (mean >= 0)"
    )
    g_diffs = [a - b for a, b in zip(rows[names[2]]["gram"], rows[names[1]]["gram"])]
    g, g_half = paired_ci(g_diffs)
    gram_ok = g < 0
    print(
        f"Gram distance, Gram - KD only: {g:+.4f}, 95% CI [{g - g_half:+.4f}, {g + g_half:+.4f}],"
        f" closer in {sum(x < 0 for x in g_diffs)}/{len(g_diffs)} seeds -> {'PASS' if gram_ok else 'FAIL'} (mean < 0)"
    )
    ok = acc_ok and gram_ok
    print(f"verdict: {'PASS' if ok else 'FAIL'} (both claims)")
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
