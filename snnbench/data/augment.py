"""Training-time augmentations as frozen dataclasses: the fields are the parameters, so an
augmentation prints itself, compares equal to its twin and hashes (tonic's shape, STYLE.md); a
recipe can record `repr(aug)` with its run.

Every op takes a batch and a torch.Generator and draws its random parameters once per sample:

    aug = Compose((RandomCrop(padding=4), HorizontalFlip()))
    x = aug(x, generator)                      # x [B, C, H, W] images
    x = EventRoll(max_shift=5)(x, generator)   # x [B, T, 2, H, W] event frames
    x = EventShift(3)(x_tb, generator, batch_dim=1)   # encoded [T, B, 2, H, W] input

The last two dimensions are (H, W); everything between the batch dimension and them (time bins,
polarity channels) moves together, so an event op is the same geometric op for every time bin of a
sample, as NDA requires (geometric only, no photometric change). Baselines extend the set by
subclassing `Augment` (a frozen dataclass implementing `one(x, generator)` for one sample);
`OneOf` draws one op per sample, the way NDA picks its policy.

NDA's other geometric ops: `EventRotate` and `EventShear` (nearest-neighbour resampling about the
frame centre, empty outside, so event counts stay integers), `EventCutout` (one empty box) and
`EventCutMix`, which needs the labels and so has its own call:

    mixed = EventCutMix(alpha=1.0)(x, y, generator)        # CutMixResult(x, y_a, y_b, lam)
    loss = mixed_cross_entropy(logits, mixed.y_a, mixed.y_b, mixed.lam)
    targets = mixed.soft_targets(classes)                  # or soft labels [B, classes]

The functional forms (`rotate`, `shear`, `cutout`) apply one given parameter to a whole tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Base: applies `one` to each sample of the batch along `batch_dim`."""

    def one(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator | None = None, batch_dim: int = 0
    ) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"{type(self).__name__} needs [B, ..., H, W], got shape {tuple(x.shape)}")
        moved = x.movedim(batch_dim, 0)
        out = torch.stack([self.one(s, generator) for s in moved])
        return out.movedim(0, batch_dim)


def _uniform_int(lo: int, hi: int, generator: torch.Generator | None) -> int:
    """An integer uniform in [lo, hi] drawn from `generator`."""
    return int(torch.randint(lo, hi + 1, (1,), generator=generator).item())


def _coin(p: float, generator: torch.Generator | None) -> bool:
    return bool(torch.rand((), generator=generator).item() < p)


def _shift(x: torch.Tensor, dy: int, dx: int, fill: float = 0.0) -> torch.Tensor:
    """x translated by (dy, dx) pixels on its last two dims; uncovered pixels get `fill`."""
    h, w = x.shape[-2:]
    out = torch.full_like(x, fill)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    if abs(dy) < h and abs(dx) < w:
        out[..., yd, xd] = x[..., ys, xs]
    return out


def _resample_nearest(x: torch.Tensor, a: float, b: float, c: float, d: float) -> torch.Tensor:
    """Inverse-mapped nearest-neighbour resampling about the frame centre: output pixel (i, j),
    with (v, u) = (i - cy, j - cx), reads input pixel (a v + b u + cy, c v + d u + cx) rounded half
    up; pixels that map outside the frame are 0. Acts on the last two dims, the rest move together."""
    h, w = x.shape[-2:]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    v = torch.arange(h, dtype=torch.float64)[:, None] - cy
    u = torch.arange(w, dtype=torch.float64)[None, :] - cx
    src_y = torch.floor(a * v + b * u + cy + 0.5).long()
    src_x = torch.floor(c * v + d * u + cx + 0.5).long()
    inside = (src_y >= 0) & (src_y < h) & (src_x >= 0) & (src_x < w)
    index = (src_y.clamp(0, h - 1) * w + src_x.clamp(0, w - 1)).reshape(-1)
    out = x.reshape(*x.shape[:-2], h * w)[..., index].reshape(x.shape)
    return torch.where(inside, out, torch.zeros((), dtype=x.dtype))


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate the last two dims by `degrees` counter-clockwise as displayed (row 0 at the top, as
    torch.rot90 and torchvision turn), about the frame centre; nearest neighbour, empty corners."""
    t = math.radians(degrees)
    cos, sin = math.cos(t), math.sin(t)
    return _resample_nearest(x, cos, sin, -sin, cos)


def shear(x: torch.Tensor, factor: float, vertical: bool = False) -> torch.Tensor:
    """Shear the last two dims about the frame centre: row y moves right by factor * (y - cy)
    pixels (vertical: column x moves down by factor * (x - cx)); nearest neighbour, empty outside."""
    if vertical:
        return _resample_nearest(x, 1.0, -factor, 0.0, 1.0)
    return _resample_nearest(x, 1.0, 0.0, -factor, 1.0)


def cutout(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """x with the box [top, top + height) x [left, left + width) of its last two dims set to 0
    (clipped to the frame)."""
    out = x.clone()
    out[..., max(0, top) : max(0, top + height), max(0, left) : max(0, left + width)] = 0
    return out


def _uniform(lo: float, hi: float, generator: torch.Generator | None) -> float:
    return lo + (hi - lo) * float(torch.rand((), dtype=torch.float64, generator=generator).item())


# ---------------------------------------------------------------- images


@dataclass(frozen=True)
class RandomCrop(Augment):
    """Pad by `padding` on every side with `fill`, then crop back to H x W at a random offset.
    On normalised images fill 0 is the channel mean."""

    padding: int = 4
    fill: float = 0.0

    def one(self, x, generator):
        p = self.padding
        if p <= 0:
            return x
        h, w = x.shape[-2:]
        padded = F.pad(x, (p, p, p, p), value=self.fill)
        top, left = _uniform_int(0, 2 * p, generator), _uniform_int(0, 2 * p, generator)
        return padded[..., top : top + h, left : left + w]


@dataclass(frozen=True)
class HorizontalFlip(Augment):
    """Mirror left-right with probability p."""

    p: float = 0.5

    def one(self, x, generator):
        return x.flip(-1) if _coin(self.p, generator) else x


# ---------------------------------------------------------------- event frames


@dataclass(frozen=True)
class EventFlip(Augment):
    """Mirror every time bin of a sample left-right (or up-down) with probability p."""

    p: float = 0.5
    vertical: bool = False

    def one(self, x, generator):
        return x.flip(-2 if self.vertical else -1) if _coin(self.p, generator) else x


@dataclass(frozen=True)
class EventRoll(Augment):
    """Roll (wrap around) every time bin by the same (dy, dx), each uniform in [-max_shift, max_shift].
    No event is lost."""

    max_shift: int = 5

    def one(self, x, generator):
        dy = _uniform_int(-self.max_shift, self.max_shift, generator)
        dx = _uniform_int(-self.max_shift, self.max_shift, generator)
        return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


@dataclass(frozen=True)
class EventShift(Augment):
    """Translate every time bin by the same (dy, dx), each uniform in [-max_shift, max_shift];
    events shifted off the frame are dropped and the uncovered border is empty."""

    max_shift: int = 3

    def one(self, x, generator):
        dy = _uniform_int(-self.max_shift, self.max_shift, generator)
        dx = _uniform_int(-self.max_shift, self.max_shift, generator)
        return _shift(x, dy, dx)


@dataclass(frozen=True)
class EventRotate(Augment):
    """Rotate every time bin by the same angle, uniform in [-max_degrees, max_degrees]
    (counter-clockwise positive; nearest neighbour, so counts stay integers; corners empty)."""

    max_degrees: float = 15.0

    def one(self, x, generator):
        return rotate(x, _uniform(-self.max_degrees, self.max_degrees, generator))


@dataclass(frozen=True)
class EventShear(Augment):
    """Shear every time bin by the same factor, uniform in [-max_shear, max_shear] (horizontal:
    row y moves by factor * (y - cy) pixels; `vertical` shears columns instead)."""

    max_shear: float = 0.3
    vertical: bool = False

    def one(self, x, generator):
        return shear(x, _uniform(-self.max_shear, self.max_shear, generator), self.vertical)


@dataclass(frozen=True)
class EventCutout(Augment):
    """Empty one size x size box, the same for every time bin and polarity; its centre is a
    uniform pixel and it is clipped at the border (DeVries & Taylor's Cutout), with probability p."""

    size: int = 8
    p: float = 1.0

    def one(self, x, generator):
        if not _coin(self.p, generator):
            return x
        h, w = x.shape[-2:]
        cy, cx = _uniform_int(0, h - 1, generator), _uniform_int(0, w - 1, generator)
        half = self.size // 2
        return cutout(x, cy - half, cx - half, self.size, self.size)


class CutMixResult(NamedTuple):
    """Mixed inputs and what their labels are: sample i keeps a share lam[i] of its own pixels
    (label y_a[i]) and shows sample partner[i]'s pixels (label y_b[i]) in the rest."""

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    lam: torch.Tensor  # [B] float, in [0, 1]
    partner: torch.Tensor  # [B] long: the sample each box was taken from

    def soft_targets(self, classes: int) -> torch.Tensor:
        """[B, classes] soft labels lam * onehot(y_a) + (1 - lam) * onehot(y_b)."""
        lam = self.lam[:, None].to(torch.float32)
        return lam * F.one_hot(self.y_a, classes).float() + (1 - lam) * F.one_hot(self.y_b, classes).float()


def mixed_cross_entropy(
    logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: torch.Tensor
) -> torch.Tensor:
    """mean_i lam_i CE(logits_i, y_a_i) + (1 - lam_i) CE(logits_i, y_b_i): CutMix's loss."""
    lam = lam.to(logits.dtype)
    ce_a = F.cross_entropy(logits, y_a, reduction="none")
    ce_b = F.cross_entropy(logits, y_b, reduction="none")
    return (lam * ce_a + (1 - lam) * ce_b).mean()


@dataclass(frozen=True)
class EventCutMix:
    """Event CutMix (Yun et al. 2019 on event frames, as NDA uses it): a selected sample gets a
    rectangle of every time bin and polarity replaced by the same rectangle of another sample of
    the batch (a random permutation), and its label is mixed by area.

    The box is CutMix's: r ~ Beta(alpha, alpha), sides floor(H sqrt(1 - r)) x floor(W sqrt(1 - r))
    around a uniform centre, clipped at the border. lam[i] is the share of sample i's own pixels
    that it keeps: 1 - box area / (H W), or 1 when it is not selected or drew itself as partner.
    Samples are selected with probability p each, or by the boolean mask `select` [B]."""

    alpha: float = 1.0
    p: float = 1.0

    def __call__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        batch_dim: int = 0,
        select: torch.Tensor | None = None,
    ) -> CutMixResult:
        if x.dim() < 3:
            raise ValueError(f"EventCutMix needs [B, ..., H, W], got shape {tuple(x.shape)}")
        src = x.movedim(batch_dim, 0)
        n = src.shape[0]
        h, w = src.shape[-2:]
        partner = torch.randperm(n, generator=generator)
        if select is None:
            select = torch.rand(n, generator=generator) < self.p
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        rng = np.random.default_rng(seed)
        out = src.clone()
        lam = torch.ones(n, dtype=torch.float64)
        for i in range(n):
            j = int(partner[i])
            if not bool(select[i]) or j == i:
                partner[i] = i
                continue
            r = float(rng.beta(self.alpha, self.alpha))
            cut_h, cut_w = int(h * math.sqrt(1 - r)), int(w * math.sqrt(1 - r))
            cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
            y0, y1 = max(0, cy - cut_h // 2), min(h, cy - cut_h // 2 + cut_h)
            x0, x1 = max(0, cx - cut_w // 2), min(w, cx - cut_w // 2 + cut_w)
            out[i, ..., y0:y1, x0:x1] = src[j, ..., y0:y1, x0:x1]
            lam[i] = 1 - (y1 - y0) * (x1 - x0) / (h * w)
        return CutMixResult(out.movedim(0, batch_dim), y, y[partner], lam, partner)


# ---------------------------------------------------------------- combinators


@dataclass(frozen=True)
class Compose(Augment):
    """Apply `ops` in order to each sample."""

    ops: tuple[Augment, ...] = ()

    def one(self, x, generator):
        for op in self.ops:
            x = op.one(x, generator)
        return x


@dataclass(frozen=True)
class OneOf(Augment):
    """Apply one of `ops`, drawn uniformly per sample (NDA's one-random-op policy)."""

    ops: tuple[Augment, ...] = ()

    def one(self, x, generator):
        if not self.ops:
            return x
        return self.ops[_uniform_int(0, len(self.ops) - 1, generator)].one(x, generator)


CIFAR_TRAIN = Compose((RandomCrop(padding=4), HorizontalFlip(p=0.5)))
"""The standard CIFAR / TinyImageNet recipe: random crop with 4-pixel padding, then a flip."""
