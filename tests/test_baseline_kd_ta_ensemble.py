"""kd_ta_ensemble: TAs of three sizes distilled from the teacher, DE-weighted mixture of their
softened outputs on a validation part of the training split, tiny spiking student distilled from it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
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

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "kd_ta_ensemble" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("kd_ta_ensemble_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_data(n=40):
    task = get_task("digits")
    return task, TrainingData(task, Subset(load_split(task, "train").dataset, range(n)), task.timesteps, 0)


class Fixed(torch.nn.Module):
    """A member whose logits are a fixed table indexed by the sample (x carries the index)."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.as_tensor(table, dtype=torch.float32)

    def forward(self, x):
        return self.table[x.long()]


class TimeMean(torch.nn.Module):
    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x):
        return self.head(x).mean(0)


def test_split_is_disjoint_fixed_and_inside_the_training_split():
    sub = load()
    ds = list(range(23))
    fit, val = sub.split(ds)
    assert list(val.indices) == [4, 9, 14, 19]  # every fifth sample, by hand
    assert sorted(fit.indices + val.indices) == ds and not set(fit.indices) & set(val.indices)


def test_ensemble_forward_is_log_of_the_weighted_mixture():
    sub = load()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 5, 10)) * 3
    w = np.array([0.2, 0.0, 0.6])  # unnormalised, one zero weight
    ens = sub.WeightedEnsemble([Fixed(z[k]) for k in range(3)], w, tau=4.0)
    out = ens(torch.arange(5)).double().numpy()
    soft = np.exp(z / 4) / np.exp(z / 4).sum(-1, keepdims=True)  # softmax by hand
    mixture = 0.25 * soft[0] + 0.75 * soft[2]
    assert np.allclose(out, np.log(mixture), atol=1e-5)
    # the temperature semantics: softmax at t_teacher = 1 gives the mixture itself back
    assert np.allclose(torch.softmax(ens(torch.arange(5)), 1).numpy(), mixture, atol=1e-6)
    assert not any(p.requires_grad for p in ens.parameters()) and not ens.training
    with pytest.raises(ValueError):
        sub.WeightedEnsemble([Fixed(z[0])], [0.0])


def test_ensemble_accuracy_and_de_beat_a_hand_made_trap():
    sub = load()
    # 3 members, 6 samples, 2 classes. Member 0 is right on samples 0-3 (confident), member 1 on
    # 4-5 (confident), member 2 wrong everywhere but confident. Uniform weights: member 2 outvotes.
    labels = np.array([0, 0, 0, 0, 1, 1])
    right = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 2)
    wrong = right[:, ::-1]
    p0 = np.where(np.arange(6)[:, None] < 4, right, np.array([0.6, 0.4]))
    p1 = np.where(np.arange(6)[:, None] >= 4, right, np.array([0.4, 0.6]))
    probs = np.stack([p0, p1, wrong])
    assert sub.ensemble_accuracy([1, 0, 0], probs, labels) == pytest.approx(4 / 6)
    assert sub.ensemble_accuracy([0, 0, 1], probs, labels) == 0.0
    # uniform: sample 0 gets (0.9 + 0.4 + 0.1, 0.1 + 0.6 + 0.9) / 3 -> class 1, wrong; likewise all
    assert sub.ensemble_accuracy([1, 1, 1], probs, labels) == pytest.approx(0.0)
    w, acc, result = sub.de_weights(probs, labels, seed=0, popsize=5, maxiter=20)
    assert acc == 1.0 and w.sum() == pytest.approx(1.0) and w[2] < min(w[0], w[1])
    assert sub.ensemble_accuracy(w, probs, labels) == acc and result.nfev > 0
    again, _, _ = sub.de_weights(probs, labels, seed=0, popsize=5, maxiter=20)
    assert np.array_equal(w, again)  # seeded
    assert np.allclose(sub.normalise([0, 0, 0]), 1 / 3)


def test_build_ensemble_trains_three_sized_tas_on_the_fit_part_only(monkeypatch):
    sub = load()
    task, data = small_data()
    torch.manual_seed(0)
    teacher = teachers.build_teacher(task, "tiny", 4).eval()
    calls = []
    real = sub.distill_train

    def spy(model, task_, data_, budget, teacher_, **kw):
        calls.append((model, data_, teacher_, kw))
        return real(model, task_, data_, budget, teacher_, **kw)

    monkeypatch.setattr(sub, "distill_train", spy)
    seen = []
    real_probs = sub.member_probabilities
    monkeypatch.setattr(
        sub, "member_probabilities", lambda t, ds, *a, **k: seen.append(ds) or real_probs(t, ds, *a, **k)
    )
    ensemble, info = sub.build_ensemble(task, data, Budget(epochs=1, lr=1e-2, batch_size=16), teacher, False)
    fit, val = sub.split(data.dataset)
    assert len(calls) == 3
    for (ta, ta_data, ta_teacher, kw), size in zip(calls, sub.TA_SIZES):
        assert isinstance(ta, teachers.TeacherNet) and ta.head.in_features == 4 * teachers.SIZES[size]
        assert ta_teacher is teacher and kw["t_student"] == sub.TAU and kw["alpha"] == sub.ALPHA
        assert list(ta_data.dataset.indices) == list(fit.indices)  # never the validation part
        assert not any(p.requires_grad for p in ta.parameters()) and not ta.training
    assert [m for m in ensemble.members] == [c[0] for c in calls]
    assert list(seen[0].indices) == list(val.indices)  # DE scores the validation part
    assert np.allclose(ensemble.weights.numpy(), info["weights"], atol=1e-6)
    assert info["val_de"] >= info["val_uniform"] - 1e-12
    assert data.history == []  # the TAs' epochs stay out of the student's history


def test_student_loss_is_kd_on_the_mixture():
    sub = load()
    task, data = small_data(32)
    torch.manual_seed(2)
    heads = [torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(64, 10)) for _ in range(3)]
    for h in heads:
        h[1].weight.data.mul_(5)
    members = [TimeMean(h) for h in heads]
    w = np.array([0.2, 0.3, 0.5])  # one weight per TA size, as the buffer has
    ensemble = sub.WeightedEnsemble(members, w)
    torch.manual_seed(0)
    model = sub.build(task)
    for layer in (model[1].module, model[3].module):
        layer.weight.data.mul_(6)
    ((x, y),) = list(TrainingData(task, data.dataset, task.timesteps, 0).loader(32))
    with torch.no_grad():
        z_s = model(x).sum(0)
        assert float(z_s.sum()) > 0
        p_t = sum(wk * torch.softmax(h(x).mean(0) / 4, 1) for wk, h in zip(w.tolist(), heads))
        kl = (p_t * (torch.log(p_t) - torch.log_softmax(z_s / 4, 1))).sum(1).mean()
        expected = 0.5 * F.cross_entropy(z_s, y) + 0.5 * 16 * kl
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=32), ensemble=ensemble)
    assert data.history[0]["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert np.allclose(model.ta_weights.numpy(), w, atol=1e-6)


def test_single_member_equals_takd_loss():
    sub = load()
    z_t = torch.randn(6, 10) * 4
    z_s = torch.randn(6, 10)
    ens = sub.WeightedEnsemble([Fixed(z_t)], [1.0])
    from snnbench.distill import soft_kl

    one = soft_kl(z_s, ens(torch.arange(6)), 4.0, 1.0)
    assert float(one) == pytest.approx(float(soft_kl(z_s, z_t, 4.0, 4.0)), rel=1e-5)


def test_through_the_harness(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(tmp_path / "teachers"))

    def no_training(model, loader_factory, epochs, lr, on_epoch=None):  # never train a teacher in a test
        on_epoch(epochs, model)

    monkeypatch.setattr(teachers, "_fit", no_training)
    ckpt = tmp_path / "kd_ta_ensemble.pt"
    args = ["--task", "digits", "--model", str(SUBMISSION)]
    assert main(["train", *args, "--epochs", "1", "--out", str(ckpt), "--quiet"]) == 0
    state = torch.load(ckpt, weights_only=True)
    assert float(state["ta_weights"].sum()) == pytest.approx(1.0)  # DE ran and its weights were kept
    store = tmp_path / "store"
    assert (
        main(
            ["evaluate", *args, "--checkpoint", str(ckpt), "--limit", "32", "--store", str(store), "--quiet"]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == 4
