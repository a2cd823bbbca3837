"""asa_attention: Advance Spatial Attention gating the membrane input before the LIF neurons."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from snnbench.cli import main
from snnbench.neurons import LIF
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "asa_attention" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("asa_attention_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_asa(asa, u: torch.Tensor) -> torch.Tensor:
    """ASA by explicit loops: per (t, b) top-k channels by 0.5 * (mean + max over space); per group
    a map sigmoid(conv([sum / (count * share), max])) pooled over channels (and time unless per_step)."""
    t_, b_, c_, h_, w_ = u.shape
    k = max(1, min(c_ - 1, int(c_ * asa.lam)))
    share = k / c_
    mask = torch.zeros(t_, b_, c_)
    for t in range(t_):
        for b in range(b_):
            score = [0.5 * (float(u[t, b, c].mean()) + float(u[t, b, c].max())) for c in range(c_)]
            for c in sorted(range(c_), key=lambda c: -score[c])[:k]:
                mask[t, b, c] = 1.0
    out = torch.zeros_like(u)
    for b in range(b_):
        for group, conv, frac in ((1.0, asa.conv_important, share), (0.0, asa.conv_sub, 1 - share)):
            sel = (mask[:, b] == group).float()[..., None, None]  # [T, C, 1, 1]
            feat = u[:, b] * sel  # the other group's channels are zero, as in the official code
            steps = [[t] for t in range(t_)] if asa.per_step else [list(range(t_))]
            for ts in steps:
                f = feat[ts]
                pooled = torch.stack([f.sum((0, 1)) / (len(ts) * c_ * frac), f.amax((0, 1))])
                gate = torch.sigmoid(F.conv2d(pooled[None], conv.weight, padding=conv.padding))[0, 0]
                out[ts, b] += gate * f
    return out * asa.location


@pytest.mark.parametrize("per_step", [False, True])
def test_asa_matches_an_explicit_loop(per_step):
    sub = load()
    torch.manual_seed(0)
    asa = sub.ASA(6, 5, kernel=3, per_step=per_step)
    with torch.no_grad():
        asa.location.copy_(torch.rand(6, 5) + 0.5)
    u = torch.randn(3, 2, 4, 6, 5)
    assert torch.allclose(asa(u), reference_asa(asa, u), atol=1e-5)


def test_zero_attention_convs_halve_the_membrane_and_location_map_scales_it():
    sub = load()
    asa = sub.ASA(4, 4)
    with torch.no_grad():
        asa.conv_important.weight.zero_()
        asa.conv_sub.weight.zero_()
        asa.location.copy_(torch.arange(16.0).reshape(4, 4))
    u = torch.randn(2, 3, 8, 4, 4)
    assert torch.allclose(asa(u), 0.5 * u * asa.location, atol=1e-6)


def test_builds_on_digits_dvs_with_asa_before_every_lif_and_gets_gradients():
    sub = load()
    task = get_task("digits-dvs")
    torch.manual_seed(0)
    model = sub.build(task)
    kinds = [type(m).__name__ for m in model]
    assert [kinds[i + 1] for i, k in enumerate(kinds) if k == "ASA"] == ["LIF", "LIF"]
    assert not any(isinstance(m, sub.ASA) for m in sub.build(task, attention=False).modules())
    x = (torch.rand(task.timesteps, 3, *task.input_shape) < 0.1).float()
    out = model(x)
    assert out.shape == (task.timesteps, 3, task.outputs)
    out.sum().backward()
    asa = [m for m in model if isinstance(m, sub.ASA)]
    assert all(
        float(a.location.grad.abs().sum()) > 0 and float(a.conv_important.weight.grad.abs().sum()) > 0
        for a in asa
    )
    assert isinstance(model[kinds.index("ASA") + 1], LIF)


def test_train_runs_for_the_budget_on_a_tiny_subset():
    sub = load()
    task = get_task("digits-dvs")
    frames = (torch.rand(16, task.timesteps, *task.input_shape) < 0.05).float()  # synthetic events
    data = TrainingData(task, TensorDataset(frames, torch.arange(16) % 10), task.timesteps, 0)
    torch.manual_seed(0)
    model = sub.build(task)
    before = model[2].location.detach().clone()
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=8))
    assert len(data.history) == 1 and not torch.equal(before, model[2].location)


def test_evaluates_through_the_harness(tmp_path):
    sub = load()
    torch.manual_seed(0)
    ckpt = tmp_path / "asa.pt"
    torch.save(sub.build(get_task("digits-dvs")).state_dict(), ckpt)
    store = tmp_path / "store"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "digits-dvs",
                "--model",
                str(SUBMISSION),
                "--checkpoint",
                str(ckpt),
                "--limit",
                "8",
                "--store",
                str(store),
                "--quiet",
            ]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok"
    metrics = pd.read_parquet(store / "metrics")
    assert (
        float(
            metrics[
                (metrics.metric == "spikes_per_sample") & metrics.layer.isna() & metrics.timestep.isna()
            ].value.iloc[0]
        )
        > 0
    )
