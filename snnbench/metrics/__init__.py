"""Metric rows and the probe protocol shared by every metric family.

Two kinds of collectors subscribe to the one evaluation loop:
- probes run beside the model (in the submission's child process) and see inputs, module
  activity and outputs, never labels: activity, footprint, energy;
- scorers run in the harness process and see outputs and labels: accuracy, decision time.
Both return MetricRow lists with the canonical names of PROTOCOLS.md section 3.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class MetricRow:
    """One number of the long metrics table (PROTOCOLS.md section 6)."""

    metric: str
    value: float
    unit: str
    n: int | None = None
    stderr: float | None = None
    layer: str | None = None
    timestep: int | None = None
    condition: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Probe(Protocol):
    """A collector that watches the model from the inside, without labels.

    attach() is called once after build() (and after the checkpoint is loaded), before_batch /
    after_batch around every forward, rows() once at the end. A probe that cannot count what it
    must raises: the run fails, it never stores 0. `uncounted` lists module types with parameters
    the probe could not classify, so the run row can say its counts are a lower bound.
    """

    uncounted: list[str]

    def attach(self, model: torch.nn.Module, task) -> None: ...

    def before_batch(self, batch_size: int, timesteps: int) -> None: ...

    def after_batch(self, outputs: torch.Tensor) -> None: ...

    def detach(self) -> None: ...

    def rows(self) -> list[MetricRow]: ...


def mean_and_stderr(values: torch.Tensor | list[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (sample std / sqrt(n)); stderr None for n < 2."""
    t = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = t.numel()
    if n == 0:
        raise ValueError("mean_and_stderr of no values")
    mean = float(t.mean())
    if n < 2:
        return mean, None
    return mean, float(t.std(unbiased=True)) / math.sqrt(n)
