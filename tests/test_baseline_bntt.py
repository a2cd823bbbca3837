"""bntt: per-timestep BN statistics and scales, the gamma early exit, the harness path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.neurons import LIF
from snnbench.norm import TimeBatchNorm
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUB = Path(__file__).resolve().parent.parent / "baselines" / "bntt" / "submission.py"


def _load():
    spec = importlib.util.spec_from_file_location("bntt_sub", SUB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task_id", ["digits", "digits-dvs"])
def test_builds_trains_and_returns_t_b_c(task_id):
    sub = _load()
    task = get_task(task_id)
    torch.manual_seed(0)
    model = sub.build(task)
    ds = torch.utils.data.Subset(load_split(task, "train").dataset, range(24))
    data = TrainingData(task, ds, task.timesteps, 0)
    before = model.bn1.weight.detach().clone()
    sub.train(model, task, data, Budget(epochs=1, batch_size=12))
    assert len(data.history) == 1 and len(data.history[0]["output_gamma"]) == task.timesteps
    assert not torch.equal(before, model.bn1.weight)  # gamma_t trained
    x = torch.rand(task.timesteps, 3, *task.input_shape)
    assert model(x).shape == (task.timesteps, 3, task.outputs)
    assert 1 <= int(model.exit_step) <= task.timesteps
    assert sub.CITATION.startswith("@article") and isinstance(sub.REPORTED, dict)


def test_separate_statistics_and_scales_per_timestep_no_shift_bias_free():
    sub = _load()
    task = get_task("digits-dvs")
    model = sub.build(task)
    for bn, c in ((model.bn1, 16), (model.bn2, 32), (model.bn3, 128)):
        assert isinstance(bn, TimeBatchNorm) and not bn.shared and bn.bias is None
        assert bn.weight.shape == bn.running_mean.shape == bn.running_var.shape == (task.timesteps, c)
    assert all(m.bias is None for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    lif = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(lif) == 3 and all(m.v_reset == 0.0 and not m.decay_input for m in lif)
    assert abs((1 - 1 / lif[0].tau) - sub.LEAK) < 1e-9  # h = lambda * v + x
    # step-dependent inputs leave step-dependent running statistics in the first BN
    model.train()
    x = torch.zeros(task.timesteps, 8, *task.input_shape)
    x[3] = 1.0
    with torch.no_grad():
        model(x)
    mean = model.bn1.running_mean.abs().sum(1)
    assert mean[3] > 0 and float(mean[torch.arange(task.timesteps) != 3].max()) == 0.0


def test_early_exit_stops_where_output_gamma_falls_below_threshold():
    sub = _load()
    task = get_task("digits-dvs")  # frames: no Poisson draw, the forward is deterministic
    torch.manual_seed(1)
    model = sub.build(task).eval()
    g = torch.ones(task.timesteps)
    g[4], g[6] = 0.05, 0.02  # first step below 0.1 is t=4 (0-based); t=5 is back above
    g[2] = 0.1  # exactly at the threshold does not exit
    with torch.no_grad():
        model.bn3.weight.copy_(g.view(-1, 1).expand_as(model.bn3.weight))
        model.bn3.weight[4, 0] += 0.01  # the layer MEAN decides, not one channel
    assert model.set_exit(0.1) == 4 and int(model.exit_step) == 4
    x = (torch.rand(task.timesteps, 5, *task.input_shape) < 0.1).float()
    seen_steps = []
    hook = model.sn1.register_forward_hook(lambda _m, i, _o: seen_steps.append(i[0].shape[0]))
    out = model(x)
    hook.remove()
    assert seen_steps == [4]  # the network ran 4 steps only
    assert torch.equal(out[4:], torch.zeros_like(out[4:]))
    model.exit_step.fill_(task.timesteps)
    full = model(x)
    torch.testing.assert_close(out[:4], full[:4])  # the first steps are unchanged by the exit
    # the prediction is the mean membrane at the exit
    assert torch.equal(out.mean(0).argmax(1), full[:4].sum(0).argmax(1))
    # the exit step travels in the checkpoint
    model.exit_step.fill_(4)
    fresh = sub.build(task)
    fresh.load_state_dict(model.state_dict())
    assert int(fresh.exit_step) == 4
    # no gamma below the threshold: no exit
    with torch.no_grad():
        model.bn3.weight.fill_(0.5)
    assert model.set_exit(0.1) == task.timesteps


def test_cli_train_and_evaluate_end_to_end(tmp_path):
    """snnbench train (1 epoch) then evaluate (--limit 32) into a temporary store: the run is ok,
    the checkpoint is trained weights that load into build(task), activity is counted."""
    ckpt = tmp_path / "c.pt"
    model = str(SUB)
    assert (
        main(["train", "--task", "digits", "--model", model, "--out", str(ckpt), "--epochs", "1", "--quiet"])
        == 0
    )
    store = tmp_path / "store"
    args = ["evaluate", "--task", "digits", "--model", model, "--checkpoint", str(ckpt), "--quiet"]
    assert main(args + ["--limit", "32", "--store", str(store)]) == 0
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and run.checkpoint_sha256
    m = pd.read_parquet(store / "metrics")
    overall = m.condition.isna() & m.timestep.isna() & m.layer.isna()
    acc = float(m[(m.metric == "accuracy") & overall].value.iloc[0])
    assert 0.0 <= acc <= 1.0
    assert float(m[(m.metric == "spikes_per_sample") & overall].value.iloc[0]) > 0
    state = torch.load(ckpt, weights_only=True)
    torch.manual_seed(0)
    fresh = _load().build(get_task("digits")).state_dict()
    assert set(state) == set(fresh)
    assert any(not torch.equal(state[k], fresh[k]) for k in fresh if fresh[k].is_floating_point())
