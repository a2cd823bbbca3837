"""kd_teacher_sweetspot: score a grid of teacher checkpoints on held-out data, distil from the best."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Subset

from snnbench import teachers
from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "kd_teacher_sweetspot" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("kd_teacher_sweetspot_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builds_with_a_chosen_teacher_buffer():
    sub = load()
    task = get_task("digits")
    model = sub.build(task)
    assert model(torch.rand(4, 2, *task.input_shape)).shape == (4, 2, 10)
    assert int(model.state_dict()["chosen_teacher"]) == -1
    assert sub.candidates() == [(32, 2), (32, 8), (32, 40), (128, 2), (128, 8), (128, 40)]
    assert "vats2021controlling" in sub.CITATION


def test_score_is_accuracy_times_normalised_non_target_entropy():
    sub = load()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 5)) * 3
    y = np.array([0, 1, 2, 3, 4, 0])
    ent = []
    for row, label in zip(z, y):  # independent: numpy softmax, drop the label, renormalise
        p = np.exp(row / 4) / np.exp(row / 4).sum()
        q = np.delete(p, label)
        q = q / q.sum()
        ent.append(-(q * np.log(q)).sum() / math.log(4))
    acc = float((z.argmax(1) == y).mean())
    got = sub.score(torch.tensor(z, dtype=torch.float64), torch.tensor(y))
    assert got == pytest.approx(acc * float(np.mean(ent)), rel=1e-9)
    # extremes: equal non-target logits -> entropy 1; one dominant wrong class -> near 0
    flat = torch.tensor([[5.0, 0.0, 0.0, 0.0]])
    peaked = torch.tensor([[50.0, 40.0, -40.0, -40.0]])
    label = torch.tensor([0])
    assert float(sub.non_target_entropy(flat, label)) == pytest.approx(1.0)
    assert float(sub.non_target_entropy(peaked, label)) < 1e-6


def test_held_out_split_is_fixed_disjoint_and_complete():
    sub = load()
    fit, held = sub.split(list(range(23)))
    assert held.indices == [4, 9, 14, 19] and set(fit.indices) | set(held.indices) == set(range(23))
    assert not set(fit.indices) & set(held.indices)


def test_train_distils_from_the_best_scoring_candidate(monkeypatch):
    sub = load()
    task = get_task("digits")
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(40)), 4, 0)
    torch.manual_seed(0)
    grid = [teachers.build_teacher(task, "tiny", 4).eval() for _ in range(3)]
    grid[1].head.weight.data.mul_(0)  # one candidate with uniform outputs: a distinct score
    scores = [sub.score(*sub.held_out_logits(task, data, t)) for t in grid]
    monkeypatch.setattr(sub, "teacher_grid", lambda *_a: grid)
    used = []
    real = sub.distill_train
    monkeypatch.setattr(
        sub,
        "distill_train",
        lambda m, t, d, b, teacher, **kw: used.append(teacher) or real(m, t, d, b, teacher, **kw),
    )
    model = sub.build(task)
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=20))
    best = int(np.argmax(scores))
    assert used == [grid[best]] and int(model.state_dict()["chosen_teacher"]) == best


def test_through_the_harness(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(tmp_path / "teachers"))
    trained = []

    def no_training(model, loader_factory, epochs, lr, on_epoch=None):  # never train a teacher in a test
        trained.append(epochs)
        for e in range(1, epochs + 1):
            on_epoch(e, model)

    monkeypatch.setattr(teachers, "_fit", no_training)
    ckpt = tmp_path / "sweet.pt"
    args = ["--task", "digits", "--model", str(SUBMISSION)]
    assert main(["train", *args, "--epochs", "1", "--out", str(ckpt), "--quiet"]) == 0
    assert trained == [40, 40]  # one run per batch size; the shorter candidates are its kept epochs
    assert len(list((tmp_path / "teachers").glob("*.pt"))) == 6
    assert int(torch.load(ckpt, weights_only=True)["chosen_teacher"]) in range(6)
    store = tmp_path / "store"
    assert (
        main(
            ["evaluate", *args, "--checkpoint", str(ckpt), "--limit", "32", "--store", str(store), "--quiet"]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == 4
