"""snnbench.checks: the figures every baseline check reports, against a direct computation."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Subset

from snnbench.checks import accuracy, accuracy_and_spikes, load_baseline, mean_sd
from snnbench.data import load_split
from snnbench.neurons import LIF
from snnbench.tasks import get_task
from snnbench.training import TrainingData
from tests.conftest import REPO


class TwoLayer(nn.Module):
    def __init__(self, task):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(64, 16)
        self.lif1 = LIF()
        self.fc2 = nn.Linear(16, task.outputs)
        self.lif2 = LIF()
        with torch.no_grad():  # strong enough weights that both layers spike
            self.fc1.weight.mul_(8.0)
            self.fc2.weight.mul_(4.0)

    def forward(self, x):
        h = self.lif1(self.fc1(x.flatten(2)))
        return self.lif2(self.fc2(h))


def test_accuracy_and_spikes_equal_a_direct_count():
    task = get_task("digits")
    data = Subset(load_split(task, "test").dataset, range(50))
    model = TwoLayer(task)
    acc, spikes = accuracy_and_spikes(model, task, data, task.timesteps, batch_size=16)
    correct = total = 0
    with torch.no_grad():
        for x, y in TrainingData(task, data, task.timesteps, 0).loader(50, shuffle=False):
            h = model.lif1(model.fc1(x.flatten(2)))
            out = model.lif2(model.fc2(h))
            total += float(h.sum() + out.sum())
            correct += int((out.mean(0).argmax(1) == y).sum())
    assert acc == correct / 50
    assert abs(spikes - total / 50) < 1e-9
    assert total > 0  # the count is not trivially zero
    assert not model.training


def test_mean_sd_and_load_baseline():
    assert mean_sd([0.5, 0.7]) == "0.6000 ± 0.1414"
    assert mean_sd([0.5], digits=1) == "0.5 ± 0.0"
    sub = load_baseline(REPO / "baselines" / "takd" / "submission.py", "takd_loaded")
    assert sub.TASKS == ("digits",) and callable(sub.train)


def test_accuracy_equals_the_accuracy_of_accuracy_and_spikes():
    task = get_task("digits")
    data = Subset(load_split(task, "test").dataset, range(50))
    model = TwoLayer(task)
    assert (
        accuracy(model, task, data, task.timesteps)
        == accuracy_and_spikes(model, task, data, task.timesteps)[0]
    )
