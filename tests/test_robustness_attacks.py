"""Issue 28 attacks: APGD-CE and FGSM/PGD against torchattacks, the surrogate worst case, EOT,
the gradient-masking fixture, and the ANN-twin transfer attack through the sandbox."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import pytest
import torch
import torchattacks
from test_robustness import T, digits_tensors, trained_mlp
from torch import nn

from snnbench.encoding import Direct, PoissonRate
from snnbench.metrics import robustness as R
from snnbench.neurons import LIF, MultiStep
from snnbench.sandbox import Sandbox
from snnbench.submission import resolve
from snnbench.tasks import get_task
from snnbench.twin import ReLUTwin, make_twin

N = 128


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class AsImageClassifier(nn.Module):
    """[B, C, H, W] -> [B, classes] view of a [T, B, ...] -> [T, B, C] model, for torchattacks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.model(Direct()(u, T)).mean(0)


def _accuracy(net: nn.Module, u: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(u).argmax(1) == y).double().mean())


def _ours(attack: str, model, u, y, eps=0.1) -> float:
    oracle, space = R.LocalOracle(model), R.PixelSpace(Direct(), T)
    g = torch.Generator().manual_seed(0)
    if attack == "fgsm":
        adv, _ = R.fgsm(oracle, space, u, y, eps, g)
    elif attack == "pgd":
        adv = R.pgd(oracle, space, u, y, eps, steps=10, generator=g)
    else:
        adv = R.apgd(oracle, space, u, y, eps, 20, g)
    assert float((adv - u).abs().max()) <= eps + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
    return float(R._evaluate(oracle, space, adv, y, 64, g).double().mean())


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "apgd"])
def test_attack_accuracy_equals_torchattacks_on_an_ann_within_one_sample(attack):
    _, _, x, y = digits_tensors()
    u, y = x[:N], y[:N]
    model = trained_mlp()
    net = AsImageClassifier(model).eval()
    torch.manual_seed(0)
    if attack == "fgsm":
        theirs = torchattacks.FGSM(net, eps=0.1)
    elif attack == "pgd":
        theirs = torchattacks.PGD(net, eps=0.1, alpha=0.025, steps=10, random_start=True)
    else:
        theirs = torchattacks.APGD(
            net, norm="Linf", eps=0.1, steps=20, n_restarts=1, loss="ce", rho=0.75, seed=0
        )
    ref = _accuracy(net, theirs(u, y), y)
    ours = _ours(attack, model, u, y)
    assert ref < _accuracy(net, u, y) - 0.2  # the attack does something on this model
    assert abs(ours - ref) * N <= 1.0, (attack, ours, ref)


def test_apgd_is_seeded_and_not_weaker_than_pgd_on_a_trained_mlp():
    _, _, x, y = digits_tensors()
    model = trained_mlp()
    assert _ours("apgd", model, x[:N], y[:N]) == _ours("apgd", model, x[:N], y[:N])
    assert _ours("apgd", model, x[:N], y[:N]) <= _ours("pgd", model, x[:N], y[:N])


def test_apgd_checkpoints_follow_the_paper():
    assert R.apgd_checkpoints(100) == (22, 6, 3)
    assert R.apgd_checkpoints(20) == (4, 1, 1)
    assert R.apgd_checkpoints(3) == (1, 1, 1)


class StepNet(nn.Module):
    """Masks gradients on purpose: the trained MLP's hidden ReLU quantised to a staircase of steps
    1/8 apart, whose derivative is zero everywhere (torch.round; not a neuron any framework knows,
    so no surrogate can be swapped in)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = trained_mlp().net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        h = self.mlp[1](x.reshape(t * b, -1))
        h = torch.round(torch.relu(h) * 8) / 8  # a step function: zero derivative everywhere
        return self.mlp[3](h).reshape(t, b, -1)


def _rows(model, seed=0, n=N):
    _, _, x, y = digits_tensors()
    return R.robustness_rows(R.LocalOracle(model), get_task("digits"), x[:n], y[:n], Direct(), T, seed)


def _by_condition(rows, metric):
    return {r.condition: r for r in rows if r.metric == metric}


def test_a_zero_gradient_step_model_is_flagged():
    rows = _rows(StepNet())
    acc = _by_condition(rows, "robust_accuracy")
    flags = _by_condition(rows, "gradient_masking_suspected")
    assert acc["clean"].value > 0.5
    assert acc["fgsm eps=0.1"].value == acc["clean"].value  # no gradient: FGSM cannot move
    assert flags["eps=1 near chance"].value == 1.0
    assert flags["black-box<=white-box"].value == 1.0


def _spiking_shell() -> nn.Module:
    return nn.Sequential(
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(64, 64)),
        LIF(tau=2.0, surrogate="sigmoid"),
        MultiStep(nn.Linear(64, 10)),
    )


@lru_cache(maxsize=1)
def _spiking_state() -> dict:
    xtr, ytr, _, _ = digits_tensors()
    torch.manual_seed(0)
    net = _spiking_shell()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(net(Direct()(xtr, T)).mean(0), ytr).backward()
        opt.step()
    return {k: v.clone() for k, v in net.state_dict().items()}


def spiking_net() -> nn.Module:
    """A small snnbench MLP whose own surrogate (sigmoid) is none of the swapped ones, briefly
    trained (full batch, seeded, once per session)."""
    net = _spiking_shell()
    net.load_state_dict(_spiking_state())
    return net.eval()


def test_worst_case_is_at_most_every_single_surrogate_figure():
    rows = _rows(spiking_net(), n=64)
    acc = _by_condition(rows, "robust_accuracy")
    worst = acc["worst case eps=0.1 over fgsm,pgd,apgd-ce x surrogates own,rectangular,fast_sigmoid,atan"]
    singles = [r for c, r in acc.items() if c.startswith(("fgsm", "pgd eps=0.1", "apgd"))]
    assert len(singles) == 12  # 3 attacks x 4 surrogates
    for name in ("rectangular", "fast_sigmoid", "atan"):
        assert f"pgd eps=0.1 steps=10 step=0.025 surrogate={name}" in acc
    assert all(worst.value <= r.value for r in singles) and worst.value <= acc["clean"].value
    assert worst.n == 64
    # the worst case is per sample: it can be strictly below the best single figure's minimum
    assert worst.value <= min(r.value for r in singles)


def test_eot_averages_gradients_over_poisson_draws():
    """The EOT gradient varies less between seeds than a one-draw gradient (it estimates the
    same expectation with 16 draws)."""
    _, _, x, y = digits_tensors()
    oracle, space = R.LocalOracle(trained_mlp()), R.PixelSpace(PoissonRate(), T)

    def spread(draws: int) -> float:
        grads = [
            R.pixel_gradient(oracle, space, x[:32], y[:32], torch.Generator().manual_seed(s), draws)[1]
            for s in range(6)
        ]
        return float(torch.stack(grads).std(0).mean())

    assert spread(16) < 0.5 * spread(1)


def test_make_twin_replaces_every_spiking_neuron_and_leaves_the_model_alone():
    model = spiking_net()
    twin, replaced = make_twin(model)
    assert replaced == 1 and isinstance(twin[2], ReLUTwin) and isinstance(model[2], LIF)
    x = torch.rand(T, 3, 1, 8, 8)
    h = twin[1](twin[0](x))
    torch.testing.assert_close(twin[2](h), torch.relu(h))


SPIKING = """
import torch
from torch import nn
from snnbench.neurons import LIF, MultiStep

def build(task):
    torch.manual_seed(0)
    return nn.Sequential(MultiStep(nn.Flatten()), MultiStep(nn.Linear(64, 32)), LIF(tau=2.0),
                         MultiStep(nn.Linear(32, 10)))
"""


class Recorder:
    def __init__(self, box) -> None:
        self.box, self.sent = box, []

    def call(self, command, *payload):
        self.sent.append((command, payload))
        return self.box.call(command, *payload)


def test_collect_in_the_sandbox_sweeps_surrogates_and_transfers_from_the_twin(write_submission, monkeypatch):
    base = get_task("digits")
    small = dataclasses.replace(
        base.robustness,
        samples=16,
        surrogates=("own", "atan"),
        apgd_steps=4,
        blackbox_samples=8,
        blackbox_queries=5,
        transfer_samples=64,
        transfer_epochs=1,
    )
    task = dataclasses.replace(base, robustness=small)
    xtr, ytr, x, y = digits_tensors()
    test_split = torch.utils.data.TensorDataset(x[:16], y[:16])
    asked = []

    def training_subset(task_, timesteps):  # the embedded split, without reading it again (slow)
        asked.append(timesteps)
        return xtr[:64], ytr[:64]

    monkeypatch.setattr(R, "_training_subset", training_subset)
    with Sandbox(resolve(write_submission(SPIKING)), task, 0, T) as box:
        box.call("build", False)
        box.call("finish")
        recorder = Recorder(box)
        rows = R.collect(recorder, task, test_split, T, 0)
    assert asked == [T]
    acc = _by_condition(rows, "robust_accuracy")
    flags = _by_condition(rows, "gradient_masking_suspected")
    transfer = [c for c in acc if c.startswith("transfer")]
    assert transfer == ["transfer eps=0.1 from relu-twin (1 epochs on 64 training samples) apgd-ce steps=4"]
    assert "apgd-ce eps=0.1 steps=4 surrogate=atan" in acc and "transfer<=white-box" in flags
    worst = acc["worst case eps=0.1 over fgsm,pgd,apgd-ce x surrogates own,atan"]
    assert worst.value <= acc["pgd eps=0.1 steps=10 step=0.025"].value
    assert [c for c, _ in recorder.sent].count("train_twin") == 1
    swaps = [p[0] for c, p in recorder.sent if c == "set_surrogate"]
    assert swaps[-1] == "own" and "atan" in swaps
    (twin_call,) = [p for c, p in recorder.sent if c == "train_twin"]
    assert torch.equal(twin_call[1], ytr[:64])  # training labels, never the test labels
    sent_ints = [
        p for _, ps in recorder.sent for p in ps if isinstance(p, torch.Tensor) and not p.is_floating_point()
    ]
    assert len(sent_ints) == 1
