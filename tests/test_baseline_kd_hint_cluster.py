"""kd_hint_cluster: k-means over teacher-layer descriptors picks the hints; spiking student, L2 hints + KD."""

from __future__ import annotations

import copy
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
from snnbench.distill import distill_train, spike_count
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "kd_hint_cluster" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("kd_hint_cluster_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_data(n=32):
    task = get_task("digits")
    return task, TrainingData(task, Subset(load_split(task, "train").dataset, range(n)), task.timesteps, 0)


def tiny_teacher(task, seed=0):
    torch.manual_seed(seed)
    t = teachers.build_teacher(task, "tiny", task.timesteps)
    for m in t.modules():  # non-trivial BN statistics, so bn != conv
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return t.eval()


def test_linear_cka_against_hsic_with_centering_matrix():
    sub = load()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 7, generator=g), torch.randn(20, 3, 2, generator=g)
    X, Y = x.double().numpy(), y.reshape(20, -1).double().numpy()
    n = X.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    expected = np.trace(K @ L) / np.sqrt(np.trace(K @ K) * np.trace(L @ L))
    assert sub.linear_cka(x, y) == pytest.approx(expected, rel=1e-10)
    q, _ = torch.linalg.qr(torch.randn(7, 7, generator=g))
    assert sub.linear_cka(x, 3.0 * x @ q + 5.0) == pytest.approx(1.0, abs=1e-10)  # invariances
    assert sub.linear_cka(x, torch.ones(20, 4)) == 0.0


def test_pick_centres_takes_the_member_nearest_each_centre():
    sub = load()
    d = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.5], [20.0]])
    # clusters {0, 0.1, 0.2} (centre 0.1), {10, 10.1, 10.5} (centre 10.2), {20}
    assert sub.pick_centres(d, 3) == [1, 4, 6]
    assert sub.pick_centres(d[::-1].copy(), 3) == [0, 2, 5]  # reversed rows: same layers, new indices
    with pytest.raises(ValueError):
        sub.pick_centres(d, 8)


def test_teacher_activations_and_descriptors_by_hand():
    sub = load()
    task, data = small_data()
    t = tiny_teacher(task)
    x = sub.probe_batch(task, data)
    assert x.shape[1] == 32 and data.history == []
    acts = sub.teacher_activations(t, x)
    assert list(acts) == [*sub.CANDIDATES, "logits"]
    b = t.body
    h = x.movedim(0, 1).flatten(1, 2)
    with torch.no_grad():
        conv1 = F.conv2d(h, b[0].weight, padding=1)
        bn1 = (conv1 - b[1].running_mean[:, None, None]) / torch.sqrt(
            b[1].running_var[:, None, None] + b[1].eps
        ) * b[1].weight[:, None, None] + b[1].bias[:, None, None]
        pool1 = F.max_pool2d(bn1.clamp_min(0), 2)
        torch.testing.assert_close(acts["conv1"], conv1)
        torch.testing.assert_close(acts["bn1"], bn1)
        torch.testing.assert_close(acts["pool1"], pool1)
        torch.testing.assert_close(acts["logits"], t(x))
    names, d = sub.layer_descriptors(acts, x)
    assert names == list(sub.CANDIDATES) and d.shape == (10, 10 + 2 + 3)
    raw = [sub.linear_cka(acts["relu1"], acts[m]) for m in names]
    col = np.array(raw)
    # column "CKA with relu1" z-scored, and the zero-fraction column
    np.testing.assert_allclose(d[:, 2], (col - col.mean()) / col.std(), atol=1e-9)
    zeros = np.array([float((acts[m] == 0).float().mean()) for m in names])
    np.testing.assert_allclose(d[:, -1], (zeros - zeros.mean()) / zeros.std(), atol=1e-6)


def test_selection_is_deterministic_and_depth_ordered():
    sub = load()
    task, data = small_data(64)
    t = tiny_teacher(task)
    x = sub.probe_batch(task, data)
    first = sub.select_hints(t, x, 3)
    again = sub.select_hints(copy.deepcopy(t), sub.probe_batch(task, data), 3)
    assert first == again and len(set(first)) == 3
    order = [list(sub.CANDIDATES).index(h) for h in first]
    assert order == sorted(order)
    # the picks are exactly the nearest-to-centre rows of an independent KMeans on the descriptors
    from sklearn.cluster import KMeans

    names, d = sub.layer_descriptors(sub.teacher_activations(t, x), x)
    km = KMeans(n_clusters=3, random_state=sub.KMEANS_SEED, n_init=10).fit(d)
    expected = sorted(
        min(np.flatnonzero(km.labels_ == c), key=lambda i: np.linalg.norm(d[i] - km.cluster_centers_[c]))
        for c in range(3)
    )
    assert first == tuple(names[i] for i in expected)


def manual_lif(x, tau=2.0):
    v, out = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        v = v + (x[t] - v) / tau
        s = (v >= 1.0).to(x.dtype)
        v = v * (1 - s)
        out.append(s)
    return torch.stack(out)


def test_training_loss_is_kd_plus_scaled_l2_hints(monkeypatch):
    sub = load()
    task, data = small_data()
    t = tiny_teacher(task)
    torch.manual_seed(0)
    model = sub.build(task)
    for i in (0, 4, 9, 11):
        model[i].module.weight.data.mul_(4)  # let every layer spike
    hints = ("pool1", "relu2", "relu3")  # conv -> conv with 2x2 pooling, conv -> conv, flat -> flat
    seen = {}
    real = sub.distill_train

    def spy(wrapped, *args, **kw):
        seen["wrapped"] = copy.deepcopy(wrapped)
        return real(wrapped, *args, **kw)

    monkeypatch.setattr(sub, "distill_train", spy)
    ((x, y),) = list(TrainingData(task, data.dataset, task.timesteps, 0).loader(32))
    sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=32), teacher=t, hints=hints)
    w = seen["wrapped"]
    m, regs = w.student, w.regressors
    with torch.no_grad():
        tt, bb = x.shape[:2]

        def fold(layer, z):
            o = layer(z.reshape(tt * bb, *z.shape[2:]))
            return o.reshape(tt, bb, *o.shape[1:])

        m.train()
        s0 = manual_lif(fold(m[1].module, fold(m[0].module, x)))
        s1 = manual_lif(fold(m[5].module, fold(m[4].module, fold(m[3].module, s0))))
        z = fold(m[9].module, fold(m[8].module, fold(m[7].module, s1)))
        s2 = manual_lif(z)
        out = manual_lif(fold(m[11].module, s2))
        assert all(float(s.sum()) > 0 for s in (s0, s1, s2, out))
        acts = sub.teacher_activations(t, x)
        r0, r1, r2 = s0.mean(0), s1.mean(0), s2.mean(0)
        c0 = regs[0].map
        p0 = torch.einsum("oc,bchw->bohw", c0.weight[:, :, 0, 0], r0) + c0.bias[:, None, None]
        p0 = p0.reshape(32, -1, 4, 2, 4, 2).mean((3, 5))  # 8x8 -> 4x4 by 2x2 means
        c1 = regs[1].map
        p1 = torch.einsum("oc,bchw->bohw", c1.weight[:, :, 0, 0], r1) + c1.bias[:, None, None]
        lin = regs[2].map[1]
        p2 = r2 @ lin.weight.t() + lin.bias
        hint = 0.0
        for p, h in zip((p0, p1, p2), hints):
            rms = acts[h].pow(2).mean().sqrt()  # the probe is the same 32 samples
            hint += ((p - acts[h] / rms) ** 2).mean()
        z_s, z_t = out.sum(0), t(x)
        p_t = torch.softmax(z_t / 4, 1)
        kl = (p_t * (torch.log(p_t) - torch.log_softmax(z_s / 4, 1))).sum(1).mean()
        expected = 0.5 * F.cross_entropy(z_s, y) + 0.5 * 16 * kl + sub.HINT_WEIGHT * hint
    assert data.history[0]["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_hint_weight_zero_is_output_kd_and_regressors_stay_out():
    sub = load()
    task, _ = small_data()
    t = tiny_teacher(task)
    budget = Budget(epochs=2, lr=1e-2, batch_size=16)
    states = {}
    for name in ("kd", "zero", "hints"):
        torch.manual_seed(0)
        model = sub.build(task)
        keys = set(model.state_dict())
        _, data = small_data()
        if name == "kd":
            distill_train(
                model, task, data, budget, t, alpha=sub.ALPHA, t_student=sub.TAU, student_logits=spike_count
            )
        else:
            out = sub.train(model, task, data, budget, teacher=t, hint_weight=0.0 if name == "zero" else 1.0)
            assert out is model and not model.training and set(model.state_dict()) == keys
            assert all(not n._forward_hooks for n in sub.taps(model))
        states[name] = model.state_dict()
    for k in states["kd"]:
        torch.testing.assert_close(states["zero"][k], states["kd"][k])
    assert any(not torch.equal(states["hints"][k], states["kd"][k]) for k in states["kd"])


def test_run_does_not_depend_on_the_global_rng_at_train_entry():
    sub = load()
    task, _ = small_data()
    t = tiny_teacher(task)
    states = []
    for noise in (0, 1):
        torch.manual_seed(0)
        model = sub.build(task)
        torch.manual_seed(100 + noise)  # e.g. a teacher-cache hit draws from the global RNG, a miss does not
        _, data = small_data()
        sub.train(model, task, data, Budget(epochs=1, lr=1e-2, batch_size=16, seed=3), teacher=t)
        states.append(model.state_dict())
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k], rtol=0, atol=0)


def test_student_has_one_tap_per_hint_and_middle_control():
    sub = load()
    task, data = small_data()
    model = sub.build(task)
    assert len(sub.taps(model)) == sub.K_HINTS == 3
    assert sub.MIDDLE_HINT in sub.CANDIDATES and sub.MIDDLE_TAP == 1
    out = model(torch.rand(task.timesteps, 3, *task.input_shape))
    assert out.shape == (task.timesteps, 3, task.outputs)
    with pytest.raises(ValueError):
        sub.train(
            model, task, data, Budget(epochs=1), teacher=tiny_teacher(task), hints=("relu2",), tap_ids=(0, 1)
        )
    assert "keser2023pursuhint" in sub.CITATION and sub.TASKS == ("digits",)


def test_through_the_harness(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(tmp_path / "teachers"))

    def no_training(model, loader_factory, epochs, lr, on_epoch=None):  # never train a teacher in a test
        on_epoch(epochs, model)

    monkeypatch.setattr(teachers, "_fit", no_training)
    ckpt = tmp_path / "kd_hint_cluster.pt"
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
