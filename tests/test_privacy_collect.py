"""Privacy family end to end (tiny sizes): rows through the harness, the reference-model cache, and
class leakage of a random network at chance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import PLAIN_TORCH
from torch import nn

from snnbench.data import load_split
from snnbench.encoding import Direct
from snnbench.evaluate import evaluate
from snnbench.metrics.robustness import LocalOracle, PixelSpace
from snnbench.privacy import inversion, shadow
from snnbench.store import Store
from snnbench.submission import resolve
from snnbench.tasks import get_task


def _tiny_task():
    task = get_task("digits")
    return dataclasses.replace(
        task,
        privacy={"fpr": [0.01, 0.05], "members": 12, "reference_models": 2},
        train={"epochs": 1, "lr": 0.01, "batch_size": 8},
    )


@pytest.fixture
def tiny_privacy(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_PRIVACY_CACHE", str(tmp_path / "privacy-cache"))
    monkeypatch.setattr(inversion, "STEPS", 3)
    monkeypatch.setattr(inversion, "RESTARTS", 2)
    fast = inversion.train_reference_classifier
    monkeypatch.setattr(
        inversion, "train_reference_classifier", lambda x, y, c: fast(x[:64], y[:64], c, epochs=1)
    )
    monkeypatch.setattr(shadow, "POPULATION", 20)
    return tmp_path / "privacy-cache"


def test_privacy_rows_through_the_harness_and_cached_reference_models(
    write_submission, tmp_path, tiny_privacy, monkeypatch
):
    torch.set_num_threads(1)
    ref = resolve(write_submission(PLAIN_TORCH))
    out = evaluate(
        _tiny_task(), ref, Store(tmp_path / "s"), limit=8, progress=False, extra_metrics=("privacy",)
    )
    assert out.run["status"] == "ok", out.run["error"]
    metrics = pd.read_parquet(tmp_path / "s" / "metrics")
    auc = metrics[metrics.metric == "mia_auc"]
    assert set(auc.condition) == {"attack=loss", "attack=lira", "attack=rmia"}
    assert (auc.n == 24).all() and auc.value.between(0, 1).all()
    assert not (metrics.metric == "mia_tpr_at_fpr").any()  # 12 non-members < 1/0.05
    leak = metrics[metrics.metric == "class_leakage"]
    assert len(leak) == 1 and int(leak.n.iloc[0]) == 20
    assert len(list(tiny_privacy.glob("digits/ref-*.pt"))) == 2
    assert list(tiny_privacy.glob("artifacts/digits/*/roc.json"))
    assert list(tiny_privacy.glob("artifacts/digits/*/inversions.npz"))

    calls = []
    original = shadow.train_and_score
    monkeypatch.setattr(shadow, "train_and_score", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = evaluate(
        _tiny_task(), ref, Store(tmp_path / "s2"), limit=8, progress=False, extra_metrics=("privacy",)
    )
    assert again.run["status"] == "ok"
    assert len(calls) == 1  # the target only: both reference models came from the cache
    rows = pd.read_parquet(tmp_path / "s2" / "metrics")
    assert rows[rows.metric == "mia_auc"].value.tolist() == auc.value.tolist()


def _digits_xy(count):
    data = load_split(get_task("digits"), "train").dataset
    x = torch.stack([data[i][0] for i in range(count)])
    y = torch.tensor([data[i][1] for i in range(count)])
    return x, y


class _Readout(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):  # [T, B, 1, 8, 8] -> [T, B, 10]
        t, b = x.shape[:2]
        return self.net(x.reshape(t * b, -1)).reshape(t, b, -1)


def test_class_leakage_of_a_random_network_is_near_chance_and_a_trained_one_leaks():
    torch.set_num_threads(1)
    x, y = _digits_xy(400)
    judge = inversion.train_reference_classifier(x, y, 10, epochs=3)
    space = PixelSpace(Direct(), 2)
    torch.manual_seed(0)
    random_net = _Readout(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)))
    torch.manual_seed(0)
    trained = nn.Linear(64, 10)
    opt = torch.optim.Adam(trained.parameters(), lr=0.05)
    for _ in range(100):
        loss = nn.functional.cross_entropy(trained(x.flatten(1)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    values = {}
    for name, net in (("random", random_net), ("trained", _Readout(trained))):
        images = inversion.invert_classes(
            LocalOracle(net), space, (1, 8, 8), 10, seed=1, steps=60, restarts=6
        )
        predicted = inversion.classify(judge, images.reshape(-1, 1, 8, 8)).reshape(10, 6)
        values[name], n = inversion.leakage_fraction(predicted)
        assert n == 60
        assert images.min() >= 0 and images.max() <= 1
    assert abs(values["random"] - 0.1) <= 0.1
    assert values["trained"] >= values["random"] + 0.2


def test_leakage_fraction_and_image_prior_by_hand():
    predicted = torch.tensor([[0, 0, 1], [1, 2, 1]])  # targets 0 and 1: 2 + 2 of 6 hit
    assert inversion.leakage_fraction(predicted) == (pytest.approx(4 / 6), 6)
    u = torch.zeros(1, 1, 2, 2)
    u[0, 0, 0, 0] = 1.0
    # TV: vertical |1-0|, |0-0| -> mean 0.5; horizontal likewise 0.5; l2 mean = 1/4
    assert float(inversion.image_prior(u, tv=1.0, l2=1.0)) == pytest.approx(1.0 + 0.25)
    assert np.isclose(float(inversion.image_prior(torch.zeros(3, 1, 4, 4))), 0.0)
