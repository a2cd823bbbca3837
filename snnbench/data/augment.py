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
"""

from __future__ import annotations

from dataclasses import dataclass

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
