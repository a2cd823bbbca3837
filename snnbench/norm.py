"""Normalisation layers for multi-step spiking networks (input and output [T, B, ...]).

- `TimeBatchNorm`: batch norm over [T, B, C, ...] with its own running mean/var and scale
  gamma_t per timestep (BNTT, Kim & Panda 2021), or one set shared over time (`shared=True`, the
  usual multi-step BN). The shift beta is optional (`shift=False`, BNTT's choice: bias-free
  layers, so a neuron's input is centred by the statistics only). Per timestep it computes
  exactly what T separate nn.BatchNorm2d/1d layers would compute on x[0], ..., x[T-1]; it runs as
  one batch_norm call over the T*C channels of the [B, T*C, ...] view.
- `MembraneLayerNorm`: LayerNorm over the feature dimensions of each sample and step, meant for
  the membrane potential (or the synaptic current) of a spiking layer, as in spiking DQNs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TimeBatchNorm(nn.modules.batchnorm._NormBase):
    """Batch norm with separate statistics and scale per timestep (input [T, B, C, *spatial]).

    `timesteps` is the most steps the layer serves; a call with T < timesteps uses the first T
    steps' statistics and scales (early exit), T > timesteps is an error. With `shared=True` a
    single set of statistics and scale serves every step (the statistics then pool all T*B
    samples, like MultiStep(nn.BatchNorm2d)). Parameters: `weight` [S, C] (gamma, initialised to
    `init_weight`), `bias` [S, C] only if `shift`; buffers `running_mean`, `running_var` [S, C],
    where S = timesteps, or 1 if shared. It subclasses torch's _NormBase (with [S, C] tensors in
    place of [C]) so that tools that recognise norm layers (snnbench's activity probe) see one.
    """

    def __init__(
        self,
        num_features: int,
        timesteps: int,
        *,
        shared: bool = False,
        shift: bool = False,
        eps: float = 1e-5,
        momentum: float = 0.1,
        init_weight: float = 1.0,
    ) -> None:
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        super().__init__(
            int(num_features), float(eps), float(momentum), affine=True, track_running_stats=True
        )
        self.timesteps = int(timesteps)
        self.shared = bool(shared)
        slots = 1 if shared else self.timesteps
        self.weight = nn.Parameter(torch.full((slots, self.num_features), float(init_weight)))
        if shift:
            self.bias = nn.Parameter(torch.zeros(slots, self.num_features))
        else:
            del self.bias
            self.register_parameter("bias", None)
        self.running_mean = torch.zeros(slots, self.num_features)
        self.running_var = torch.ones(slots, self.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[2] != self.num_features:
            raise ValueError(f"expected [T, B, {self.num_features}, ...], got {tuple(x.shape)}")
        steps = x.shape[0]
        if self.training:
            self.num_batches_tracked += 1
        if self.shared:
            flat = x.reshape(steps * x.shape[1], *x.shape[2:])
            y = F.batch_norm(
                flat,
                self.running_mean[0],
                self.running_var[0],
                self.weight[0],
                None if self.bias is None else self.bias[0],
                self.training,
                self.momentum,
                self.eps,
            )
            return y.reshape(x.shape)
        if steps > self.timesteps:
            raise ValueError(f"TimeBatchNorm holds {self.timesteps} timesteps, got T={steps}")
        c = self.num_features
        # [T, B, C, ...] -> [B, T*C, ...]: channel t*C + c is step t's channel c.
        folded = x.transpose(0, 1).reshape(x.shape[1], steps * c, *x.shape[3:])
        n = steps * c
        # prefix views of the contiguous [S, C] buffers: batch_norm updates them in place
        y = F.batch_norm(
            folded,
            self.running_mean.view(-1)[:n],
            self.running_var.view(-1)[:n],
            self.weight.reshape(-1)[:n],
            None if self.bias is None else self.bias.reshape(-1)[:n],
            self.training,
            self.momentum,
            self.eps,
        )
        return y.reshape(x.shape[1], steps, *x.shape[2:]).transpose(0, 1).contiguous()

    def gamma_per_step(self) -> torch.Tensor:
        """The layer-mean scale per timestep, [S] (BNTT's early-exit signal)."""
        return self.weight.detach().mean(1)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, timesteps={self.timesteps}, shared={self.shared}, "
            f"shift={self.bias is not None}, eps={self.eps}, momentum={self.momentum}"
        )


class MembraneLayerNorm(nn.Module):
    """LayerNorm over each sample's features at each step: [T, B, *features] -> same shape.

    `normalized_shape` is the feature shape (e.g. (C, H, W) or (N,)); statistics are per (t, b),
    so there is nothing to track between batches and no train/eval difference.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(normalized_shape, eps=eps, elementwise_affine=elementwise_affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)
