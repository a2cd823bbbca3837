"""GaussianReceptiveFields against the published formulas, computed independently here."""

from __future__ import annotations

import math

import pytest
import torch

from snnbench.encoding import ENCODERS, GaussianReceptiveFields


@pytest.mark.parametrize("m,beta,low,high", [(8, 1.5, 0.0, 1.0), (5, 2.0, -2.0, 3.0), (3, 1.0, 0.0, 16.0)])
def test_centres_and_width_follow_the_published_formulas(m, beta, low, high):
    grf = GaussianReceptiveFields(fields=m, beta=beta, low=low, high=high)
    want = [low + (2 * i - 3) / 2 * (high - low) / (m - 2) for i in range(1, m + 1)]
    assert grf.centres(torch.float64).tolist() == pytest.approx(want, abs=1e-12)
    assert grf.sigma == pytest.approx((high - low) / (beta * (m - 2)))


def test_m8_beta15_on_the_unit_interval_by_hand():
    grf = GaussianReceptiveFields()
    # (b - a)/(M - 2) = 1/6: centres -1/12, 1/12, 3/12, ..., 13/12; sigma = 1/(1.5 * 6) = 1/9
    assert grf.centres(torch.float64).tolist() == pytest.approx([(2 * k - 1) / 12 for k in range(8)])
    assert grf.sigma == pytest.approx(1 / 9)


def test_responses_latencies_and_silence():
    grf = GaussianReceptiveFields()
    x = torch.tensor([0.25, 0.0], dtype=torch.float64)
    r = grf.responses(x)
    mu = [(2 * k - 1) / 12 for k in range(8)]
    for j, xv in enumerate(x.tolist()):
        want = [math.exp(-((xv - c) ** 2) / (2 * (1 / 9) ** 2)) for c in mu]
        assert r[j].tolist() == pytest.approx(want)
    t = 8
    out = grf(x, t)
    assert out.shape == (t, 2, 8)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    for j in range(2):
        for i in range(8):
            ri = float(r[j, i])
            if ri < 0.1:
                assert out[:, j, i].sum() == 0
            else:
                assert out[:, j, i].sum() == 1
                assert int(out[:, j, i].argmax()) == round((1 - ri) * (t - 1))
    # x = 0.25 sits on centre 3 (index 2): that field fires at step 0
    assert out[0, 0, 2] == 1


def test_registered_and_validated():
    assert ENCODERS["grf"] is GaussianReceptiveFields
    with pytest.raises(ValueError):
        GaussianReceptiveFields(fields=2)
    with pytest.raises(ValueError):
        GaussianReceptiveFields(low=1.0, high=1.0)
