"""Gaussian receptive-field population coding (Lobo et al. c. 2020) read by an LIF MLP.

Each input feature x in [a, b] (digits: pixel/16 in [0, 1]) drives M = 8 Gaussian fields
(snnbench.encoding.GaussianReceptiveFields: centres mu_i = a + (2i-3)/2 (b-a)/(M-2), width
sigma = (b-a)/(beta (M-2)), beta = 1.5); field i fires one spike at step round((1 - r_i)(T - 1)),
none if r_i < r_min = 0.1. The code [T, B, features * M] feeds an LIF MLP (hidden 128, tau 2,
atan surrogate) with a non-spiking linear readout, one logit vector per step.

The encoder lives inside the model: the task's own encoding is direct (the same analog frame at
every step), so the model reads step 0 and re-codes it over the T steps it is given (the harness's
T: 4 on digits by default, `--timesteps 8` for T=8). `encoding="latency"` swaps in the
single-neuron latency code (snnbench.encoding.Latency) with the same MLP, as the check's control.
Training is plain surrogate BPTT (Adam, cross-entropy on the time-averaged output): the method is
the input code, not the optimiser.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from snnbench.encoding import GaussianReceptiveFields, Latency
from snnbench.neurons import LIF, MultiStep
from snnbench.training import default_train

CITATION = """@inproceedings{lobo2020grf,
  title     = {Gaussian receptive-field population encoding as pre-processing for stream learning (title unverified)},
  author    = {Lobo, Jesus L. and others},
  year      = {2020},
  note      = {Authors, title and venue unverified (METHODS.md)}
}"""

REPORTED: dict = {}  # the paper reports improvements on synthetic and real streams, no single figure
TASKS = ("digits",)  # where the method applies (cartpole is not built yet)

FIELDS, BETA, R_MIN, HIDDEN = 8, 1.5, 0.1, 128


class PopulationMLP(nn.Module):
    """Encoder (GRF population or single-neuron latency) -> Linear -> LIF -> Linear readout."""

    def __init__(
        self,
        features: int,
        classes: int,
        encoding: str = "grf",
        fields: int = FIELDS,
        beta: float = BETA,
        r_min: float = R_MIN,
        hidden: int = HIDDEN,
        low: float = 0.0,
        high: float = 1.0,
    ) -> None:
        super().__init__()
        if encoding == "grf":
            self.encoder = GaussianReceptiveFields(fields=fields, beta=beta, low=low, high=high, r_min=r_min)
            width = features * fields
        elif encoding == "latency":
            self.encoder = Latency()
            width = features
        else:
            raise ValueError(f"encoding must be 'grf' or 'latency', got {encoding!r}")
        self.net = nn.Sequential(
            MultiStep(nn.Linear(width, hidden)),
            LIF(tau=2.0),
            MultiStep(nn.Linear(hidden, classes)),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, B, ...] (direct: step 0 is the frame) -> spikes [T, B, width]."""
        t, b = x.shape[:2]
        return self.encoder(x[0].reshape(b, -1), t).reshape(t, b, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encode(x))


def build(task, encoding: str = "grf", fields: int = FIELDS) -> nn.Module:
    return PopulationMLP(math.prod(task.input_shape), task.outputs, encoding=encoding, fields=fields)


def train(model: nn.Module, task, data, budget) -> nn.Module:
    """Surrogate-gradient BPTT on the population code (the model encodes; see the module docstring)."""
    return default_train(model, task, data, budget, progress=False)
