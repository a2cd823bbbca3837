"""Robustness metrics: attacks checked against closed forms and independent autograd code."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from torch import nn

from snnbench.data.digits import digits_arrays, split_indices
from snnbench.encoding import Direct, PoissonRate
from snnbench.metrics import robustness as R
from snnbench.sandbox import Sandbox
from snnbench.submission import resolve
from snnbench.tasks import get_task

T = 3


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread is faster than two on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_net(classes: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(2), nn.Linear(64, classes))


@lru_cache(maxsize=1)
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels = digits_arrays()
    train, test = split_indices()
    x = torch.from_numpy(images.copy())[:, None]
    y = torch.from_numpy(labels.copy())
    train, test = torch.from_numpy(train.copy()), torch.from_numpy(test[:256].copy())
    return x[train], y[train], x[test], y[test]


@lru_cache(maxsize=1)
def trained_mlp_state() -> dict:
    """A small MLP trained on the digits training split (full batch, seeded, well under a second)."""
    xtr, ytr, _, _ = digits_tensors()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(1), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xtr), ytr).backward()
        opt.step()
    return {k: v.clone() for k, v in net.state_dict().items()}


class PerStep(nn.Module):
    """Applies a [B, ...] -> [B, C] net at every step of [T, B, ...]; optional input quantisation."""

    def __init__(self, net: nn.Module, quantise: bool = False) -> None:
        super().__init__()
        self.net, self.quantise = net, quantise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        if self.quantise:
            x = torch.round(x * 16) / 16  # zero gradient everywhere: masks white-box attacks
        return self.net(x.reshape(t * b, *x.shape[2:])).reshape(t, b, -1)


def trained_mlp(quantise: bool = False) -> nn.Module:
    net = nn.Sequential(nn.Flatten(1), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    net.load_state_dict(trained_mlp_state())
    return PerStep(net, quantise)


# ---------------------------------------------------------------- gradients and FGSM


def test_loss_cotangent_is_softmax_minus_onehot_over_t():
    out = torch.randn(T, 5, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 1, 2, 3])
    g = R.loss_cotangent(out, labels)
    expected = (torch.softmax(out.mean(0), 1) - nn.functional.one_hot(labels, 4)) / T
    assert torch.allclose(g, expected.expand(T, 5, 4), atol=1e-6)


def test_fgsm_on_binary_linear_model_reaches_the_closed_form_margin():
    """For two classes the margin is linear in u: the optimal L-inf step lowers it by eps*||w_y - w_o||_1."""
    model = linear_net(2)
    gen = torch.Generator().manual_seed(1)
    u = 0.3 + 0.4 * torch.rand(16, 1, 8, 8, generator=gen)  # interior: no clamping at eps=0.1
    labels = torch.randint(0, 2, (16,), generator=gen)
    space = R.PixelSpace(Direct(), T)
    oracle = R.LocalOracle(model)
    adv, clean_out = R.fgsm(oracle, space, u, labels, 0.1)
    w, b = model[1].weight.detach(), model[1].bias.detach()
    flat = u.flatten(1)

    def margin(v: torch.Tensor) -> torch.Tensor:  # logit of the label minus the other logit
        return ((v @ w.T + b) * (1 - 2 * nn.functional.one_hot(1 - labels, 2))).sum(1)

    l1 = (w[0] - w[1]).abs().sum()
    assert torch.allclose(R._margin(clean_out, labels), margin(flat), atol=1e-5)
    assert torch.allclose(margin(adv.flatten(1)), margin(flat) - 0.1 * l1, atol=1e-4)
    pgd_adv = R.pgd(oracle, space, u, labels, 0.1, generator=torch.Generator().manual_seed(2))
    assert bool((margin(pgd_adv.flatten(1)) >= margin(adv.flatten(1)) - 1e-4).all())  # nothing beats optimal


def test_fgsm_equals_an_independent_autograd_fgsm_with_normalisation():
    """Normalised inputs (CIFAR-style): attack on [0, 1] pixels, gradient summed over T."""
    model = linear_net(10)
    gen = torch.Generator().manual_seed(3)
    mean, std = torch.tensor([0.4]).view(1, 1, 1), torch.tensor([0.25]).view(1, 1, 1)
    pixels = torch.rand(8, 1, 8, 8, generator=gen)
    x = (pixels - mean) / std
    labels = torch.randint(0, 10, (8,), generator=gen)
    space = R.PixelSpace(Direct(), T, mean, std)
    adv, _ = R.fgsm(R.LocalOracle(model), space, space.to_pixels(x), labels, 0.05)
    # independent: autograd straight through normalisation and the T-fold repetition
    p = pixels.clone().requires_grad_(True)
    enc = ((p - mean) / std).unsqueeze(0).expand(T, *p.shape)
    loss = nn.functional.cross_entropy(model(enc).mean(0), labels, reduction="sum")
    loss.backward()
    expected = (pixels + 0.05 * p.grad.sign()).clamp(0, 1)
    assert torch.allclose(adv, expected, atol=1e-6)


def test_rate_coding_uses_the_straight_through_rate_gradient():
    space = R.PixelSpace(PoissonRate(gain=2.0), T)
    g_enc = torch.randn(T, 4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(space.pixel_gradient(g_enc), 2.0 * g_enc.sum(0))


# ---------------------------------------------------------------- PGD


def test_pgd_never_leaves_the_eps_ball_or_the_pixel_range():
    model = trained_mlp()
    _, _, x, y = digits_tensors()
    space = R.PixelSpace(Direct(), T)
    for eps in (0.05, 0.3):
        adv = R.pgd(
            R.LocalOracle(model), space, x[:64], y[:64], eps, generator=torch.Generator().manual_seed(0)
        )
        assert float((adv - x[:64]).abs().max()) <= eps + 1e-6
        assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
        assert float((adv - x[:64]).abs().max()) > eps / 2  # it did move


def test_pgd_is_seeded():
    model, (_, _, x, y) = trained_mlp(), digits_tensors()
    space = R.PixelSpace(Direct(), T)
    runs = [
        R.pgd(R.LocalOracle(model), space, x[:32], y[:32], 0.1, generator=torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def _hits(model, adv, y):
    return R._hits(R.LocalOracle(model).outputs(Direct()(adv, T)), y).double().mean().item()


def test_pgd_accuracy_is_at_most_fgsm_accuracy_on_a_trained_mlp():
    model, (_, _, x, y) = trained_mlp(), digits_tensors()
    space, oracle = R.PixelSpace(Direct(), T), R.LocalOracle(model)
    adv_f, clean_out = R.fgsm(oracle, space, x, y, 0.1)
    adv_p = R.pgd(oracle, space, x, y, 0.1, generator=torch.Generator().manual_seed(0))
    clean = R._hits(clean_out, y).double().mean().item()
    acc_f, acc_p = _hits(model, adv_f, y), _hits(model, adv_p, y)
    assert clean > 0.9
    assert acc_p <= acc_f < clean


# ---------------------------------------------------------------- rows and masking checks


def _rows(model, seed=0):
    _, _, x, y = digits_tensors()
    return R.robustness_rows(R.LocalOracle(model), get_task("digits"), x[:128], y[:128], Direct(), T, seed)


def _by_condition(rows, metric):
    return {r.condition: r for r in rows if r.metric == metric}


def test_rows_of_a_normal_model_raise_no_flag():
    rows = _rows(trained_mlp())
    acc = _by_condition(rows, "robust_accuracy")
    flags = _by_condition(rows, "gradient_masking_suspected")
    assert set(acc) == {
        "clean",
        "worst case eps=0.1 over fgsm,pgd,apgd-ce x surrogates own",  # an ANN: no surrogate to swap
        "fgsm eps=0.1",
        "pgd eps=0.1 steps=10 step=0.025",
        "apgd-ce eps=0.1 steps=20",
        "pgd eps=1 steps=10 step=0.25",
        "gaussian sigma=0.1",
        "square eps=0.1 queries=100",
    }
    assert set(flags) == {"pgd<=fgsm", "eps=1 near chance", "black-box<=white-box"}
    assert all(f.value == 0.0 and f.unit == "flag" for f in flags.values())
    assert acc["clean"].n == 128 and acc["square eps=0.1 queries=100"].n == 64
    # the clean row is the independent accuracy of the model
    _, _, x, y = digits_tensors()
    assert acc["clean"].value == pytest.approx(_hits(trained_mlp(), x[:128], y[:128]))
    assert acc["pgd eps=1 steps=10 step=0.25"].value <= 0.2


def test_masking_flag_fires_when_white_box_gradients_are_zero():
    rows = _rows(trained_mlp(quantise=True))
    acc = _by_condition(rows, "robust_accuracy")
    flags = _by_condition(rows, "gradient_masking_suspected")
    assert acc["fgsm eps=0.1"].value == acc["clean"].value  # sign(0) = 0: FGSM cannot move
    assert acc["square eps=0.1 queries=100"].value < acc["pgd eps=0.1 steps=10 step=0.025"].value
    assert flags["black-box<=white-box"].value == 1.0


def test_format_eps():
    assert R.format_eps(0.1) == "0.1"
    assert R.format_eps(1.0) == "1"
    assert R.format_eps(0.0313725490196) == "8/255"
    assert R.pgd_condition(0.0313725490196) == "pgd eps=8/255 steps=10 step=2/255"


# ---------------------------------------------------------------- events


def _frames(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((6, 4, 2, 8, 8), 1.5), generator=gen)


def test_event_drop_identity_empty_and_expected_count():
    frames = _frames()
    assert torch.equal(R.event_drop(frames, 0.0, torch.Generator().manual_seed(0)), frames)
    assert float(R.event_drop(frames, 1.0, torch.Generator().manual_seed(0)).abs().sum()) == 0.0
    p, total = 0.2, float(frames.sum())
    kept = R.event_drop(frames, p, torch.Generator().manual_seed(1))
    assert bool((kept <= frames).all()) and bool((kept >= 0).all()) and torch.equal(kept, kept.round())
    sd = (total * p * (1 - p)) ** 0.5
    assert abs(float(kept.sum()) - (1 - p) * total) < 4 * sd


def test_hot_pixels_add_rate_at_the_same_sites_in_every_bin():
    frames = _frames()
    hot = R.hot_pixels(frames, 0.05, 2.0, torch.Generator().manual_seed(0))
    diff = hot - frames
    sites = round(0.05 * 2 * 8 * 8)
    assert torch.equal(diff, diff[:1, :1].expand_as(diff))  # same sites in every sample and bin
    assert int((diff[0, 0] == 2.0).sum()) == sites and int((diff[0, 0] != 0).sum()) == sites


def test_event_fgsm_changes_few_events_and_keeps_counts_valid():
    frames = _frames()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(2), nn.Linear(2 * 8 * 8, 10))
    labels = torch.arange(6) % 10
    adv, _ = R.event_fgsm(R.LocalOracle(model), frames, labels, 0.05)
    changed = (adv - frames).abs().flatten(1).sum(1)
    assert bool((adv >= 0).all()) and torch.equal(adv, adv.round())
    assert bool((changed <= (0.05 * frames.flatten(1).sum(1)).round()).all()) and bool((changed > 0).all())


# ---------------------------------------------------------------- the sandbox path

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
    """Stands between SandboxOracle and the Sandbox and keeps every (command, payload) sent."""

    def __init__(self, box) -> None:
        self.box, self.sent = box, []

    def call(self, command, *payload):
        self.sent.append((command, payload))
        return self.box.call(command, *payload)


def test_sandbox_oracle_matches_local_and_sends_no_labels(write_submission):
    from snnbench.neurons import LIF, MultiStep

    task = get_task("digits")
    _, _, x, y = digits_tensors()
    x_enc, labels = Direct()(x[:16], T), y[:16]
    with Sandbox(resolve(write_submission(SPIKING)), task, 0, T) as box:
        box.call("build", False)
        box.call("finish")
        recorder = Recorder(box)
        out_s, grad_s = R.SandboxOracle(recorder).loss_gradient(x_enc, labels)
        plain_s = R.SandboxOracle(recorder).outputs(x_enc)
    torch.manual_seed(0)
    local = nn.Sequential(
        MultiStep(nn.Flatten()), MultiStep(nn.Linear(64, 32)), LIF(tau=2.0), MultiStep(nn.Linear(32, 10))
    )
    out_l, grad_l = R.LocalOracle(local).loss_gradient(x_enc, labels)
    assert torch.allclose(out_s, out_l, atol=1e-6) and torch.allclose(plain_s, out_l, atol=1e-6)
    assert torch.allclose(grad_s, grad_l, atol=1e-6) and float(grad_l.abs().sum()) > 0
    commands = [c for c, _ in recorder.sent]
    assert commands == ["forward_with_graph", "input_gradient", "forward"]
    payloads = [p for _, ps in recorder.sent for p in ps]
    assert all(isinstance(p, torch.Tensor) and p.is_floating_point() for p in payloads)
    assert torch.equal(recorder.sent[0][1][0], x_enc) and torch.equal(recorder.sent[2][1][0], x_enc)
    expected_g = (torch.softmax(out_l.mean(0), 1) - nn.functional.one_hot(labels, 10)) / T
    assert torch.allclose(recorder.sent[1][1][0], expected_g.expand(T, 16, 10), atol=1e-6)


def test_square_attack_stays_in_the_ball_and_only_lowers_the_margin():
    model, (_, _, x, y) = trained_mlp(), digits_tensors()
    space, oracle = R.PixelSpace(Direct(), T), R.LocalOracle(model)
    adv = R.square_attack(oracle, space, x[:32], y[:32], 0.1, 50, torch.Generator().manual_seed(0))
    assert float((adv - x[:32]).abs().max()) <= 0.1 + 1e-6
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    before = R._margin(oracle.outputs(Direct()(x[:32], T)), y[:32])
    after = R._margin(oracle.outputs(Direct()(adv, T)), y[:32])
    assert bool((after[before > 0] <= before[before > 0] + 1e-5).all()) and float((after - before).min()) < 0
    flat = R.square_attack(  # 1-D inputs work too (viewed as one row of pixels)
        R.LocalOracle(linear_net(10)),
        space,
        x[:8].flatten(1),
        y[:8],
        0.1,
        5,
        torch.Generator().manual_seed(0),
    )
    assert flat.shape == (8, 64) and float((flat - x[:8].flatten(1)).abs().max()) <= 0.1 + 1e-6


def test_event_rows_name_their_perturbations():
    task = get_task("digits-dvs")
    frames = torch.poisson(torch.full((20, 4, 2, 8, 8), 0.5), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(2), nn.Linear(2 * 8 * 8, 10))
    labels = torch.arange(20) % 10
    rows = R.robustness_rows(R.LocalOracle(model), task, frames, labels, R.Frames(), 4, 0)
    acc = _by_condition(rows, "robust_accuracy")
    assert set(acc) == {
        "clean",
        "event_fgsm budget=0.05",
        "event_drop p=0.2",
        "hot_pixels frac=0.001 rate=1",
        "hot_pixels frac=0.01 rate=1",
    }
    out = model(frames.transpose(0, 1)).mean(0)
    assert acc["clean"].value == pytest.approx(float((out.argmax(1) == labels).double().mean()))
    assert all(r.n == 20 for r in rows)


def test_rate_coded_rows_run_and_are_seeded():
    task = get_task("digits")
    _, _, x, y = digits_tensors()
    model = trained_mlp()
    runs = [
        R.robustness_rows(R.LocalOracle(model), task, x[:64], y[:64], PoissonRate(), T, 3) for _ in range(2)
    ]
    assert runs[0] == runs[1]
    acc = _by_condition(runs[0], "robust_accuracy")
    assert acc["pgd eps=0.1 steps=10 step=0.025 eot=8"].value < acc["clean"].value
    assert "apgd-ce eps=0.1 steps=20 eot=8" in acc


def test_robustness_subset_takes_the_first_samples_and_the_normalisation():
    import numpy as np

    from snnbench.data.images import ImageDataset

    images = np.random.default_rng(0).integers(0, 256, (10, 3, 4, 4), dtype=np.uint8)
    dataset = ImageDataset(images, np.arange(10) % 3, np.array([0.5, 0.4, 0.3]), np.array([0.2, 0.25, 0.3]))
    task = get_task("cifar10")
    x, y, mean, std = R.robustness_subset(torch.utils.data.Subset(dataset, range(6)), task)
    assert x.shape == (6, 3, 4, 4) and y.tolist() == [0, 1, 2, 0, 1, 2]
    space = R.PixelSpace(Direct(), T, mean, std)
    assert torch.allclose(space.to_pixels(x), torch.from_numpy(images[:6]).float() / 255, atol=1e-6)
    assert torch.allclose(space.from_pixels(space.to_pixels(x)), x, atol=1e-5)
    _, _, none_mean, none_std = R.robustness_subset(torch.utils.data.TensorDataset(x, y), task)
    assert none_mean is None and none_std is None


def test_masking_comparison_is_paired_and_needs_a_real_excess():
    from snnbench.metrics.robustness import weaker_than

    strong = torch.tensor([1] * 46 + [0] * 18)  # PGD: 46 of 64 still correct
    chance = strong.clone()
    chance[[0, 1, 2, 3, 4, 5]] = 0  # black-box breaks 6 more...
    chance[[50, 51]] = 1  # ...and misses 2 that PGD broke: b=6, c=2, 4 <= 2*sqrt(8)
    assert not weaker_than(chance, strong)
    masked = strong.clone()
    masked[:30] = 0  # black-box breaks 30 samples PGD could not: b=30, c=0
    assert weaker_than(masked, strong)
    assert not weaker_than(strong, strong)
