"""noise_single_step: noisy T=1 training, weights reused at T=N with plain IF (subtract reset)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUBMISSION = Path(__file__).resolve().parent.parent / "baselines" / "noise_single_step" / "submission.py"


def load():
    spec = importlib.util.spec_from_file_location("noise_single_step_under_test", SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builds_and_runs_any_number_of_steps_on_digits():
    sub = load()
    task = get_task("digits")
    torch.manual_seed(0)
    model = sub.build(task).eval()
    for steps in (1, task.timesteps, 16):
        assert model(torch.rand(steps, 3, *task.input_shape)).shape == (steps, 3, task.outputs)
    assert (
        sub.REPORTED["training time saved vs spike-based BP, low"] == 0.65
        and "jiang2022noise" in sub.CITATION
    )


def test_training_step_fires_heaviside_of_current_plus_gaussian_noise_minus_threshold():
    sub = load()
    sigma, theta = 0.4, 1.0
    neuron = sub.NoisyIF(sigma).train()
    x = torch.randn(1, 5, 7) * 0.5 + 1.0
    torch.manual_seed(3)
    spikes = neuron(x)
    torch.manual_seed(3)
    eps = sigma * theta * torch.randn(1, 5, 7)
    expected = ((x + eps - theta) >= 0).float()
    assert torch.equal(spikes, expected)
    # the noise matters: without it some of these spikes differ
    assert not torch.equal(spikes, (x >= theta).float())


def test_evaluation_is_noiseless_if_with_subtract_reset():
    sub = load()
    neuron = sub.NoisyIF(0.5).eval()
    x = torch.rand(16, 4, 9) * 1.3
    v = torch.zeros(4, 9)
    expected = []
    for t in range(16):  # independent IF loop: integrate, fire at theta = 1, subtract theta
        v = v + x[t]
        s = (v >= 1.0).float()
        v = v - s
        expected.append(s)
    assert torch.equal(neuron(x), torch.stack(expected))
    assert torch.equal(neuron(x), neuron(x))  # deterministic: no noise at evaluation


def test_noisy_spike_passes_a_surrogate_gradient():
    sub = load()
    neuron = sub.NoisyIF(0.3).train()
    x = torch.full((1, 2, 3), 0.9, requires_grad=True)
    neuron(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_train_runs_single_step_for_the_budget():
    sub = load()
    task = get_task("digits")
    data = TrainingData(task, Subset(load_split(task, "train").dataset, range(48)), task.timesteps, 0)
    torch.manual_seed(0)
    model = sub.build(task)
    seen_steps = []
    model[1].register_forward_hook(lambda _m, args, _o: seen_steps.append(args[0].shape[0]))
    before = model[1].module.weight.detach().clone()
    sub.train(model, task, data, Budget(epochs=2, lr=1e-2, batch_size=16))
    assert seen_steps and set(seen_steps) == {1}
    assert [h["epoch"] for h in data.history] == [1, 2] and all(
        h["train_timesteps"] == 1 for h in data.history
    )
    assert not torch.equal(before, model[1].module.weight) and not model.training


def test_through_the_harness_at_t16(tmp_path):
    ckpt = tmp_path / "noise.pt"
    args = ["--task", "digits", "--model", str(SUBMISSION)]
    assert main(["train", *args, "--epochs", "1", "--out", str(ckpt), "--quiet"]) == 0
    store = tmp_path / "store"
    assert (
        main(
            [
                "evaluate",
                *args,
                "--checkpoint",
                str(ckpt),
                "--timesteps",
                "16",
                "--limit",
                "32",
                "--store",
                str(store),
                "--quiet",
            ]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == 16
