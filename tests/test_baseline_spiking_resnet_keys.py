"""spiking_resnet_keys: the S-ResNet of Vicente-Sola et al. 2022 with its study's knobs."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from snnbench.cli import main
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "spiking_resnet_keys" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("spiking_resnet_keys_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_lif(current: torch.Tensor, leak: float = 0.8744) -> torch.Tensor:
    """The official code's neuron: mem = leak * mem + I; spike if mem > 1 (>= here); mem -= spike."""
    v = torch.zeros_like(current[0])
    out = []
    for t in range(current.shape[0]):
        v = leak * v + current[t]
        s = (v >= 1.0).float()
        v = v - s
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("task_id", ["digits", "digits-dvs"])
def test_recommended_network_builds_and_returns_logits_per_step(task_id):
    sub = load()
    task = get_task(task_id)
    torch.manual_seed(0)
    model = sub.build(task)
    assert model.config == sub.RECOMMENDED
    out = model(torch.rand(task.timesteps, 2, *task.input_shape))
    assert out.shape == (task.timesteps, 2, task.outputs)
    assert sub.REPORTED["cifar10 accuracy"] == 0.941 and "vicentesola2022keys" in sub.CITATION


def test_every_grid_cell_builds_and_bad_knobs_fail():
    sub = load()
    task = get_task("digits")
    x = torch.rand(2, 2, *task.input_shape)
    for values in itertools.product(*sub.KNOBS.values()):
        model = sub.build(task, **dict(zip(sub.KNOBS, values)), depth=2, width=4)
        assert model(x).shape == (2, 2, task.outputs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in sub.build(task, norm="none").modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in sub.build(task, depth=2).modules()) == 1 + 3 * 2 * 2 + 2
    with pytest.raises(ValueError):
        sub.build(task, norm="layer")
    with pytest.raises(ValueError):
        sub.build(task, colour="red")


def test_neuron_is_the_official_leaky_neuron_with_subtract_reset():
    sub = load()
    current = torch.rand(12, 3, 5) * 0.6
    assert torch.equal(sub.make_neuron("lif")(current), official_lif(current))
    plif = sub.make_neuron("plif")
    assert torch.equal(plif(current), official_lif(current, leak=1 - float(torch.sigmoid(plif.w.detach()))))
    assert abs((1 - float(torch.sigmoid(plif.w.detach()))) - 0.8744) < 1e-6


def test_block_adds_the_shortcut_to_the_second_neurons_spikes():
    sub = load()
    torch.manual_seed(0)
    block = sub.Block(3, 3, 1, "none", "lif")
    x = (torch.rand(6, 2, 3, 5, 5) < 0.5).float()
    conv1, conv2 = block.conv1.module, block.conv2.module
    expected = (
        official_lif(
            torch.stack(
                [
                    nn.functional.conv2d(
                        official_lif(torch.stack([conv1(x[t]) for t in range(6)]))[t], conv2.weight, padding=1
                    )
                    for t in range(6)
                ]
            )
        )
        + x
    )
    assert torch.allclose(block(x), expected)
    with torch.no_grad():
        conv2.weight.zero_()  # a silent branch: the block passes its input through exactly
    assert torch.equal(block(x), x)


def test_rate_encoding_draws_bernoulli_of_the_clamped_input():
    sub = load()
    x = torch.tensor([0.0, 0.25, 0.75, 1.5]).expand(20000, 4)
    torch.manual_seed(0)
    spikes = sub.RateEncode()(x)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(spikes.mean(0), torch.tensor([0.0, 0.25, 0.75, 1.0]), atol=0.02)


def test_train_runs_for_the_budget_on_a_tiny_subset():
    sub = load()
    task = get_task("digits")
    data = TrainingData(task, TensorDataset(torch.rand(16, *task.input_shape), torch.arange(16) % 10), 4, 0)
    torch.manual_seed(0)
    model = sub.build(task)
    before = model.fc.module.weight.detach().clone()
    sub.train(model, task, data, Budget(epochs=2, lr=1e-2, batch_size=8))
    assert [h["epoch"] for h in data.history] == [1, 2] and not torch.equal(before, model.fc.module.weight)


def test_evaluates_through_the_harness(tmp_path):
    sub = load()
    torch.manual_seed(0)
    ckpt = tmp_path / "keys.pt"
    torch.save(sub.build(get_task("digits")).state_dict(), ckpt)
    store = tmp_path / "store"
    assert (
        main(
            [
                "evaluate",
                "--task",
                "digits",
                "--model",
                str(SUBMISSION),
                "--checkpoint",
                str(ckpt),
                "--limit",
                "16",
                "--store",
                str(store),
                "--quiet",
            ]
        )
        == 0
    )
    assert pd.read_parquet(store / "runs").iloc[0].status == "ok"
