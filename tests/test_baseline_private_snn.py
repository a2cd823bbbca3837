"""private_snn: builds, trains through tiny budgets, and its mechanism (BN-statistics inversion,
synthetic calibration, no real data after the ANN, encryption changes the converted weights)."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, checkpoint_bytes

SUB = Path(__file__).resolve().parent.parent / "baselines" / "private_snn" / "submission.py"


@pytest.fixture
def ps(monkeypatch):
    spec = importlib.util.spec_from_file_location("private_snn_test", SUB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "INVERSION_STEPS", 5)
    monkeypatch.setattr(module, "SYNTHETIC_PER_CLASS", 2)
    monkeypatch.setattr(module, "FT_EPOCHS", 1)
    return module


def _data(count=48, seed=0):
    task = get_task("digits")
    train = load_split(task, "train").dataset
    x = torch.stack([train[i][0] for i in range(count)])
    y = torch.tensor([train[i][1] for i in range(count)])
    return task, TrainingData(task, TensorDataset(x, y), task.timesteps, seed)


def test_builds_trains_and_reloads_with_the_harness_shape(ps):
    torch.set_num_threads(1)
    task, data = _data()
    model = ps.build(task)
    calls = []
    loader = data.loader
    data.loader = lambda *a, **k: calls.append(1) or loader(*a, **k)
    trained = ps.train(model, task, data, Budget(epochs=2, lr=0.01, batch_size=16))
    assert len(calls) == 2  # real data only in the ANN's two epochs: inversion onwards is data-free
    fresh = ps.build(task)
    fresh.load_state_dict(torch.load(__import__("io").BytesIO(checkpoint_bytes(trained.state_dict()))))
    x = torch.rand(task.timesteps, 5, *task.input_shape)
    assert fresh(x).shape == (task.timesteps, 5, task.classes)
    assert fresh(torch.rand(16, 5, *task.input_shape)).shape == (16, 5, task.classes)


def test_bn_statistics_matching_pulls_batch_statistics_to_the_running_ones(ps):
    torch.set_num_threads(1)
    task, _ = _data()
    torch.manual_seed(0)
    ann = ps.make_ann(task)
    real = torch.stack([load_split(task, "train").dataset[i][0] for i in range(64)])
    with torch.no_grad():  # running statistics of real digits: reachable by images in [0, 1]
        h = ann[0](real)
        ann[1].running_mean.copy_(h.mean((0, 2, 3)))
        ann[1].running_var.copy_(h.var((0, 2, 3), unbiased=False))
        ann[4].weight.mul_(0.0)  # only the first BN's statistics drive the inversion here
    ann.eval()

    def gap(images):  # independent: conv by hand, statistics by numpy
        h = torch.nn.functional.conv2d(images, ann[0].weight, padding=1).detach().numpy()
        mean, var = h.mean((0, 2, 3)), h.var((0, 2, 3))
        return np.linalg.norm(mean - ann[1].running_mean.numpy()) + np.linalg.norm(
            var - ann[1].running_var.numpy()
        )

    without, _ = ps.invert_bn(ann, (1, 8, 8), 10, per_class=3, steps=60, bn_weight=0.0, seed=1)
    matched, labels = ps.invert_bn(ann, (1, 8, 8), 10, per_class=3, steps=60, bn_weight=5.0, seed=1)
    assert gap(matched) < 0.5 * gap(without)
    assert labels.tolist() == sorted(labels.tolist()) and len(labels) == 30
    assert matched.min() >= 0 and matched.max() <= 1


def test_synthetic_calibration_thresholds_are_percentiles_of_synthetic_activations(ps):
    task, _ = _data()
    torch.manual_seed(0)
    ann = ps.make_ann(task).eval()
    images = torch.rand(20, 1, 8, 8)
    snn = ps.convert_synthetic(ann, images)
    from snnbench.conversion import fold_bn

    folded = fold_bn(ann)
    h1 = torch.relu(folded[0](images)).detach().numpy().ravel()
    lam1 = np.percentile(h1, ps.PERCENTILE)
    # first layer weights are the folded ones divided by lambda_1 (weight normalisation)
    conv = snn.net[0].module if hasattr(snn.net[0], "module") else snn.net[0]
    np.testing.assert_allclose(
        conv.weight.detach().numpy(), folded[0].weight.detach().numpy() / lam1, rtol=1e-5
    )


def test_encryption_moves_weights_off_the_scaled_ann_weights(ps):
    torch.set_num_threads(1)
    task, _ = _data()
    torch.manual_seed(0)
    ann = ps.make_ann(task).eval()
    images, labels = torch.rand(20, 1, 8, 8), torch.arange(10).repeat(2)
    snn = ps.convert_synthetic(ann, images)
    before = copy.deepcopy(snn.state_dict())
    ps.encrypt(snn, images, labels, epochs=2, steps=4, seed=0)
    changed = [
        k for k, v in snn.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])
    ]
    assert any("weight" in k for k in changed)


def test_end_to_end_through_the_harness(ps, tmp_path, monkeypatch):
    """snnbench train then evaluate on a tiny budget and --limit, into a scratch store."""
    torch.set_num_threads(1)
    from snnbench import training
    from snnbench.evaluate import evaluate
    from snnbench.store import Store
    from snnbench.submission import resolve

    task = dataclasses.replace(get_task("digits"), train={"epochs": 1, "lr": 0.01, "batch_size": 256})
    ref = resolve(SUB)
    # train in-process with the tiny knobs (monkeypatched module attributes do not reach a fresh import)
    monkeypatch.setattr(training, "build_seeded", lambda *a, **k: (ps, ps.build(task)))
    result = training.train(task, ref, out=tmp_path / "p.pt", progress=False)
    out = evaluate(
        task, ref, Store(tmp_path / "s"), checkpoint=str(result.checkpoint), limit=16, progress=False
    )
    assert out.run["status"] == "ok", out.run["error"]
    assert any(r.metric == "accuracy" for r in out.rows)
