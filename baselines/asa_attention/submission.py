"""asa_attention: Advance Spatial Attention on the membrane input (ASA-SNN, Yao et al., ICCV 2023).

Weight sharing over space and time makes an SNN fire redundant "noise" spikes. ASA sits between
a layer's synapses (conv + BN) and its neurons and gates the membrane input U [T, B, C, H, W]:

1. score every channel at every step: 0.5 * (spatial mean + spatial max) of U;
2. split channels into an "important" group (the top lam * C channels at each step and sample)
   and a "sub-important" group (the rest);
3. for each group, a spatial-attention sub-module: the group's channel mean (divided by its
   share of channels) and channel max -> k x k conv (2 -> 1) -> sigmoid gives a map M_g, pooled
   over channels AND time ("time-shared", as in the official code) or per step (`per_step`);
4. U' = (M_imp * U_imp + M_sub * U_sub) * P, with P a learnable per-location map [H, W]
   (init 1; reconstruction, METHODS.md) - then the LIF neurons fire on U'.

Reconstruction (see README): the official code also mixes the channel scores over time with a
learned linear layer and alpha/beta weights and selects important timesteps; those feed only the
top-k selection, which passes no gradient, so we score channels directly. The per-location map P
is ours (METHODS.md). The network is the template's 2-layer conv SNN with ASA before each LIF.
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench.neurons import LIF, MultiStep
from snnbench.training import default_train

CITATION = """@inproceedings{yao2023inherent,
  title     = {Inherent Redundancy in Spiking Neural Networks},
  author    = {Yao, Man and Hu, Jiakui and Zhao, Guangshe and Wang, Yaoyuan and Zhang, Ziyang and Xu, Bo and Li, Guoqi},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2023}
}"""

# METHODS.md: "far fewer spikes at equal or better accuracy than SOTA SNNs on event data (no
# confirmed figure)" - no number we could verify, so nothing is recorded.
TASKS = ("digits-dvs",)  # where the method applies (snnbench sweep leaves out the other tasks)
REPORTED: dict = {}

KERNEL = 3  # k of the spatial-attention conv (official code: 3)
LAM = 0.5  # share of channels in the important group (official: 0.5)
WIDTHS = (16, 32)


class ASA(nn.Module):
    """Advance spatial attention on a membrane input [T, B, C, H, W] (shape kept)."""

    def __init__(
        self, height: int, width: int, kernel: int = KERNEL, lam: float = LAM, per_step: bool = False
    ) -> None:
        super().__init__()
        if not 0 < lam < 1:
            raise ValueError(f"lam must be in (0, 1), got {lam}")
        self.lam, self.per_step = float(lam), bool(per_step)
        self.conv_important = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)
        self.conv_sub = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)
        self.location = nn.Parameter(torch.ones(height, width))

    def important_channels(self, channels: int) -> int:
        return max(1, min(channels - 1, int(channels * self.lam)))

    def important_mask(self, u: torch.Tensor) -> torch.Tensor:
        """[T, B, C] bool: the top max(1, int(lam * C)) channels at each step and sample by
        0.5 * (spatial mean + spatial max) of u [T, B, C, H, W]. A selection: no gradient."""
        with torch.no_grad():
            score = 0.5 * (u.mean((3, 4)) + u.amax((3, 4)))
            index = score.topk(self.important_channels(u.shape[2]), dim=2).indices
            return torch.zeros_like(score, dtype=torch.bool).scatter_(2, index, True)

    def spatial_map(self, feat: torch.Tensor, share: float, conv: nn.Conv2d) -> torch.Tensor:
        """sigmoid(conv([channel mean / share, channel max])) of a masked group feat [T, B, H, W, C]
        (channels last): [T, B, H, W] per step, or [1, B, H, W] pooled over channels and time."""
        t, b, h, w, c = feat.shape
        total, peak = feat.sum(-1), feat.max(-1).values  # channel pooling (C is the inner dim)
        count = c
        if not self.per_step:
            total, peak, count = total.sum(0, keepdim=True), peak.amax(0, keepdim=True), t * c
        pooled = torch.stack([total / (count * share), peak], 2)  # [T or 1, B, 2, H, W]
        out = torch.sigmoid(conv(pooled.reshape(-1, 2, h, w)))
        return out.reshape(-1, b, h, w)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if u.dim() != 5:
            raise ValueError(f"ASA expects [T, B, C, H, W], got shape {tuple(u.shape)}")
        mask = self.important_mask(u)[:, :, None, None, :]  # [T, B, 1, 1, C]
        share = self.important_channels(u.shape[2]) / u.shape[2]
        # Work channels-last (MultiStep's BN on CPU already returns that layout: no copy then).
        uh = u.permute(0, 1, 3, 4, 2).contiguous()
        important = uh * mask
        sub = uh - important
        m_imp = self.spatial_map(important, share, self.conv_important) * self.location
        m_sub = self.spatial_map(sub, 1 - share, self.conv_sub) * self.location
        # U' = (M_imp * U_imp + M_sub * U_sub) * P = U * where(important, M_imp * P, M_sub * P)
        out = uh * torch.where(mask, m_imp.unsqueeze(-1), m_sub.unsqueeze(-1))
        return out.permute(0, 1, 4, 2, 3)

    def extra_repr(self) -> str:
        return f"lam={self.lam}, per_step={self.per_step}"


def build(task, attention: bool = True, kernel: int = KERNEL, per_step: bool = False) -> nn.Module:
    """Two conv-BN-[ASA]-LIF-maxpool layers and a linear readout; attention=False is the control."""
    channels, height, width = task.input_shape
    layers: list[nn.Module] = []
    size = (height, width)
    for out_channels in WIDTHS:
        layers += [MultiStep(nn.Conv2d(channels, out_channels, 3, padding=1, bias=False))]
        layers += [MultiStep(nn.BatchNorm2d(out_channels))]
        if attention:
            layers += [ASA(size[0], size[1], kernel=kernel, per_step=per_step)]
        layers += [LIF(tau=2.0), MultiStep(nn.MaxPool2d(2))]
        channels, size = out_channels, (size[0] // 2, size[1] // 2)
    layers += [MultiStep(nn.Flatten()), MultiStep(nn.Linear(channels * size[0] * size[1], task.outputs))]
    return nn.Sequential(*layers)


def train(model: nn.Module, task, data, budget) -> nn.Module:
    """ASA is an architecture: it trains end to end by surrogate BPTT (Adam, cross-entropy on the
    time-averaged output, cosine schedule) for budget.epochs, the attention parameters included."""
    return default_train(model, task, data, budget, progress=False)
