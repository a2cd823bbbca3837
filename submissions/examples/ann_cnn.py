"""A plain ANN twin of submissions/template.py, for the privacy comparison (ANN vs SNN).

The same convolutional layers and widths as the template, with ReLU instead of LIF neurons. It
reads the time mean of the encoded input (for direct coding: the frame itself) and returns
logits [B, classes] once, so it is an ANN evaluated at T = 1 whatever the task's T. Trained by the
default recipe (`snnbench train`); used with `--metrics privacy` beside the template (BPTT SNN),
a converted SNN and baselines/private_snn.
"""

import torch
from torch import nn

CITATION = ""


class MeanInput(nn.Module):
    """[T, B, ...] -> [B, ...]: the rate of the encoded input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(0)


def build(task) -> nn.Module:
    channels, height, width = task.input_shape
    return nn.Sequential(
        MeanInput(),
        nn.Conv2d(channels, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (height // 4) * (width // 4), task.outputs),
    )
