"""snnbench.pruning against independent computations, and the probes on a pruned network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snnbench import pruning
from snnbench.frameworks import reset_state
from snnbench.metrics.activity import ActivityProbe
from snnbench.metrics.footprint import footprint_rows
from snnbench.neurons import LIF, MultiStep


def net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        MultiStep(nn.Conv2d(1, 4, 3, padding=1, bias=False)),
        LIF(),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(4 * 6 * 6, 10)),
    )


def weights_np(model) -> dict[str, np.ndarray]:
    return {n: m.weight.detach().numpy().copy() for n, m in pruning.synaptic_layers(model).items()}


def test_global_mask_matches_numpy_ranking():
    model = net()
    masks = pruning.magnitude_masks(model, 0.9, scope="global")
    w = weights_np(model)
    flat = np.concatenate([np.abs(v).ravel() for v in w.values()])
    n_zero = round(0.9 * flat.size)
    threshold = np.sort(flat)[n_zero - 1]  # the largest pruned magnitude (no ties in random weights)
    for n, v in w.items():
        expect = np.abs(v) > threshold
        assert np.array_equal(masks[n].numpy(), expect), n
    assert sum(int((~m).sum()) for m in masks.values()) == n_zero


def test_layer_scope_prunes_each_layer_to_the_sparsity():
    model = net(1)
    masks = pruning.magnitude_masks(model, 0.75, scope="layer")
    for n, v in weights_np(model).items():
        a = np.abs(v).ravel()
        k = round(0.75 * a.size)
        expect = np.abs(v) > np.sort(a)[k - 1]
        assert np.array_equal(masks[n].numpy(), expect), n
        assert int((~masks[n]).sum()) == k


def test_largest_per_layer_keeps_the_given_counts_by_magnitude():
    model = net(10)
    masks = pruning.largest_per_layer(model, {"0.module": 3, "3.module": 0})
    w = weights_np(model)["0.module"]
    expect = np.abs(w) >= np.sort(np.abs(w).ravel())[-3]
    assert np.array_equal(masks["0.module"].numpy(), expect) and int(masks["0.module"].sum()) == 3
    assert int(masks["3.module"].sum()) == 0
    with pytest.raises(ValueError, match="cannot keep 37"):
        pruning.largest_per_layer(model, {"0.module": 37})


def test_successive_rounds_nest_and_count_the_already_pruned():
    model = net(2)
    first = pruning.magnitude_masks(model, 0.5)
    with torch.no_grad():  # training moves weights: make a pruned weight the largest
        for n, m in pruning.synaptic_layers(model).items():
            m.weight[~first[n]] = 10.0
    second = pruning.magnitude_masks(model, 0.8, masks=first)
    for n in first:
        assert not bool((second[n] & ~first[n]).any()), "a pruned weight came back"
    total = sum(m.numel() for m in second.values())
    assert sum(int((~m).sum()) for m in second.values()) == round(0.8 * total)


def test_bad_arguments_name_the_fix():
    model = net()
    with pytest.raises(ValueError, match="fraction"):
        pruning.magnitude_masks(model, 1.5)
    with pytest.raises(ValueError, match="'global' or 'layer'"):
        pruning.magnitude_masks(model, 0.5, scope="row")
    with pytest.raises(ValueError, match="no Conv"):
        pruning.synaptic_layers(nn.Sequential(nn.ReLU()))


def test_pruned_weights_stay_zero_through_adam_with_weight_decay_and_survive_a_checkpoint():
    model = pruning.register_mask_buffers(net(3))
    masks = pruning.magnitude_masks(model, 0.9)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    keeper = pruning.keep_pruned(model, masks, opt)
    before = weights_np(model)
    x = torch.rand(4, 8, 1, 6, 6)
    for _ in range(3):
        reset_state(model)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        for n, m in pruning.synaptic_layers(model).items():
            assert bool((m.weight.grad[~masks[n]] == 0).all()), "pruned weights got a gradient"
        opt.step()
    keeper.remove()
    after = weights_np(model)
    for n in masks:
        assert np.all(after[n][~masks[n].numpy()] == 0)
        assert not np.allclose(after[n][masks[n].numpy()], before[n][masks[n].numpy()])  # it trained
    fresh = pruning.register_mask_buffers(net(4))
    fresh.load_state_dict(model.state_dict())
    assert all(torch.equal(fresh_m, masks[n]) for n, fresh_m in pruning.masks_from_buffers(fresh).items())
    assert all(torch.equal(a, b) for a, b in zip(pruning.current_masks(fresh).values(), masks.values()))
    assert len(opt._optimizer_step_post_hooks) == 0  # remove() undid the hooks


def test_rewind_restores_the_snapshot_under_the_mask():
    model = net(5)
    init = pruning.snapshot(model)
    with torch.no_grad():
        for m in pruning.synaptic_layers(model).values():
            m.weight.add_(1.0)
    masks = pruning.magnitude_masks(model, 0.6)
    pruning.rewind(model, init, masks)
    for n, m in pruning.synaptic_layers(model).items():
        expect = init[f"{n}.weight"] * masks[n]
        assert torch.equal(m.weight.detach(), expect)


def test_imp_schedule_is_one_minus_keep_rate_to_the_k():
    sched = pruning.imp_schedule(0.9, 0.2)
    assert len(sched) == 11  # 0.8**10 = 0.107 > 0.1, 0.8**11 = 0.086
    for k, s in enumerate(sched[:-1], start=1):
        assert s == pytest.approx(1 - 0.8**k)
    assert sched[-1] == 0.9
    assert pruning.imp_schedule(0.5, 0.5) == [0.5]
    sched = pruning.imp_schedule(0.9, 0.25)  # 0.75**8 = 0.1001: 8 rounds, not a ninth of 0.01%
    assert len(sched) == 8 and sched[-1] == 0.9 and sched[-2] == pytest.approx(1 - 0.75**7)


def test_imp_prunes_after_each_round_and_rewinds():
    model = net(6)
    init = pruning.snapshot(model)
    calls = []

    def train_round(m, masks, r):
        calls.append((r, sum(int((~v).sum()) for v in masks.values())))
        with torch.no_grad():  # "training": a fixed ranking that differs from the init's
            for n, layer in pruning.synaptic_layers(m).items():
                g = torch.Generator().manual_seed(100 + r)
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * masks[n])
        return {"loss": float(r)}

    masks, log = pruning.imp(model, train_round, 0.9, rate=0.5)
    total = sum(v.numel() for v in masks.values())
    assert [c[0] for c in calls] == [0, 1, 2, 3]  # 0.5, 0.75, 0.875, 0.9
    assert calls[1][1] == round(0.5 * total) and calls[3][1] == round(0.875 * total)
    assert [e["sparsity"] for e in log] == pytest.approx([0.5, 0.75, 0.875, 0.9])
    assert log[2]["train"] == {"loss": 2.0}
    assert sum(int((~v).sum()) for v in masks.values()) == round(0.9 * total)
    for n, layer in pruning.synaptic_layers(model).items():
        assert torch.equal(layer.weight.detach(), init[f"{n}.weight"] * masks[n])


def test_mask_distance_is_normalised_hamming():
    a = {"x": torch.tensor([1, 1, 0, 0], dtype=torch.bool), "y": torch.ones(2, 3, dtype=torch.bool)}
    b = {"x": torch.tensor([1, 0, 1, 0], dtype=torch.bool), "y": torch.ones(2, 3, dtype=torch.bool)}
    b["y"][1, 2] = False
    assert pruning.mask_distance(a, b) == pytest.approx(3 / 10)
    assert pruning.mask_distance(a, a) == 0.0
    with pytest.raises(KeyError, match="same layers"):
        pruning.mask_distance(a, {"x": a["x"]})


def test_early_bird_fires_when_the_window_is_stable():
    base = {"x": torch.zeros(100, dtype=torch.bool)}
    eb = pruning.EarlyBird(delta=0.05, window=3)
    seq = []
    for k in (0, 30, 32, 33, 34):  # the first 0..k entries kept
        m = {"x": base["x"].clone()}
        m["x"][:k] = True
        seq.append(eb.update(m))
    # distances of the newest to the two before: [-, -, 0.32, 0.03, 0.02]
    assert seq == [False, False, False, True, True]
    assert eb.distances[2:] == pytest.approx([0.32, 0.03, 0.02])


def test_connectivity_counts_by_hand():
    model = net(7)
    with torch.no_grad():
        conv = model[0].module
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.weight[3, 0, 0, 2] = -2.0
    counts = pruning.connectivity(model)
    assert counts["0.module"] == (2, 36)
    assert counts["3.module"] == (1440, 1440)
    assert counts["total"] == (1442, 1476)
    assert pruning.connectivity_fraction(model) == pytest.approx(1442 / 1476)


def test_random_masks_keep_each_layers_count():
    model = net(8)
    masks = pruning.magnitude_masks(model, 0.9)
    rnd = pruning.random_masks_like(masks, torch.Generator().manual_seed(0))
    for n in masks:
        assert int(rnd[n].sum()) == int(masks[n].sum())
    assert pruning.mask_distance(masks, rnd) > 0.05


def test_footprint_weight_sparsity_of_a_90_percent_ticket():
    model = net(9)
    pruning.apply_masks(model, pruning.magnitude_masks(model, 0.9))
    rows = {r.metric: r.value for r in footprint_rows(model)}
    w = weights_np(model)
    zeros = sum(int((v == 0).sum()) for v in w.values())
    assert rows["weight_sparsity"] == pytest.approx(zeros / sum(v.size for v in w.values()), rel=1e-15)
    assert rows["weight_sparsity"] == pytest.approx(0.9, abs=1 / 1476)


def _synops(model, x):
    probe = ActivityProbe()
    probe.attach(model, None)
    with torch.no_grad():
        reset_state(model)
        probe.before_batch(x.shape[1], x.shape[0])
        probe.after_batch(model(x))
    probe.detach()
    return {r.layer: r.value for r in probe.rows() if r.metric == "synops_per_sample" and r.timestep is None}


def test_synops_of_a_90_percent_pruned_linear_layer_are_spikes_times_nonzero_fanout():
    torch.manual_seed(0)
    lin = nn.Linear(50, 40)
    model = nn.Sequential(MultiStep(lin), LIF())
    pruning.apply_masks(model, pruning.magnitude_masks(model, 0.9, scope="layer"))
    x = (torch.rand(3, 2, 50) < 0.3).float()  # [T, B, inputs] spikes
    w = lin.weight.detach().numpy()
    fanout = (w != 0).sum(0)  # per input: its non-zero outgoing weights
    hand = sum(float(x[t, b].numpy() @ fanout) for t in range(3) for b in range(2)) / 2
    dense_hand = float(x.sum()) * 40 / 2
    got = _synops(model, x)
    assert got[None] == pytest.approx(hand, rel=1e-12)
    assert got[None] < 0.2 * dense_hand  # 10% of the weights left


def test_synops_of_a_90_percent_pruned_conv_by_brute_force():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    model = nn.Sequential(MultiStep(conv), LIF())
    pruning.apply_masks(model, pruning.magnitude_masks(model, 0.9))
    x = (torch.rand(2, 1, 2, 5, 5) < 0.4).float()
    keep = conv.weight.detach().numpy() != 0
    hand = 0
    for t in range(2):  # every (spike, non-zero tap, output inside the map) triple
        for c, i, j in zip(*np.nonzero(x[t, 0].numpy())):
            for o in range(3):
                for di in range(3):
                    for dj in range(3):
                        oi, oj = i - di + 1, j - dj + 1
                        if keep[o, c, di, dj] and 0 <= oi < 5 and 0 <= oj < 5:
                            hand += 1
    assert int(keep.sum()) == round(0.1 * 54) and hand > 0
    assert _synops(model, x)[None] == hand
