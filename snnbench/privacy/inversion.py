"""Class leakage: invert each class from the model alone, judged by an independent classifier.

For every class c, R inputs start from uniform noise in [0, 1] pixel space and follow Adam on
    CE(model(encode(u)), c) + tv * TV(u) + l2 * mean(u^2)
(TV: mean absolute difference of neighbouring pixels; a small image prior, as in model-inversion
attacks), clamped to [0, 1] after every step. The model is reached only through a
GradientOracle (robustness.SandboxOracle: encoded inputs and cotangents cross, labels never do).
class_leakage is the fraction of inverted inputs that the reference classifier, a small ANN the
harness trains once per task on the training split (cached), assigns to the target class: 1/C
when nothing of the classes leaks, 1 when every inversion is recognisable.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from snnbench.metrics.robustness import PixelSpace

STEPS = 200
RESTARTS = 8
LR = 0.05
TV_WEIGHT = 0.05
L2_WEIGHT = 0.01


@dataclass(frozen=True)
class Inversion:
    images: Tensor  # [C, R, *input_shape] pixels in [0, 1]
    predicted: Tensor  # [C, R] the reference classifier's class


def image_prior(u: Tensor, tv: float = TV_WEIGHT, l2: float = L2_WEIGHT) -> Tensor:
    """Summed over the batch: tv * mean |neighbour differences| + l2 * mean u^2 per image."""
    flat_l2 = u.pow(2).flatten(1).mean(1)
    if u.dim() >= 4:
        dh = (u[..., 1:, :] - u[..., :-1, :]).abs().flatten(1).mean(1)
        dw = (u[..., :, 1:] - u[..., :, :-1]).abs().flatten(1).mean(1)
        total_tv = dh + dw
    else:
        total_tv = (u[:, 1:] - u[:, :-1]).abs().flatten(1).mean(1)
    return (tv * total_tv + l2 * flat_l2).sum()


def invert_classes(
    oracle,
    space: PixelSpace,
    input_shape: tuple[int, ...],
    classes: int,
    seed: int,
    steps: int | None = None,
    restarts: int | None = None,
    lr: float = LR,
) -> Tensor:
    """[C, R, *input_shape] inverted inputs (pixels in [0, 1]) from uniform noise (steps and
    restarts default to the module's STEPS and RESTARTS)."""
    steps = STEPS if steps is None else steps
    restarts = RESTARTS if restarts is None else restarts
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(restarts)
    u = torch.rand((classes * restarts, *input_shape), generator=generator)
    u.requires_grad_(True)
    optimiser = torch.optim.Adam([u], lr=lr)
    for _ in range(steps):
        _, g_enc = oracle.loss_gradient(space.encode(u.detach(), generator), labels)
        g_model = space.pixel_gradient(g_enc)
        optimiser.zero_grad(set_to_none=True)
        with torch.enable_grad():
            prior = image_prior(u)
            (g_prior,) = torch.autograd.grad(prior, u)
        u.grad = g_model.to(u.dtype) + g_prior
        optimiser.step()
        with torch.no_grad():
            u.clamp_(0.0, 1.0)
    return u.detach().reshape(classes, restarts, *input_shape)


def leakage_fraction(predicted: Tensor) -> tuple[float, int]:
    """(fraction of inversions classified as their target class, count); predicted is [C, R]."""
    classes, restarts = predicted.shape
    target = torch.arange(classes).view(-1, 1).expand(classes, restarts)
    return float((predicted == target).double().mean()), predicted.numel()


# ---------------------------------------------------------------- reference classifier


class ReferenceClassifier(nn.Module):
    """A small ANN on the dataset's inputs [B, *input_shape]; independent of every submission."""

    def __init__(self, input_shape: tuple[int, ...], classes: int) -> None:
        super().__init__()
        if len(input_shape) == 3:
            c = input_shape[0]
            self.net = nn.Sequential(
                nn.Conv2d(c, 32, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, padding=1, stride=2),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(2),
                nn.Flatten(),
                nn.Dropout(0.2),
                nn.Linear(256, classes),
            )
        else:
            features = 1
            for d in input_shape:
                features *= d
            self.net = nn.Sequential(
                nn.Flatten(), nn.Linear(features, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, classes)
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def train_reference_classifier(
    inputs: Tensor, labels: Tensor, classes: int, seed: int = 0, epochs: int = 20, batch: int = 64
) -> ReferenceClassifier:
    """Adam + cross-entropy with light noise augmentation, in the harness process."""
    torch.manual_seed(seed)
    model = ReferenceClassifier(tuple(inputs.shape[1:]), classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), batch):
            idx = order[start : start + batch]
            x = inputs[idx] + 0.05 * torch.randn(inputs[idx].shape, generator=generator)
            loss = nn.functional.cross_entropy(model(x), labels[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval()


def reference_classifier(
    task, train_inputs: Tensor, train_labels: Tensor, cache: Path
) -> ReferenceClassifier:
    """The task's reference classifier, trained once (seed 0) and cached by task id, version and spec."""
    key = hashlib.sha256(f"{task.id}|{task.version}|{task.spec_hash()}|v1".encode()).hexdigest()[:20]
    path = cache / task.id / f"reference-classifier-{key}.pt"
    model = ReferenceClassifier(tuple(train_inputs.shape[1:]), task.classes)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    except Exception:  # noqa: BLE001 - missing or damaged: train it again
        pass
    model = train_reference_classifier(train_inputs, train_labels, task.classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
    return model


@torch.no_grad()
def classify(model: nn.Module, inputs: Tensor, batch: int = 256) -> Tensor:
    model.eval()
    return torch.cat([model(inputs[s : s + batch]).argmax(1) for s in range(0, len(inputs), batch)])
