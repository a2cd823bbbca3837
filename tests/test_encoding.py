"""Encoders against hand-computed expectations."""

from __future__ import annotations

import torch

from snnbench.encoding import Direct, Frames, Latency, PoissonRate, encoder_for
from snnbench.tasks import get_task


def test_direct_repeats_the_frame():
    x = torch.arange(6.0).reshape(2, 3)
    out = Direct()(x, 4)
    assert out.shape == (4, 2, 3) and all(torch.equal(out[t], x) for t in range(4))


def test_rate_is_seeded_and_matches_probability():
    x = torch.full((2000,), 0.3)
    a = PoissonRate()(x, 50, torch.Generator().manual_seed(1))
    b = PoissonRate()(x, 50, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert abs(a.mean().item() - 0.3) < 0.01  # 100k Bernoulli draws: stderr 0.0014
    assert PoissonRate(gain=2.0)(torch.ones(5), 3).sum() == 15  # clamped to probability 1


def test_latency_fires_once_brighter_earlier():
    x = torch.tensor([1.0, 0.5, 0.02, 0.004])
    out = Latency()(x, 5)
    assert out.sum(0).tolist() == [1.0, 1.0, 1.0, 0.0]  # 0.004 is below the threshold: silent
    assert (
        out[:, 0].argmax().item() == 0
        and out[:, 1].argmax().item() == 2
        and out[:, 2].argmax().item() == round(0.98 * 4)
    )


def test_frames_move_time_first():
    x = torch.randn(3, 5, 2, 4, 4)
    out = Frames()(x, 5)
    assert out.shape == (5, 3, 2, 4, 4) and torch.equal(out[2, 1], x[1, 2])


def test_encoders_are_frozen_values():
    assert PoissonRate(1.0) == PoissonRate(1.0) and hash(PoissonRate(1.0)) == hash(PoissonRate(1.0))
    assert repr(PoissonRate(2.0)) == "PoissonRate(gain=2.0)"


def test_task_encoders():
    assert encoder_for(get_task("digits")) == Direct()
    assert encoder_for(get_task("digits-dvs")) == Frames()
