"""kd_hetero_temp: KD with tau_s < tau_t on output spike counts; same student as kd_vanilla."""

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

BASELINES = Path(__file__).resolve().parent.parent / "baselines"
SUBMISSION = BASELINES / "kd_hetero_temp" / "submission.py"


def load(path=SUBMISSION, name="kd_hetero_temp_under_test"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_student_as_the_kd_control_and_constants():
    sub, control = load(), load(BASELINES / "kd_vanilla" / "submission.py", "kd_vanilla_for_hetero")
    task = get_task("digits")
    a, b = sub.build(task).state_dict(), control.build(task).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert repr(sub.build(task)) == repr(control.build(task))
    assert sub.TAU_STUDENT < sub.TAU_TEACHER == control.TAU and sub.ALPHA == control.ALPHA
    assert sub.REPORTED["mnist spike reduction vs standard KD"] == 0.65 and "lee2021energy" in sub.CITATION
    out = sub.build(task)(torch.rand(task.timesteps, 2, *task.input_shape))
    assert out.shape == (task.timesteps, 2, task.outputs)


def hetero_loss(z_s, z_t, y, ts, tt, alpha):
    """(1 - a) CE + a ts^2 KL(softmax(z_t/tt) || softmax(z_s/ts)), written out."""
    p_t = torch.softmax(z_t / tt, 1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(z_s / ts, 1))).sum(1).mean()
    return (1 - alpha) * F.cross_entropy(z_s, y) + alpha * ts * ts * kl


def test_train_optimises_two_temperature_kd_on_spike_counts():
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
    ((x, y),) = list(TrainingData(task, subset, task.timesteps, 0).loader(32))
    with torch.no_grad():
        out = model(x)
        assert 0 < float(out.mean()) < 1
        expected = hetero_loss(out.sum(0), teach(x), y, 1.0, 4.0, 0.5)
        one_temperature = hetero_loss(out.sum(0), teach(x), y, 4.0, 4.0, 0.5)
    data = TrainingData(task, subset, task.timesteps, 0)
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=32), teacher=teach)
    assert data.history[0]["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert abs(float(one_temperature) - float(expected)) > 1e-3  # differs from the kd_vanilla loss


def test_soft_optimum_is_a_smaller_count_than_the_teachers_logits():
    # the soft term is stationary (zero gradient, zero loss) at z_s = z_t * tau_s / tau_t
    from snnbench.distill import soft_kl

    torch.manual_seed(0)
    z_t = torch.randn(4, 10) * 3
    for ts, tt in ((1.0, 4.0), (2.0, 8.0), (4.0, 4.0)):
        z_s = (z_t * ts / tt + 0.7).requires_grad_(True)  # any constant shift too
        loss = soft_kl(z_s, z_t, ts, tt)
        loss.backward()
        assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
        assert float(z_s.grad.abs().max()) < 1e-6
    unscaled = z_t.clone().requires_grad_(True)  # the one-temperature optimum is not hetero's
    soft_kl(unscaled, z_t, 1.0, 4.0).backward()
    assert float(unscaled.grad.abs().max()) > 1e-2


def test_through_the_harness(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(tmp_path / "teachers"))

    def no_training(model, loader_factory, epochs, lr, on_epoch=None):  # never train for real in a test
        on_epoch(epochs, model)

    monkeypatch.setattr(teachers, "_fit", no_training)
    ckpt = tmp_path / "het.pt"
    args = ["--task", "digits", "--model", str(SUBMISSION)]
    assert main(["train", *args, "--epochs", "1", "--out", str(ckpt), "--quiet"]) == 0
    store = tmp_path / "store"
    assert (
        main(
            ["evaluate", *args, "--checkpoint", str(ckpt), "--limit", "32", "--store", str(store), "--quiet"]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == 4
