"""hoyer_one_step: shapes, a tiny training run, the Hoyer threshold/gradient/regularizer, the harness."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

PATH = Path(__file__).resolve().parent.parent / "baselines" / "hoyer_one_step" / "submission.py"
spec = importlib.util.spec_from_file_location("hoyer_one_step_submission", PATH)
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)


def test_builds_uses_step_zero_only_and_returns_b_by_c():
    torch.manual_seed(0)
    model = sub.build(get_task("digits")).eval()
    x = torch.rand(4, 5, 1, 8, 8)
    out = model(x)
    assert out.shape == (5, 10)
    garbage = x.clone()
    garbage[1:] = torch.rand(3, 5, 1, 8, 8)
    torch.testing.assert_close(model(garbage), out)  # later steps are ignored (T=1 method)
    assert "features.2.clip" in model.state_dict() and "features.6.clip" in model.state_dict()
    assert sub.CITATION and sub.REPORTED


def test_threshold_is_the_hoyer_extremum_of_the_map_and_spikes_follow_it():
    gen = torch.Generator().manual_seed(1)
    layer = sub.HoyerSpike(init_clip=1.3)
    u = torch.randn(3, 4, 5, 5, generator=gen) * 1.5
    s = layer(u)
    z = np.clip(u.numpy() / 1.3, 0, 1)
    for b in range(3):
        e = (z[b] ** 2).sum() / np.abs(z[b]).sum()
        assert float(layer.last_threshold[b].reshape(())) == approx(e)
        want = ((z[b] >= e) & (z[b] > 0)).astype(np.float32)
        np.testing.assert_array_equal(s[b].detach().numpy(), want)
    assert 0 < float(s.detach().mean()) < 1


def approx(v):
    return pytest.approx(float(v), rel=1e-5)


def test_straight_through_gradient_reaches_u_and_clip_only_inside_the_clip_range():
    gen = torch.Generator().manual_seed(2)
    v = 0.8
    layer = sub.HoyerSpike(init_clip=v)
    u = (torch.randn(2, 3, 4, 4, generator=gen) * 1.2).requires_grad_()
    g = torch.randn(2, 3, 4, 4, generator=gen)
    (layer(u) * g).sum().backward()
    inside = ((u / v > 0) & (u / v < 1)).float()
    torch.testing.assert_close(u.grad, g * inside / v)
    want_clip = float((g * inside * (-u.detach() / v**2)).sum())
    assert float(layer.clip.grad) == approx(want_clip)
    assert 0 < float(inside.mean()) < 1  # both regions present


def test_regularizer_is_the_sum_of_hoyer_squares():
    torch.manual_seed(3)
    model = sub.build(get_task("digits")).train()
    model(torch.rand(1, 6, 1, 8, 8))
    want = 0.0
    for m in model.spiking_layers():
        z = m.last_z.detach().reshape(6, -1).numpy()
        want += float(np.mean(np.abs(z).sum(1) ** 2 / (z**2).sum(1)))
    assert float(model.regularizer().detach()) == approx(want)


def test_trains_a_few_steps():
    task = get_task("digits")
    torch.manual_seed(4)
    model = sub.build(task)
    before = [p.detach().clone() for p in model.parameters()]
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(48)), task.timesteps, 0)
    sub.train(model, task, data, Budget(epochs=1, lr=1e-3, batch_size=16))
    assert len(data.history) == 1 and data.history[0]["hoyer_square"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model.training


def test_evaluates_through_the_harness(tmp_path):
    assert main(["evaluate", "--task", "digits", "--model", str(PATH), "--quiet", "--limit", "32"]) == 0
    import pandas as pd

    run = pd.read_parquet(tmp_path / "store" / "runs").iloc[0]
    assert run.status == "ok" and run.method == "hoyer_one_step"
