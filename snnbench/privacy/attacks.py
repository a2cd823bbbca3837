"""Membership-inference scores and their ROC statistics; pure functions of probabilities.

Every score is "higher = more likely a member". Inputs are the target model's probability of each
sample's true label, p_target [N], and the same probability under K reference models,
p_ref [K, N], with `ref_in` [K, N] True where reference model k trained on sample n.

- loss threshold (Yeom et al. 2018): score = log p_target (minus the cross-entropy loss);
- offline LiRA (Carlini et al. 2022, S&P): phi = log(p / (1 - p)) of the true label; a Gaussian is
  fitted to phi of the OUT reference models of each sample (per-sample mean, one variance pooled
  over all samples, as the paper advises with few reference models); score = (phi - mu) / sigma;
- offline RMIA (Zarifzadeh et al. 2024, ICML): likelihood ratio LR(x) = p(x|target) / p(x) with
  p(x) = ((1 + a) * mean_OUT p(x|ref) + (1 - a)) / 2 (their offline approximation, a = 0.3), and
  score(x) = fraction of population samples z with LR(x) / LR(z) > gamma (gamma = 1), where
  LR(z) = p(z|target) / mean_k p(z|ref_k) on samples z that no model trained on.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12
RMIA_A = 0.3
RMIA_GAMMA = 1.0


def loss_scores(p_target: np.ndarray) -> np.ndarray:
    """-cross-entropy of the true label."""
    return np.log(np.clip(np.asarray(p_target, dtype=np.float64), EPS, 1.0))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - 1e-9)
    return np.log(p) - np.log1p(-p)


def _out_mask(ref_in: np.ndarray) -> np.ndarray:
    out = ~np.asarray(ref_in, dtype=bool)
    if not out.any(axis=0).all():
        missing = int((~out.any(axis=0)).sum())
        raise ValueError(
            f"{missing} samples have no OUT reference model; train more reference models "
            "([privacy] reference_models)"
        )
    return out


def lira_offline(p_target: np.ndarray, p_ref: np.ndarray, ref_in: np.ndarray) -> np.ndarray:
    """Offline LiRA: z-score of the target's logit confidence under the OUT models' Gaussian."""
    out = _out_mask(ref_in)
    phi_t = _logit(p_target)
    phi_r = _logit(p_ref)
    count = out.sum(0)
    mu = (phi_r * out).sum(0) / count
    resid = (phi_r - mu[None, :]) * out
    dof = max(int(out.sum()) - out.shape[1], 1)
    sigma = float(np.sqrt((resid**2).sum() / dof))
    return (phi_t - mu) / max(sigma, 1e-6)


def rmia_offline(
    p_target: np.ndarray,
    p_ref: np.ndarray,
    ref_in: np.ndarray,
    p_target_pop: np.ndarray,
    p_ref_pop: np.ndarray,
    a: float = RMIA_A,
    gamma: float = RMIA_GAMMA,
) -> np.ndarray:
    """Offline RMIA: the fraction of population samples each sample dominates by likelihood ratio."""
    out = _out_mask(ref_in)
    p_target = np.asarray(p_target, dtype=np.float64)
    p_out = (np.asarray(p_ref, dtype=np.float64) * out).sum(0) / out.sum(0)
    p_x = 0.5 * ((1.0 + a) * p_out + (1.0 - a))
    lr_x = p_target / np.maximum(p_x, EPS)
    lr_z = np.asarray(p_target_pop, dtype=np.float64) / np.maximum(
        np.asarray(p_ref_pop, dtype=np.float64).mean(0), EPS
    )
    if lr_z.size == 0:
        raise ValueError("RMIA needs population samples z that no model trained on")
    thresholds = np.sort(lr_z * gamma)
    return np.searchsorted(thresholds, lr_x, side="left") / lr_z.size


# ---------------------------------------------------------------- ROC statistics


def roc_curve(scores: np.ndarray, is_member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) at every distinct threshold, from (0, 0) to (1, 1); ties move both at once."""
    scores = np.asarray(scores, dtype=np.float64)
    member = np.asarray(is_member, dtype=bool)
    pos, neg = int(member.sum()), int((~member).sum())
    if pos == 0 or neg == 0:
        raise ValueError("a ROC curve needs both members and non-members")
    order = np.argsort(-scores, kind="stable")
    s, m = scores[order], member[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each tie group
    tp = np.cumsum(m)[last]
    fp = np.cumsum(~m)[last]
    return np.r_[0.0, fp / neg], np.r_[0.0, tp / pos]


def auc(scores: np.ndarray, is_member: np.ndarray) -> float:
    """ROC AUC: P(score of a member > score of a non-member) + half the ties (Mann-Whitney)."""
    fpr, tpr = roc_curve(scores, is_member)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def auc_stderr(value: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    var = (value * (1 - value) + (n_pos - 1) * (q1 - value**2) + (n_neg - 1) * (q2 - value**2)) / (
        n_pos * n_neg
    )
    return float(np.sqrt(max(var, 0.0)))


def tpr_at_fpr(scores: np.ndarray, is_member: np.ndarray, fpr: float) -> float | None:
    """The highest TPR of a threshold whose FPR is <= `fpr`; None with fewer than 1/fpr non-members
    (the FPR cannot be resolved: one false positive already exceeds it)."""
    neg = int((~np.asarray(is_member, dtype=bool)).sum())
    if neg < int(np.ceil(1.0 / fpr - 1e-9)):
        return None
    f, t = roc_curve(scores, is_member)
    return float(t[f <= fpr + 1e-12].max())
