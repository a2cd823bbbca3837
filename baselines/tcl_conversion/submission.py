"""TCL (Ho & Chang 2021, DAC): ANN-to-SNN conversion with trainable clipping layers.

Every ReLU of the ANN is followed by min(., lambda_l) with lambda_l trainable (snnbench.conversion's
TrainableClip, init 4.0) and an L2 penalty on lambda_l pulling it down. After training, lambda_l is
the IF threshold of its layer (snnbench.conversion.convert, mode "clip": BN folded, weights
normalised by lambda_{l-1}/lambda_l, IF with threshold 1 and subtract reset, analog first-layer
input, non-spiking readout). A smaller lambda than the layer's maximum activation gives higher
firing rates, so the converted net needs fewer steps.

The ANN puts its average pooling before the clip (pooling is linear, so it commutes with the
conversion) so that every IF layer feeds the next synaptic layer directly: the harness counts
those layers' work as SynOps, not MACs. The model returned by build() is the converted SNN; its
state_dict holds the normalised weights and the learned clips (`clips`, a buffer) for reference.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from snnbench.conversion import TrainableClip, convert

CITATION = """@inproceedings{ho2021tcl,
  title     = {{TCL}: an {ANN}-to-{SNN} Conversion with Trainable Clipping Layers},
  author    = {Ho, Nguyen-Dong and Chang, Ik-Joon},
  booktitle = {2021 58th ACM/IEEE Design Automation Conference (DAC)},
  pages     = {793--798},
  year      = {2021}
}"""

REPORTED = {"imagenet vgg16 accuracy T=250": 0.7387, "imagenet resnet34 accuracy T=250": 0.7037}
TASKS = ("digits",)  # METHODS.md: digits among the embedded tasks (image classification only)
TIMESTEPS = 32  # the method's T here (METHODS.md check: T=16 and 32); --timesteps overrides it

CLIP_INIT = 4.0  # lambda_l at initialisation (METHODS.md)
CLIP_L2 = 5e-4  # coefficient of the L2 penalty sum_l lambda_l^2 (the paper's weight decay; reconstruction)
# Adam step size of the clips, as a multiple of the task's lr (reconstruction). Adam moves a
# parameter by about lr per step whatever its gradient's size, so at the task's 2e-3 the clips can
# drift only ~1.3 from 4.0 in 30 epochs of digits (660 steps): measured, they stayed above the first
# layer's maximum activation and never clipped anything.
CLIP_LR_SCALE = 10.0


def ann(task, clip: bool = True) -> nn.Sequential:
    """The ANN: conv-BN-pool-clip x2, linear readout. clip=False gives the plain-ReLU control."""
    c, h, w = task.input_shape
    act = (lambda: TrainableClip(CLIP_INIT)) if clip else nn.ReLU
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.AvgPool2d(2),
        act(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.AvgPool2d(2),
        act(),
        nn.Flatten(),
        nn.Linear(32 * (h // 4) * (w // 4), task.outputs),
    )


class TCLNet(nn.Module):
    """The converted SNN (x [T, B, ...] -> readout currents [T, B, C]) plus its learned clips."""

    def __init__(self, task) -> None:
        super().__init__()
        net = ann(task)
        n = sum(isinstance(m, TrainableClip) for m in net)
        self.snn = convert(net.eval(), thresholds=[1.0] * n)  # structure; train() fills the weights
        self.register_buffer("clips", torch.ones(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.snn(x)


def build(task) -> nn.Module:
    return TCLNet(task)


def clip_penalty(net: nn.Sequential) -> torch.Tensor:
    return sum(m.clip.pow(2) for m in net if isinstance(m, TrainableClip))


def train_ann(
    net: nn.Sequential, data, budget, l2: float = CLIP_L2, clip_lr_scale: float = CLIP_LR_SCALE
) -> list[dict]:
    """Adam + cross-entropy (+ l2 * sum lambda^2 for TCL) on one frame of the direct-coded input."""
    clips = [m.clip for m in net if isinstance(m, TrainableClip)]
    others = [p for p in net.parameters() if all(p is not c for c in clips)]
    groups = [{"params": others}]
    if clips:
        groups.append({"params": clips, "lr": budget.lr * clip_lr_scale})
    optimiser = torch.optim.Adam(groups, lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    started = time.monotonic()
    history = []
    for epoch in range(budget.epochs):
        net.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            logits = net(x.mean(0))  # direct coding: every frame is the same analog image
            loss = nn.functional.cross_entropy(logits, y) + l2 * clip_penalty(net)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                for m in net:
                    if isinstance(m, TrainableClip):
                        m.clip.clamp_(min=1e-3)  # a threshold must stay positive
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        schedule.step()
        entry = {"epoch": epoch + 1, "loss": total / seen, "train_accuracy_ann": correct / seen}
        for i, lam in enumerate(m.clip for m in net if isinstance(m, TrainableClip)):
            entry[f"clip_{i}"] = float(lam.detach())
        history.append(entry)
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    net.eval()
    return history


def train(model: TCLNet, task, data, budget) -> nn.Module:
    """Train the TCL ANN for the task's budget, then convert it with lambda_l as thresholds."""
    net = ann(task)
    data.track_training(net, "ann", name="ann")  # trained here, not the model: priced by ANN mode
    data.history.extend(train_ann(net, data, budget))
    snn = convert(net, mode="clip")
    model.snn.load_state_dict(snn.state_dict())
    model.clips.copy_(torch.tensor([float(m.clip.detach()) for m in net if isinstance(m, TrainableClip)]))
    model.eval()
    return model
