"""proxy_learning: shapes, a tiny training run, the proxy gradient, and the harness end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.neurons import IF
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

PATH = Path(__file__).resolve().parent.parent / "baselines" / "proxy_learning" / "submission.py"
spec = importlib.util.spec_from_file_location("proxy_learning_submission", PATH)
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)


def _model(seed=0):
    torch.manual_seed(seed)
    return sub.build(get_task("digits"))


def test_builds_and_returns_class_scores_on_digits():
    model = _model()
    for t in (4, 16):
        assert model(torch.rand(t, 3, 1, 8, 8)).shape == (t, 3, 10)
    assert sum(isinstance(m, IF) and m.v_reset is None for m in model.modules()) == 2
    assert isinstance(sub.CITATION, str) and sub.REPORTED


def test_ann_view_is_the_same_layers_with_relu_clipped_at_one():
    model = _model(1)
    b = model.body
    x = torch.rand(5, 1, 8, 8)
    h = torch.clamp(b[0].module(x), 0, 1)
    h = nn.functional.avg_pool2d(h, 2)
    h = torch.clamp(b[3].module(h), 0, 1)
    h = nn.functional.avg_pool2d(h, 2).flatten(1)
    want = b[7].module(h)
    torch.testing.assert_close(model.ann(x), want)


def test_snn_rate_output_approaches_the_ann_view_as_t_grows():
    # shared weights: the IF net with soft reset is a rate-coded copy of the clipped-ReLU ANN
    model = _model(2)
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        want = model.ann(x)
        err = [float((model(x.expand(t, *x.shape)).mean(0) - want).abs().max()) for t in (4, 256)]
    assert err[1] < err[0] / 4 and err[1] < 0.05 * float(want.abs().max()), err


def test_proxy_output_has_the_snn_value_and_the_ann_gradient():
    model = _model(3)
    x = torch.rand(1, 6, 1, 8, 8).expand(4, 6, 1, 8, 8)  # direct coding: one frame repeated
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    params = [p for p in model.parameters()]
    out, y_ann, y_snn = sub.proxy_output(model, x)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x).mean(0))  # the value is the SNN's output
    loss = nn.functional.cross_entropy(out, y)
    got = torch.autograd.grad(loss, params)
    # independent: dCE/dlogits at the SNN output = (softmax(y_snn) - onehot)/B, pulled back through the ANN
    g = (torch.softmax(y_snn, 1) - nn.functional.one_hot(y, 10).float()) / len(y)
    want = torch.autograd.grad(model.ann(x[0]), params, grad_outputs=g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(y_ann, y_snn)  # the two forwards differ, so the test can tell them apart


def test_trains_a_few_steps_and_records_history():
    task = get_task("digits")
    model = _model(4)
    before = [p.detach().clone() for p in model.parameters()]
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(48)), task.timesteps, 0)
    sub.train(model, task, data, Budget(epochs=1, lr=1e-3, batch_size=16))
    assert len(data.history) == 1 and "train_accuracy_ann" in data.history[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model.training


def test_evaluates_through_the_harness(tmp_path):
    args = [
        "evaluate",
        "--task",
        "digits",
        "--model",
        str(PATH),
        "--quiet",
        "--limit",
        "32",
        "--timesteps",
        "16",
    ]
    assert main(args) == 0
    import pandas as pd

    run = pd.read_parquet(tmp_path / "store" / "runs").iloc[0]
    assert run.status == "ok" and run.method == "proxy_learning"
