"""Privacy family (PROTOCOLS.md section 4): membership inference and class leakage.

Run with `--metrics privacy`. Membership inference does not look at the evaluated checkpoint: the
harness trains the submission itself (its train() or the default recipe, the task's [train]
budget) on a member set it controls, in a sandboxed child, plus `[privacy] reference_models`
reference models on other random halves of the same pool (cached: snnbench.privacy.shadow), and
scores members and as many non-members from outputs alone. Rows, each with n = members +
non-members:

- mia_auc, condition "attack=loss" | "attack=lira" | "attack=rmia" (offline variants), stderr by
  Hanley & McNeil;
- mia_tpr_at_fpr, condition "attack=<a> fpr=<f>" for each f of `[privacy] fpr` with at least 1/f
  non-members (never otherwise);
- mia_roc_tpr, condition "attack=<a> fpr=<f>" on a fixed FPR grid: the ROC curve for the page
  (the full curves also go to the run's artifact folder, roc.json).

Class leakage inverts each class from the evaluated checkpoint (the sandbox `box`) through input
gradients (snnbench.privacy.inversion): class_leakage, n = inverted images, stderr binomial. The
inverted images go to the artifact folder (inversions.npz, inversions.png). Event-frame tasks get
no class_leakage row (their integer inputs have no pixel gradient).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from snnbench.metrics import MetricRow
from snnbench.privacy import attacks, shadow
from snnbench.privacy.inversion import classify, invert_classes, leakage_fraction, reference_classifier

ROC_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def attack_scores(
    p_target: np.ndarray, p_ref: np.ndarray, ref_in: np.ndarray, p_target_pop, p_ref_pop
) -> dict[str, np.ndarray]:
    """Scores of every attack the reference models allow (loss needs none)."""
    scores = {"loss": attacks.loss_scores(p_target)}
    if len(p_ref):
        scores["lira"] = attacks.lira_offline(p_target, p_ref, ref_in)
        scores["rmia"] = attacks.rmia_offline(p_target, p_ref, ref_in, p_target_pop, p_ref_pop)
    return scores


def mia_rows(scores: dict[str, np.ndarray], member: np.ndarray, fprs) -> tuple[list[MetricRow], dict]:
    """Rows for each attack's scores, and the full ROC curves {attack: {"fpr": [...], "tpr": [...]}}."""
    member = np.asarray(member, dtype=bool)
    n, pos, neg = member.size, int(member.sum()), int((~member).sum())
    rows, curves = [], {}
    for name, s in scores.items():
        value = attacks.auc(s, member)
        rows.append(
            MetricRow(
                "mia_auc",
                value,
                "fraction",
                n,
                attacks.auc_stderr(value, pos, neg),
                condition=f"attack={name}",
            )
        )
        for f in fprs:
            tpr = attacks.tpr_at_fpr(s, member, float(f))
            if tpr is not None:
                rows.append(
                    MetricRow("mia_tpr_at_fpr", tpr, "fraction", n, condition=f"attack={name} fpr={f:g}")
                )
        fpr_c, tpr_c = attacks.roc_curve(s, member)
        curves[name] = {"fpr": fpr_c.tolist(), "tpr": tpr_c.tolist()}
        for f in ROC_GRID:
            if f * neg >= 1 - 1e-9:
                rows.append(
                    MetricRow(
                        "mia_roc_tpr",
                        float(tpr_c[fpr_c <= f + 1e-12].max()),
                        "fraction",
                        n,
                        condition=f"attack={name} fpr={f:g}",
                    )
                )
    return rows, curves


def membership(ref, task, timesteps: int, seed: int, device: str = "cpu") -> tuple[list[MetricRow], dict]:
    """Train the target and reference models (cached) and attack the target."""
    from snnbench.data import load_split

    train = load_split(task, "train", None, timesteps).dataset
    spec = task.privacy
    k = spec.reference_models if spec.reference_models is not None else shadow.DEFAULT_REFERENCE_MODELS
    split = shadow.member_split(len(train), spec.members, k, seed)
    pool_x, pool_y = shadow._stack(train, split.pool)
    pop_x, pop_y = shadow._stack(train, split.population)
    score_x = torch.cat([pool_x, pop_x])
    score_y = torch.cat([pool_y, pop_y])
    n_pool = len(pool_x)
    _, target_out = shadow.train_and_score(
        ref,
        task,
        timesteps,
        seed,
        pool_x[torch.from_numpy(split.member)],
        pool_y[torch.from_numpy(split.member)],
        score_x,
        device,
    )
    ref_outs = shadow.reference_outputs(ref, task, timesteps, seed, split, train, score_x, progress=None)
    p_target = shadow.true_label_probability(target_out, score_y)
    p_ref = (
        np.stack([shadow.true_label_probability(o, score_y) for o in ref_outs])
        if ref_outs
        else np.zeros((0, len(score_y)))
    )
    scores = attack_scores(
        p_target[:n_pool], p_ref[:, :n_pool], split.ref_in, p_target[n_pool:], p_ref[:, n_pool:]
    )
    return mia_rows(scores, split.member, spec.fpr)


def class_leakage(oracle, task, timesteps: int, seed: int, space, train_x, train_y, cache: Path):
    """(rows, images [C, R, ...], predicted [C, R]) for the model behind `oracle`."""
    images = invert_classes(oracle, space, tuple(task.input_shape), task.classes, seed)
    judge = reference_classifier(task, train_x, train_y, cache)
    flat = images.reshape(-1, *images.shape[2:])
    predicted = classify(judge, space.from_pixels(flat)).reshape(images.shape[:2])
    value, n = leakage_fraction(predicted)
    stderr = math.sqrt(max(value * (1 - value), 0.0) / n) if n > 1 else None
    return [MetricRow("class_leakage", value, "fraction", n, stderr)], images, predicted


def artifact_dir(task, ref, checkpoint: bytes | None, seed: int) -> Path:
    """<privacy cache>/artifacts/<task>/<method>-<submission sha>-<checkpoint sha>-seed<seed>."""
    ck = hashlib.sha256(checkpoint).hexdigest()[:12] if checkpoint else "untrained"
    return (
        shadow.privacy_cache_dir() / "artifacts" / task.id / f"{ref.method}-{ref.sha256[:12]}-{ck}-seed{seed}"
    )


def write_artifacts(folder: Path, curves: dict, images, predicted) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "roc.json").write_text(json.dumps(curves))
    if images is not None:
        np.savez_compressed(folder / "inversions.npz", images=images.numpy(), predicted=predicted.numpy())
        try:
            _save_grid(folder / "inversions.png", images)
        except Exception as exc:  # noqa: BLE001 - a picture is a convenience, never a failed run
            print(f"privacy: could not draw inversions.png ({exc})", file=sys.stderr)


def _save_grid(path: Path, images) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c, r = images.shape[:2]
    fig, axes = plt.subplots(c, r, figsize=(r * 0.8, c * 0.8), squeeze=False)
    for i in range(c):
        for j in range(r):
            img = images[i, j]
            img = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)
            axes[i][j].imshow(img.numpy(), cmap="gray", vmin=0, vmax=1)
            axes[i][j].axis("off")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def collect(box, task, dataset, timesteps: int, seed: int) -> list[MetricRow]:
    """The registry's entry point (parent side): class leakage through `box`, then membership inference."""
    from snnbench.data import load_split
    from snnbench.encoding import encoder_for
    from snnbench.metrics.robustness import PixelSpace, SandboxOracle, robustness_subset

    rows: list[MetricRow] = []
    images = predicted = None
    _, _, mean, std = robustness_subset(dataset, task) if len(dataset) else (None, None, None, None)
    space = PixelSpace(encoder_for(task), timesteps, mean, std)
    if space.differentiable:
        train = load_split(task, "train", None, timesteps).dataset
        idx = np.arange(len(train))
        train_x, train_y = shadow._stack(train, idx)
        leak, images, predicted = class_leakage(
            SandboxOracle(box), task, timesteps, seed, space, train_x, train_y, shadow.privacy_cache_dir()
        )
        rows += leak
    # after the inversion: membership inference trains models in sandboxes of its own, with their
    # own deadlines, and needs nothing more from `box` (whose --timeout keeps running meanwhile)
    mia, curves = membership(box.ref, task, timesteps, seed, box.device)
    rows = mia + rows
    write_artifacts(artifact_dir(task, box.ref, box.checkpoint, seed), curves, images, predicted)
    return rows
