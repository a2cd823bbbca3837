"""desire_bp: ternary desires, local errors and the STDP-shaped update, against hand computations."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import torch

from snnbench.cli import main
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

REPO = Path(__file__).resolve().parent.parent
SUB = REPO / "baselines" / "desire_bp" / "submission.py"
_spec = importlib.util.spec_from_file_location("desire_sub", SUB)
db = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(db)


def test_local_error_compares_desire_with_spiking():
    target = db.T_INT - db.MARGIN
    desire = torch.tensor([[1.0, 1.0, -1.0, -1.0, 0.0]])
    count = torch.tensor([[0.0, 2.0 * target, 0.0, target / 2, 7.0]])
    assert torch.allclose(db.local_error(desire, count), torch.tensor([[1.0, 0.0, 0.0, -0.5, 0.0]]))


def test_hidden_desire_is_the_thresholded_sign_of_erring_desires():
    # 2 outputs x 3 hidden; output 0 wants to spike and errs, output 1 must stay silent and errs
    w = torch.tensor([[1.0, -1.0, 0.02], [1.0, 1.0, 0.0]])
    d_next = torch.tensor([[1.0, -1.0]])
    e_next = torch.tensor([[1.0, -1.0]])
    # by hand: hidden 0: (1 - 1)/2 = 0 -> 0; hidden 1: (-1 - 1)/2 = -1 -> -1; hidden 2: 0.02/0.02 = 1 -> +1
    assert torch.equal(db.hidden_desire(w, d_next, e_next, 0.05), torch.tensor([[0.0, -1.0, 1.0]]))
    # an output that does not err (|e| below the output threshold) contributes nothing
    e_ok = torch.tensor([[0.1, -1.0]])
    assert torch.equal(db.hidden_desire(w, d_next, e_ok, 0.05), torch.tensor([[-1.0, -1.0, 0.0]]))


def test_update_is_trace_times_local_error_without_autograd():
    task = get_task("digits")
    torch.manual_seed(0)
    model = db.build(task, hidden=6)
    assert not any(p.requires_grad for p in model.parameters())
    x = torch.rand(task.timesteps, 5, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 4])
    w1, w2 = model.fc1.weight.clone(), model.fc2.weight.clone()
    torch.manual_seed(7)
    s0, s1, s2 = model.run(x)
    n1, n2 = s1.sum(0), s2.sum(0)
    d2 = -torch.ones(5, 10)
    d2[torch.arange(5), y] = 1.0
    e2 = db.local_error(d2, n2)
    d1 = db.hidden_desire(w2, d2, e2, db.DESIRE_THR_HIDDEN)
    e1 = db.local_error(d1, n1)
    # the trace by hand: tr_t = 0.75 tr_{t-1} + s_t, averaged over time
    decay = db.DECAY ** torch.arange(db.T_INT, dtype=torch.float32)
    tr0 = torch.stack(
        [(decay[: t + 1].flip(0)[:, None, None] * s0[: t + 1]).sum(0) for t in range(db.T_INT)]
    ).mean(0)
    tr1 = torch.stack(
        [(decay[: t + 1].flip(0)[:, None, None] * s1[: t + 1]).sum(0) for t in range(db.T_INT)]
    ).mean(0)
    lr = (0.1, 0.2)
    torch.manual_seed(7)
    db.desire_step(model, x, y, lr)
    assert torch.allclose(model.fc2.weight, w2 + 0.2 * e2.t() @ tr1 / 5, atol=1e-6)
    assert torch.allclose(model.fc1.weight, w1 + 0.1 * e1.t() @ tr0 / 5, atol=1e-6)
    torch.manual_seed(7)
    frozen = db.build(task, hidden=6)
    frozen.load_state_dict({"fc1.weight": w1, "fc2.weight": w2})
    db.desire_step(frozen, x, y, lr, train_hidden=False)
    assert torch.equal(frozen.fc1.weight, w1) and not torch.equal(frozen.fc2.weight, w2)


def test_builds_trains_and_returns_output_spikes():
    from snnbench.data import load_split

    task = get_task("digits")
    model = db.build(task)
    out = model(torch.rand(task.timesteps, 3, 1, 8, 8))
    assert out.shape == (3, task.outputs)
    assert set((out * db.T_INT).round().unique().tolist()) <= set(range(db.T_INT + 1))
    subset = torch.utils.data.Subset(load_split(task, "train").dataset, range(32))
    data = TrainingData(task, subset, task.timesteps, 0)
    before = model.fc1.weight.clone()
    db.train(model, task, data, Budget(epochs=1))
    assert len(data.history) == 1 and not torch.equal(before, model.fc1.weight)


def test_evaluates_through_the_harness(tmp_path):
    assert main(["evaluate", "--task", "digits", "--model", str(SUB), "--quiet", "--limit", "16"]) == 0
    runs = pd.read_parquet(tmp_path / "store" / "runs")
    assert runs.iloc[0].status == "ok"
