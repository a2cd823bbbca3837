"""kd_hint_cluster: hint points chosen by clustering the teacher's layers (Keser et al. 2023, PURSUhInT).

FitNets-style hint distillation whose hint points are not fixed by hand: every candidate layer of
the teacher is described by data-derived metrics, the layers are clustered with k-means, and the
layer nearest each cluster centre becomes a hint point. The student's feature taps reach the hints
through regressors (L2), on top of output KD.

Here:
- teacher = the cached "large" ReLU CNN of snnbench.teachers (kd_vanilla's teacher). TeacherNet has
  only three hidden stages, too few to cluster, so the candidates are all its intermediate
  activations: the outputs of conv1, bn1, relu1, pool1, conv2, bn2, relu2, pool2, fc1, relu3 (ten;
  the Flatten, a reshape of pool2, and the logits, already matched by output KD, are left out);
- descriptors (reconstruction) over a fixed probe batch (the first PROBE training samples in
  dataset order): the layer's row of the linear-CKA matrix among the candidates, its linear CKA with
  the input and with the teacher's logits, and the mean, standard deviation and fraction of zeros of
  its activations; each column z-scored;
- sklearn KMeans(K, random_state=KMEANS_SEED, n_init=10) on the descriptors; in each cluster the
  member nearest the centre (Euclidean) is a hint; hints sorted by depth;
- student = a small spiking CNN with K = 3 hidden LIF layers (the feature taps): conv 8 - BN - LIF -
  pool, conv 16 - BN - LIF - pool, fc 64 - LIF, fc classes - LIF (spike-count output, as the other
  KD baselines); tap i (time-averaged spike rate) is guided towards hint i (in depth order) through
  a snnbench.distill.HintRegressor (1x1 conv + adaptive pooling, or a linear map);
- loss = kd_vanilla's kd_loss (tau 4, alpha 0.5, z_s = output spike count)
         + HINT_WEIGHT * sum_i MSE(regressor_i(rate_i), hint_i / rms_i)
  with rms_i the teacher activation's root mean square on the probe batch (reconstruction: puts the
  hints of different layers on one scale); one stage, jointly (reconstruction; FitNets pre-trains
  the guided layers first). The regressors are dropped after training (not in the checkpoint).

The check's control, FitNets' default, is one hint at the teacher's middle hidden stage
(MIDDLE_HINT = relu2, the second of three) into the student's middle tap, same student and budget.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

from snnbench.distill import HintRegressor, distill_train, hint_loss, spike_count
from snnbench.neurons import LIF, BaseNeuron, MultiStep
from snnbench.teachers import TeacherNet, get_teacher
from snnbench.training import TrainingData

CITATION = """@article{keser2023pursuhint,
  title   = {{PURSUhInT}: In Search of Informative Hint Points Based on Layer Clustering for
             Knowledge Distillation},
  author  = {Keser, Reyhan Kevser and Ayanzadeh, Aydin and Aghdam, Omid Abdollahi and
             Kilcioglu, Caglar and Toreyin, Behcet Ugur and Ure, Nazim Kemal},
  journal = {Expert Systems with Applications},
  volume  = {213},
  pages   = {119040},
  year    = {2023},
  doi     = {10.1016/j.eswa.2022.119040}
}"""

TASKS = ("digits",)
# METHODS.md: beats standard hint points and SOTA KD on CIFAR-100 and ImageNet; no figure given.
REPORTED = {}

TEACHER_SIZE = "large"
TAU = 4.0
ALPHA = 0.5
HINT_WEIGHT = 1.0  # per hint
K_HINTS = 3  # = the student's feature taps
KMEANS_SEED = 0
PROBE = 256  # probe batch for the layer descriptors
# TeacherNet.body indices of the candidate layers (output of that module) for image inputs.
CANDIDATES = {
    "conv1": 0,
    "bn1": 1,
    "relu1": 2,
    "pool1": 3,
    "conv2": 4,
    "bn2": 5,
    "relu2": 6,
    "pool2": 7,
    "fc1": 9,
    "relu3": 10,
}
MIDDLE_HINT = "relu2"  # FitNets' default: the teacher's middle hidden stage (control of the check)
MIDDLE_TAP = 1  # the student's middle tap
REGRESSOR_SEED_OFFSET = 4099  # the regressors' init: seed = run seed + this


def build(task, widths: tuple[int, int, int] = (8, 16, 64)) -> nn.Module:
    """Spiking CNN with three hidden LIF layers (the feature taps) and a LIF output layer."""
    channels, height, width = task.input_shape
    c1, c2, hidden = widths
    return nn.Sequential(
        MultiStep(nn.Conv2d(channels, c1, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(c1)),
        LIF(tau=2.0),  # tap 0
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Conv2d(c1, c2, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(c2)),
        LIF(tau=2.0),  # tap 1
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(c2 * (height // 4) * (width // 4), hidden)),
        LIF(tau=2.0),  # tap 2
        MultiStep(nn.Linear(hidden, task.outputs)),
        LIF(tau=2.0),  # spiking output: z_s is its spike count
    )


def taps(model: nn.Module) -> list[nn.Module]:
    """The student's hidden spiking layers in depth order (every neuron but the output one)."""
    neurons = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    return neurons[:-1]


# ------------------------------------------------------------------ teacher layers and clustering


def teacher_activations(teacher: TeacherNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The candidate layers' outputs [B, ...] for the encoded batch x [T, B, ...], and "logits"."""
    body = teacher.body
    index = {i: name for name, i in CANDIDATES.items()}
    acts: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        h = teacher.static_input(x)
        for i, layer in enumerate(body):
            h = layer(h)
            if i in index:
                acts[index[i]] = h
        acts["logits"] = teacher.head(h)
    return acts


def linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) of two [n, ...] representations of the same n samples:
    ||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F) after centring the columns; 0 for a constant one."""
    x = a.reshape(a.shape[0], -1).double()
    y = b.reshape(b.shape[0], -1).double()
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    kx, ky = x @ x.t(), y @ y.t()  # n x n Gram matrices: tr(Kx Ky) = ||Y^T X||_F^2
    den = float(torch.linalg.norm(kx) * torch.linalg.norm(ky))
    return float((kx * ky).sum()) / den if den > 0 else 0.0


def layer_descriptors(acts: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[list[str], np.ndarray]:
    """One row per candidate: CKA with every candidate, with the input and with the logits; mean,
    std and fraction of zeros of its activations. Columns z-scored (constant columns -> 0)."""
    names = [n for n in CANDIDATES if n in acts]
    inp = x.movedim(0, 1)  # [B, T, ...]
    rows = []
    for n in names:
        a = acts[n]
        cka = [linear_cka(a, acts[m]) for m in names]
        cka += [linear_cka(a, inp), linear_cka(a, acts["logits"])]
        stats = [float(a.mean()), float(a.std()), float((a == 0).float().mean())]
        rows.append(cka + stats)
    d = np.asarray(rows, dtype=np.float64)
    sd = d.std(0)
    d = (d - d.mean(0)) / np.where(sd > 1e-12, sd, 1.0)
    return names, d


def pick_centres(descriptors: np.ndarray, k: int, seed: int = KMEANS_SEED) -> list[int]:
    """k-means the rows; per cluster the row nearest its centre; returned sorted (depth order)."""
    from sklearn.cluster import KMeans

    if not 1 <= k <= len(descriptors):
        raise ValueError(f"need 1 <= K <= {len(descriptors)} candidate layers, got K={k}")
    km = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(descriptors)
    picks = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        dist = np.linalg.norm(descriptors[members] - km.cluster_centers_[c], axis=1)
        picks.append(int(members[np.argmin(dist)]))
    return sorted(picks)


def probe_batch(task, data, n: int = PROBE) -> torch.Tensor:
    """The first n training samples in dataset order, encoded [T, n, ...] (data's counter untouched)."""
    own = TrainingData(task, data.dataset, data.timesteps, 0)
    x, _ = next(iter(own.loader(n, shuffle=False)))
    return x


def select_hints(teacher: TeacherNet, probe: torch.Tensor, k: int = K_HINTS) -> tuple[str, ...]:
    """The hint points: names of the candidate layers nearest the k-means centres, in depth order."""
    acts = teacher_activations(teacher, probe)
    names, d = layer_descriptors(acts, probe)
    return tuple(names[i] for i in pick_centres(d, k))


# ------------------------------------------------------------------ training


class HintedStudent(nn.Module):
    """Student + regressors: forward returns the student's output and keeps its taps' rates."""

    def __init__(self, student: nn.Module, tap_shapes, hint_shapes) -> None:
        super().__init__()
        self.student = student
        self.regressors = nn.ModuleList(HintRegressor(s, t) for s, t in zip(tap_shapes, hint_shapes))
        self.rates: dict[int, torch.Tensor] = {}  # tap index -> time-averaged spikes, last forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)


def tap_rates(student: nn.Module, x: torch.Tensor, tap_ids) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run the student, returning its output and the time-averaged spikes of the chosen taps."""
    layers = taps(student)
    caught: dict[int, torch.Tensor] = {}
    hooks = [
        layers[i].register_forward_hook(lambda _m, _inp, out, i=i: caught.__setitem__(i, out.mean(0)))
        for i in tap_ids
    ]
    try:
        out = student(x)
    finally:
        for h in hooks:
            h.remove()
    return out, [caught[i] for i in tap_ids]


def train(
    model: nn.Module,
    task,
    data,
    budget,
    teacher=None,
    hints: tuple[str, ...] | None = None,
    tap_ids: tuple[int, ...] | None = None,
    hint_weight: float = HINT_WEIGHT,
) -> nn.Module:
    """Select the hints by clustering (unless given), then KD + hint losses for the budget."""
    if teacher is None:
        teacher = get_teacher(task, data, TEACHER_SIZE, seed=budget.seed)
    probe = probe_batch(task, data)
    if hints is None:
        hints = select_hints(teacher, probe, len(taps(model)))
        print(f"kd_hint_cluster: hint points {', '.join(hints)}", file=sys.stderr, flush=True)
    hints = tuple(hints)
    tap_ids = tuple(range(len(hints))) if tap_ids is None else tuple(tap_ids)
    if len(tap_ids) != len(hints):
        raise ValueError(f"{len(hints)} hints need as many student taps, got {tap_ids}")
    acts = teacher_activations(teacher, probe)
    rms = [float(acts[h].pow(2).mean().sqrt().clamp_min(1e-8)) for h in hints]
    was_training = model.training
    model.eval()  # shapes only: leave the BN running statistics untouched
    with torch.no_grad():
        _, rates = tap_rates(model, probe[:, :2], tap_ids)
    model.train(was_training)
    # the regressors' init from the run's seed, not from the global RNG: a teacher-cache hit
    # (snnbench.teachers._load builds a TeacherNet outside a forked RNG) advances the global RNG
    # and a miss does not, so drawing from it here made a run depend on the cache's state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(getattr(budget, "seed", 0)) + REGRESSOR_SEED_OFFSET)
        wrapped = HintedStudent(
            model, [tuple(r.shape[1:]) for r in rates], [tuple(acts[h].shape[1:]) for h in hints]
        )
    layers = taps(model)
    hooks = [
        layers[i].register_forward_hook(lambda _m, _inp, out, i=i: wrapped.rates.__setitem__(i, out.mean(0)))
        for i in tap_ids
    ]

    def extra_loss(out, x, y):
        rates, wrapped.rates = wrapped.rates, {}
        target = teacher_activations(teacher, x)
        loss = out.new_zeros(())
        for i, reg, h, s in zip(tap_ids, wrapped.regressors, hints, rms):
            loss = loss + hint_loss(rates[i], target[h] / s, reg)
        return hint_weight * loss

    try:
        distill_train(
            wrapped,
            task,
            data,
            budget,
            teacher,
            alpha=ALPHA,
            t_student=TAU,
            t_teacher=TAU,
            student_logits=spike_count,
            extra_loss=extra_loss,
        )
    finally:
        for h in hooks:
            h.remove()
    return model.eval()
