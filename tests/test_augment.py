"""Training-time augmentations: frozen parameters, seeded per-sample draws, one geometric op per
sample shared by all its time bins, each output checked against an independent numpy computation."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from snnbench.data.augment import (
    CIFAR_TRAIN,
    Augment,
    Compose,
    EventCutMix,
    EventCutout,
    EventFlip,
    EventRoll,
    EventRotate,
    EventShear,
    EventShift,
    HorizontalFlip,
    OneOf,
    RandomCrop,
    cutout,
    mixed_cross_entropy,
    rotate,
    shear,
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


# ---------------------------------------------------------------- NDA's rotate, shear, cutout, CutMix


def scipy_affine(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Nearest-neighbour inverse map about the frame centre by scipy (an independent implementation):
    output index o reads the input pixel nearest to centre + matrix (o - centre), 0 beyond the frame."""
    h, w = x.shape[-2:]
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre - matrix @ centre
    flat = x.reshape(-1, h, w)
    out = [
        ndimage.affine_transform(f, matrix, offset=offset, order=0, mode="grid-constant", cval=0.0)
        for f in flat
    ]
    return np.stack(out).reshape(x.shape)


@pytest.mark.parametrize("side", [7, 8, 32])
def test_rotation_by_quarter_turns_is_rot90(side):
    x = events_batch(b=2, h=side, w=side, seed=side)
    assert torch.equal(rotate(x, 90), torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.equal(rotate(x, -90), torch.rot90(x, -1, dims=(-2, -1)))
    assert torch.equal(rotate(x, 0), x) and torch.equal(rotate(x, 360), x)
    rect = events_batch(b=2, h=side, w=side + 3)
    assert torch.equal(rotate(rect, 180), rect.flip(-2).flip(-1))


def test_rotation_direction_and_small_angles_match_scipy():
    x = torch.zeros(5, 5)
    x[0, 4] = 1  # top-right corner
    assert rotate(x, 90)[0, 0] == 1  # counter-clockwise as displayed: top-right goes to top-left
    img = events_batch(b=1, t=2, h=15, w=12, seed=3)[0]
    for degrees in (-14.3, 7.9, 23.0):
        t = math.radians(degrees)
        inverse = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
        assert np.array_equal(rotate(img, degrees).numpy(), scipy_affine(img.numpy(), inverse))


def test_shear_zero_is_identity_and_unit_shear_shifts_rows():
    x = events_batch(b=3, h=9, w=11, seed=5)
    assert torch.equal(shear(x, 0.0), x) and torch.equal(shear(x, 0.0, vertical=True), x)
    out = shear(x, 1.0).numpy()
    for row in range(9):  # row y moves right by y - cy = y - 4 pixels
        assert np.array_equal(
            out[..., row : row + 1, :], np_shift(x.numpy()[..., row : row + 1, :], 0, row - 4)
        )
    out_v = shear(x[..., :9], -1.0, vertical=True).numpy()  # 9 x 9: column x moves up by x - 4
    for col in range(9):
        ref = np_shift(x[..., :9].numpy()[..., col : col + 1], -(col - 4), 0)
        assert np.array_equal(out_v[..., col : col + 1], ref)
    img = x[0].numpy()
    assert np.array_equal(
        shear(x[0], 0.27).numpy(),
        scipy_affine(img, np.array([[1.0, 0.0], [-0.27, 1.0]])),
    )


def test_cutout_zeroes_exactly_the_box():
    x = events_batch(seed=2) + 1  # every pixel nonzero
    ref = x.clone().numpy()
    ref[..., 3:7, 2:5] = 0
    assert np.array_equal(cutout(x, 3, 2, 4, 3).numpy(), ref)
    ref = x.clone().numpy()
    ref[..., 0:2, 8:10] = 0  # clipped at the top-right corner
    assert np.array_equal(cutout(x, -2, 8, 4, 4).numpy(), ref)
    out = EventCutout(size=4)(x, gen(1))
    boxes = set()
    for o, s in zip(out.numpy(), x.numpy()):
        zero = o == 0
        assert (zero == zero[:1, :1]).all()  # the same box for every time bin and polarity
        ys, xs = np.nonzero(zero[0, 0])
        box = (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
        rect = np.zeros_like(zero[0, 0])
        rect[box[0] : box[1], box[2] : box[3]] = True
        assert np.array_equal(rect, zero[0, 0]) and box[1] - box[0] <= 4 and box[3] - box[2] <= 4
        assert np.array_equal(o[:, :, ~rect], s[:, :, ~rect])  # nothing else changes
        boxes.add(box)
    assert len(boxes) > 1
    assert torch.equal(EventCutout(size=4, p=0.0)(x, gen()), x)


@pytest.mark.parametrize("op", [EventRotate(15.0), EventShear(0.3), EventShear(0.3, vertical=True)])
def test_rotate_and_shear_ops_draw_one_parameter_per_sample(op):
    frame = torch.rand(6, 1, 1, 13, 13, generator=gen(2))
    x = frame.expand(6, 4, 2, 13, 13).contiguous()  # every bin of a sample is the same frame
    out = op(x, gen(3))
    assert (out == out[:, :1, :1]).all()  # one parameter for all bins and polarities
    assert torch.equal(out, op(x, gen(3))) and not torch.equal(out, op(x, gen(4)))
    assert len({o.numpy().tobytes() for o in out[:, 0, 0]}) == 6
    zero = type(op)(0.0) if isinstance(op, EventRotate) else EventShear(0.0, op.vertical)
    assert torch.equal(zero(x, gen()), x)
    assert repr(EventRotate(15.0)) == "EventRotate(max_degrees=15.0)"


def test_rotate_op_stays_within_its_range():
    x = torch.zeros(200, 1, 41, 41)
    x[:, 0, 20, 40] = 1  # a pixel on the right edge, 20 px from the centre
    out = EventRotate(15.0)(x, gen(6))
    angles = []
    for o in out[:, 0]:
        ys, xs = torch.nonzero(o, as_tuple=True)
        if len(ys):
            angles += [math.degrees(math.atan2(-(float(y) - 20), float(c) - 20)) for y, c in zip(ys, xs)]
    assert max(abs(a) for a in angles) <= 15.0 + 2.0  # one pixel at radius 20 is < 3 degrees
    assert min(angles) < -10 and max(angles) > 10


def test_cutmix_lambda_is_the_kept_area_and_labels_follow_the_pixels():
    b, h, w = 16, 10, 12
    x = (
        torch.arange(1, b + 1, dtype=torch.float32)[:, None, None, None, None]
        .expand(b, 3, 2, h, w)
        .contiguous()
    )
    y = torch.arange(b) % 10
    res = EventCutMix(alpha=1.0)(x, y, gen(4))
    assert res.x.shape == x.shape and torch.equal(res.y_a, y)
    mixed = 0
    for i in range(b):
        o = res.x[i]
        assert (o == o[:1, :1]).all()  # the same box in every bin and polarity
        own = (o[0, 0] == i + 1).double().mean().item()
        assert res.lam[i].item() == pytest.approx(own, abs=1e-12)  # lam = share of own pixels
        other = o[0, 0][o[0, 0] != i + 1]
        if len(other):
            mixed += 1
            j = int(other[0]) - 1
            assert (other == j + 1).all() and int(res.partner[i]) == j and int(res.y_b[i]) == int(y[j])
            ys, xs = torch.nonzero(o[0, 0] != i + 1, as_tuple=True)
            area = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
            assert area == len(ys)  # a rectangle
            assert res.lam[i].item() == pytest.approx(1 - float(area) / (h * w), abs=1e-12)
        else:
            assert res.lam[i] == 1 and int(res.y_b[i]) == int(y[res.partner[i]])
    assert mixed > b // 2
    again = EventCutMix(alpha=1.0)(x, y, gen(4))
    assert torch.equal(again.x, res.x) and torch.equal(again.lam, res.lam)


def test_cutmix_selection_and_batch_dim():
    x = torch.rand(8, 3, 2, 6, 6, generator=gen(1))
    y = torch.arange(8)
    none = EventCutMix()(x, y, gen(), select=torch.zeros(8, dtype=torch.bool))
    assert torch.equal(none.x, x) and torch.equal(none.y_b, y) and (none.lam == 1).all()
    assert torch.equal(EventCutMix(p=0.0)(x, y, gen()).x, x)
    select = torch.tensor([True, False] * 4)
    part = EventCutMix()(x, y, gen(2), select=select)
    assert torch.equal(part.x[~select], x[~select]) and (part.lam[~select] == 1).all()
    a = EventCutMix()(x, y, gen(3))
    tb = EventCutMix()(x.transpose(0, 1).contiguous(), y, gen(3), batch_dim=1)
    assert torch.equal(tb.x.transpose(0, 1), a.x) and torch.equal(tb.lam, a.lam)


def test_cutmix_soft_targets_and_loss():
    y_a, y_b = torch.tensor([0, 2, 1]), torch.tensor([1, 2, 0])
    lam = torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64)
    res = EventCutMix()(torch.zeros(3, 1, 2, 2), y_a, gen())._replace(y_b=y_b, lam=lam)
    expected = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    assert torch.allclose(res.soft_targets(3), expected)
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 0.0, 0.0]])
    logp = logits.log_softmax(1)
    hand = -sum(float(lam[i]) * logp[i, y_a[i]] + (1 - float(lam[i])) * logp[i, y_b[i]] for i in range(3)) / 3
    assert mixed_cross_entropy(logits, y_a, y_b, lam).item() == pytest.approx(float(hand), rel=1e-6)
    assert F.cross_entropy(logits, res.soft_targets(3)).item() == pytest.approx(float(hand), rel=1e-6)
