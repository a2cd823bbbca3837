"""fisher_information (PROTOCOLS.md section 3): the registry's parent-side family, checked against a
direct per-sample computation on a tiny network, and end to end through the CLI."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.metrics import fisher
from snnbench.sandbox import _Child
from snnbench.submission import resolve
from snnbench.tasks import get_task
from tests.conftest import PLAIN_TORCH


class InProcessBox:
    """The sandbox's child object without the process boundary: the same commands, in this process."""

    def __init__(self, child: _Child) -> None:
        self.child = child

    def call(self, command, *payload):
        return getattr(self.child, command)(*payload)


def test_fisher_per_timestep_equals_a_direct_computation(write_submission):
    task = get_task("digits")
    child = _Child(resolve(write_submission(PLAIN_TORCH)), task, 0, None, 4)
    child.build(False)
    dataset = load_split(task, "test").dataset
    rows = fisher.collect(InProcessBox(child), task, torch.utils.data.Subset(dataset, range(6)), 4, 0)
    assert [r.timestep for r in rows] == [1, 2, 3, 4] and all(r.n == 6 for r in rows)

    model = child.model
    expected = torch.zeros(6, 4, dtype=torch.float64)
    for i in range(6):
        x, y = dataset[i]
        x = torch.as_tensor(x).float().unsqueeze(0).expand(4, 1, *task.input_shape)  # direct encoding
        for t in range(1, 5):
            model.zero_grad()
            logp = torch.log_softmax(model(x)[:t].mean(0), dim=-1)[0, int(y)]
            logp.backward()
            expected[i, t - 1] = sum(float(p.grad.double().pow(2).sum()) for p in model.parameters())
    for row, column in zip(rows, expected.T):
        assert row.value == pytest.approx(float(column.mean()), rel=1e-5)
    # this network outputs the same logits at every step, so every readout carries the same information
    assert rows[0].value == pytest.approx(rows[-1].value, rel=1e-5)


def test_fisher_rows_are_stored_when_asked(write_submission, tmp_path):
    sub = write_submission(PLAIN_TORCH)
    argv = ["evaluate", "--task", "digits", "--model", str(sub), "--quiet", "--limit", "8"]
    assert main([*argv, "--metrics", "fisher_information", "--store", str(tmp_path / "s")]) == 0
    metrics = pd.read_parquet(tmp_path / "s" / "metrics")
    fi = metrics[metrics.metric == "fisher_information"].sort_values("timestep")
    assert list(fi.timestep) == [1, 2, 3, 4] and (fi.value > 0).all() and (fi.n == 8).all()
    runs = pd.read_parquet(tmp_path / "s" / "runs")
    assert "fisher_information" in list(runs.iloc[0].metrics)
