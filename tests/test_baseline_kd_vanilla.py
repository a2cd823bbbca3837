"""kd_vanilla: Hinton KD (one temperature, tau^2 scaling) from a cached ANN teacher into a spiking MLP."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from snnbench import teachers
from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "kd_vanilla" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("kd_vanilla_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builds_on_both_tasks_with_spiking_output():
    sub = load()
    for task_id in ("digits", "digits-dvs"):
        task = get_task(task_id)
        torch.manual_seed(0)
        out = sub.build(task)(torch.rand(task.timesteps, 3, *task.input_shape) * 3)
        assert out.shape == (task.timesteps, 3, task.outputs)
        assert set(out.unique().tolist()) <= {0.0, 1.0}  # z_s is a spike count
    assert "hinton2015distilling" in sub.CITATION and sub.TAU == 4.0 and sub.ALPHA == 0.5


def hinton_loss(z_s, z_t, y, tau, alpha):
    """Independent Hinton KD objective: (1 - a) CE + a tau^2 KL(p_t || p_s), written out."""
    p_t = torch.softmax(z_t / tau, 1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(z_s / tau, 1))).sum(1).mean()
    return (1 - alpha) * F.cross_entropy(z_s, y) + alpha * tau * tau * kl


def test_train_optimises_hinton_kd_on_output_spike_counts():
    sub = load()
    task = get_task("digits")
    subset = Subset(load_split(task, "train").dataset, range(32))
    torch.manual_seed(1)
    teacher = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(64, 10))
    teacher[1].weight.data.mul_(5)
    teach = lambda x: teacher(x).mean(0)  # noqa: E731
    torch.manual_seed(0)
    model = sub.build(task)
    for layer in (model[1].module, model[3].module):  # strong enough that the output layer fires
        layer.weight.data.mul_(4)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ((x, y),) = list(TrainingData(task, subset, task.timesteps, 0).loader(32))  # the loader's first batch
    with torch.no_grad():
        out = model(x)
        assert 0 < float(out.mean()) < 1
        expected = hinton_loss(out.sum(0), teach(x), y, 4.0, 0.5)  # z_s = output spike count
        mean_rate = hinton_loss(out.mean(0), teach(x), y, 4.0, 0.5)
    data = TrainingData(task, subset, task.timesteps, 0)
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=32), teacher=teach)
    # one batch, one step: the recorded loss is the objective at the initial weights
    assert data.history[0]["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert abs(float(mean_rate) - float(expected)) > 1e-3  # the readout matters: rates give another loss
    assert not torch.equal(start["1.module.weight"], model.state_dict()["1.module.weight"])


def test_through_the_harness_with_a_cached_teacher(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(tmp_path / "teachers"))
    fits = []

    def no_training(model, loader_factory, epochs, lr, on_epoch=None):  # never train for real in a test
        fits.append(epochs)
        on_epoch(epochs, model)

    monkeypatch.setattr(teachers, "_fit", no_training)
    ckpt = tmp_path / "kd.pt"
    args = ["--task", "digits", "--model", str(SUBMISSION)]
    assert main(["train", *args, "--epochs", "1", "--out", str(ckpt), "--quiet"]) == 0
    assert fits == [30] and len(list((tmp_path / "teachers").glob("digits-v1-large-seed0-*.pt"))) == 1
    store = tmp_path / "store"
    assert (
        main(
            ["evaluate", *args, "--checkpoint", str(ckpt), "--limit", "32", "--store", str(store), "--quiet"]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == 4
