"""kd_ta_ensemble: a tiny spiking student distilled from a weighted ensemble of teaching assistants
(Ganta, Das Gupta & Sheng 2022).

TAKD (baselines/takd) puts one mid-size teaching assistant (TA) between a large teacher and a small
student. This method trains several TAs of different sizes, each distilled from the teacher, and
combines them as the weighted mixture of their softened outputs

    p_ens(x) = sum_k w_k * softmax(z_k(x) / tau),    w_k >= 0, sum_k w_k = 1,

with the weights found by differential evolution (DE) maximising the ensemble's accuracy on a
validation split; the student is then distilled from p_ens.

Here, inside train():
1. the training split is cut in two, fixed: every VAL_EVERY-th sample is the validation part (DE
   only), the rest the fit part. The test split is never touched;
2. teacher = the cached "xlarge" ReLU CNN of snnbench.teachers trained on the fit part only (its own
   cache tag), so no network of the ensemble has seen a validation sample;
3. TAs = the "small", "medium" and "large" ANNs of the same family, each distilled from the teacher
   on the fit part (takd's TA recipe: tau = 4, alpha = 0.5, the task's budget, own seed), frozen;
4. DE (scipy.optimize.differential_evolution, seeded by the run's seed, no gradient polish) searches
   raw weights in [0, 1]^K, normalised to the simplex, maximising the validation accuracy of
   argmax p_ens (the TAs' validation outputs are computed once);
5. student = takd's tiny spiking MLP (input -> 32 LIF -> classes LIF, z_s = output spike count),
   distilled on the whole training split from `WeightedEnsemble`, with kd_vanilla's loss
   (alpha = 0.5, tau = 4, scale tau^2). The chosen weights are kept in the checkpoint as the buffer
   `ta_weights` (zeros until train() sets them).

Temperature semantics. `WeightedEnsemble.forward` returns log p_ens, with tau applied to each TA's
logits inside the mixture. It is passed to distill_train with t_teacher = 1: softmax(log p_ens / 1)
= p_ens exactly, since p_ens sums to one. The student's side keeps t_student = tau and the default
scale tau^2, so the soft term is tau^2 * KL(p_ens || softmax(z_s / tau)); with one TA at weight 1
this is exactly takd's loss (tau on both sides). Dividing log p_ens by another temperature would
sharpen or flatten the mixture as a whole (p_ens^(1/T) renormalised), which is not the paper's
mixture, so t_teacher must stay 1.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from snnbench.distill import distill_train, spike_count, spiking_mlp_student
from snnbench.teachers import build_teacher, get_teacher
from snnbench.training import TrainingData

CITATION = """@article{ganta2022knowledge,
  title   = {Knowledge Distillation via Weighted Ensemble of Teaching Assistants},
  author  = {Ganta, Durga Prasad and Das Gupta, Himel and Sheng, Victor S.},
  journal = {arXiv preprint arXiv:2206.12005},
  year    = {2022}
}"""

TASKS = ("digits",)
# METHODS.md: beats single-TA distillation, no number given.
REPORTED = {}

HIDDEN = 32  # takd's tiny student
TAU = 4.0
ALPHA = 0.5
TEACHER_SIZE = "xlarge"
TA_SIZES = ("small", "medium", "large")
TA_SEED_OFFSET = 7919  # TA k uses seed + TA_SEED_OFFSET + k: its init and batches, apart from the student's
VAL_EVERY = 5  # every fifth training sample is the DE validation part, never trained on by teacher or TAs
TAG = "ta-ensemble-fit5"  # the teacher's cache tag: trained on the fit part only
DE_POPSIZE = 10  # scipy's population multiplier: 10 * K individuals
DE_MAXITER = 30


def build(task, hidden: int = HIDDEN) -> nn.Module:
    student = spiking_mlp_student(task, hidden)
    student.register_buffer("ta_weights", torch.zeros(len(TA_SIZES)))  # the DE weights, set by train()
    return student


def split(dataset) -> tuple[Subset, Subset]:
    """(fit part, validation part) of the training split: every VAL_EVERY-th sample is validation."""
    n = len(dataset)
    val = list(range(VAL_EVERY - 1, n, VAL_EVERY))
    held = set(val)
    return Subset(dataset, [i for i in range(n) if i not in held]), Subset(dataset, val)


def normalise(raw) -> np.ndarray:
    """Raw non-negative weights -> the simplex; all zeros -> uniform."""
    w = np.clip(np.asarray(raw, dtype=np.float64), 0.0, None)
    total = w.sum()
    return w / total if total > 0 else np.full(len(w), 1.0 / len(w))


class WeightedEnsemble(nn.Module):
    """Frozen members combined as p = sum_k w_k softmax(member_k(x) / tau); forward returns log p.

    Use it as a KD teacher with t_teacher = 1 (see the module docstring): softmax(forward(x)) = p.
    """

    def __init__(self, members, weights, tau: float = TAU) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.members = nn.ModuleList(members)
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=torch.float32)
        if w.shape != (len(self.members),) or bool((w < 0).any()) or not float(w.sum()) > 0:
            raise ValueError(
                f"need {len(self.members)} non-negative weights with a positive sum, got {weights}"
            )
        self.register_buffer("weights", w / w.sum())
        self.tau = float(tau)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_p = torch.stack([torch.log_softmax(m(x) / self.tau, -1) for m in self.members])  # [K, B, C]
        return torch.logsumexp(self.weights.log()[:, None, None] + log_p, 0)  # log sum_k w_k p_k


def train_assistants(task, data, budget, teacher, sizes=TA_SIZES) -> list[nn.Module]:
    """One TA per size: a TeacherNet distilled from `teacher` on `data` (takd's recipe), frozen."""
    assistants = []
    for k, size in enumerate(sizes):
        seed = budget.seed + TA_SEED_OFFSET + k
        own = TrainingData(task, data.dataset, data.timesteps, seed)  # its own batches and history
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            assistant = build_teacher(task, size, data.timesteps)
            distill_train(assistant, task, own, budget, teacher, alpha=ALPHA, t_student=TAU)
        for p in assistant.parameters():
            p.requires_grad_(False)
        assistants.append(assistant.eval().cpu())
    return assistants


def member_probabilities(task, dataset, timesteps, members, tau: float = TAU):
    """([K, N, C] softmax(z_k / tau) of every member on `dataset`, [N] labels), computed once."""
    probs, labels = [[] for _ in members], []
    with torch.no_grad():
        for x, y in TrainingData(task, dataset, timesteps, 0).loader(256, shuffle=False):
            for k, m in enumerate(members):
                probs[k].append(torch.softmax(m(x) / tau, -1))
            labels.append(y)
    return torch.stack([torch.cat(p) for p in probs]).double().numpy(), torch.cat(labels).numpy()


def ensemble_accuracy(weights, probs: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of argmax_c sum_k w_k probs[k, :, c] (weights normalised to the simplex)."""
    mixture = np.tensordot(normalise(weights), probs, axes=1)
    return float((mixture.argmax(1) == labels).mean())


def de_weights(probs: np.ndarray, labels: np.ndarray, seed: int, popsize=DE_POPSIZE, maxiter=DE_MAXITER):
    """Differential evolution over raw weights in [0, 1]^K maximising ensemble_accuracy.

    Returns (weights on the simplex, their accuracy, scipy's OptimizeResult). tol = 0 runs every
    generation unless the whole population ties; no polish (the objective is piecewise constant).
    """
    from scipy.optimize import differential_evolution

    result = differential_evolution(
        lambda raw: -ensemble_accuracy(raw, probs, labels),
        bounds=[(0.0, 1.0)] * probs.shape[0],
        seed=seed,
        popsize=popsize,
        maxiter=maxiter,
        tol=0.0,
        polish=False,
    )
    w = normalise(result.x)
    return w, ensemble_accuracy(w, probs, labels), result


def build_ensemble(task, data, budget, teacher=None, progress: bool = True):
    """Teacher (fit part) -> TAs (fit part) -> DE weights (validation part) -> WeightedEnsemble.

    Returns (ensemble, info) with info = validation accuracies of each TA, uniform and DE weights.
    """
    fit_part, val_part = split(data.dataset)
    fit = TrainingData(task, fit_part, data.timesteps, budget.seed)
    if teacher is None:
        teacher = get_teacher(task, fit, TEACHER_SIZE, seed=budget.seed, tag=TAG)
    assistants = train_assistants(task, fit, budget, teacher)
    probs, labels = member_probabilities(task, val_part, data.timesteps, assistants)
    w, acc, result = de_weights(probs, labels, budget.seed)
    k = len(assistants)
    info = {
        "weights": w,
        "val_de": acc,
        "val_uniform": ensemble_accuracy(np.ones(k), probs, labels),
        "val_single": [ensemble_accuracy(np.eye(k)[i], probs, labels) for i in range(k)],
        "de_evaluations": int(result.nfev),
        "assistants": assistants,
    }
    if progress:
        print(
            "kd_ta_ensemble: DE weights "
            + ", ".join(f"{s}={x:.3f}" for s, x in zip(TA_SIZES, w))
            + f"; validation accuracy DE {acc:.4f}, uniform {info['val_uniform']:.4f}, single "
            + ", ".join(f"{a:.4f}" for a in info["val_single"]),
            file=sys.stderr,
            flush=True,
        )
    return WeightedEnsemble(assistants, w, TAU), info


def train(model: nn.Module, task, data, budget, teacher=None, ensemble=None) -> nn.Module:
    """Build the DE-weighted TA ensemble (unless given), then distil the student from it."""
    if ensemble is None:
        ensemble, _ = build_ensemble(task, data, budget, teacher)
    if hasattr(model, "ta_weights") and model.ta_weights.shape == ensemble.weights.shape:
        model.ta_weights.copy_(ensemble.weights)
    return distill_train(
        model,
        task,
        data,
        budget,
        ensemble,
        alpha=ALPHA,
        t_student=TAU,
        t_teacher=1.0,  # forward returns log p_ens: softmax at 1 gives p_ens back (see the docstring)
        student_logits=spike_count,
    )
