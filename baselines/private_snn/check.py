"""METHODS.md small-scale check of private_snn on digits, 3 seeds.

Per seed, on a harness-style member set (100 members of the training split, snnbench.privacy.shadow):
the owner's ANN is trained on the members; the SNN is converted with thresholds calibrated on
synthetic (BN-matched inverted) images, and as the control on the real member images; then
"encrypted" by fine-tuning on the synthetic images. Reported:

1. test accuracy: ANN, SNN with real calibration, SNN with synthetic calibration, encrypted SNN
   (claim: synthetic within 5 points of real);
2. class leakage (snnbench.privacy.inversion: inversions from the model alone, judged by the
   harness's reference classifier): ANN, converted SNN before encryption, after (claim: lower after);
3. membership-inference AUC (loss, offline LiRA and RMIA with 2 reference pipelines on the other
   halves) of the ANN and of the encrypted SNN (claim: SNN <= ANN + 0.02).

Run: .venv/bin/python baselines/private_snn/check.py
"""

from __future__ import annotations

import copy
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from snnbench.data import load_split
from snnbench.encoding import Direct
from snnbench.metrics.privacy import attack_scores
from snnbench.metrics.robustness import LocalOracle, PixelSpace
from snnbench.privacy import attacks, inversion, shadow
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = tuple(int(s) for s in os.environ.get("PRIVATE_SNN_SEEDS", "0,1,2").split(","))
MEMBERS = 100
REFERENCES = 2


def _module():
    spec = importlib.util.spec_from_file_location("private_snn_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class OnFrames(nn.Module):
    """The ANN on [T, B, ...] input (time-mean frame), for the harness-style oracle."""

    def __init__(self, ann):
        super().__init__()
        self.ann = ann

    def forward(self, x):
        return self.ann(x.mean(0))


def pipeline(ps, task, x, y, seed):
    """(ann, snn calibrated on real x, snn calibrated on synthetic, encrypted snn)."""
    torch.manual_seed(seed)
    data = TrainingData(task, TensorDataset(x, y), task.timesteps, seed)
    budget = Budget(epochs=task.train.epochs, lr=task.train.lr, batch_size=task.train.batch_size, seed=seed)
    ann = ps.train_ann(task, data, budget)
    images, labels = ps.invert_bn(ann, tuple(task.input_shape), task.classes, seed=seed)
    snn_real = ps.convert_synthetic(ann, x)
    snn_syn = ps.convert_synthetic(ann, images)
    snn_enc = ps.encrypt(copy.deepcopy(snn_syn), images, labels, seed=seed)
    return ann, snn_real, snn_syn, snn_enc


@torch.no_grad()
def outputs(model, x, steps):
    model.eval()
    enc = x.unsqueeze(0).expand(steps, *x.shape)
    out = model(enc)
    return out.mean(0) if out.dim() == 3 else out


def p_true(logits, y):
    return torch.softmax(logits.double(), 1).gather(1, y[:, None]).squeeze(1).numpy()


def leakage(model, judge, seed):
    images = inversion.invert_classes(LocalOracle(model), PixelSpace(Direct(), 4), (1, 8, 8), 10, seed=seed)
    predicted = inversion.classify(judge, images.reshape(-1, 1, 8, 8)).reshape(images.shape[:2])
    return inversion.leakage_fraction(predicted)[0]


def main() -> None:
    torch.set_num_threads(1)
    started = time.monotonic()
    ps = _module()
    task = get_task("digits")
    train = load_split(task, "train").dataset
    test = load_split(task, "test").dataset
    all_x, all_y = shadow._stack(train, np.arange(len(train)))
    test_x, test_y = shadow._stack(test, np.arange(len(test)))
    judge = inversion.reference_classifier(task, all_x, all_y, shadow.privacy_cache_dir())  # the harness's
    judge_acc = float((inversion.classify(judge, test_x) == test_y).float().mean())
    print(f"reference classifier test accuracy {judge_acc:.4f}", flush=True)
    results: dict[str, list[float]] = {}

    def put(key, value):
        results.setdefault(key, []).append(float(value))

    for seed in SEEDS:
        split = shadow.member_split(len(train), MEMBERS, REFERENCES, seed)
        pool_x, pool_y = all_x[split.pool], all_y[split.pool]
        pop_x, pop_y = all_x[split.population], all_y[split.population]
        member = torch.from_numpy(split.member)
        ann, snn_real, snn_syn, snn_enc = pipeline(ps, task, pool_x[member], pool_y[member], seed)
        steps = ps.CONV_STEPS
        for name, model in (
            ("ann", OnFrames(ann)),
            ("snn real-cal", snn_real),
            ("snn syn-cal", snn_syn),
            ("snn encrypted", snn_enc),
        ):
            acc = (outputs(model, test_x, steps).argmax(1) == test_y).float().mean()
            put(f"accuracy {name}", acc)
        put("leakage ann", leakage(OnFrames(ann), judge, seed))
        put("leakage snn before encryption", leakage(snn_syn, judge, seed))
        put("leakage snn after encryption", leakage(snn_enc, judge, seed))
        refs = []
        for k in range(REFERENCES):
            inside = torch.from_numpy(split.ref_in[k])
            refs.append(pipeline(ps, task, pool_x[inside], pool_y[inside], 1000 + 10 * seed + k))
        for name, index in (("ann", 0), ("snn encrypted", 3)):

            def view(models, index=index):
                return OnFrames(models[0]) if index == 0 else models[index]

            target = view((ann, snn_real, snn_syn, snn_enc))
            p_t = p_true(outputs(target, pool_x, steps), pool_y)
            p_tz = p_true(outputs(target, pop_x, steps), pop_y)
            p_r = np.stack([p_true(outputs(view(r), pool_x, steps), pool_y) for r in refs])
            p_rz = np.stack([p_true(outputs(view(r), pop_x, steps), pop_y) for r in refs])
            for attack, s in attack_scores(p_t, p_r, split.ref_in, p_tz, p_rz).items():
                put(f"mia auc {attack} {name}", attacks.auc(s, split.member))
        print(f"seed {seed} done at {time.monotonic() - started:.0f} s", flush=True)

    print()
    print("| quantity | mean | std | per seed |")
    print("|---|---|---|---|")
    for key, values in results.items():
        per = ", ".join(f"{v:.3f}" for v in values)
        spread = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "n/a (1 seed)"
        print(f"| {key} | {statistics.mean(values):.4f} | {spread} | {per} |")
    m = {k: statistics.mean(v) for k, v in results.items()}
    gap = m["accuracy snn real-cal"] - m["accuracy snn syn-cal"]
    print()
    print(
        f"synthetic calibration within 5 points of real: gap {100 * gap:.2f} points -> "
        f"{'reproduced' if gap <= 0.05 else 'not reproduced'}"
    )
    drop = m["leakage snn before encryption"] - m["leakage snn after encryption"]
    print(
        f"encryption lowers class leakage: {m['leakage snn before encryption']:.3f} -> "
        f"{m['leakage snn after encryption']:.3f} -> {'reproduced' if drop > 0 else 'not reproduced'}"
    )
    for attack in ("loss", "lira", "rmia"):
        a, s = m[f"mia auc {attack} ann"], m[f"mia auc {attack} snn encrypted"]
        print(
            f"MIA AUC ({attack}) snn {s:.3f} <= ann {a:.3f} + 0.02 -> {'reproduced' if s <= a + 0.02 else 'not reproduced'}"
        )
    print(f"check time {time.monotonic() - started:.0f} s on one thread", file=sys.stderr)
    print(f"check time {time.monotonic() - started:.0f} s on one thread")


if __name__ == "__main__":
    main()
