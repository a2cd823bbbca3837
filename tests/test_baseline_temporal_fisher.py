"""temporal_fisher: shapes, FI per timestep against a direct computation, the concentration index,
the anti-concentration loss, a tiny training run, and fisher_information rows through the CLI for
BPTT submissions (the template and this baseline)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

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


def test_trains_a_few_steps_and_logs_the_concentration_per_epoch(monkeypatch):
    monkeypatch.setattr(sub, "FI_SAMPLES", 6)
    task = get_task("digits")
    torch.manual_seed(3)
    model = sub.build(task)
    before = [p.detach().clone() for p in model.parameters()]
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(16)), 6, 0)
    sub.train(model, task, data, Budget(epochs=2, lr=1e-3, batch_size=8), anti_weight=1.0)
    assert [h["epoch"] for h in data.history] == [1, 2]
    for h in data.history:
        shares = [h[f"fisher_share_t{t}"] for t in range(1, 7)]
        assert sum(shares) == pytest.approx(1.0)
        assert h["fisher_concentration"] == pytest.approx(sum(shares[:2]))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model.training


@pytest.mark.parametrize("path, method", [(TEMPLATE, "template"), (PATH, "temporal_fisher")])
def test_fisher_rows_are_stored_for_bptt_submissions(path, method, tmp_path):
    argv = ["evaluate", "--task", "digits", "--model", str(path), "--quiet", "--limit", "8"]
    assert main([*argv, "--metrics", "fisher_information", "--store", str(tmp_path / "s")]) == 0
    metrics = pd.read_parquet(tmp_path / "s" / "metrics")
    fi = metrics[metrics.metric == "fisher_information"].sort_values("timestep")
    assert list(fi.timestep) == [1, 2, 3, 4] and (fi.value > 0).all() and (fi.n == 8).all()
    run = pd.read_parquet(tmp_path / "s" / "runs").iloc[0]
    assert run.method == method and run.status == "ok"
