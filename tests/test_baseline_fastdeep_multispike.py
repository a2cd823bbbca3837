"""fastdeep_multispike: the event-driven CuBa neuron's spike times and exact gradients."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snnbench.cli import main
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

REPO = Path(__file__).resolve().parent.parent
SUB = REPO / "baselines" / "fastdeep_multispike" / "submission.py"
_spec = importlib.util.spec_from_file_location("fastdeep_sub", SUB)
fd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fd)


def grid_spikes(t_in, w, k, dt=1e-4):
    """Independent reference: evaluate the PSP sum and the decaying resets on a fine time grid
    and record the first k upward threshold crossings of each neuron."""
    ts = torch.arange(0.0, fd.T_END, dt, dtype=torch.float64)
    s = (ts[:, None] - t_in[None, :]).clamp(min=0.0)
    psp = (torch.exp(-s / fd.TAU_MEM) - torch.exp(-s / fd.TAU_SYN)) * (ts[:, None] > t_in[None, :])
    result = []
    for j in range(w.shape[0]):
        v = psp @ w[j]
        spikes = []
        for step in range(len(ts)):
            reset = sum(math.exp(-(float(ts[step]) - q) / fd.TAU_MEM) for q in spikes) * fd.THETA
            if v[step] - reset >= fd.THETA and len(spikes) < k:
                spikes.append(float(ts[step]))
        result.append(spikes)
    return result


def test_event_times_match_a_fine_grid_simulation():
    g = torch.Generator().manual_seed(3)
    t_in = torch.rand(20, generator=g, dtype=torch.float64) * 2
    w = torch.randn(3, 20, generator=g, dtype=torch.float64) * 0.8 + 0.45
    exact = fd.cuba_event_layer(t_in[None], w, 4)[0]
    ref = grid_spikes(t_in, w, 4, dt=2e-4)
    assert sum(len(r) for r in ref) >= 5  # several neurons spike several times
    for j, spikes in enumerate(ref):
        got = exact[j][torch.isfinite(exact[j])].tolist()
        assert len(got) == len(spikes)
        for a, b in zip(got, spikes):
            assert abs(a - b) < 3e-4  # the grid lands within one step after the true crossing


def test_gradients_equal_finite_differences():
    task = get_task("digits")
    torch.manual_seed(0)
    model = fd.build(task, hidden=8, k=3).double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 4, 1, 8, 8, generator=g, dtype=torch.float64).expand(4, -1, -1, -1, -1)
    y = torch.tensor([0, 1, 2, 3])

    def loss():
        h, out = model.spike_times(x)
        t = torch.nan_to_num(out[..., 0], posinf=fd.T_CAP).clamp(max=fd.T_CAP)
        return F.cross_entropy(-t / fd.TAU_SYN, y), torch.isfinite(h).sum(), torch.isfinite(out).sum()

    loss()[0].backward()
    eps, used = 1e-6, 0
    for p in (model.w1, model.w2):
        grad = p.grad.clone()
        for i in range(0, p.shape[0], 3):
            for j in range(0, p.shape[1], 7):
                with torch.no_grad():
                    p[i, j] += eps
                    lp, hp, op = loss()
                    p[i, j] -= 2 * eps
                    lm, hm, om = loss()
                    p[i, j] += eps
                if hp != hm or op != om:
                    continue  # a spike appeared or vanished: the loss is not differentiable there
                assert abs(float((lp - lm) / (2 * eps)) - float(grad[i, j])) < 1e-3
                used += 1
    assert used > 20 and float(model.w1.grad.abs().max()) > 1e-3


def test_multiple_spikes_and_reset():
    t_in = torch.zeros(1, 1, dtype=torch.float64)
    w = torch.tensor([[40.0]], dtype=torch.float64)
    times = fd.cuba_event_layer(t_in, w, 3)[0, 0]
    assert torch.isfinite(times).all() and (times.diff() > 0).all()
    one = fd.cuba_event_layer(t_in, w, 1)[0, 0]
    assert torch.equal(one, times[:1])  # the first spike does not depend on K


def test_builds_trains_and_shapes_on_both_tasks(monkeypatch):
    from snnbench.data import load_split

    for task_id, shape in (("digits", (1, 8, 8)), ("digits-dvs", (2, 32, 32))):
        task = get_task(task_id)
        torch.manual_seed(0)
        model = fd.build(task, allow_events=True)
        x = torch.rand(task.timesteps, 3, *shape)
        assert model(x).shape == (3, task.outputs)
    with pytest.raises(ValueError, match="not supported"):
        fd.build(get_task("digits-dvs"))
    task = get_task("digits")
    split = load_split(task, "train")
    subset = torch.utils.data.Subset(split.dataset, range(32))
    model = fd.build(task)
    before = model.w1.detach().clone()
    data = TrainingData(task, subset, task.timesteps, 0)
    fd.train(model, task, data, Budget(epochs=1), epoch_scale=1.0)
    assert len(data.history) == 1 and not torch.equal(before, model.w1)


def test_evaluates_through_the_harness(tmp_path):
    assert main(["evaluate", "--task", "digits", "--model", str(SUB), "--quiet", "--limit", "16"]) == 0
    import pandas as pd

    runs = pd.read_parquet(tmp_path / "store" / "runs")
    assert runs.iloc[0].status == "ok"
