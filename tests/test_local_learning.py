"""snnbench.local_learning against hand computations and a brute-force pair sum."""

from __future__ import annotations

import math

import pytest
import torch

from snnbench.local_learning import (
    first_spike_only,
    spike_times,
    trace_stdp,
    traces,
    ttfs_encode,
    winner_take_all,
)


def _one(times: list[int], steps: int) -> torch.Tensor:
    s = torch.zeros(steps, 1, 1)
    for t in times:
        s[t, 0, 0] = 1.0
    return s


def test_trace_is_a_decaying_sum_of_spikes():
    s = torch.tensor([1.0, 0.0, 1.0, 0.0])
    want = [1.0, math.exp(-0.5), math.exp(-1.0) + 1.0, (math.exp(-1.0) + 1.0) * math.exp(-0.5)]
    assert traces(s, tau=2.0).tolist() == pytest.approx(want)


def test_causal_pair_potentiates_by_the_pre_trace():
    # pre at 0, post at 2, tau+ = 2: dw = a+ exp(-2/2); no depression (no post before the pre)
    dw = trace_stdp(_one([0], 4), _one([2], 4), a_plus=0.1, a_minus=0.3, tau_plus=2.0)
    assert float(dw) == pytest.approx(0.1 * math.exp(-1.0))


def test_anticausal_pair_depresses_by_the_post_trace():
    # post at 0, pre at 2, tau- = 2: dw = -a- exp(-2/2); the pre trace at the post spike is 0
    dw = trace_stdp(_one([2], 4), _one([0], 4), a_plus=0.1, a_minus=0.3, tau_minus=2.0)
    assert float(dw) == pytest.approx(-0.3 * math.exp(-1.0))


def test_same_step_counts_as_causal():
    dw = trace_stdp(_one([1], 3), _one([1], 3), a_plus=0.1, a_minus=0.3)
    assert float(dw) == pytest.approx(0.1)


def test_target_offset_depresses_a_silent_input_and_soft_bound_scales():
    dw = trace_stdp(_one([], 3), _one([1], 3), a_plus=0.1, x_target=0.4)
    assert float(dw) == pytest.approx(-0.04)
    w = torch.tensor([[0.3]])
    dw = trace_stdp(_one([0], 3), _one([1], 3), a_plus=0.1, tau_plus=2.0, weight=w, bound="multiplicative")
    assert float(dw) == pytest.approx(0.1 * math.exp(-0.5) * 0.3 * 0.7)


def test_equals_the_all_to_all_pair_sum_on_random_trains():
    gen = torch.Generator().manual_seed(0)
    steps, n, n_in, n_out = 7, 3, 4, 2
    pre = (torch.rand(steps, n, n_in, generator=gen) < 0.3).float()
    post = (torch.rand(steps, n, n_out, generator=gen) < 0.3).float()
    ap, am, tp, tm = 0.02, 0.015, 3.0, 1.5
    want = torch.zeros(n_out, n_in, dtype=torch.float64)
    for b in range(n):
        for o in range(n_out):
            for i in range(n_in):
                for tq in range(steps):  # post spike times
                    for tr in range(steps):  # pre spike times
                        if not (post[tq, b, o] and pre[tr, b, i]):
                            continue
                        if tr <= tq:
                            want[o, i] += ap * math.exp(-(tq - tr) / tp)
                        else:
                            want[o, i] -= am * math.exp(-(tr - tq) / tm)
    got = trace_stdp(pre, post, ap, am, tp, tm)
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-5)
    assert want.abs().sum() > 0


def test_winner_take_all_keeps_the_spiking_unit_with_the_largest_potential():
    spikes = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    potential = torch.tensor([[0.5, 9.0, 0.7], [1.0, 2.0, 3.0], [0.1, 0.2, 0.2]])
    got = winner_take_all(spikes, potential, dim=1)
    # row 0: unit 1 has the largest potential but did not spike; row 2: a tie goes to the lower index
    assert got.tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert winner_take_all(spikes, potential, dim=0).tolist() == [
        [1.0, 0.0, 1.0],
        [0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
    ]


def test_first_spike_only_and_spike_times():
    s = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # [T=3, 3 neurons]
    assert first_spike_only(s).tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert spike_times(s).tolist() == [1, 0, 3]


def test_ttfs_encode_brighter_fires_earlier_once():
    x = torch.tensor([1.0, 0.5, 0.25, 0.0])
    s = ttfs_encode(x, 5)
    assert s.shape == (5, 4) and s.sum(0).tolist() == [1.0, 1.0, 1.0, 0.0]
    assert spike_times(s).tolist() == [0, 2, 3, 5]  # round((1 - x) * 4); x = 0 never fires


def test_bad_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="same T and N"):
        trace_stdp(torch.zeros(3, 2, 4), torch.zeros(4, 2, 1))
    with pytest.raises(ValueError, match="needs the current weight"):
        trace_stdp(torch.zeros(3, 2, 4), torch.zeros(3, 2, 1), bound="multiplicative")
    with pytest.raises(ValueError, match="unknown bound"):
        trace_stdp(torch.zeros(3, 2, 4), torch.zeros(3, 2, 1), bound="hard")
