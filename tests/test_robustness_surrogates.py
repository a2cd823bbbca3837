"""Surrogate swapping (snnbench.surrogates): the forward never changes, the backward does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnbench.neurons import LIF, MultiStep
from snnbench.surrogates import NAMES, SWAPS, derivative, swap_surrogates

T, B, F = 6, 5, 12


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SnnTorchNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        self.fc1, self.fc2 = nn.Linear(F, 16), nn.Linear(16, 4)
        self.lif = snn.Leaky(
            beta=0.8, spike_grad=surrogate.fast_sigmoid(slope=5)
        )  # own differs from every swap

    def forward(self, x):
        mem = self.lif.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk, mem = self.lif(self.fc1(x[t]), mem)
            out.append(self.fc2(spk))
        return torch.stack(out)


class SpikingJellyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.activation_based import layer, neuron

        self.net = nn.Sequential(
            layer.Linear(F, 16, step_mode="m"),
            neuron.LIFNode(step_mode="m"),
            layer.Linear(16, 4, step_mode="m"),
        )

    def forward(self, x):
        from spikingjelly.activation_based import functional

        functional.reset_net(self.net)
        return self.net(x)


class NorseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import norse.torch as norse

        self.fc1, self.fc2 = nn.Linear(F, 16), nn.Linear(16, 4)
        self.lif = norse.LIF(norse.LIFParameters(method="super", alpha=torch.as_tensor(100.0)), dt=0.01)

    def forward(self, x):
        spikes, _ = self.lif(self.fc1(x) * 20)
        return self.fc2(spikes)


def snnbench_net() -> nn.Module:
    return nn.Sequential(
        MultiStep(nn.Linear(F, 16)), LIF(tau=2.0, surrogate="sigmoid"), MultiStep(nn.Linear(16, 4))
    )


NETS = {"snnbench": snnbench_net, "snntorch": SnnTorchNet, "spikingjelly": SpikingJellyNet, "norse": NorseNet}


def _run(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out))
    return out.detach(), g


@pytest.mark.parametrize("framework", list(NETS))
def test_swapping_never_changes_the_forward_and_changes_the_gradient(framework):
    torch.manual_seed(0)
    model = NETS[framework]().eval()
    x = torch.rand(T, B, F) * 2
    with torch.no_grad():
        clean = model(x)
    out0, g0 = _run(model, x)
    assert clean.abs().sum() > 0
    grads = {}
    for name in SWAPS:
        counts = swap_surrogates(model, name)
        assert counts == {framework: 1}, counts
        with torch.no_grad():
            assert torch.equal(model(x), clean), f"{framework}/{name}: no-grad forward changed"
        out, grads[name] = _run(model, x)
        assert torch.equal(out, out0), f"{framework}/{name}: forward with graph changed"
        assert not torch.allclose(grads[name], g0), f"{framework}/{name}: gradient did not change"
    assert not torch.allclose(grads["rectangular"], grads["atan"])
    swap_surrogates(model, "own")
    out, g = _run(model, x)
    assert torch.equal(out, out0) and torch.equal(g, g0), "own did not restore the submission's surrogate"


def test_swapped_snnbench_neuron_backward_is_the_documented_derivative():
    """An independent check of the derivative for a single IF-like step: the gradient of the
    spike sum over one step is exactly derivative(x - threshold)."""
    torch.manual_seed(1)
    neuron = LIF(tau=2.0, decay_input=False, v_threshold=1.0)
    x = (torch.rand(1, 200) * 2).requires_grad_(True)
    for name in SWAPS:
        swap_surrogates(neuron, name)
        (g,) = torch.autograd.grad(neuron(x).sum(), x)
        torch.testing.assert_close(g, derivative(x.detach() - 1.0, name))


def test_unknown_surrogate_is_a_one_line_error():
    with pytest.raises(ValueError, match="choose one of"):
        swap_surrogates(snnbench_net(), "sigmoid-ish")
    assert NAMES[0] == "own"


def test_state_dict_is_unchanged_by_a_swap():
    model = SpikingJellyNet()
    keys = list(model.state_dict())
    swap_surrogates(model, "rectangular")
    assert list(model.state_dict()) == keys


def test_swap_derivatives_are_the_closed_forms():
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    torch.testing.assert_close(derivative(x, "rectangular"), (x.abs() < 0.5).double())
    torch.testing.assert_close(derivative(x, "fast_sigmoid"), 12.5 / (1 + 25 * x.abs()) ** 2)
    torch.testing.assert_close(derivative(x, "atan"), 1 / (1 + (torch.pi * x) ** 2))
