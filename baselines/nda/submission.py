"""nda: Neuromorphic Data Augmentation (Li et al. 2022, ECCV) on the template's spiking network.

Mechanism
- Every training sample gets exactly one geometric op, drawn uniformly from NDA's set
  {flip, roll, rotate, cutout, shear, CutMix}; the op's parameters are drawn once per sample and
  applied identically to every time bin and both polarities of its [T, 2, H, W] frames (the event
  stream is moved, never re-coloured: no photometric op). The ops are the generic ones of
  snnbench.data.augment: EventFlip (left-right), EventRoll (wrap-around shift, +-3 px),
  EventRotate (+-15 degrees), EventCutout (one empty 8 x 8 box at 32 x 32), EventShear (+-0.3,
  horizontal) and EventCutMix (a rectangle of another sample of the batch, Beta(1, 1) area).
- A CutMix sample is trained on the area-mixed label: lam CE(y_a) + (1 - lam) CE(y_b), lam the
  share of its own pixels it keeps; every other sample has lam = 1 (plain cross-entropy).
- Network and recipe otherwise the digits-dvs reference (submissions/template.py with the default
  recipe): conv16-BN-LIF-pool, conv32-BN-LIF-pool, linear readout per step, surrogate BPTT, Adam
  with the task's lr, cosine schedule, cross-entropy on the time-mean output, the task's budget.
  `train(..., augment=False)` is the same loop without NDA (the check's control).
The augmentation draws come from their own generator (seeded by the run's seed), so the batches
and their order are the same with and without NDA.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from snnbench.data.augment import (
    Augment,
    CutMixResult,
    EventCutMix,
    EventCutout,
    EventFlip,
    EventRoll,
    EventRotate,
    EventShear,
    mixed_cross_entropy,
)
from snnbench.frameworks import reset_state
from snnbench.neurons import LIF, MultiStep
from snnbench.training import readout

CITATION = """@inproceedings{li2022neuromorphic,
  title     = {Neuromorphic Data Augmentation for Training Spiking Neural Networks},
  author    = {Li, Yuhang and Kim, Youngeun and Park, Hyoungseob and Geller, Tamar and Panda, Priyadarshini},
  booktitle = {Computer Vision -- ECCV 2022},
  series    = {Lecture Notes in Computer Science},
  volume    = {13667},
  pages     = {631--649},
  publisher = {Springer},
  year      = {2022}
}"""

# METHODS.md lists digits-dvs, nmnist, cifar10dvs, ncaltech101, dvsgesture; the embedded one is
# digits-dvs (snnbench sweep leaves out the other tasks).
TASKS = ("digits-dvs",)
REPORTED = {
    "cifar10dvs accuracy (unverified)": 0.817,
    "ncaltech101 accuracy (unverified)": 0.782,
}

ROLL_PX = 3  # METHODS.md (unverified); kept at 32 x 32 (about 9% of the side)
ROTATE_DEGREES = 15.0  # METHODS.md (unverified); an angle needs no scaling with resolution
SHEAR = 0.3  # METHODS.md (unverified); a ratio, no scaling with resolution
CUTOUT_FRACTION = 0.25  # box side / frame side (reconstruction): 8 px at 32 x 32
CUTMIX_ALPHA = 1.0  # Beta(alpha, alpha) of the CutMix box (Yun et al.'s default; reconstruction)
AUGMENT_SEED_OFFSET = 7_919  # the augmentation generator's seed = run seed + this


def build(task) -> nn.Module:
    """The template's network (submissions/template.py), unchanged."""
    channels, height, width = task.input_shape
    return nn.Sequential(
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


class NDAPolicy:
    """One op per sample, uniform over `geometric` plus CutMix (the last choice). (A plain class:
    a dataclass in a file the harness loads without registering it as a module would not build.)"""

    def __init__(self, geometric: tuple[Augment, ...], cutmix: EventCutMix | None = None):
        self.geometric = tuple(geometric)
        self.cutmix = EventCutMix(alpha=CUTMIX_ALPHA) if cutmix is None else cutmix

    def __repr__(self) -> str:
        return f"NDAPolicy(geometric={self.geometric!r}, cutmix={self.cutmix!r})"

    @property
    def n_ops(self) -> int:
        return len(self.geometric) + 1

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, batch_dim: int = 1
    ) -> tuple[CutMixResult, torch.Tensor]:
        """x [.., B at batch_dim, .., H, W], y [B] -> (CutMixResult, op index per sample [B]).
        CutMix samples take their box from the un-augmented batch; the others get their
        geometric op (a sample drawing CutMix gets no other op)."""
        n = x.shape[batch_dim]
        choice = torch.randint(0, self.n_ops, (n,), generator=generator)
        mixed = self.cutmix(x, y, generator, batch_dim=batch_dim, select=choice == len(self.geometric))
        samples = list(mixed.x.movedim(batch_dim, 0))
        for i in range(n):
            k = int(choice[i])
            if k < len(self.geometric):
                samples[i] = self.geometric[k].one(samples[i], generator)
        return mixed._replace(x=torch.stack(samples).movedim(0, batch_dim)), choice


def policy_for(task) -> NDAPolicy:
    """NDA's op set with the knobs above, the cutout box scaled to the task's frame."""
    side = min(task.input_shape[-2:])
    return NDAPolicy(
        geometric=(
            EventFlip(p=1.0),
            EventRoll(max_shift=ROLL_PX),
            EventRotate(max_degrees=ROTATE_DEGREES),
            EventCutout(size=max(1, round(CUTOUT_FRACTION * side))),
            EventShear(max_shear=SHEAR),
        )
    )


def train(model: nn.Module, task, data, budget, augment: bool = True) -> nn.Module:
    """The default BPTT recipe (Adam, cosine, CE on the time-mean output) with NDA on every batch.
    History per epoch: loss (the mixed loss), train_accuracy (against y_a on augmented batches)."""
    device = torch.device(budget.device)
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    policy = policy_for(task)
    generator = torch.Generator().manual_seed(int(data.seed) + AUGMENT_SEED_OFFSET)
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            if augment:
                mixed, _ = policy(x, y, generator, batch_dim=1)
                x, y_a, y_b, lam = mixed.x, mixed.y_a, mixed.y_b, mixed.lam
            else:
                y_a, y_b, lam = y, y, torch.ones(len(y), dtype=torch.float64)
            x, y_a, y_b, lam = x.to(device), y_a.to(device), y_b.to(device), lam.to(device)
            reset_state(model)
            logits = readout(model(x))
            loss = mixed_cross_entropy(logits, y_a, y_b, lam)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += y_a.numel()
            correct += int((logits.argmax(1) == y_a).sum())
            total += loss.item() * y_a.numel()
        schedule.step()
        data.history.append({"epoch": epoch + 1, "loss": total / seen, "train_accuracy": correct / seen})
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model
