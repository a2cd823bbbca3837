"""Temporal information dynamics (Kim et al. 2023, AAAI): Fisher information per timestep, and
iterative magnitude pruning whose rounds stop once that information has concentrated.

The network is the template's LIF conv net trained by surrogate-gradient BPTT; what the method adds
is the measurement and a pruning schedule driven by it. After every epoch, the training computes
FI_t, the trace of the empirical Fisher information of the weights under the readout accumulated to
step t (the mean of the outputs at steps 1..t, as the harness's `fisher_information` metric defines
it: snnbench.metrics.fisher), on a fixed subset of the training split, and appends to
`data.history`

    fisher_concentration = sum_{t <= ceil(T/3)} FI_t / sum_t FI_t

(the share of the first third of the steps) with the normalised FI_t per step. The paper's claim:
this share rises during training (information concentrates in the early steps).

train() (the submission): iterative magnitude pruning (snnbench.pruning.imp: global |w| ranking,
PRUNE_RATE of the remaining weights per round, rewinding to the initial weights) to
TARGET_SPARSITY. A round trains until the concentration index has settled -- the last FI_WINDOW
per-epoch indices lie within FI_TOL of each other and above the uniform share ceil(T/3)/T
(`fi_settled`; reconstruction) -- or ROUND_MAX_EPOCHS, instead of a full training per round. The
final ticket then trains for budget.epochs with the pruned weights held at exactly zero (the
checkpoint's zeros and `weight_mask` buffers carry the ticket), logging FI per epoch as before.

`train_dense` is the plain network without pruning (the first half of check.py). `ANTI_WEIGHT` > 0
adds the anti-concentration loss (reconstruction): alpha * sum_t w_t CE(out_t, y) with w_t
proportional to t, which rewards late steps for carrying the decision.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from snnbench import pruning
from snnbench.metrics.fisher import timestep_cotangents
from snnbench.neurons import LIF, MultiStep

CITATION = """@inproceedings{kim2023temporal,
  title     = {Exploring Temporal Information Dynamics in Spiking Neural Networks},
  author    = {Kim, Youngeun and Li, Yuhang and Park, Hyoungseob and Venkatesha, Yeshwanth and Hambitzer, Anna and Panda, Priyadarshini},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  volume    = {37},
  number    = {7},
  pages     = {8308--8316},
  year      = {2023}
}"""

REPORTED = {}  # the paper reports trends (concentration is general), no headline accuracy
TASKS = ("digits", "digits-dvs")

FI_SAMPLES = 64  # training samples behind the per-epoch FI (METHODS.md: 512; reduced for CPU time)
ANTI_WEIGHT = 0.0  # alpha of the anti-concentration loss; 0 = plain BPTT

# FI-guided IMP (the stopping rule is a reconstruction; the paper's exact criterion is unverified)
TARGET_SPARSITY = 0.875  # fraction of conv/linear weights pruned in the submitted network
PRUNE_RATE = 0.5  # IMP prunes this fraction of the remaining weights per round: 0.5, 0.75, 0.875
PRUNE_SCOPE = "global"
FI_WINDOW = 3  # a round stops once the last FI_WINDOW per-epoch indices ...
FI_TOL = 0.05  # ... lie within FI_TOL of each other (max - min) ...
FI_LEVEL = None  # ... and all reach this level (None: the uniform share ceil(T/3)/T)


def round_max_epochs(budget) -> int:
    """A round's epoch cap (plain IMP's full round): a third of the task's epochs, at least 3."""
    return max(3, budget.epochs // 3)


def build(task) -> nn.Module:
    """The template's network, with a `weight_mask` buffer per synaptic layer (the ticket travels in
    the checkpoint; all ones until train() prunes)."""
    channels, height, width = task.input_shape
    model = nn.Sequential(
        MultiStep(nn.Conv2d(channels, 16, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(16)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Conv2d(16, 32, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(32)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(32 * (height // 4) * (width // 4), task.outputs)),
    )
    return pruning.register_mask_buffers(model)


def fisher_per_timestep(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """[N, T]: ||d log p_t(y_i | x_i) / dW||^2 per sample i and readout t (eval mode, one sample per
    forward, one backward per t) -- the same quantity the harness's fisher_information averages.

    xs: [T, N, ...] encoded inputs, ys: [N] labels."""
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(xs.shape[1]):
        with torch.enable_grad():
            out = model(xs[:, i : i + 1])
            cots = timestep_cotangents(out.detach(), int(ys[i]))
            norms = []
            for k in range(cots.shape[0]):
                grads = torch.autograd.grad(
                    out, params, grad_outputs=cots[k], retain_graph=k < cots.shape[0] - 1, allow_unused=True
                )
                norms.append(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))
        rows.append(norms)
    model.train(was_training)
    return torch.tensor(rows, dtype=torch.float64)


def concentration(fi: torch.Tensor) -> float:
    """Share of the FI (per-step means, [T]) held by the first ceil(T/3) steps."""
    window = math.ceil(len(fi) / 3)
    total = float(fi.sum())
    return float(fi[:window].sum()) / total if total > 0 else float("nan")


def anti_concentration_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_t w_t CE(out_t, y), w_t = t / sum(1..T): later steps weigh more (reconstruction)."""
    steps = out.shape[0]
    w = torch.arange(1, steps + 1, dtype=out.dtype) / (steps * (steps + 1) / 2)
    per_step = torch.stack([nn.functional.cross_entropy(out[t], y) for t in range(steps)])
    return (w * per_step).sum()


def fisher_probe(data, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed set of n (default FI_SAMPLES) encoded training samples: the split's first n, one
    deterministic encoding."""
    from snnbench.encoding import encoder_for

    count = min(FI_SAMPLES if n is None else n, len(data.dataset))
    xs, ys = zip(*[data.dataset[i] for i in range(count)])
    x = torch.stack([torch.as_tensor(v) for v in xs]).float()
    gen = torch.Generator().manual_seed(data.seed)
    return encoder_for(data.task)(x, data.timesteps, gen), torch.as_tensor(ys)


def uniform_share(steps: int) -> float:
    """The concentration index of a flat FI_t: ceil(T/3) / T."""
    return math.ceil(steps / 3) / steps


def fi_settled(indices, level: float, window: int | None = None, tol: float | None = None) -> bool:
    """The round-stopping rule (reconstruction): the last `window` concentration indices lie within
    `tol` of each other (max - min) and all reach `level` -- the information has concentrated and
    stopped moving."""
    window = FI_WINDOW if window is None else window
    tol = FI_TOL if tol is None else tol
    if len(indices) < window:
        return False
    last = [float(v) for v in indices[-window:]]
    if any(math.isnan(v) for v in last):
        return False
    return max(last) - min(last) <= tol and min(last) >= level


def stop_epoch(indices, level: float, window: int | None = None, tol: float | None = None) -> int | None:
    """The first epoch (1-based) at which fi_settled holds on indices[:epoch]; None if never."""
    for epoch in range(1, len(indices) + 1):
        if fi_settled(indices[:epoch], level, window, tol):
            return epoch
    return None


def _fit(
    model: nn.Module,
    data,
    budget,
    epochs: int,
    *,
    alpha: float = 0.0,
    masks: pruning.Masks | None = None,
    log: dict | None = None,
    epoch_key: str = "epoch",
    measure: bool = True,
    stop=None,
    started: float | None = None,
) -> list[float]:
    """Adam + CE on the time-mean output (+ alpha * anti-concentration), cosine over `epochs`,
    keeping `masks` (pruned weights stay exactly zero). After each epoch (if `measure`) the FI
    concentration index and per-step shares are logged; stop(indices) -> True ends early. Returns
    the per-epoch indices."""
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, epochs))
    keeper = pruning.keep_pruned(model, masks, optimiser) if masks is not None else None
    probe_x, probe_y = fisher_probe(data) if measure else (None, None)
    started = time.monotonic() if started is None else started
    indices: list[float] = []
    try:
        for epoch in range(epochs):
            model.train()
            seen = correct = 0
            total = 0.0
            for x, y in data.loader(budget.batch_size):
                out = model(x)
                loss = nn.functional.cross_entropy(out.mean(0), y)
                if alpha:
                    loss = loss + alpha * anti_concentration_loss(out, y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                seen += y.numel()
                correct += int((out.mean(0).argmax(1) == y).sum())
                total += loss.item() * y.numel()
            schedule.step()
            entry = dict(log or {})
            entry.update({epoch_key: epoch + 1, "loss": total / seen, "train_accuracy": correct / seen})
            if measure:
                fi = fisher_per_timestep(model, probe_x, probe_y).mean(0)
                indices.append(concentration(fi))
                entry["fisher_concentration"] = indices[-1]
                share = fi / fi.sum() if float(fi.sum()) > 0 else fi
                entry.update({f"fisher_share_t{t + 1}": float(v) for t, v in enumerate(share)})
            data.history.append(entry)
            if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
                break
            if stop is not None and stop(indices):
                break
    finally:
        if keeper is not None:
            keeper.remove()
    return indices


def train_dense(model: nn.Module, task, data, budget, anti_weight: float | None = None) -> nn.Module:
    """The unpruned network: Adam + CE on the time-mean output (+ the anti-concentration term),
    budget.epochs, logging FI per epoch (the first half of check.py)."""
    alpha = ANTI_WEIGHT if anti_weight is None else anti_weight
    _fit(model, data, budget, budget.epochs, alpha=alpha)
    model.eval()
    return model


def fi_imp(
    model: nn.Module,
    data,
    budget,
    *,
    fi_stop: bool = True,
    target: float | None = None,
    rate: float | None = None,
    max_epochs: int | None = None,
    started: float | None = None,
) -> tuple[pruning.Masks, list[dict]]:
    """IMP to `target` (snnbench.pruning.imp: train, prune `rate` of the remaining weights by global
    |w|, rewind to the initial weights). With fi_stop a round ends once fi_settled holds on its
    per-epoch concentration indices (else after max_epochs); without, every round trains
    max_epochs (plain IMP: no FI is computed). Returns the masks (the model rewound under them) and
    one summary per round: round, sparsity after it, epochs trained, stopped_by, last index."""
    target = TARGET_SPARSITY if target is None else target
    rate = PRUNE_RATE if rate is None else rate
    max_epochs = round_max_epochs(budget) if max_epochs is None else max_epochs
    level = uniform_share(data.timesteps) if FI_LEVEL is None else FI_LEVEL
    started = time.monotonic() if started is None else started
    rounds: list[dict] = []

    def train_round(model, masks, r):
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            rounds.append({"round": r + 1, "epochs": 0, "stopped_by": "wall_time_s"})
            return rounds[-1]
        before = len(data.history)
        indices = _fit(
            model,
            data,
            budget,
            max_epochs,
            masks=masks,
            log={"phase": "search", "round": r + 1},
            epoch_key="round_epoch",
            measure=fi_stop,
            stop=(lambda ix: fi_settled(ix, level)) if fi_stop else None,
            started=started,
        )
        epochs = len(data.history) - before
        if fi_stop and fi_settled(indices, level):
            why = "fisher"
        elif epochs < max_epochs:
            why = "wall_time_s"
        else:
            why = "max_epochs"
        rounds.append(
            {
                "round": r + 1,
                "epochs": epochs,
                "stopped_by": why,
                "fisher_concentration": indices[-1] if indices else float("nan"),
            }
        )
        return rounds[-1]

    masks, log = pruning.imp(model, train_round, target, rate=rate, scope=PRUNE_SCOPE)
    for entry, summary in zip(log, rounds):
        summary["sparsity"] = entry["sparsity"]
    return masks, rounds


def train(model: nn.Module, task, data, budget, anti_weight: float | None = None) -> nn.Module:
    """FI-guided IMP to TARGET_SPARSITY, then the ticket trained budget.epochs (FI logged per epoch).

    History: one entry per search epoch (phase "search", round, round_epoch, index, shares), one per
    round (phase "round": sparsity, epochs, stopped_by), then the ticket's epochs (phase "ticket",
    epoch 1..budget.epochs: what the harness counts as the budget)."""
    alpha = ANTI_WEIGHT if anti_weight is None else anti_weight
    started = time.monotonic()
    masks, rounds = fi_imp(model, data, budget, started=started)
    for summary in rounds:
        data.history.append({"phase": "round", **summary})
    _fit(
        model,
        data,
        budget,
        budget.epochs,
        alpha=alpha,
        masks=masks,
        log={"phase": "ticket"},
        started=started,
    )
    pruning.apply_masks(model, masks)
    model.eval()
    return model
