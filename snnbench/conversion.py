"""ANN-to-SNN conversion building blocks (rate coding, IF neurons with subtract reset).

The ANN is an `nn.Sequential` of stateless layers working on [B, ...]: Conv/Linear (optionally
followed by BatchNorm), ReLU or `TrainableClip` activations, AvgPool, Flatten, Dropout/Identity.
Conversion (Diehl et al. 2015; Rueckauer et al. 2017):

1. `fold_bn`: every BatchNorm after a Conv/Linear is folded into that layer (eval-mode statistics):
   w' = w * g / sqrt(var + eps), b' = (b - mean) * g / sqrt(var + eps) + beta.
2. `calibrate`: one threshold lambda_l per activation layer: the maximum activation, a percentile
   of all activation values (numpy's default linear interpolation), or a learned clip
   (`TrainableClip.clip`), from any iterable of inputs (a real loader or synthetic batches).
3. `convert`: ReLU -> IF(v_threshold=1, soft reset). Thresholds are folded into the weights
   (weight normalisation): w_l' = w_l * lambda_{l-1} / lambda_l, b_l' = b_l / lambda_l, with
   lambda_0 = 1 (analog first-layer input). The last Conv/Linear has no neuron after it: it is a
   non-spiking readout whose per-step outputs w_L' s_t + b_L average to the ANN logits as T grows.
   Everything the SNN needs lives in its weights, so `state_dict()` is the whole converted model.

An IF neuron with threshold 1 and soft reset driven by a constant current a fires
floor(t * a) times in t steps for 0 <= a <= 1, so its rate approaches clip(a, 0, 1): the ReLU
clipped at the threshold lambda_l after normalisation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from snnbench.neurons import IF, MultiStep

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PASS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity)


class TrainableClip(nn.Module):
    """min(relu(x), clip) with a trainable clip (TCL-style); its clip is the conversion threshold."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.clip = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.relu(x), self.clip)


def _is_activation(m: nn.Module) -> bool:
    return isinstance(m, (nn.ReLU, TrainableClip))


@torch.no_grad()
def fold_bn_into(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """A copy of Conv/Linear `layer` computing layer -> bn (bn in eval mode) in one affine map."""
    if not isinstance(layer, _WEIGHTED) or not isinstance(bn, _BN):
        raise TypeError(f"cannot fold {type(bn).__name__} into {type(layer).__name__}")
    folded = copy.deepcopy(layer)
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.affine else torch.ones_like(std)
    beta = bn.bias if bn.affine else torch.zeros_like(std)
    scale = gamma / std
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    folded.weight.copy_(layer.weight * scale.reshape(shape))
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    new_bias = (bias - bn.running_mean) * scale + beta
    if folded.bias is None:
        folded.bias = nn.Parameter(new_bias.clone())
    else:
        folded.bias.copy_(new_bias)
    return folded


def fold_bn(model: nn.Sequential) -> nn.Sequential:
    """A copy of `model` with every BatchNorm that directly follows a Conv/Linear folded into it."""
    layers = list(model)
    out: list[nn.Module] = []
    i = 0
    while i < len(layers):
        m = layers[i]
        if isinstance(m, _WEIGHTED) and i + 1 < len(layers) and isinstance(layers[i + 1], _BN):
            out.append(fold_bn_into(m, layers[i + 1]))
            i += 2
            continue
        if isinstance(m, _BN):
            raise ValueError(f"layer {i}: {type(m).__name__} does not follow a Conv/Linear; cannot fold it")
        out.append(copy.deepcopy(m))
        i += 1
    return nn.Sequential(*out).eval()


def _batches(loader: Iterable, max_batches: int | None, time_first: bool = False):
    for n, item in enumerate(loader):
        if max_batches is not None and n >= max_batches:
            return
        x = item[0] if isinstance(item, (tuple, list)) else item
        # time-first encoded batches [T, B, ...] (snnbench's TrainingData.loader): the ANN sees the
        # mean frame, i.e. the analog input of direct coding and the firing rate of rate coding
        yield x.float().mean(0) if time_first else x


@torch.no_grad()
def activations(
    model: nn.Sequential, loader: Iterable, max_batches: int | None = None, time_first: bool = False
) -> list[torch.Tensor]:
    """All values (flattened) at the output of each activation layer of `model` (eval mode).

    `loader` yields input tensors [B, ...] or (x, y) tuples; labels are ignored. With
    time_first=True it yields encoded [T, B, ...] batches (e.g. TrainingData.loader) and the ANN
    sees their mean over T.
    """
    acts = [i for i, m in enumerate(model) if _is_activation(m)]
    seen: dict[int, list[torch.Tensor]] = {i: [] for i in acts}
    was_training = model.training
    model.eval()
    for x in _batches(loader, max_batches, time_first):
        h = x.float()
        for i, m in enumerate(model):
            h = m(h)
            if i in seen:
                seen[i].append(h.detach().reshape(-1).cpu())
    model.train(was_training)
    if acts and not seen[acts[0]]:
        raise ValueError("calibration loader yielded no batches")
    return [torch.cat(seen[i]) for i in acts]


def calibrate(
    model: nn.Sequential,
    loader: Iterable | None = None,
    mode: str = "max",
    percentile: float = 99.9,
    max_batches: int | None = None,
    time_first: bool = False,
) -> list[float]:
    """One threshold per activation layer of `model`: "max", "percentile" or "clip" (learned).

    "clip" reads TrainableClip.clip (a plain ReLU in clip mode is an error) and needs no data.
    time_first: the loader yields encoded [T, B, ...] batches (see `activations`).
    """
    if mode == "clip":
        out = []
        for i, m in enumerate(model):
            if isinstance(m, nn.ReLU):
                raise ValueError(f"layer {i} is a plain ReLU: mode 'clip' needs TrainableClip activations")
            if isinstance(m, TrainableClip):
                out.append(float(m.clip.detach().abs()))
        return out
    if mode not in ("max", "percentile"):
        raise ValueError(f"unknown threshold mode {mode!r}; choose max, percentile or clip")
    if loader is None:
        raise ValueError(f"mode {mode!r} needs a calibration loader")
    values = activations(model, loader, max_batches, time_first)
    thresholds = []
    for v in values:
        t = float(v.max()) if mode == "max" else float(np.percentile(v.double().numpy(), percentile))
        thresholds.append(t if t > 0 else 1.0)  # a dead layer: any positive threshold gives zero rate
    return thresholds


class ConvertedSNN(nn.Module):
    """The converted network: IF (threshold 1, soft reset) after every hidden layer, analog readout.

    forward(x [T, B, ...]) -> [T, B, C] per-step readout currents; their mean over T approximates
    the ANN's logits. `steps` (a buffer; 0 = use the input's T) runs that many steps instead,
    feeding input frame t mod T at step t, for direct-coded inputs shorter than the simulation.
    """

    def __init__(self, net: nn.Sequential, steps: int = 0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("steps", torch.tensor(int(steps)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = int(self.steps)
        if n and n != x.shape[0]:
            idx = torch.arange(n, device=x.device) % x.shape[0]
            x = x.index_select(0, idx)
        return self.net(x)


@torch.no_grad()
def convert(
    ann: nn.Sequential,
    loader: Iterable | None = None,
    mode: str = "max",
    percentile: float = 99.9,
    max_batches: int | None = None,
    steps: int = 0,
    thresholds: list[float] | None = None,
    time_first: bool = False,
) -> ConvertedSNN:
    """Convert `ann` (nn.Sequential on [B, ...]) into a ConvertedSNN on [T, B, ...].

    BN is folded first; thresholds come from `calibrate(mode, ...)` on the folded net unless given.
    MaxPool is refused (a max over spike trains is not the max of their rates).
    """
    folded = fold_bn(ann)
    for i, m in enumerate(folded):
        if not (isinstance(m, _WEIGHTED) or _is_activation(m) or isinstance(m, _PASS)):
            raise ValueError(f"layer {i}: {type(m).__name__} has no rate-coded counterpart in convert()")
    lams = (
        thresholds
        if thresholds is not None
        else calibrate(folded, loader, mode, percentile, max_batches, time_first)
    )
    n_act = sum(_is_activation(m) for m in folded)
    if len(lams) != n_act:
        raise ValueError(f"{len(lams)} thresholds for {n_act} activation layers")
    layers: list[nn.Module] = []
    prev = 1.0  # input scale: analog input, lambda_0 = 1
    k = 0
    pending: nn.Module | None = None  # the last weighted layer, normalised once its lambda is known
    for m in folded:
        if isinstance(m, _WEIGHTED):
            pending = copy.deepcopy(m)
            pending.weight.mul_(prev)
            layers.append(MultiStep(pending))
        elif _is_activation(m):
            lam = float(lams[k])
            k += 1
            if pending is None:
                raise ValueError("an activation before any Conv/Linear cannot be converted")
            pending.weight.div_(lam)
            if pending.bias is not None:
                pending.bias.div_(lam)
            pending = None
            prev = lam
            layers.append(IF(v_threshold=1.0, v_reset=None))
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:
            layers.append(MultiStep(copy.deepcopy(m)))
    if pending is None:
        raise ValueError("the ANN must end in a Conv/Linear readout (no activation after it)")
    return ConvertedSNN(nn.Sequential(*layers), steps).eval()
