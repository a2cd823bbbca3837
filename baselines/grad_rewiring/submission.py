"""grad_rewiring: Grad R, pruning a spiking network during training by gradient rewiring
(Chen, Yu, Huang & Tian, IJCAI 2021).

Every synapse has a fixed sign s (its initial sign) and a hidden strength theta (initially |w|);
its weight is w = s * max(theta, 0), so a synapse exists while theta > 0. The hidden strength
follows the gradient of the loss with respect to the weight itself, theta <- theta - lr * s * dL/dw
(Adam-normalised), even where theta <= 0 and the weight is zero: a pruned synapse whose gradient
keeps asking for it grows back. A Laplacian prior on theta (scale 1/alpha, centre mu =
ln(2(1 - target)) / alpha, i.e. P(theta > 0) = 1 - target under the prior) adds the constant pull
-step * alpha * sign(theta - mu), which sets the connectivity (step = Adam's bias-corrected step
size lr / (1 - beta1^k), as in the official code). One phase, no fine-tuning.

The network is the template's (submissions/template.py); the checkpoint holds w with exact zeros
for absent synapses (theta and s are training state only), so weight_sparsity and SynOps see the
pruned network. Other parameters (BatchNorm) train by plain Adam.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from snnbench import pruning
from snnbench.frameworks import reset_state
from snnbench.neurons import LIF, MultiStep
from snnbench.training import readout

CITATION = """@inproceedings{chen2021pruning,
  author    = {Chen, Yanqi and Yu, Zhaofei and Fang, Wei and Huang, Tiejun and Tian, Yonghong},
  title     = {Pruning of Deep Spiking Neural Networks through Gradient Rewiring},
  booktitle = {Proceedings of the Thirtieth International Joint Conference on Artificial
               Intelligence, {IJCAI-21}},
  pages     = {1713--1721},
  year      = {2021},
  doi       = {10.24963/ijcai.2021/236}
}"""

TASKS = ("digits",)
# METHODS.md: CIFAR-10, about 3.5% accuracy loss at 0.73% connectivity.
REPORTED = {"cifar10 accuracy loss at 0.73% connectivity": 0.035}

ALPHA = (
    0.65  # prior strength (1 / Laplace scale): the connectivity knob; 0.65 gives >= 90% sparsity on digits
)
TARGET = 0.95  # the prior's own sparsity, giving its centre mu = ln(2 (1 - TARGET)) / ALPHA


def build(task) -> nn.Module:
    """Exactly the template's network (the reference row's), to be pruned while it trains."""
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


def prior_centre(alpha: float, target: float) -> float:
    """mu with P(theta > 0) = 1 - target under Laplace(mu, 1/alpha), for target >= 0.5."""
    if not 0.5 <= target < 1.0:
        raise ValueError(f"grad_rewiring: target sparsity must be in [0.5, 1), got {target}")
    return math.log(2.0 * (1.0 - target)) / alpha


class GradRewiring(torch.optim.Optimizer):
    """Adam on the hidden strengths theta of signed synapses w = s * relu(theta).

    The gradient used is dL/dw (taken at w, zero or not), so theta moves by s * Adam(dL/dw) also
    while the synapse is absent; the Laplacian prior adds -lr_k * alpha * sign(theta - mu), with
    lr_k = lr / (1 - beta1^k) Adam's bias-corrected step size but not Adam's normalisation (so the
    official code; the first steps pull harder). After each step w is rewritten from theta.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, alpha=ALPHA, target=TARGET) -> None:
        super().__init__(
            params, dict(lr=lr, betas=betas, eps=eps, alpha=alpha, mu=prior_centre(alpha, target))
        )
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                st["step"] = 0
                st["sign"] = torch.sign(p.detach()).clone()
                st["theta"] = p.detach().abs().clone()
                st["m"] = torch.zeros_like(p)
                st["v"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                st["step"] += 1
                g = p.grad
                st["m"].mul_(b1).add_(g, alpha=1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                c1, c2 = 1 - b1 ** st["step"], 1 - b2 ** st["step"]
                lr = group["lr"] / c1
                adam = st["m"] / ((st["v"] / c2).sqrt() + group["eps"])
                theta, sign = st["theta"], st["sign"]
                theta.sub_(lr * sign * adam)  # d theta = s * d w: the relu is skipped on purpose
                if group["alpha"] > 0:
                    theta.sub_(lr * group["alpha"] * torch.sign(theta - group["mu"]))
                p.copy_(sign * theta.clamp(min=0.0))
        return None

    def alive(self) -> list[torch.Tensor]:
        """Per parameter: which synapses exist now (theta > 0 and a non-zero sign)."""
        return [
            (self.state[p]["theta"] > 0) & (self.state[p]["sign"] != 0)
            for g in self.param_groups
            for p in g["params"]
        ]


def train_grad_r(
    model: nn.Module, task, data, budget, alpha: float = ALPHA, target: float = TARGET
) -> nn.Module:
    """One phase of Grad R for budget.epochs; logs connectivity, pruned and regrown synapses per epoch."""
    device = torch.device(budget.device)
    model.to(device)
    synaptic = list(pruning.prunable_parameters(model))
    ids = {id(p) for p in synaptic}
    others = [p for p in model.parameters() if id(p) not in ids]
    rewire = GradRewiring(synaptic, lr=budget.lr, alpha=alpha, target=target)
    adam = torch.optim.Adam(others, lr=budget.lr) if others else None
    scheds = [
        torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=max(1, budget.epochs))
        for o in (rewire, adam)
        if o
    ]
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        before = rewire.alive()
        regrown = pruned = 0
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            x, y = x.to(device), y.to(device)
            reset_state(model)
            logits = readout(model(x))
            loss = F.cross_entropy(logits, y)
            rewire.zero_grad(set_to_none=True)
            if adam is not None:
                adam.zero_grad(set_to_none=True)
            loss.backward()
            prev = rewire.alive()
            rewire.step()
            if adam is not None:
                adam.step()
            now = rewire.alive()
            regrown += sum(int((~a & b).sum()) for a, b in zip(prev, now))
            pruned += sum(int((a & ~b).sum()) for a, b in zip(prev, now))
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        for s in scheds:
            s.step()
        alive = rewire.alive()
        n_alive = sum(int(a.sum()) for a in alive)
        n_all = sum(a.numel() for a in alive)
        data.history.append(
            {
                "epoch": epoch + 1,
                "loss": total / seen,
                "train_accuracy": correct / seen,
                "connectivity": n_alive / n_all,
                "regrown": regrown,  # synapses that went from absent to present during the epoch
                "pruned": pruned,
                "net_revived_since_epoch_start": sum(int((~a & b).sum()) for a, b in zip(before, alive)),
            }
        )
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model


def train(model: nn.Module, task, data, budget) -> nn.Module:
    """Grad R with the knobs above, for the task's epochs."""
    return train_grad_r(model, task, data, budget)
