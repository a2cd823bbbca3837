"""Knowledge-distillation losses and the shared KD training loop for SNN students.

Every KD baseline (kd_vanilla, kd_hetero_temp, takd, kd_teacher_sweetspot, ...) builds on these,
so their checks differ only in the mechanism each paper adds.

Soft-target KL with two temperatures (Hinton et al. 2015; Lee et al. 2021 for tau_s != tau_t):

    L_soft = scale * KL( softmax(z_t / tau_t) || softmax(z_s / tau_s) )      (mean over the batch)

Scaling convention: `scale` defaults to tau_s**2. The gradient of the KL with respect to the
student's logits is (p_s - p_t) / tau_s, and for soft distributions p_s - p_t shrinks like
1 / tau_s once more, so tau_s**2 keeps the soft term's gradient of the same order whatever tau_s
is. With tau_s == tau_t == T this is exactly Hinton's T**2. Pass `scale` to use another one.

Hint loss (FitNets, Romero et al. 2015): a regressor maps a student feature to the shape of a
teacher feature, L_hint = mean squared error. Two different Gram losses:

- batch-level (similarity_matrix, gram_loss; similarity-preserving KD, Tung & Mori 2019):
  G = row-L2-normalised (F F^T) over the B samples of a batch, [B, B];
  L = ||G_s - G_t||_F^2 / B^2;
- modality-level (modality_gram, modality_gram_loss; Liu 2021, arXiv:2112.11447): per sample,
  F = the M per-modality embeddings, each L2-normalised, stacked [M, d]; G = F F^T, [M, M]
  (entry (i, j) = cosine of modality i's and modality j's embedding);
  L = mean over the batch of ||G_s - G_t||_F^2. Student and teacher may differ in d, not in M.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "HintRegressor",
    "distill_train",
    "gram_loss",
    "hint_loss",
    "kd_loss",
    "modality_gram",
    "modality_gram_loss",
    "similarity_matrix",
    "soft_kl",
    "time_mean",
]


def spiking_mlp_student(task, hidden: int) -> nn.Module:
    """The KD baselines' spiking student: Flatten - Linear - LIF - Linear - LIF (tau 2), so that
    every distillation method is read against the same network; its logits are `spike_count`."""
    from snnbench.neurons import LIF, MultiStep

    features = 1
    for s in task.input_shape:
        features *= s
    return nn.Sequential(
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(features, hidden)),
        LIF(tau=2.0),
        MultiStep(nn.Linear(hidden, task.outputs)),
        LIF(tau=2.0),  # spiking output: z_s is its spike count
    )


def spike_count(out: torch.Tensor) -> torch.Tensor:
    """z_s: the output spikes summed over time, [T, B, C] -> [B, C]."""
    return out.sum(0)


def _check_temperature(name: str, value: float) -> float:
    value = float(value)
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}; pass a positive temperature")
    return value


def soft_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    t_student: float = 4.0,
    t_teacher: float | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """scale * KL(softmax(z_t/tau_t) || softmax(z_s/tau_s)), averaged over the batch.

    `t_teacher` defaults to `t_student` (Hinton's single temperature); `scale` to t_student**2.
    The teacher's logits are detached: the teacher is never trained by this loss.
    """
    t_s = _check_temperature("t_student", t_student)
    t_t = t_s if t_teacher is None else _check_temperature("t_teacher", t_teacher)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ; both must be [B, classes]"
        )
    log_p_s = F.log_softmax(student_logits / t_s, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach() / t_t, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()
    return kl * (t_s**2 if scale is None else float(scale))


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.5,
    t_student: float = 4.0,
    t_teacher: float | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """(1 - alpha) * cross-entropy(z_s, y) + alpha * soft_kl(...): Hinton's KD objective."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    hard = F.cross_entropy(student_logits, labels)
    if alpha == 0.0:
        return hard
    soft = soft_kl(student_logits, teacher_logits, t_student, t_teacher, scale)
    return (1.0 - alpha) * hard + alpha * soft


def time_mean(x: torch.Tensor, time_dim: bool) -> torch.Tensor:
    """A student's [T, B, ...] feature averaged over time (its rate); unchanged if time_dim is False."""
    return x.mean(0) if time_dim else x


class HintRegressor(nn.Module):
    """Maps a student feature [B, Cs, H, W] or [B, Ds] to a teacher feature's shape (FitNets).

    Convolutional features: a 1x1 convolution to the teacher's channels, then adaptive average
    pooling to the teacher's spatial size. Flat features: one linear layer.
    """

    def __init__(self, student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.student_shape = tuple(student_shape)
        self.teacher_shape = tuple(teacher_shape)
        if len(self.student_shape) == 3 and len(self.teacher_shape) == 3:
            self.map = nn.Conv2d(self.student_shape[0], self.teacher_shape[0], 1)
        else:
            fs, ft = 1, 1
            for s in self.student_shape:
                fs *= s
            for s in self.teacher_shape:
                ft *= s
            self.map = nn.Sequential(nn.Flatten(), nn.Linear(fs, ft))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.student_shape:
            raise ValueError(
                f"hint regressor built for student features {self.student_shape}, got {tuple(x.shape[1:])}"
            )
        y = self.map(x)
        if isinstance(self.map, nn.Conv2d):
            return F.adaptive_avg_pool2d(y, self.teacher_shape[1:])
        return y.reshape(x.shape[0], *self.teacher_shape)


def hint_loss(
    student_feature: torch.Tensor, teacher_feature: torch.Tensor, regressor: nn.Module
) -> torch.Tensor:
    """Mean squared error between regressor(student feature) and the (detached) teacher feature."""
    return F.mse_loss(regressor(student_feature), teacher_feature.detach())


def similarity_matrix(features: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B, B]: F F^T over the flattened features, each row L2-normalised (Tung & Mori)."""
    flat = features.reshape(features.shape[0], -1)
    return F.normalize(flat @ flat.t(), p=2, dim=1)


def gram_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving loss ||G_s - G_t||_F^2 / B^2; feature widths may differ, batches may not."""
    if student_feature.shape[0] != teacher_feature.shape[0]:
        raise ValueError(
            f"gram_loss needs the same batch: student {student_feature.shape[0]}, teacher {teacher_feature.shape[0]}"
        )
    b = student_feature.shape[0]
    diff = similarity_matrix(student_feature) - similarity_matrix(teacher_feature.detach())
    return diff.pow(2).sum() / (b * b)


def _stack_modalities(embeddings) -> torch.Tensor:
    """A [B, M, d] tensor, or a sequence of M tensors [B, d] (or [B, ...], flattened), -> [B, M, d]."""
    if isinstance(embeddings, torch.Tensor):
        if embeddings.dim() != 3:
            raise ValueError(
                f"modality embeddings must be [B, M, d] or a list of M tensors [B, d], got {tuple(embeddings.shape)}"
            )
        return embeddings
    flat = [e.reshape(e.shape[0], -1) for e in embeddings]
    if not flat:
        raise ValueError("modality_gram needs at least one modality embedding")
    if len({f.shape for f in flat}) != 1:
        raise ValueError(
            f"the modalities' embeddings differ in shape: {[tuple(f.shape) for f in flat]}; "
            "project them to one width d first"
        )
    return torch.stack(flat, dim=1)


def modality_gram(embeddings, eps: float = 1e-12) -> torch.Tensor:
    """Per-sample modality-level Gram matrices [B, M, M] (Liu 2021): each modality's embedding is
    L2-normalised over d, stacked as F [M, d], and G = F F^T. An all-zero embedding (a silent
    spiking branch) stays zero, so its row and column of G are 0."""
    stacked = _stack_modalities(embeddings)
    unit = F.normalize(stacked, p=2, dim=-1, eps=eps)
    return unit @ unit.transpose(1, 2)


def modality_gram_loss(student_embeddings, teacher_embeddings) -> torch.Tensor:
    """Mean over the batch of ||G_s - G_t||_F^2, G the per-sample modality Gram matrix; the
    teacher's side is detached. Embedding widths may differ; batch and modality count may not."""
    g_s = modality_gram(student_embeddings)
    g_t = modality_gram(teacher_embeddings).detach()
    if g_s.shape != g_t.shape:
        raise ValueError(
            f"student Gram {tuple(g_s.shape)} and teacher Gram {tuple(g_t.shape)} differ; "
            "both need the same batch and the same modalities"
        )
    return (g_s - g_t).pow(2).sum(dim=(1, 2)).mean()


def _mean_readout(out: torch.Tensor) -> torch.Tensor:
    return out.mean(0) if out.dim() == 3 else out


def distill_train(
    model: nn.Module,
    task,
    data,
    budget,
    teacher: Callable[[torch.Tensor], torch.Tensor] | None,
    *,
    alpha: float = 0.5,
    t_student: float = 4.0,
    t_teacher: float | None = None,
    scale: float | None = None,
    student_logits: Callable[[torch.Tensor], torch.Tensor] = _mean_readout,
    extra_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    label_smoothing: float = 0.0,
) -> nn.Module:
    """Adam + kd_loss through BPTT for budget.epochs (cosine schedule; stops on budget.wall_time_s).

    `teacher(x)` gives [B, C] logits for the encoded batch x [T, B, ...] (run without gradients);
    None (or alpha = 0) trains with cross-entropy only, the CE control. `student_logits` turns the
    model's output into the z_s the losses see (default: the mean over time, the harness's
    readout; kd_hetero_temp uses the output spike count). `extra_loss(out, x, y)` adds a
    method's own term (hints, Gram). One dict per epoch goes to data.history.
    """
    device = torch.device(getattr(budget, "device", "cpu"))
    model.to(device)
    if isinstance(teacher, nn.Module):  # cached teachers load on the CPU
        teacher.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            x, y = x.to(device), y.to(device)
            out = model(x)
            z_s = student_logits(out)
            if teacher is None or alpha == 0.0:
                loss = F.cross_entropy(z_s, y, label_smoothing=label_smoothing)
            else:
                with torch.no_grad():
                    z_t = teacher(x)
                loss = kd_loss(z_s, z_t, y, alpha, t_student, t_teacher, scale)
            if extra_loss is not None:
                loss = loss + extra_loss(out, x, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += y.numel()
            correct += int((z_s.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        schedule.step()
        data.history.append({"epoch": epoch + 1, "loss": total / seen, "train_accuracy": correct / seen})
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model
