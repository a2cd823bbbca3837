"""time_decode_ib: the decoder reads timing, the KL term is the Bernoulli KL, training runs."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pandas as pd
import torch

from snnbench.cli import main
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

REPO = Path(__file__).resolve().parent.parent
SUB = REPO / "baselines" / "time_decode_ib" / "submission.py"
_spec = importlib.util.spec_from_file_location("time_decode_sub", SUB)
td = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(td)


def test_kl_equals_the_bernoulli_formula():
    raster = torch.zeros(2, 4, 3)
    raster[0, :2, 0] = 1.0  # neuron 0 fires in half the samples at step 0
    raster[1, :, 1] = 1.0  # neuron 1 fires in every sample at step 1
    r = 0.1
    q = raster.mean(1).clamp(1e-6, 1 - 1e-6)
    by_hand = []
    for qq in q.flatten().tolist():
        by_hand.append(qq * math.log(qq / r) + (1 - qq) * math.log((1 - qq) / (1 - r)))
    assert abs(float(td.kl_bernoulli(raster, r)) - sum(by_hand) / len(by_hand)) < 1e-6
    assert float(td.kl_bernoulli(torch.ones(3, 5, 2), 0.5)) > 0
    # KL is zero exactly when every neuron fires at rate r
    at_r = torch.zeros(1, 10, 1)
    at_r[0, :1] = 1.0
    assert abs(float(td.kl_bernoulli(at_r, 0.1))) < 1e-5


def test_decoder_reads_spike_timing_not_only_counts():
    task = dataclasses.replace(get_task("digits-dvs"), timesteps=4)
    torch.manual_seed(0)
    model = td.build(task)
    early = torch.zeros(4, 1, td.N_ENC)
    late = torch.zeros(4, 1, td.N_ENC)
    early[0, 0, :5] = 1.0
    late[3, 0, :5] = 1.0
    assert torch.equal(early.sum(0), late.sum(0))  # same spike counts
    assert not torch.allclose(model.decode(early), model.decode(late))  # different logits


def test_builds_trains_and_shapes(tmp_path):
    from snnbench.data import load_split

    task = get_task("digits-dvs")
    model = td.build(task)
    assert model(torch.rand(task.timesteps, 3, 2, 32, 32)).shape == (3, task.outputs)
    small = task
    split = load_split(task, "train")
    subset = torch.utils.data.Subset(split.dataset, range(32))
    model = td.build(task)
    data = TrainingData(task, subset, task.timesteps, 0)
    before = model.encoder.net[2].module.weight.detach().clone()
    td.train(model, small, data, Budget(epochs=1, batch_size=16))
    assert len(data.history) == 1 and not torch.equal(before, model.encoder.net[2].module.weight)
    assert 0.0 <= data.history[0]["firing"] <= 1.0
    lin = td.fit_count_decoder(model, data, small.outputs, epochs=1)
    assert lin.weight.shape == (small.outputs, td.N_ENC)


def test_evaluates_through_the_harness(tmp_path):
    assert main(["evaluate", "--task", "digits-dvs", "--model", str(SUB), "--quiet", "--limit", "16"]) == 0
    runs = pd.read_parquet(tmp_path / "store" / "runs")
    assert runs.iloc[0].status == "ok"
