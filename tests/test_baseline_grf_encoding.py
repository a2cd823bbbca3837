"""grf_encoding: shapes, the in-model GRF code, a tiny training run, the harness end to end."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.encoding import GaussianReceptiveFields, Latency
from snnbench.neurons import LIF
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

PATH = Path(__file__).resolve().parent.parent / "baselines" / "grf_encoding" / "submission.py"
spec = importlib.util.spec_from_file_location("grf_encoding_submission", PATH)
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)


def test_builds_with_the_published_knobs_and_returns_per_step_logits():
    torch.manual_seed(0)
    model = sub.build(get_task("digits"))
    assert model.encoder == GaussianReceptiveFields(fields=8, beta=1.5, low=0.0, high=1.0, r_min=0.1)
    assert model.net[0].module.in_features == 64 * 8
    assert isinstance(model.net[1], LIF)
    for t in (4, 8):
        assert model(torch.rand(t, 3, 1, 8, 8)).shape == (t, 3, 10)
    assert sub.CITATION


def test_model_codes_step_zero_with_the_grf_encoder_by_hand():
    torch.manual_seed(1)
    model = sub.build(get_task("digits"))
    x = torch.rand(1, 2, 1, 8, 8).expand(8, 2, 1, 8, 8)
    code = model.encode(x)
    # independent: centres (2i-3)/12, sigma 1/9, latency round((1-r)*7), silent below 0.1
    v = x[0].reshape(2, 64).double()
    mu = torch.tensor([(2 * i - 3) / 12 for i in range(1, 9)], dtype=torch.float64)
    r = torch.exp(-((v.unsqueeze(-1) - mu) ** 2) / (2 * (1 / 9) ** 2))
    want = torch.zeros(8, 2, 64, 8, dtype=torch.float64)
    for b in range(2):
        for f in range(64):
            for i in range(8):
                if r[b, f, i] >= 0.1:
                    want[round(float((1 - r[b, f, i]) * 7)), b, f, i] = 1
    torch.testing.assert_close(code.double(), want.reshape(8, 2, 512))
    assert math.isclose(float(code.sum(0).max()), 1.0)


def test_latency_control_uses_one_neuron_per_feature():
    model = sub.build(get_task("digits"), encoding="latency")
    assert isinstance(model.encoder, Latency) and model.net[0].module.in_features == 64
    x = torch.rand(1, 3, 1, 8, 8).expand(4, 3, 1, 8, 8)
    torch.testing.assert_close(model.encode(x), Latency()(x[0].reshape(3, 64), 4))


def test_trains_a_few_steps():
    task = get_task("digits")
    torch.manual_seed(2)
    model = sub.build(task)
    before = [p.detach().clone() for p in model.parameters()]
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(48)), task.timesteps, 0)
    sub.train(model, task, data, Budget(epochs=1, lr=1e-3, batch_size=16))
    assert len(data.history) == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_evaluates_through_the_harness(tmp_path):
    assert main(["evaluate", "--task", "digits", "--model", str(PATH), "--quiet", "--limit", "32"]) == 0
    import pandas as pd

    run = pd.read_parquet(tmp_path / "store" / "runs").iloc[0]
    assert run.status == "ok" and run.method == "grf_encoding"
