"""Input encodings: a batch before encoding -> the model's [T, B, ...] input.

Encoders are frozen dataclasses (tonic's shape): the fields are the parameters, so an encoder
prints itself, compares equal to its twin and hashes; its repr is part of the task's identity.
Stochastic encoders draw from a torch.Generator the harness seeds, so a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


class Encoder(Protocol):
    def __call__(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class Direct:
    """The same analog frame at every step (direct / constant-current coding)."""

    def __call__(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return x.unsqueeze(0).expand(timesteps, *x.shape).contiguous()


@dataclass(frozen=True)
class PoissonRate:
    """Bernoulli spikes with probability clamp(gain * x, 0, 1) at every step (rate coding)."""

    gain: float = 1.0

    def __call__(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        p = (x * self.gain).clamp(0.0, 1.0)
        u = torch.rand((timesteps, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
        return (u < p.unsqueeze(0)).to(x.dtype)


@dataclass(frozen=True)
class Latency:
    """Time-to-first-spike: one spike per input at step round((1 - x) * (T - 1)), none if x < threshold.

    Inputs are expected in [0, 1]; brighter fires earlier.
    """

    threshold: float = 0.01

    def __call__(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        xc = x.clamp(0.0, 1.0)
        step = torch.round((1.0 - xc) * (timesteps - 1)).long()
        out = torch.zeros((timesteps, *x.shape), dtype=x.dtype, device=x.device)
        fire = (xc >= self.threshold).to(x.dtype)
        out.scatter_(0, step.unsqueeze(0), fire.unsqueeze(0))
        return out


@dataclass(frozen=True)
class Frames:
    """Event frames already binned to [B, T, C, H, W] by the reader: only move time first."""

    def __call__(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if x.shape[1] != timesteps:
            raise ValueError(
                f"frames have {x.shape[1]} time bins but T={timesteps}; the reader must bin to T"
            )
        return x.transpose(0, 1).contiguous()


@dataclass(frozen=True)
class GaussianReceptiveFields:
    """Population latency coding: each feature x in [low, high] drives `fields` Gaussian receptive fields.

    Centres mu_i = low + (2i - 3)/2 * (high - low)/(M - 2) for i = 1..M, common width
    sigma = (high - low)/(beta (M - 2)) (Lobo et al.'s GRF encoder); response
    r_i = exp(-(x - mu_i)^2 / (2 sigma^2)) fires one spike at step round((1 - r_i)(T - 1)), none if
    r_i < r_min. Output [T, *x.shape, M]: the population is a new last axis.
    """

    fields: int = 8
    beta: float = 1.5
    low: float = 0.0
    high: float = 1.0
    r_min: float = 0.1

    def __post_init__(self) -> None:
        if self.fields < 3:
            raise ValueError(f"GaussianReceptiveFields needs at least 3 fields, got {self.fields}")
        if not self.high > self.low:
            raise ValueError(f"GaussianReceptiveFields needs high > low, got [{self.low}, {self.high}]")
        if self.beta <= 0:
            raise ValueError(f"GaussianReceptiveFields needs beta > 0, got {self.beta}")

    def centres(self, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        i = torch.arange(1, self.fields + 1, dtype=dtype, device=device)
        return self.low + (2 * i - 3) / 2 * (self.high - self.low) / (self.fields - 2)

    @property
    def sigma(self) -> float:
        return (self.high - self.low) / (self.beta * (self.fields - 2))

    def responses(self, x: torch.Tensor) -> torch.Tensor:
        """r [*x.shape, M] in (0, 1]."""
        mu = self.centres(x.dtype, x.device)
        return torch.exp(-((x.unsqueeze(-1) - mu) ** 2) / (2 * self.sigma**2))

    def __call__(
        self, x: torch.Tensor, timesteps: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r = self.responses(x)
        step = torch.round((1.0 - r) * (timesteps - 1)).long()
        out = torch.zeros((timesteps, *r.shape), dtype=x.dtype, device=x.device)
        out.scatter_(0, step.unsqueeze(0), (r >= self.r_min).to(x.dtype).unsqueeze(0))
        return out


ENCODERS = {
    "direct": Direct,
    "rate": PoissonRate,
    "latency": Latency,
    "frames": Frames,
    "grf": GaussianReceptiveFields,
}


def encoder_for(task) -> Encoder:
    """The encoder a task file names in [encoding] kind (extra keys that are encoder fields pass through)."""
    spec = dict(task.encoding)
    kind = spec.pop("kind")
    if kind not in ENCODERS:
        raise ValueError(f"task {task.id}: unknown encoding {kind!r}; known: {', '.join(ENCODERS)}")
    cls = ENCODERS[kind]
    fields = {k: v for k, v in spec.items() if k in cls.__dataclass_fields__}
    return cls(**fields)
