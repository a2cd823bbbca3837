"""kd_modal_gram: two-branch teacher -> two-branch spiking student, CE + alpha KD + beta modality Gram."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "kd_modal_gram" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("kd_modal_gram_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_data(n=32):
    task = get_task("digits-dvs")
    ds = Subset(load_split(task, "train").dataset, range(n))
    return task, TrainingData(task, ds, task.timesteps, 0)


def cos(a, b):
    na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
    return 0.0 if na == 0 or nb == 0 else sum(x * y for x, y in zip(a, b)) / (na * nb)


def test_derived_image_is_pooled_event_count_over_its_maximum():
    sub = load()
    x = torch.zeros(3, 2, 2, 8, 8)  # T = 3, B = 2, 2 polarities, 8x8 sensor -> 2x2 image
    x[0, 0, 1, 0, 0] = 4.0  # sample 0: 4 ON events in the top-left 4x4 block...
    x[2, 0, 0, 5, 6] = 2.0  # ...and 2 OFF events in the bottom-right block
    img = sub.derived_image(x)
    assert img.shape == (3, 2, 1, 2, 2)
    # hand: block sums 4 and 2 over 16 pixels -> 0.25, 0.125; divided by the max 0.25
    expected = torch.tensor([[1.0, 0.0], [0.0, 0.5]])
    for t in range(3):  # direct input: the same image at every step
        assert torch.allclose(img[t, 0, 0], expected)
    assert torch.equal(img[:, 1], torch.zeros(3, 1, 2, 2))  # an empty recording stays 0, no NaN


def test_student_has_two_spiking_branches_and_embeddings_are_rates():
    sub = load()
    task = get_task("digits-dvs")
    model = sub.build(task)
    torch.manual_seed(0)
    x = (torch.rand(task.timesteps, 3, *task.input_shape) < 0.2).float() * 3
    img = torch.rand(task.timesteps, 3, 1, 8, 8)
    out, e_img, e_dvs = model.forward_pair(img, x)
    assert out.shape == (task.timesteps, 3, task.outputs) and e_img.shape == e_dvs.shape == (3, sub.EMBED)
    assert torch.equal(e_img, model.image_branch(img).mean(0))
    assert torch.equal(e_dvs, model.event_branch(x).mean(0))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    # the harness path derives the image from the same input
    assert torch.equal(model(x), model.forward_pair(sub.derived_image(x), x)[0])
    teacher = sub.build_pair_teacher(task, task.timesteps)
    z, t_img, t_dvs = teacher.eval().forward_pair(img, x)
    assert z.shape == (3, task.outputs) and t_img.shape == (3, 4 * 8) and t_dvs.shape == (3, 4 * 8)
    assert torch.equal(t_img, teacher.image_net.features(img)) and torch.equal(
        t_dvs, teacher.event_net.features(x)
    )
    assert torch.equal(z, teacher.fused(torch.cat([t_img, t_dvs], 1)))
    assert "liu2021multimodality" in sub.CITATION and sub.TASKS == ("digits-dvs",)


def test_paired_data_keeps_pairs_and_encodes_both_modalities():
    sub = load()
    n, steps = 10, 3
    images = np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 8, 8), np.float32)
    frames = np.arange(n, dtype=np.uint8)[:, None, None, None, None] * np.ones((1, steps, 2, 4, 4), np.uint8)
    frames[:, 1] += 100  # time bin 1 differs from the others
    pairs = sub.PairedData(images, frames, np.arange(n), steps, seed=3)
    seen = []
    for img, dvs, y in pairs.loader(4):
        assert img.shape[:2] == (steps, len(y)) and dvs.shape == (steps, len(y), 2, 4, 4)
        for k, label in enumerate(y.tolist()):
            assert torch.all(img[:, k] == label)  # image of sample `label` at every step
            assert torch.all(dvs[0, k] == label) and torch.all(dvs[1, k] == label + 100)
        seen += y.tolist()
    assert sorted(seen) == list(range(n)) and seen != list(range(n))  # shuffled, each once
    again = sub.PairedData(images, frames, np.arange(n), steps, seed=3)
    assert [y.tolist() for *_, y in again.loader(4)] == [
        y.tolist() for *_, y in sub.PairedData(images, frames, np.arange(n), steps, seed=3).loader(4)
    ]
    with pytest.raises(ValueError, match="time bins"):
        sub.PairedData(images, frames, np.arange(n), steps + 1)


def test_student_loss_is_ce_plus_alpha_kd_plus_beta_gram():
    sub = load()
    task, data = small_data()
    torch.manual_seed(1)
    teacher = sub.build_pair_teacher(task, task.timesteps).eval()
    torch.manual_seed(0)
    model = sub.build(task)
    for layer in (model.image_branch[1].module, model.event_branch[1].module, model.head[0].module):
        layer.weight.data.mul_(4)
    pairs = sub.HarnessPairs(data)
    ((img, dvs, y),) = list(sub.HarnessPairs(TrainingData(task, data.dataset, task.timesteps, 0)).loader(32))
    with torch.no_grad():
        out, s_img, s_dvs = model.forward_pair(img, dvs)
        z_t, t_img, t_dvs = teacher.forward_pair(img, dvs)
        z_s = out.sum(0)
        assert float(z_s.sum()) > 0 and float(s_img.sum()) > 0 and float(s_dvs.sum()) > 0
        p_t = torch.softmax(z_t / sub.TAU, 1)
        kl = (p_t * (torch.log(p_t) - torch.log_softmax(z_s / sub.TAU, 1))).sum(1).mean()
        # M = 2: G = [[1, c], [c, 1]] for nonzero embeddings, so ||G_S - G_T||_F^2 = 2 (c_S - c_T)^2
        assert all(float(e[b].sum()) > 0 for e in (s_img, s_dvs, t_img, t_dvs) for b in range(32))
        gram = 0.0
        for b in range(32):
            d = cos(s_img[b].tolist(), s_dvs[b].tolist()) - cos(t_img[b].tolist(), t_dvs[b].tolist())
            gram += 2 * d * d
        gram /= 32
        expected = F.cross_entropy(z_s, y) + sub.ALPHA * sub.TAU**2 * kl + sub.BETA * gram
    sub.distill_pairs(model, teacher, pairs, Budget(epochs=1, lr=1e-2, batch_size=32))
    entry = data.history[0]
    assert entry["gram"] == pytest.approx(gram, rel=1e-5)
    assert entry["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert entry["kd"] == pytest.approx(sub.TAU**2 * float(kl), rel=1e-4)


def test_beta_zero_is_kd_only_and_no_teacher_is_ce_only():
    sub = load()
    task, data = small_data()
    calls = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = sub.build_pair_teacher(task, task.timesteps).eval()

        def forward_pair(self, img, dvs):
            calls.append(torch.is_grad_enabled())
            return self.inner.forward_pair(img, dvs)

    torch.manual_seed(0)
    model = sub.build(task)
    sub.distill_pairs(
        model, Spy(), sub.HarnessPairs(data), Budget(epochs=1, lr=1e-2, batch_size=16), beta=0.0
    )
    assert calls == [False, False] and data.history[-1]["gram"] == 0.0
    assert data.history[-1]["kd"] > 0
    calls.clear()
    sub.distill_pairs(model, None, sub.HarnessPairs(data), Budget(epochs=1, lr=1e-2, batch_size=16))
    h = data.history[-1]
    assert calls == [] and h["kd"] == h["gram"] == 0.0 and h["loss"] == pytest.approx(h["ce"])


def test_gram_distance_matches_hand_computation():
    sub = load()
    task, data = small_data(8)
    torch.manual_seed(0)
    model = sub.build(task)
    for layer in (model.image_branch[1].module, model.event_branch[1].module):
        layer.weight.data.mul_(4)
    teacher = sub.build_pair_teacher(task, task.timesteps).eval()
    pairs = sub.HarnessPairs(data)
    got = sub.gram_distance(model, teacher, pairs, batch_size=3)
    ((img, dvs, _),) = list(
        sub.HarnessPairs(TrainingData(task, data.dataset, task.timesteps, 0)).loader(8, False)
    )
    with torch.no_grad():
        _, s_img, s_dvs = model.forward_pair(img, dvs)
        _, t_img, t_dvs = teacher.forward_pair(img, dvs)
    dist = [
        math.sqrt(2)
        * abs(cos(s_img[b].tolist(), s_dvs[b].tolist()) - cos(t_img[b].tolist(), t_dvs[b].tolist()))
        for b in range(8)
    ]
    assert all(float(s_img[b].sum()) > 0 and float(s_dvs[b].sum()) > 0 for b in range(8))
    assert got == pytest.approx(sum(dist) / 8, rel=1e-5)


def test_train_fits_a_frozen_teacher_on_the_harness_data(monkeypatch):
    sub = load()
    task, data = small_data()
    made = []
    real = sub.train_teacher

    def spy(task_, pairs, budget, seed, **kw):
        teacher = real(task_, pairs, budget, seed, **kw)
        made.append((pairs, seed, teacher))
        return teacher

    monkeypatch.setattr(sub, "train_teacher", spy)
    torch.manual_seed(0)
    model = sub.build(task)
    state = torch.random.get_rng_state()
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=16, seed=2))
    ((pairs, seed, teacher),) = made
    assert seed == 2 + sub.TEACHER_SEED_OFFSET and pairs.data.dataset is data.dataset
    assert pairs.data is not data and [h["epoch"] for h in data.history] == [1]  # teacher's epochs not logged
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert torch.equal(torch.random.get_rng_state(), state)  # the teacher ran in a forked RNG


def test_through_the_harness(tmp_path, monkeypatch):
    from snnbench import training

    real = training.load_split

    def few(task, split, *a, **kw):  # never train for real in a test: 64 training samples
        loaded = real(task, split, *a, **kw)
        return dataclasses.replace(loaded, dataset=Subset(loaded.dataset, range(64)))

    monkeypatch.setattr(training, "load_split", few)
    ckpt = tmp_path / "kd_modal_gram.pt"
    args = ["--task", "digits-dvs", "--model", str(SUBMISSION)]
    assert main(["train", *args, "--epochs", "1", "--out", str(ckpt), "--quiet"]) == 0
    store = tmp_path / "store"
    assert (
        main(
            ["evaluate", *args, "--checkpoint", str(ckpt), "--limit", "32", "--store", str(store), "--quiet"]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == 10
    record = training.read_record(ckpt)
    assert record["recipe"] == "kd_modal_gram.train" and record["history"][0]["gram"] > 0
    activity = record["training_activity"]
    assert activity["samples"] == 64 and activity["forward_passes"] == 1  # the student's pass, one batch
    ((part,),) = [activity["parts"]]
    assert part["name"] == "teacher" and part["kind"] == "ann" and part["samples"] == 64
    metrics = pd.read_parquet(store / "metrics")
    assert (metrics.metric == "training_energy_j").any()
