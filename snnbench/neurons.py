"""Multi-step spiking neurons: input [T, B, ...] currents, output [T, B, ...] spikes.

Semantics follow SpikingJelly's activation_based neurons (charge, fire, reset), so weights move
between the two without changing a spike:

    charge   LIF  decay_input:  h = v + (x - (v - v_reset)) / tau
             LIF  otherwise:    h = v - (v - v_reset) / tau + x
             IF                 h = v + x
             PLIF               LIF with 1/tau = sigmoid(w), w trainable
    fire     s = Heaviside(h - v_threshold)   (surrogate gradient in backward)
    reset    hard: v = h * (1 - s) + v_reset * s      soft (v_reset=None): v = h - s * v_threshold

(for the soft reset the leak pulls towards 0.) Neurons keep no state between calls: every call
starts from v = v_reset (0 for soft reset), so there is nothing to reset between batches.
Every spiking module subclasses BaseNeuron, which is how the activity probes recognise them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# ---------------------------------------------------------------- surrogate gradients


class _Spike(torch.autograd.Function):
    """Heaviside forward; backward multiplies by the surrogate derivative at x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind, ctx.alpha = kind, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, ctx.kind, ctx.alpha), None, None


SURROGATES: dict[str, float] = {
    # name -> default alpha (sharpness); the derivative formulas are in surrogate_grad().
    "atan": 2.0,
    "sigmoid": 4.0,
    "rectangular": 1.0,
    "triangle": 1.0,
    "ste": 1.0,
}


def surrogate_grad(x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
    """d spike / d x used in backward, for x = h - v_threshold."""
    if kind == "atan":
        return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)
    if kind == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1 - s)
    if kind == "rectangular":
        # width alpha, height 1/alpha: integrates to one.
        return (x.abs() < alpha / 2).to(x.dtype) / alpha
    if kind == "triangle":
        return torch.clamp(alpha - x.abs(), min=0) / (alpha * alpha)
    if kind == "ste":
        return torch.ones_like(x)
    raise ValueError(f"unknown surrogate {kind!r}; choose one of {', '.join(SURROGATES)}")


def spike(x: torch.Tensor, surrogate: str = "atan", alpha: float | None = None) -> torch.Tensor:
    """Heaviside(x) with the named surrogate gradient."""
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
    return _Spike.apply(x, surrogate, SURROGATES[surrogate] if alpha is None else alpha)


# ---------------------------------------------------------------- neurons


class BaseNeuron(nn.Module):
    """A multi-step spiking layer. Subclasses define how the membrane charges."""

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate: str = "atan",
        alpha: float | None = None,
        detach_reset: bool = False,
    ) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.surrogate = surrogate
        self.alpha = SURROGATES[surrogate] if alpha is None else float(alpha)
        self.detach_reset = detach_reset

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reference_forward(x)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The plain step-by-step loop that defines the neuron; fast paths must match it."""
        if x.dim() < 2:
            raise ValueError(f"{type(self).__name__} expects [T, B, ...] input, got shape {tuple(x.shape)}")
        v = torch.full_like(x[0], self.v_reset if self.v_reset is not None else 0.0)
        out = []
        for t in range(x.shape[0]):
            h = self.charge(v, x[t])
            s = spike(h - self.v_threshold, self.surrogate, self.alpha)
            sr = s.detach() if self.detach_reset else s
            if self.v_reset is None:
                v = h - sr * self.v_threshold
            else:
                v = h * (1 - sr) + self.v_reset * sr
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"hard v_reset={self.v_reset}"
        return f"v_threshold={self.v_threshold}, {reset}, surrogate={self.surrogate}(alpha={self.alpha})"


class IF(BaseNeuron):
    """Integrate-and-fire: no leak."""

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return v + x


class LIF(BaseNeuron):
    """Leaky integrate-and-fire with time constant tau (> 1, in steps)."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if tau <= 1:
            raise ValueError(f"LIF tau must be > 1 step, got {tau}")
        self.tau = float(tau)
        self.decay_input = decay_input

    def _decay(self) -> torch.Tensor | float:
        return 1.0 / self.tau

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        k = self._decay()
        rest = self.v_reset if self.v_reset is not None else 0.0
        if self.decay_input:
            return v + (x - (v - rest)) * k
        return v - (v - rest) * k + x

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(LIF):
    """Parametric LIF: 1/tau = sigmoid(w) is learned (Fang et al. 2021)."""

    def __init__(self, init_tau: float = 2.0, **kwargs) -> None:
        super().__init__(tau=init_tau, **kwargs)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    def _decay(self) -> torch.Tensor:
        return torch.sigmoid(self.w)


class Integrator(nn.Module):
    """Non-spiking leaky readout: returns the membrane [T, B, ...] (mean-membrane readout)."""

    def __init__(self, tau: float = 2.0) -> None:
        super().__init__()
        self.tau = float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            v = v + (x[t] - v) / self.tau
            out.append(v)
        return torch.stack(out)


class MultiStep(nn.Module):
    """Apply a stateless layer (Conv, Linear, BN, pooling) to [T, B, ...] by folding T into B."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = self.module(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])
