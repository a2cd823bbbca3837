"""takd: teacher -> teacher assistant (mid-size ANN, KD) -> tiny spiking student (KD from the TA only)."""

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

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "takd" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("takd_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_data(n=32):
    task = get_task("digits")
    return task, TrainingData(task, Subset(load_split(task, "train").dataset, range(n)), task.timesteps, 0)


def test_builds_a_tiny_student_between_sizes():
    sub = load()
    task = get_task("digits")
    student = sub.build(task)
    out = student(torch.rand(task.timesteps, 3, *task.input_shape))
    assert out.shape == (task.timesteps, 3, task.outputs)
    n = {
        s: sum(p.numel() for p in teachers.build_teacher(task, s, 4).parameters())
        for s in ("medium", "xlarge")
    }
    assert sum(p.numel() for p in student.parameters()) < n[sub.TA_SIZE] < n[sub.TEACHER_SIZE]
    assert "mirzadeh2020improved" in sub.CITATION


def test_the_chain_teacher_to_assistant_to_student(monkeypatch):
    sub = load()
    task, data = small_data()
    torch.manual_seed(0)
    teacher = teachers.build_teacher(task, "tiny", 4).eval()
    calls = []
    real = sub.distill_train

    def spy(model, task_, data_, budget, teacher_, **kw):
        calls.append((model, teacher_, kw))
        return real(model, task_, data_, budget, teacher_, **kw)

    monkeypatch.setattr(sub, "distill_train", spy)
    student = sub.build(task)
    sub.train(student, task, data, Budget(epochs=1, lr=1e-2, batch_size=16), teacher=teacher)
    (ta, ta_teacher, ta_kw), (st, st_teacher, st_kw) = calls
    assert isinstance(ta, teachers.TeacherNet) and ta.head.in_features == 4 * teachers.SIZES[sub.TA_SIZE]
    assert ta_teacher is teacher and ta_kw["t_student"] == sub.TAU and ta_kw["alpha"] == sub.ALPHA
    assert st is student and st_teacher is ta  # the student never sees the teacher
    assert st_kw["t_student"] == st_kw["t_teacher"] == sub.TAU and not ta.training
    assert not any(p.requires_grad for p in ta.parameters())
    assert [h["epoch"] for h in data.history] == [1]  # the TA's epochs stay out of the student's history


def test_student_loss_uses_assistant_logits():
    sub = load()
    task, _ = small_data()
    torch.manual_seed(2)
    assistant = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(64, 10))
    assistant[1].weight.data.mul_(5)
    ta = lambda x: assistant(x).mean(0)  # noqa: E731
    torch.manual_seed(0)
    model = sub.build(task)
    for layer in (model[1].module, model[3].module):
        layer.weight.data.mul_(6)
    _, data = small_data()
    ((x, y),) = list(TrainingData(task, data.dataset, task.timesteps, 0).loader(32))
    with torch.no_grad():
        z_s = model(x).sum(0)
        assert float(z_s.sum()) > 0
        p_t = torch.softmax(ta(x) / 4, 1)
        kl = (p_t * (torch.log(p_t) - torch.log_softmax(z_s / 4, 1))).sum(1).mean()
        expected = 0.5 * F.cross_entropy(z_s, y) + 0.5 * 16 * kl
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=32), assistant=ta)
    assert data.history[0]["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_through_the_harness(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(tmp_path / "teachers"))

    def no_training(model, loader_factory, epochs, lr, on_epoch=None):  # never train a teacher in a test
        on_epoch(epochs, model)

    monkeypatch.setattr(teachers, "_fit", no_training)
    ckpt = tmp_path / "takd.pt"
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
