"""sew_resnet: Spike-Element-Wise ResNet (Fang et al. 2021, NeurIPS), with plain Spiking ResNet
as the control.

Mechanism
- SEW block: the branch conv3x3-BN-SN-conv3x3-BN-SN emits spikes S; the block returns g(S, A) for
  its input A: ADD = A + S, AND = A * S, IAND = A * (1 - S) (the official code's
  sew_function(identity, out): A AND NOT S). With ADD or IAND a silent branch (S = 0) makes the
  block an exact identity, so depth cannot degrade the signal. ADD outputs are integers.
  A downsampling block (stride 2, channels x2) maps A through conv1x1(stride 2)-BN-SN first.
- Plain Spiking ResNet ("plain"): branch conv-BN-SN-conv-BN, add the (conv1x1-BN downsampled)
  input, then spike: SN(branch(A) + A). Not an identity for any weights of a spiking block.
- Neurons: IF on static data (digits, direct input), PLIF on events (digits-dvs); threshold 1,
  hard reset to 0, detached reset, ATan surrogate.
- Network: stem conv3x3-BN-SN (plus 2x2 max pooling twice on 32x32 event frames, to 8x8), then
  two stages of `blocks // 2` blocks (the second starting with a downsampling block, 2x width),
  global average pooling, a linear readout per step (mean over time by the harness).
- Training: surrogate BPTT, Adam with the task's lr, cosine schedule, cross-entropy on the
  time-mean output (the paper used SGD/Adam with cosine annealing; no augmentation here).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from snnbench.neurons import IF, PLIF, MultiStep

CITATION = """@inproceedings{fang2021sew,
  author    = {Fang, Wei and Yu, Zhaofei and Chen, Yanqi and Huang, Tiejun and Masquelier, Timoth{\\'e}e
               and Tian, Yonghong},
  title     = {Deep Residual Learning in Spiking Neural Networks},
  booktitle = {Advances in Neural Information Processing Systems},
  volume    = {34},
  pages     = {21056--21069},
  year      = {2021}
}"""

# METHODS.md (unverified): ImageNet 152 layers T=4, DVS Gesture, CIFAR10-DVS.
TASKS = ("digits", "digits-dvs")  # the embedded tasks it applies to (snnbench sweep leaves out others)
REPORTED = {
    "imagenet accuracy (SEW-ResNet-152, T=4, unverified)": 0.693,
    "dvsgesture accuracy (unverified)": 0.979,
    "cifar10dvs accuracy (unverified)": 0.744,
}

CONNECTS = ("ADD", "AND", "IAND", "plain")
DEFAULT_BLOCKS = 8
DEFAULT_WIDTH = 16


def sew(g: str, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The element-wise connect function g(S, A)."""
    if g == "ADD":
        return a + s
    if g == "AND":
        return a * s
    if g == "IAND":
        return a * (1.0 - s)
    raise ValueError(f"unknown SEW function {g!r}; choose ADD, AND or IAND")


def neuron(events: bool) -> nn.Module:
    if events:
        return PLIF(init_tau=2.0, v_reset=0.0, surrogate="atan", detach_reset=True)
    return IF(v_reset=0.0, surrogate="atan", detach_reset=True)


def conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [
        MultiStep(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)),
        MultiStep(nn.BatchNorm2d(cout)),
    ]


class Block(nn.Module):
    """One residual block: SEW (g in ADD/AND/IAND) or plain Spiking ResNet (g == "plain")."""

    def __init__(self, cin: int, cout: int, stride: int, g: str, events: bool) -> None:
        super().__init__()
        if g not in CONNECTS:
            raise ValueError(f"unknown connect {g!r}; choose one of {CONNECTS}")
        self.g = g
        plain = g == "plain"
        self.branch = nn.Sequential(
            *conv_bn(cin, cout, 3, stride),
            neuron(events),
            *conv_bn(cout, cout, 3),
            *([] if plain else [neuron(events)]),
        )
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                *conv_bn(cin, cout, 1, stride), *([] if plain else [neuron(events)])
            )
        self.out_sn = neuron(events) if plain else None

    def last_bn(self) -> nn.BatchNorm2d:
        return [m for m in self.branch.modules() if isinstance(m, nn.BatchNorm2d)][-1]

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        s = self.branch(a)
        identity = a if self.downsample is None else self.downsample(a)
        if self.out_sn is not None:
            return self.out_sn(s + identity)
        return sew(self.g, s, identity)


class SEWResNet(nn.Module):
    def __init__(
        self, task, g: str = "ADD", blocks: int = DEFAULT_BLOCKS, width: int = DEFAULT_WIDTH
    ) -> None:
        super().__init__()
        if blocks < 2 or blocks % 2:
            raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
        channels, height, width_px = task.input_shape
        events = task.encoding.get("kind") == "frames"
        stem: list[nn.Module] = [*conv_bn(channels, width, 3), neuron(events)]
        while height > 8:  # event frames 32x32 -> 8x8 (max of spikes is a spike)
            stem.append(MultiStep(nn.MaxPool2d(2)))
            height //= 2
        self.stem = nn.Sequential(*stem)
        layers = [Block(width, width, 1, g, events) for _ in range(blocks // 2)]
        layers.append(Block(width, 2 * width, 2, g, events))
        layers += [Block(2 * width, 2 * width, 1, g, events) for _ in range(blocks // 2 - 1)]
        self.blocks = nn.Sequential(*layers)
        self.pool = MultiStep(nn.AdaptiveAvgPool2d(1))
        self.flat = MultiStep(nn.Flatten())
        self.fc = MultiStep(nn.Linear(2 * width, task.outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.blocks(self.stem(x)))))


def build(task, g: str = "ADD", blocks: int = DEFAULT_BLOCKS, width: int = DEFAULT_WIDTH) -> nn.Module:
    return SEWResNet(task, g=g, blocks=blocks, width=width)


def train(model: nn.Module, task, data, budget) -> nn.Module:
    """Surrogate BPTT: Adam, cosine schedule, cross-entropy on the time-mean output."""
    optimiser = torch.optim.Adam(model.parameters(), lr=budget.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, budget.epochs))
    loss_fn = nn.CrossEntropyLoss()
    started = time.monotonic()
    for epoch in range(budget.epochs):
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(budget.batch_size):
            logits = model(x).mean(0)
            loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        schedule.step()
        data.history.append({"epoch": epoch + 1, "loss": total / seen, "train_accuracy": correct / seen})
        if budget.wall_time_s and time.monotonic() - started > budget.wall_time_s:
            break
    model.eval()
    return model
