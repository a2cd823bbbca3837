"""Local learning building blocks: trace STDP, winner-take-all inhibition, time-to-first-spike coding.

Tensors are time-first: spikes [T, N, features] (N = samples, or samples x positions for a conv
layer's unfolded patches). Nothing here trains a network; a baseline composes these pieces.

Trace STDP (pair-based, all-to-all; Morrison et al. 2008): every neuron keeps an exponential trace
x_t = x_{t-1} exp(-1/tau) + s_t. For a synapse pre -> post:
- at a post spike at t:  dw += a_plus  * (x_pre_t - x_target) * f(w)   (x_pre_t includes a pre
  spike at the same step: t_pre <= t_post is causal, as in Kheradpisheh et al. 2018)
- at a pre spike at t:   dw -= a_minus * (x_post_t - s_post_t) * f(w)   (post strictly earlier)
so a pair at distance d contributes a_plus exp(-d/tau_plus) (pre first or together) or
-a_minus exp(-d/tau_minus) (post first): the all-to-all pair sum.
x_target > 0 is Diehl & Cook's (2015) offset: inputs that did not fire before the post spike are
depressed. f(w) = 1 ("additive") or w (1 - w) ("multiplicative", the soft bound of Kheradpisheh
et al. 2018 that drives weights in [0, 1] towards 0 or 1).

Winner-take-all: `winner_take_all` keeps, along one dimension, only the spiking unit with the
largest potential (lateral inhibition); `first_spike_only` lets each neuron fire at most once
(time-to-first-spike); `ttfs_encode` is snnbench.encoding.Latency (step round((1 - x)(T - 1))).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from snnbench.encoding import Latency

BOUNDS = ("additive", "multiplicative")


def ttfs_encode(x: Tensor, timesteps: int, threshold: float = 0.01) -> Tensor:
    """[T, *x.shape]: one spike per input at step round((1 - x)(T - 1)); none below threshold."""
    return Latency(threshold)(x, timesteps)


def spike_times(spikes: Tensor) -> Tensor:
    """First spike step of every neuron of spikes [T, ...]; T where it never fires."""
    steps = spikes.shape[0]
    fired = spikes > 0
    first = torch.argmax(fired.to(torch.uint8), dim=0)
    return torch.where(fired.any(0), first, torch.full_like(first, steps))


def first_spike_only(spikes: Tensor) -> Tensor:
    """spikes [T, ...] with every spike after a neuron's first removed."""
    before = torch.cumsum(spikes > 0, dim=0) - (spikes > 0).to(torch.long)
    return spikes * (before == 0).to(spikes.dtype)


def traces(spikes: Tensor, tau: float) -> Tensor:
    """x_t = x_{t-1} exp(-1/tau) + s_t, x_{-1} = 0, for spikes [T, ...]."""
    decay = math.exp(-1.0 / tau)
    out = torch.empty_like(spikes)
    x = torch.zeros_like(spikes[0])
    for t in range(spikes.shape[0]):
        x = x * decay + spikes[t]
        out[t] = x
    return out


def trace_stdp(
    pre: Tensor,
    post: Tensor,
    a_plus: float = 0.01,
    a_minus: float = 0.01,
    tau_plus: float = 2.0,
    tau_minus: float = 2.0,
    x_target: float = 0.0,
    weight: Tensor | None = None,
    bound: str = "additive",
) -> Tensor:
    """Weight change [out, in] of trace STDP for pre [T, N, in] and post [T, N, out], summed over N.

    `weight` [out, in] is needed for bound="multiplicative" (f(w) = w (1 - w))."""
    if bound not in BOUNDS:
        raise ValueError(f"unknown bound {bound!r}; choose one of {', '.join(BOUNDS)}")
    if pre.dim() != 3 or post.dim() != 3 or pre.shape[:2] != post.shape[:2]:
        raise ValueError(
            f"trace_stdp needs pre [T, N, in] and post [T, N, out] with the same T and N, got "
            f"{tuple(pre.shape)} and {tuple(post.shape)}"
        )
    x_pre = traces(pre, tau_plus) - x_target
    x_post_before = traces(post, tau_minus) - post  # the post trace at t before step t's spikes
    ltp = torch.einsum("tno,tni->oi", post, x_pre)
    ltd = torch.einsum("tno,tni->oi", x_post_before, pre)
    dw = a_plus * ltp - a_minus * ltd
    if bound == "multiplicative":
        if weight is None:
            raise ValueError("bound='multiplicative' needs the current weight [out, in]")
        dw = dw * weight * (1 - weight)
    return dw


def winner_take_all(spikes: Tensor, potential: Tensor, dim: int) -> Tensor:
    """Keep, for every index of the other dimensions, at most one spike along `dim`: the spiking
    unit with the largest potential (ties: the lowest index). Non-spiking units never win."""
    score = torch.where(spikes > 0, potential, torch.full_like(potential, -math.inf))
    best = score.argmax(dim=dim, keepdim=True)
    keep = torch.zeros_like(spikes).scatter_(dim, best, 1.0)
    return spikes * keep
