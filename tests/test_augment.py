"""Training-time augmentations: frozen parameters, seeded per-sample draws, one geometric op per
sample shared by all its time bins, each output checked against an independent numpy computation."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from snnbench.data.augment import (
    CIFAR_TRAIN,
    Augment,
    Compose,
    EventFlip,
    EventRoll,
    EventShift,
    HorizontalFlip,
    OneOf,
    RandomCrop,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def events_batch(b: int = 6, t: int = 4, h: int = 12, w: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, (b, t, 2, h, w), generator=g).float()


def np_shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Zero-filled translation on the last two axes, written independently with index arithmetic."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    for i, j in itertools.product(range(h), range(w)):
        si, sj = i - dy, j - dx
        if 0 <= si < h and 0 <= sj < w:
            out[..., i, j] = x[..., si, sj]
    return out


def test_parameters_are_frozen_data():
    a, b = Compose((RandomCrop(4), HorizontalFlip(0.5))), CIFAR_TRAIN
    assert a == b and hash(a) == hash(b)
    assert repr(EventRoll(3)) == "EventRoll(max_shift=3)"
    assert "RandomCrop(padding=4, fill=0.0)" in repr(CIFAR_TRAIN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        EventShift().max_shift = 9


def test_flip_probability_and_reproducibility():
    x = torch.arange(64 * 3 * 2 * 5, dtype=torch.float32).reshape(64, 3, 2, 5)
    assert torch.equal(HorizontalFlip(1.0)(x, gen()), x.flip(-1))
    assert torch.equal(HorizontalFlip(0.0)(x, gen()), x)
    out = HorizontalFlip(0.5)(x, gen(7))
    flipped = [torch.equal(o, s.flip(-1)) for o, s in zip(out, x)]
    kept = [torch.equal(o, s) for o, s in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 54
    assert torch.equal(out, HorizontalFlip(0.5)(x, gen(7)))
    assert not torch.equal(out, HorizontalFlip(0.5)(x, gen(8)))
    v = EventFlip(1.0, vertical=True)(events_batch(), gen())
    assert torch.equal(v, events_batch().flip(-2))


def test_random_crop_is_a_window_of_the_padded_image():
    x = torch.rand(8, 3, 6, 7, generator=gen(1))
    out = RandomCrop(padding=2, fill=-5.0)(x, gen(2))
    offsets = set()
    for o, s in zip(out.numpy(), x.numpy()):
        padded = np.pad(s, ((0, 0), (2, 2), (2, 2)), constant_values=-5.0)
        hits = [
            (t, l) for t in range(5) for l in range(5) if np.array_equal(padded[:, t : t + 6, l : l + 7], o)
        ]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 1  # offsets are drawn per sample
    assert torch.equal(RandomCrop(padding=0)(x, gen()), x)


@pytest.mark.parametrize("op_cls, wrap", [(EventRoll, True), (EventShift, False)])
def test_event_translation_is_one_shift_for_all_time_bins(op_cls, wrap):
    x = events_batch()
    out = op_cls(3)(x, gen(4))
    shifts = set()
    for o, s in zip(out.numpy(), x.numpy()):
        hits = []
        for dy, dx in itertools.product(range(-3, 4), repeat=2):
            ref = np.roll(s, (dy, dx), axis=(-2, -1)) if wrap else np_shift(s, dy, dx)
            if np.array_equal(ref, o):  # the whole [T, 2, H, W] sample moved by the same (dy, dx)
                hits.append((dy, dx))
        assert hits, "no single shift explains the sample"
        shifts.add(hits[0])
        if wrap:
            assert o.sum() == s.sum()  # rolling loses no event
    assert len(shifts) > 1


def test_batch_dim_for_time_first_input():
    x = events_batch()
    a = EventRoll(2)(x, gen(3))
    b = EventRoll(2)(x.transpose(0, 1).contiguous(), gen(3), batch_dim=1)
    assert torch.equal(a, b.transpose(0, 1))


def test_one_of_draws_one_op_per_sample():
    x = torch.arange(40 * 1 * 3 * 4, dtype=torch.float32).reshape(40, 1, 3, 4)
    op = OneOf((HorizontalFlip(1.0), EventFlip(1.0, vertical=True)))
    out = op(x, gen(5))
    h = [torch.equal(o, s.flip(-1)) for o, s in zip(out, x)]
    v = [torch.equal(o, s.flip(-2)) for o, s in zip(out, x)]
    assert all(a != b for a, b in zip(h, v)) and 5 < sum(h) < 35
    assert torch.equal(OneOf(())(x, gen()), x)


def test_baselines_extend_with_a_frozen_subclass():
    @dataclasses.dataclass(frozen=True)
    class Cutout(Augment):
        size: int = 2

        def one(self, x, generator):
            x = x.clone()
            x[..., : self.size, : self.size] = 0
            return x

    x = events_batch()
    out = Compose((Cutout(2), EventFlip(1.0)))(x, gen())
    expected = x.clone()
    expected[..., :2, :2] = 0
    assert torch.equal(out, expected.flip(-1))
    assert repr(Cutout()) == "test_baselines_extend_with_a_frozen_subclass.<locals>.Cutout(size=2)"


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"needs \[B, \.\.\., H, W\]"):
        HorizontalFlip()(torch.zeros(3, 4))
