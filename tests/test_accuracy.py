"""Accuracy scorers checked against scikit-learn and hand counts."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import accuracy_score, top_k_accuracy_score

from snnbench.metrics.accuracy import accuracy_rows, decision_timestep_row, stack_outputs


def by_key(rows):
    return {(r.metric, r.timestep): r for r in rows}


def test_top1_top5_and_anytime_match_sklearn():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(200, 6, 12, generator=g)  # [N, T, C]
    labels = torch.randint(0, 12, (200,), generator=g)
    rows = by_key(accuracy_rows(out, labels))
    mean = out.mean(1).numpy()
    assert math.isclose(rows[("accuracy", None)].value, accuracy_score(labels, mean.argmax(1)))
    assert math.isclose(
        rows[("accuracy_top5", None)].value, top_k_accuracy_score(labels, mean, k=5, labels=range(12))
    )
    for t in range(1, 7):
        running = out[:, :t].mean(1).numpy()
        assert math.isclose(rows[("accuracy", t)].value, accuracy_score(labels, running.argmax(1)))
    p = rows[("accuracy", None)].value
    assert math.isclose(rows[("accuracy", None)].stderr, math.sqrt(p * (1 - p) / 199), rel_tol=1e-9)
    assert rows[("accuracy", 6)].value == rows[("accuracy", None)].value


def test_no_top5_below_ten_classes_and_no_curve_for_static_outputs():
    rows = by_key(accuracy_rows(torch.randn(10, 4), torch.zeros(10, dtype=torch.long)))
    assert set(rows) == {("accuracy", None)}


def test_decision_timestep_hand_count():
    preds = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1], [1, 0, 1, 0], [2, 2, 2, 3]])
    # final from step 1, from step 2, only at step 4, only at step 4
    row = decision_timestep_row(preds)
    assert row.value == np.mean([1, 2, 4, 4]) and row.n == 4


def test_stack_outputs_mixed_layouts():
    a, b = torch.randn(3, 2, 5), torch.randn(3, 4, 5)
    assert stack_outputs([a, b]).shape == (6, 3, 5)
    assert torch.allclose(stack_outputs([a, torch.randn(4, 5)])[:2], a.mean(0))
