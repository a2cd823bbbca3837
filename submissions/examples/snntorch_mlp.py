"""A submission written with snnTorch only (no snnbench import): a two-layer spiking MLP.

snnTorch neurons keep their membrane in the module (init_hidden=True); the harness resets that
state before every batch, so no batch sees another's membrane.
"""

import snntorch as snn
import torch
from torch import nn


class SpikingMLP(nn.Module):
    def __init__(self, features: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.lif1 = snn.Leaky(beta=0.5, init_hidden=True)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for t in range(x.shape[0]):  # snnTorch style: one call per timestep
            spikes = self.lif1(self.fc1(x[t].flatten(1)))
            out.append(self.fc2(spikes))
        return torch.stack(out)  # [T, B, classes]


def build(task) -> nn.Module:
    features = 1
    for size in task.input_shape:
        features *= size
    return SpikingMLP(features, 128, task.outputs)
