"""The ANN twin of a submission: the same network with every spiking neuron replaced by a ReLU.

Why: a transfer attack from a differentiable twin is the black-box check of PROTOCOLS.md section
4 that does not rely on the SNN's own (surrogate) gradients at all. The twin starts from the
submission's trained weights, so it is the same architecture and close in function, and is then
trained briefly on the task's training split (never the test labels). It runs in the
submission's process (sandbox command `train_twin`); only its outputs and input gradients leave.

A recognised neuron (snnbench.frameworks.neuron_info) becomes ReLUTwin: snnbench neurons are
replaced outright by relu(x); a peer's neuron is still called (so tuples such as snnTorch's
(spk, mem) or Norse's (spikes, state) keep their structure and state) and its spike tensor is
replaced by relu of its input current where the two have the same shape.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from snnbench.frameworks import neuron_info, reset_state
from snnbench.neurons import BaseNeuron


class ReLUTwin(nn.Module):
    """relu(input current) in place of a spiking neuron's spikes."""

    def __init__(self, neuron: nn.Module) -> None:
        super().__init__()
        self.neuron = None if isinstance(neuron, BaseNeuron) else neuron

    def forward(self, x: torch.Tensor, *args, **kwargs):
        relu = torch.relu(x)
        if self.neuron is None:
            return relu
        out = self.neuron(x, *args, **kwargs)
        if isinstance(out, torch.Tensor):
            return relu if out.shape == relu.shape else out
        if isinstance(out, (tuple, list)) and out and getattr(out[0], "shape", None) == relu.shape:
            return [relu, *out[1:]] if isinstance(out, list) else (relu, *out[1:])
        return out


def make_twin(model: nn.Module) -> tuple[nn.Module, int]:
    """A deep copy of `model` with every recognised spiking neuron wrapped in ReLUTwin; returns
    (twin, neurons replaced)."""
    twin = copy.deepcopy(model)
    targets = [(name, m) for name, m in twin.named_modules() if name and neuron_info(m) is not None]
    replaced = 0
    for name, m in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = twin.get_submodule(parent_name) if parent_name else twin
        if isinstance(getattr(parent, attr, None), ReLUTwin) or _inside_twin(twin, name):
            continue
        setattr(parent, attr, ReLUTwin(m))
        replaced += 1
    return twin, replaced


def _inside_twin(twin: nn.Module, name: str) -> bool:
    parts = name.split(".")
    return any(isinstance(twin.get_submodule(".".join(parts[:i])), ReLUTwin) for i in range(1, len(parts)))


def readout(out: torch.Tensor) -> torch.Tensor:
    return out.mean(0) if out.dim() == 3 else out


def train_twin(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> tuple[nn.Module, dict]:
    """Build the twin and train it with Adam on encoded training inputs [T, N, ...] and their
    labels (cross-entropy of the time-mean readout). Returns (twin in eval mode, summary)."""
    t0 = time.perf_counter()
    twin, replaced = make_twin(model)
    if replaced == 0:
        raise ValueError("no spiking neuron snnbench recognises: the ANN twin would be the model itself")
    params = [p for p in twin.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = inputs.shape[1]
    twin.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            reset_state(twin)
            loss = nn.functional.cross_entropy(readout(twin(inputs[:, idx])), labels[idx].long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    twin.eval()
    with torch.no_grad():
        hits = 0
        for start in range(0, n, batch_size):
            reset_state(twin)
            z = readout(twin(inputs[:, start : start + batch_size]))
            hits += int((z.argmax(1) == labels[start : start + batch_size]).sum())
    info = {"replaced": replaced, "train_accuracy": hits / max(n, 1), "seconds": time.perf_counter() - t0}
    return twin, info
