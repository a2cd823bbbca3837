"""stdp_ttfs_pruning: shapes, the TTFS neuron, winner selection, STDP on the conv layer against a
per-winner computation, pruning (zeroed, frozen, cheaper), and the harness seeing the pruned net."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.local_learning import trace_stdp
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

PATH = Path(__file__).resolve().parent.parent / "baselines" / "stdp_ttfs_pruning" / "submission.py"
spec = importlib.util.spec_from_file_location("stdp_ttfs_pruning_submission", PATH)
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)

TASK = get_task("digits")


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return sub.build(TASK)


def test_builds_and_returns_class_scores():
    model = _model()
    for t in (4, 16):
        assert model(torch.rand(t, 3, 1, 8, 8)).shape == (t, 3, 10)
    w = model.conv.weight.detach()
    assert float(w.min()) >= 0 and float(w.max()) <= 1 and torch.equal(model.mask, torch.ones_like(w))
    assert "mask" in model.state_dict() and isinstance(sub.CITATION, str) and sub.REPORTED


def test_first_spike_if_fires_once_when_the_integral_crosses_threshold():
    neuron = sub.FirstSpikeIF(2.0)
    x = torch.tensor([[0.5, 3.0, 0.0], [1.0, 0.0, 0.5], [0.5, 1.0, 0.5], [1.0, 1.0, 0.5]])  # [T=4, 3]
    # cumulative: n0 0.5, 1.5, 2.0, 3.0 -> t=2; n1 3 at t=0; n2 0, .5, 1, 1.5 -> never
    assert neuron(x).tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]]


def test_winners_inhibit_laterally_then_keep_the_earliest_per_feature_map():
    steps = 4
    spikes = torch.zeros(steps, 1, 2, 1, 3)  # [T, B=1, F=2, H=1, W=3]
    spikes[1, 0, 0, 0, 0] = 1  # f0 at x0, t=1
    spikes[2, 0, 0, 0, 2] = 1  # f0 at x2, t=2
    spikes[1, 0, 1, 0, 0] = 1  # f1 at x0, t=1 (ties with f0 there)
    spikes[3, 0, 1, 0, 1] = 1  # f1 at x1, t=3
    potential = torch.zeros(1, 2, 1, 3)
    potential[0, 1, 0, 0] = 5.0  # f1 wins the tie at x0 by potential
    got = sub.winners(spikes, potential)
    want = torch.zeros_like(spikes)
    want[1, 0, 1, 0, 0] = 1  # f1: its earliest spike (x0) survived inhibition
    want[2, 0, 0, 0, 2] = 1  # f0 lost x0, so its earliest remaining spike is x2
    assert torch.equal(got, want)


def test_stdp_step_equals_trace_stdp_per_winner_patch():
    model = _model(1)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 8, 8, generator=gen) * (torch.rand(2, 1, 8, 8, generator=gen) > 0.4)
    spikes_in = model.encode(x.unsqueeze(0).expand(16, *x.shape))
    w0 = model.conv.weight.detach().clone()
    with torch.no_grad():
        current = torch.stack([model.conv(spikes_in[t]) for t in range(16)])
        post = sub.winners(model.layer[1](current), current.sum(0))
    updates = sub.stdp_step(model, spikes_in)
    # independent: one patch per winner, sliced from the zero-padded input
    pad = sub.KERNEL // 2
    padded = torch.nn.functional.pad(spikes_in, (pad, pad, pad, pad))
    dw = torch.zeros(sub.FEATURES, sub.KERNEL * sub.KERNEL)
    for t, b, f, i, j in post.nonzero().tolist():
        pre = padded[:, b, 0, i : i + sub.KERNEL, j : j + sub.KERNEL].reshape(16, 1, -1)
        one = torch.zeros(16, 1, 1)
        one[t] = 1
        w_f = w0[f].reshape(1, -1)
        dw[f] += trace_stdp(
            pre,
            one,
            sub.A_PLUS,
            sub.A_MINUS,
            sub.TAU_PLUS,
            sub.TAU_MINUS,
            sub.X_TARGET,
            w_f,
            "multiplicative",
        )[0]
    want = (w0.reshape(sub.FEATURES, -1) + dw).clamp(0, 1).reshape_as(w0)
    torch.testing.assert_close(model.conv.weight.detach(), want, atol=1e-6, rtol=1e-5)
    assert post.sum() > 0 and updates == int(post.sum()) * sub.KERNEL * sub.KERNEL


def test_pruned_synapses_are_zero_frozen_and_cost_no_updates():
    model = _model(2)
    with torch.no_grad():
        model.conv.weight[:, :, :2, :] = 0.01  # below the prune threshold
    removed = sub.prune(model)
    assert removed == sub.FEATURES * 2 * sub.KERNEL
    assert (
        float(model.conv.weight.detach()[:, :, :2, :].abs().sum()) == 0
        and float(model.mask[:, :, :2, :].sum()) == 0
    )
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, 8, 8, generator=gen)
    spikes_in = model.encode(x.unsqueeze(0).expand(16, *x.shape))
    with torch.no_grad():
        current = torch.stack([model.conv(spikes_in[t]) for t in range(16)])
        winners = int(sub.winners(model.layer[1](current), current.sum(0)).sum())
    updates = sub.stdp_step(model, spikes_in)
    assert float(model.conv.weight.detach()[:, :, :2, :].abs().sum()) == 0  # never updated again
    assert winners > 0 and updates == winners * (sub.KERNEL * sub.KERNEL - 2 * sub.KERNEL)


def test_trains_a_tiny_run_and_records_its_counters(monkeypatch):
    monkeypatch.setattr(sub, "STDP_EPOCHS", 1)
    model = _model(3)
    data = TrainingData(TASK, Subset(load_split(TASK, "train").dataset, range(32)), sub.TIMESTEPS, 0)
    w0 = model.conv.weight.detach().clone()
    sub.train(model, TASK, data, Budget(epochs=2, lr=1e-3, batch_size=8))
    assert [h["epoch"] for h in data.history] == [1, 2]  # the classifier runs the budget's epochs
    h = data.history[0]
    assert h["stdp_updates"] > 0 and 0 < h["connections"] <= h["connections_total"] == model.mask.numel()
    assert not torch.equal(w0, model.conv.weight) and not model.training


@pytest.mark.parametrize("prune_rows", [2])
def test_harness_sees_the_pruned_synapses(prune_rows, tmp_path):
    model = _model(4)
    with torch.no_grad():
        model.conv.weight[:, :, :prune_rows, :] = 0.0
    sub.prune(model)
    ckpt = tmp_path / "pruned.pt"
    torch.save(model.state_dict(), ckpt)
    args = ["evaluate", "--task", "digits", "--model", str(PATH), "--checkpoint", str(ckpt), "--quiet"]
    assert main([*args, "--limit", "16", "--store", str(tmp_path / "s")]) == 0
    run = pd.read_parquet(tmp_path / "s" / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == sub.TIMESTEPS
    metrics = pd.read_parquet(tmp_path / "s" / "metrics")
    total = metrics[metrics.layer.isna()]
    zeros = sub.FEATURES * prune_rows * sub.KERNEL
    all_weights = model.conv.weight.numel() + model.readout.module.weight.numel()
    sparsity = float(total[total.metric == "weight_sparsity"].value.iloc[0])
    assert sparsity == pytest.approx(zeros / all_weights)
    assert float(total[total.metric == "synops_per_sample"].value.iloc[0]) > 0  # the conv reads TTFS spikes
