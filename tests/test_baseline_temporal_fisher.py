"""temporal_fisher: shapes, FI per timestep against a direct computation, the concentration index,
the anti-concentration loss, a tiny dense training run, the FI stopping rule on hand-made index
sequences (alone and inside the IMP loop), the sparse ticket train() submits (zeros kept, mask in the
checkpoint, weight_sparsity through `snnbench evaluate`), and fisher_information rows through the
CLI for BPTT submissions (the template and this baseline)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.data import Subset

from snnbench import pruning
from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, checkpoint_bytes

WEIGHTS = 16 * 9 + 16 * 32 * 9 + 32 * 2 * 2 * 10  # digits: conv1, conv2, linear = 6032

REPO = Path(__file__).resolve().parent.parent
PATH = REPO / "baselines" / "temporal_fisher" / "submission.py"
TEMPLATE = REPO / "submissions" / "template.py"
spec = importlib.util.spec_from_file_location("temporal_fisher_submission", PATH)
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)


@pytest.mark.parametrize("task_id, steps", [("digits", 4), ("digits-dvs", 10)])
def test_builds_and_returns_per_step_logits(task_id, steps):
    task = get_task(task_id)
    torch.manual_seed(0)
    model = sub.build(task)
    assert model(torch.rand(steps, 2, *task.input_shape)).shape == (steps, 2, task.outputs)
    assert isinstance(sub.CITATION, str) and "Kim" in sub.CITATION


def test_fisher_per_timestep_equals_a_direct_computation():
    task = get_task("digits")
    torch.manual_seed(1)
    model = sub.build(task).eval()
    gen = torch.Generator().manual_seed(1)
    xs = torch.rand(1, 3, 1, 8, 8, generator=gen).expand(6, 3, 1, 8, 8)  # direct coding, T=6
    ys = torch.tensor([3, 0, 7])
    got = sub.fisher_per_timestep(model, xs, ys)
    assert got.shape == (3, 6)
    for i in range(3):
        for t in range(1, 7):
            model.zero_grad()
            logp = torch.log_softmax(model(xs[:, i : i + 1])[:t].mean(0), dim=-1)[0, int(ys[i])]
            logp.backward()
            want = sum(float(p.grad.double().pow(2).sum()) for p in model.parameters())
            assert float(got[i, t - 1]) == pytest.approx(want, rel=1e-5)
    assert float(got[:, 0].mean()) != pytest.approx(float(got[:, -1].mean()), rel=1e-3)  # steps differ


def test_concentration_index_is_the_share_of_the_first_third():
    fi = torch.tensor([3.0, 1, 1, 1, 1, 1, 1, 1])  # T=8: window ceil(8/3) = 3
    assert sub.concentration(fi) == pytest.approx(5 / 10)
    assert sub.concentration(torch.ones(4)) == pytest.approx(2 / 4)  # T=4: window 2
    assert math.isnan(sub.concentration(torch.zeros(3)))


def test_anti_concentration_loss_weights_later_steps_up():
    gen = torch.Generator().manual_seed(2)
    out = torch.randn(4, 5, 10, generator=gen)
    y = torch.randint(0, 10, (5,), generator=gen)
    per_step = [torch.nn.functional.cross_entropy(out[t], y) for t in range(4)]
    want = sum((t + 1) / 10 * per_step[t] for t in range(4))  # w_t = t / (1 + 2 + 3 + 4)
    torch.testing.assert_close(sub.anti_concentration_loss(out, y), want)


def test_dense_training_logs_the_concentration_per_epoch(monkeypatch):
    monkeypatch.setattr(sub, "FI_SAMPLES", 6)
    task = get_task("digits")
    torch.manual_seed(3)
    model = sub.build(task)
    before = [p.detach().clone() for p in model.parameters()]
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(16)), 6, 0)
    sub.train_dense(model, task, data, Budget(epochs=2, lr=1e-3, batch_size=8), anti_weight=1.0)
    assert [h["epoch"] for h in data.history] == [1, 2]
    for h in data.history:
        shares = [h[f"fisher_share_t{t}"] for t in range(1, 7)]
        assert sum(shares) == pytest.approx(1.0)
        assert h["fisher_concentration"] == pytest.approx(sum(shares[:2]))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model.training


def test_fi_settled_on_hand_made_sequences():
    level = sub.uniform_share(8)  # T=8: 3 of 8 steps
    assert level == pytest.approx(3 / 8)
    seq = [0.30, 0.36, 0.45, 0.47, 0.46, 0.60]
    # epoch 4: last three 0.36, 0.45, 0.47 -> one below 3/8; epoch 5: 0.45, 0.47, 0.46 -> range 0.02
    assert [sub.fi_settled(seq[:e], level, window=3, tol=0.05) for e in range(1, 7)] == [
        False,
        False,
        False,
        False,
        True,
        False,  # 0.47, 0.46, 0.60: moved by 0.14
    ]
    assert sub.stop_epoch(seq, level, window=3, tol=0.05) == 5
    assert sub.stop_epoch(seq, level, window=2, tol=0.05) == 4  # 0.45, 0.47
    assert sub.stop_epoch(seq, level, window=3, tol=0.01) is None
    assert (
        sub.stop_epoch([0.3, 0.3, 0.3, 0.3], level, window=3, tol=0.05) is None
    )  # flat but not concentrated
    assert sub.stop_epoch([0.5, float("nan"), 0.5, 0.5, 0.5], level, window=3, tol=0.05) == 5
    assert not sub.fi_settled([0.9, 0.9], level, window=3, tol=0.05)  # too few epochs yet


def _tiny(task, n=12, steps=4):
    return TrainingData(task, Subset(load_split(task, "train").dataset, range(n)), steps, 0)


def test_imp_rounds_stop_where_the_index_settles(monkeypatch):
    """The IMP loop with a scripted concentration index: each round stops at the epoch stop_epoch
    names on its own sequence (or at the cap), and prunes 50%, 75%, 87.5% of the weights."""
    scripts = [
        [0.30, 0.55, 0.56, 0.54, 0.9, 0.9],  # settles at epoch 4 (0.55, 0.56, 0.54)
        [0.6, 0.6, 0.6, 0.1, 0.1, 0.1],  # at epoch 3
        [0.3, 0.7, 0.3, 0.7, 0.3, 0.7],  # never: the cap (5 epochs)
    ]
    state = {"round": 0, "epoch": 0}
    prune = pruning.magnitude_masks

    def next_round(*args, **kwargs):  # imp prunes once at the end of each round
        state["round"] += 1
        state["epoch"] = 0
        return prune(*args, **kwargs)

    def scripted(fi):
        state["epoch"] += 1
        return scripts[state["round"]][state["epoch"] - 1]

    monkeypatch.setattr(pruning, "magnitude_masks", next_round)
    monkeypatch.setattr(sub, "FI_SAMPLES", 2)
    monkeypatch.setattr(sub, "concentration", scripted)
    task = get_task("digits")
    torch.manual_seed(4)
    model = sub.build(task)
    data = _tiny(task)
    budget = Budget(epochs=15, lr=1e-3, batch_size=12)  # round cap: 15 // 3 = 5 epochs
    assert sub.round_max_epochs(budget) == 5
    masks, rounds = sub.fi_imp(model, data, budget)
    level = sub.uniform_share(4)
    want = [sub.stop_epoch(s[:5], level) or 5 for s in scripts]
    assert want == [4, 3, 5]
    assert [r["epochs"] for r in rounds] == want
    assert [r["stopped_by"] for r in rounds] == ["fisher", "fisher", "max_epochs"]
    assert [r["sparsity"] for r in rounds] == pytest.approx([0.5, 0.75, 0.875])
    search = [h for h in data.history if h.get("phase") == "search"]
    assert [h["round_epoch"] for h in search] == [1, 2, 3, 4, 1, 2, 3, 1, 2, 3, 4, 5]
    assert not any("epoch" in h for h in search)  # the harness counts only the ticket's epochs
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.875 * WEIGHTS)


def test_plain_imp_trains_full_rounds_without_fi(monkeypatch):
    def no_fi(*a, **k):
        raise AssertionError("plain IMP must not compute FI")

    monkeypatch.setattr(sub, "fisher_per_timestep", no_fi)
    task = get_task("digits")
    torch.manual_seed(5)
    model = sub.build(task)
    data = _tiny(task)
    _, rounds = sub.fi_imp(model, data, Budget(epochs=3, lr=1e-3, batch_size=12), fi_stop=False)
    assert [r["epochs"] for r in rounds] == [3, 3, 3] and {r["stopped_by"] for r in rounds} == {"max_epochs"}


def test_fit_keeps_pruned_weights_at_zero():
    task = get_task("digits")
    torch.manual_seed(6)
    model = sub.build(task)
    gen = torch.Generator().manual_seed(6)
    masks = {
        n: torch.rand(m.weight.shape, generator=gen) > 0.7 for n, m in pruning.synaptic_layers(model).items()
    }
    before = {n: m.weight.detach().clone() for n, m in pruning.synaptic_layers(model).items()}
    sub._fit(model, _tiny(task, 24), Budget(epochs=2, lr=1e-2, batch_size=8), 2, masks=masks, measure=False)
    for n, m in pruning.synaptic_layers(model).items():
        assert (m.weight[~masks[n]] == 0).all()
        assert not torch.equal(m.weight[masks[n]], before[n][masks[n]])  # the kept ones trained
    # the keeper is gone afterwards: a plain gradient step may move any weight again
    assert all(not w._backward_hooks for w in pruning.prunable_parameters(model))


def test_train_submits_a_sparse_ticket_that_the_harness_sees(monkeypatch, tmp_path):
    monkeypatch.setattr(sub, "FI_SAMPLES", 4)
    task = get_task("digits")
    torch.manual_seed(7)
    model = sub.build(task)
    init = {n: m.weight.detach().clone() for n, m in pruning.synaptic_layers(model).items()}
    data = _tiny(task)
    sub.train(model, task, data, Budget(epochs=2, lr=1e-3, batch_size=12))
    kept = WEIGHTS - round(0.875 * WEIGHTS)
    assert pruning.connectivity(model)["total"] == (kept, WEIGHTS)
    buffers = pruning.masks_from_buffers(model)
    for n, m in pruning.current_masks(model).items():
        assert torch.equal(m, buffers[n])
    # the first round pruned by the magnitude of trained weights, not of the initial ones
    assert any(not torch.equal(buffers[n], init[n] != 0) for n in buffers)
    ticket = [h for h in data.history if h.get("phase") == "ticket"]
    assert [h["epoch"] for h in ticket] == [1, 2] and all("fisher_concentration" in h for h in ticket)
    assert [h["sparsity"] for h in data.history if h.get("phase") == "round"] == pytest.approx(
        [0.5, 0.75, 0.875]
    )
    # the checkpoint loads into a fresh build with the same zeros
    fresh = sub.build(task)
    fresh.load_state_dict(model.state_dict())
    assert pruning.connectivity(fresh)["total"] == (kept, WEIGHTS)
    # through `snnbench evaluate`: weight_sparsity is the ticket's
    ckpt = tmp_path / "ticket.pt"
    ckpt.write_bytes(checkpoint_bytes(model.state_dict()))
    store = tmp_path / "store"
    argv = ["evaluate", "--task", "digits", "--model", str(PATH), "--checkpoint", str(ckpt), "--quiet"]
    assert main([*argv, "--limit", "16", "--store", str(store)]) == 0
    assert pd.read_parquet(store / "runs").iloc[0].status == "ok"
    met = pd.read_parquet(store / "metrics")
    overall = met[met.condition.isna() & met.timestep.isna() & met.layer.isna()]
    rows = dict(zip(overall.metric, overall.value))
    assert rows["weight_sparsity"] == pytest.approx(1 - kept / WEIGHTS, abs=1e-12)  # untrained build: 0
    assert math.isfinite(rows["synops_per_sample"])


@pytest.mark.parametrize("path, method", [(TEMPLATE, "template"), (PATH, "temporal_fisher")])
def test_fisher_rows_are_stored_for_bptt_submissions(path, method, tmp_path):
    argv = ["evaluate", "--task", "digits", "--model", str(path), "--quiet", "--limit", "8"]
    assert main([*argv, "--metrics", "fisher_information", "--store", str(tmp_path / "s")]) == 0
    metrics = pd.read_parquet(tmp_path / "s" / "metrics")
    fi = metrics[metrics.metric == "fisher_information"].sort_values("timestep")
    assert list(fi.timestep) == [1, 2, 3, 4] and (fi.value > 0).all() and (fi.n == 8).all()
    run = pd.read_parquet(tmp_path / "s" / "runs").iloc[0]
    assert run.method == method and run.status == "ok"
