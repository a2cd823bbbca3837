"""grad_rewiring: w = s * relu(theta) with a fixed sign, theta following s * dL/dw also while the
synapse is absent (regrowth), the Laplacian prior's centre and pull, and the harness path."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from snnbench import pruning
from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, checkpoint_bytes

SUB = Path(__file__).resolve().parent.parent / "baselines" / "grad_rewiring" / "submission.py"


def _load():
    spec = importlib.util.spec_from_file_location("grad_rewiring_sub", SUB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builds_and_returns_t_b_c():
    sub = _load()
    task = get_task("digits")
    model = sub.build(task)
    x = torch.rand(task.timesteps, 3, *task.input_shape)
    assert model(x).shape == (task.timesteps, 3, task.outputs)
    assert sub.CITATION.startswith("@inproceedings") and isinstance(sub.REPORTED, dict)
    assert sub.TASKS == ("digits",)


@pytest.mark.parametrize("alpha,target", [(0.5, 0.95), (2.0, 0.8), (1e-3, 0.99)])
def test_prior_centre_puts_one_minus_target_of_the_mass_above_zero(alpha, target):
    sub = _load()
    mu = sub.prior_centre(alpha, target)
    laplace = torch.distributions.Laplace(torch.tensor(mu, dtype=torch.float64), torch.tensor(1 / alpha))
    assert 1 - float(laplace.cdf(torch.tensor(0.0, dtype=torch.float64))) == pytest.approx(
        1 - target, rel=1e-9
    )
    with pytest.raises(ValueError, match=r"\[0.5, 1\)"):
        sub.prior_centre(alpha, 0.3)


def test_one_step_equals_the_hand_computed_update():
    sub = _load()
    w0 = torch.tensor([0.30, -0.20, 0.05, -0.01])
    g = torch.tensor([0.50, 0.40, 0.20, -0.30])
    p = torch.nn.Parameter(w0.clone())
    lr, alpha, target, eps = 0.01, 0.5, 0.9, 1e-8
    opt = sub.GradRewiring([p], lr=lr, alpha=alpha, target=target, eps=eps)
    p.grad = g.clone()
    opt.step()
    # by hand: Adam's first step is g / (|g| + eps); theta = |w0| - lr * s * that; prior pull
    s = torch.sign(w0)
    theta = w0.abs() - lr * s * g / (g.abs() + eps)
    mu = math.log(2 * (1 - target)) / alpha
    theta = theta - lr / (1 - 0.9) * alpha * torch.sign(theta - mu)  # Adam's bias-corrected step size
    assert torch.allclose(opt.state[p]["theta"], theta, atol=1e-7)
    assert torch.allclose(p.detach(), s * theta.clamp(min=0), atol=1e-7)
    # synapse 2 (0.05, pushed down) and 3 (-0.01, s=-1, g<0 pushes |w| down) are pruned
    assert p.detach()[2] == 0 and p.detach()[3] == 0  # theta: 0.05 - 0.01 - 0.05, 0.01 - 0.01 - 0.05
    assert p.detach()[0] > 0 and p.detach()[1] < 0  # 0.3 - 0.01 - 0.05 and 0.2 + 0.01 - 0.05, signs kept


def test_a_pruned_synapse_keeps_learning_and_regrows_with_its_sign():
    sub = _load()
    p = torch.nn.Parameter(torch.tensor([-0.02, 0.5]))  # synapse 0: s = -1, theta = 0.02
    opt = sub.GradRewiring([p], lr=0.01, alpha=1e-9, target=0.9)  # a negligible prior
    alive, thetas = [], []
    for k in range(40):
        # theta <- theta - lr * s * Adam(g) = theta + lr * Adam(g): g < 0 shrinks |w|, then g > 0 asks
        # for a larger |w| (a more negative w) while the weight is exactly zero
        p.grad = torch.tensor([-1.0 if k < 4 else 1.0, 0.0])
        opt.step()
        alive.append(bool(p.detach()[0] != 0))
        thetas.append(float(opt.state[p]["theta"][0]))
    assert alive[3] is False and thetas[3] < 0  # pruned: 4 steps of 0.01 against |w| = 0.02
    dead_until = alive.index(True, 4)
    assert dead_until > 4 and all(not a for a in alive[3:dead_until])
    assert all(b > a for a, b in zip(thetas[7:dead_until], thetas[8 : dead_until + 1]))  # grew while absent
    assert alive[-1] is True and p.detach()[0] < 0  # back, with its original sign


def test_prior_alone_pulls_every_theta_down_by_the_step_size_times_alpha():
    sub = _load()
    p = torch.nn.Parameter(torch.tensor([0.3, -0.3, 0.001]))
    opt = sub.GradRewiring([p], lr=0.01, alpha=2.0, target=0.95)  # mu = ln(0.1) / 2 < every theta
    for _ in range(5):
        p.grad = torch.zeros(3)
        opt.step()
    pull = sum(0.01 / (1 - 0.9**k) * 2.0 for k in range(1, 6))  # lr / (1 - beta1^k) * alpha per step
    assert torch.allclose(opt.state[p]["theta"], torch.tensor([0.3, 0.3, 0.001]) - pull, atol=1e-6)
    assert torch.allclose(p.detach(), torch.tensor([0.0, 0.0, 0.0]), atol=1e-7)  # pull = 0.49 > 0.3


def test_training_prunes_logs_regrowth_and_the_harness_sees_the_zeros(tmp_path):
    sub = _load()
    task = get_task("digits")
    torch.manual_seed(0)
    model = sub.build(task)
    signs = [torch.sign(w.detach()).clone() for w in pruning.prunable_parameters(model)]
    ds = torch.utils.data.Subset(load_split(task, "train").dataset, range(24))
    data = TrainingData(task, ds, task.timesteps, 0)
    sub.train_grad_r(model, task, data, Budget(epochs=3, batch_size=12, lr=0.02), alpha=2.0)
    assert [h["epoch"] for h in data.history] == [1, 2, 3]
    assert all({"connectivity", "regrown", "pruned"} <= set(h) for h in data.history)
    conn = pruning.connectivity_fraction(model)
    assert conn == pytest.approx(data.history[-1]["connectivity"], abs=1e-12) and conn < 0.9
    for s, w in zip(signs, pruning.prunable_parameters(model)):
        live = w.detach() != 0
        assert torch.equal(torch.sign(w.detach())[live], s[live])  # fixed signs
    ckpt = tmp_path / "gr.pt"
    ckpt.write_bytes(checkpoint_bytes(model.state_dict()))
    store = tmp_path / "store"
    args = ["evaluate", "--task", "digits", "--model", str(SUB), "--checkpoint", str(ckpt), "--quiet"]
    assert main(args + ["--limit", "32", "--store", str(store)]) == 0
    assert pd.read_parquet(store / "runs").iloc[0].status == "ok"
    met = pd.read_parquet(store / "metrics")
    overall = met.condition.isna() & met.timestep.isna() & met.layer.isna()
    assert float(met[(met.metric == "weight_sparsity") & overall].value.iloc[0]) == pytest.approx(
        1 - conn, abs=1e-12
    )
