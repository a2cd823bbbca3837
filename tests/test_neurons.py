"""The fused neuron loop and MultiStep's fast path against the plain definitions they replace.

Every fast path is checked against an independent computation: reference_forward (the step-by-step
loop with autograd), nn.MaxPool2d run as is, and SpikingJelly's multi-step neurons.
"""

from __future__ import annotations

import inspect
import itertools
import math
import zlib

import pytest
import torch
from torch import nn

from snnbench.neurons import IF, LIF, PLIF, SURROGATES, BaseNeuron, MultiStep, spike, surrogate_grad

RESETS = {"hard0": 0.0, "hard-0.3": -0.3, "soft": None}


def _neuron(cls, reset: str, detach: bool, decay_input: bool, surrogate: str) -> BaseNeuron:
    kw = dict(v_reset=RESETS[reset], detach_reset=detach, surrogate=surrogate)
    if cls is not IF:
        kw["decay_input"] = decay_input
    if cls is PLIF:
        kw["init_tau"] = 2.5
    elif cls is LIF:
        kw["tau"] = 3.0  # 1/3 is inexact in binary: the fused loop must round exactly like charge()
    return cls(**kw)


def _inputs(seed: int, shape=(7, 3, 5), dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 2.0 + 0.8).to(dtype)
    return x, torch.randn(shape, generator=g).to(dtype)


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Float tolerance for a T-step recurrence: `atol` is relative to the gradient's largest entry
    (sums of large terms that cancel differ by rounding order, never by more)."""
    scale = max(float(expected.abs().max()), 1.0)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol * scale)


def _run(neuron: BaseNeuron, x: torch.Tensor, grad: torch.Tensor, fused: bool):
    """Spikes, input gradient and (PLIF) w gradient of one path."""
    neuron.fused = fused
    xr = x.clone().requires_grad_()
    if isinstance(neuron, PLIF):
        neuron.w.grad = None
    out = neuron(xr)
    (out * grad).sum().backward()
    gw = neuron.w.grad.clone() if isinstance(neuron, PLIF) else None
    return out.detach(), xr.grad, gw


CASES = [
    (cls, reset, detach, decay, sur)
    for cls, reset, detach, decay, sur in itertools.product(
        [IF, LIF, PLIF], RESETS, [False, True], [True, False], list(SURROGATES)
    )
    if not (cls is IF and not decay)  # IF has no decay_input
]


@pytest.mark.parametrize("cls,reset,detach,decay,sur", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_fused_matches_reference(cls, reset, detach, decay, sur):
    neuron = _neuron(cls, reset, detach, decay, sur)
    x, grad = _inputs(zlib.crc32(f"{cls.__name__}{reset}{detach}{decay}{sur}".encode()) % 1000)
    s_ref, gx_ref, gw_ref = _run(neuron, x, grad, fused=False)
    s_fast, gx_fast, gw_fast = _run(neuron, x, grad, fused=True)
    assert 0 < s_ref.mean() < 1, "the input must make some neurons spike and some not"
    assert torch.equal(s_fast, s_ref)
    _close(gx_fast, gx_ref)
    assert gx_ref.abs().sum() > 0
    if cls is PLIF:
        _close(gw_fast, gw_ref)
        assert gw_ref.abs() > 0


def test_fused_path_is_the_default_and_saves_only_h():
    """Default forward builds one fused node whose saved state is one tensor shaped like x."""
    x, _ = _inputs(0)
    x.requires_grad_()
    saved: list[torch.Size] = []

    def pack(t):
        saved.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = LIF()(x)
    assert type(out.grad_fn).__name__ == "_FusedNeuronBackward"
    assert saved == [x.shape]  # h only: no per-step intermediates, no spikes
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        saved.clear()
        ref = LIF().reference_forward(x)
    assert len(saved) > x.shape[0]  # the loop it replaces saves several tensors per step
    assert torch.equal(out, ref)


@pytest.mark.parametrize("cls", [IF, LIF, PLIF])
def test_no_grad_path_matches(cls):
    neuron = cls()
    x, _ = _inputs(3, shape=(6, 2, 4, 3))
    with torch.no_grad():
        fast = neuron(x)
        neuron.fused = False
        ref = neuron(x)
    assert fast.grad_fn is None
    assert torch.equal(fast, ref)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes(dtype):
    neuron = LIF(tau=3.0, v_reset=None)
    x, grad = _inputs(4, dtype=dtype)
    s_ref, gx_ref, _ = _run(neuron, x, grad, fused=False)
    s_fast, gx_fast, _ = _run(neuron, x, grad, fused=True)
    assert s_fast.dtype == dtype
    assert torch.equal(s_fast, s_ref)
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-12
    _close(gx_fast, gx_ref, rtol=tol, atol=tol)


def test_layouts_and_strided_inputs():
    """channels_last and non-contiguous inputs: same values; the output keeps a dense input's layout."""
    neuron = LIF()
    x, grad = _inputs(5, shape=(4, 3, 6, 5, 5))
    cl = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (4, 3))
    s_ref = _run(neuron, x, grad, fused=False)[0]
    strided = x.transpose(2, 4).contiguous().transpose(2, 4)
    every_other = (slice(None), slice(None), slice(None, None, 2))
    for variant, index in ((cl, ...), (strided, ...), (x[every_other], every_other)):
        s, gx, _ = _run(neuron, variant, grad[index], fused=True)
        s_sub, gx_sub, _ = _run(neuron, x[index].contiguous(), grad[index], fused=False)
        assert torch.equal(s, s_sub)
        _close(gx, gx_sub)
    assert torch.equal(_run(neuron, cl, grad, fused=True)[0], s_ref)
    s_cl = LIF()(cl)
    assert s_cl.stride() == cl.stride()


def test_gradient_through_second_use_and_partial_requires_grad():
    """Spikes used twice accumulate both gradients; PLIF with a frozen input still trains w."""
    neuron = PLIF()
    x, grad = _inputs(6)
    for fused in (True, False):
        neuron.fused = fused
        neuron.w.grad = None
        out = neuron(x)  # x does not require grad: only w does
        (out * grad).sum().backward()
        if fused:
            gw_fast = neuron.w.grad.clone()
            assert type(out.grad_fn).__name__ == "_FusedNeuronBackward"
    _close(gw_fast, neuron.w.grad)

    lif = LIF()
    results = []
    for fused in (True, False):
        lif.fused = fused
        xr = x.clone().requires_grad_()
        s = lif(xr)
        ((s * grad).sum() + (s * grad.flip(0)).sum()).backward()
        results.append(xr.grad)
    _close(results[0], results[1])


@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("cls", [IF, LIF, PLIF])
def test_gradients_finite(cls, surrogate):
    """Long sequences, large inputs and membranes exactly at threshold (where surrogates peak)."""
    neuron = cls(surrogate=surrogate, detach_reset=True)
    x = torch.randn(64, 4, 8, generator=torch.Generator().manual_seed(9)) * 30
    x[1::7] = 1.0  # h == v_threshold exactly after a reset to 0 (IF, and LIF for the decayed input)
    for fused in (True, False):
        neuron.fused = fused
        xr = x.clone().requires_grad_()
        out = neuron(xr)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        assert torch.isfinite(xr.grad).all()
        assert xr.grad.abs().sum() > 0
        if cls is PLIF:
            assert torch.isfinite(neuron.w.grad)
            neuron.w.grad = None


@pytest.mark.parametrize("cls", [IF, LIF, PLIF])
@pytest.mark.parametrize("shape", [(), (5,)])
def test_shape_errors(cls, shape):
    with pytest.raises(ValueError, match=r"expects \[T, B, \.\.\.\] input"):
        cls()(torch.zeros(shape))


def test_bad_settings_rejected():
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate="nope")
    with pytest.raises(ValueError, match="tau must be > 1"):
        LIF(tau=1.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        spike(torch.zeros(2), "nope")


def test_surrogate_formulas():
    """surrogate_grad against the closed forms, and each integrates to about one."""
    x = torch.linspace(-50, 50, 200001, dtype=torch.float64)
    dx = float(x[1] - x[0])
    a = 2.0
    torch.testing.assert_close(surrogate_grad(x, "atan", a), a / 2 / (1 + (math.pi / 2 * a * x) ** 2))
    sig = 1 / (1 + torch.exp(-4.0 * x))
    torch.testing.assert_close(surrogate_grad(x, "sigmoid", 4.0), 4.0 * sig * (1 - sig))
    for kind, alpha in SURROGATES.items():
        area = float(surrogate_grad(x, kind, alpha).sum()) * dx
        if kind != "ste":
            assert area == pytest.approx(1.0, abs=0.02), kind
    # the spike function's backward is grad * surrogate
    xs = torch.tensor([-0.3, 0.0, 0.2], requires_grad=True)
    spike(xs, "triangle", 1.0).sum().backward()
    torch.testing.assert_close(xs.grad, torch.tensor([0.7, 1.0, 0.8]))


def test_double_backward_needs_reference_path():
    neuron = LIF()
    x, _ = _inputs(7)
    xr = x.clone().requires_grad_()
    weight = torch.rand(x.shape, requires_grad=True)
    (g,) = torch.autograd.grad((neuron(xr) * weight).sum(), xr, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()
    neuron.fused = False
    (g,) = torch.autograd.grad(neuron(xr).sum(), xr, create_graph=True)
    assert g.requires_grad  # the reference loop builds a differentiable graph


def test_custom_charge_falls_back_to_reference():
    class Quadratic(BaseNeuron):
        def charge(self, v, x):
            return v + x * x

    n = Quadratic()
    x, _ = _inputs(8)
    out = n(x.requires_grad_())
    assert type(out.grad_fn).__name__ != "_FusedNeuronBackward"
    assert torch.equal(out, n.reference_forward(x))


# ---------------------------------------------------------------- MultiStep


def _multistep_pair(module: nn.Module, x: torch.Tensor, grad_seed: int = 0):
    """(outputs, input grads, param grads) of the fast and the plain path of one module."""
    results = []
    for fast in (True, False):
        m = MultiStep(module)
        m.fast = fast
        module.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_()
        y = m(xr)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_seed))
        (y * g).sum().backward()
        results.append((y.detach(), xr.grad, [p.grad.clone() for p in module.parameters()]))
    return results


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(2),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.MaxPool2d(3, stride=1, dilation=2),
    ],
    ids=["k2", "k3s2p1", "ceil", "dilated"],
)
@pytest.mark.parametrize("binary", [False, True], ids=["float", "spikes"])
def test_lean_maxpool_equals_maxpool(pool, binary):
    """Spike inputs have ties in every window: the argmax (and so the gradient) must be nn.MaxPool2d's."""
    x = torch.randn(3, 4, 5, 11, 13, generator=torch.Generator().manual_seed(1))
    if binary:
        x = (x > 0.5).float()
    (y_fast, gx_fast, _), (y_ref, gx_ref, _) = _multistep_pair(pool, x)
    assert torch.equal(y_fast, y_ref)
    assert torch.equal(gx_fast, gx_ref)


def test_lean_maxpool_does_not_keep_its_input():
    x = torch.randn(2, 3, 4, 8, 8, requires_grad=True)
    sizes: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        MultiStep(nn.MaxPool2d(2))(x)
    assert sizes == [2 * 3 * 4 * 4 * 4]  # the argmax indices, a quarter of the input
    sizes.clear()
    m = MultiStep(nn.MaxPool2d(2))
    m.fast = False
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        m(x)
    assert x.numel() in sizes  # what plain nn.MaxPool2d keeps


def test_hooks_on_a_pooling_layer_still_fire():
    """The lean pooling bypasses module.__call__, so a hooked layer must take the plain path."""
    pool = nn.MaxPool2d(2)
    seen = []
    pool.register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    x = torch.randn(2, 3, 4, 8, 8, requires_grad=True)
    y = MultiStep(pool)(x)
    assert seen == [(6, 4, 4, 4)]
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize(
    "module",
    [nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(3), nn.AvgPool2d(2), nn.Linear(8, 4), nn.Flatten()],
    ids=["conv", "bn", "avgpool", "linear", "flatten"],
)
def test_multistep_fast_path_equals_plain(module):
    torch.manual_seed(0)
    shape = (3, 4, 8) if isinstance(module, nn.Linear) else (3, 4, 3, 6, 8)
    x = torch.randn(shape)
    (y_fast, gx_fast, gp_fast), (y_ref, gx_ref, gp_ref) = _multistep_pair(module, x)
    assert y_fast.shape == y_ref.shape == (3, 4, *y_ref.shape[2:])
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx_fast, gx_ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(gp_fast, gp_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


CONV_POOL = [
    (nn.Conv2d(2, 6, 5), nn.MaxPool2d(2)),
    (nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.MaxPool2d(3, stride=2, padding=1)),
    (nn.Conv2d(4, 8, 3, dilation=2, groups=2), nn.MaxPool2d(2, ceil_mode=True)),
]


@pytest.mark.parametrize("pair", range(len(CONV_POOL)), ids=["plain", "strided-nobias", "grouped-dilated"])
@pytest.mark.parametrize("spikes", [False, True], ids=["float", "spikes"])
def test_conv_pool_block_equals_the_two_modules(pair, spikes, monkeypatch):
    """MultiStep(Sequential(conv, pool)) in small chunks against the same modules run as is on the
    same channels_last input: identical outputs (also without grad), gradients to rounding."""
    import snnbench.neurons as neurons

    conv, pool = CONV_POOL[pair]
    x = torch.randn(3, 5, conv.in_channels, 13, 11, generator=torch.Generator().manual_seed(pair))
    if spikes:
        x = (x > 0.3).float()
    x_cl = x.flatten(0, 1).contiguous(memory_format=torch.channels_last)
    y_ref = pool(conv(x_cl))  # warm the shapes; one chunk = 4 samples below, 15 samples in all
    monkeypatch.setattr(
        neurons, "_CONV_CHUNK", 4 * y_ref.shape[1] * (y_ref.shape[2] * 2) * (y_ref.shape[3] * 2)
    )
    assert 1 < 15 // neurons._chunk_rows(x_cl, conv) < 15
    block = MultiStep(nn.Sequential(conv, pool))
    g = torch.randn((3, 5, *y_ref.shape[1:]), generator=torch.Generator().manual_seed(7))
    results = []
    for fast in (True, False):
        conv.zero_grad(set_to_none=True)
        xr = (x if fast else x_cl).clone().requires_grad_()
        y = block(xr) if fast else pool(conv(xr)).unflatten(0, (3, 5))
        (y * g).sum().backward()
        results.append((y.detach(), xr.grad.reshape(15, *x.shape[2:]), [p.grad for p in conv.parameters()]))
    (y_fast, gx_fast, gp_fast), (y_plain, gx_plain, gp_plain) = results
    assert torch.equal(y_fast, y_plain)
    with torch.no_grad():
        assert torch.equal(block(x), y_plain)
    _close(gx_fast, gx_plain)
    for a, b in zip(gp_fast, gp_plain):
        _close(a, b, rtol=1e-4)


def test_conv_pool_block_keeps_no_conv_output():
    conv, pool = nn.Conv2d(2, 6, 3), nn.MaxPool2d(2)
    x = torch.randn(2, 3, 2, 10, 10)
    sizes: list[int] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        y = MultiStep(nn.Sequential(conv, pool))(x)
    assert "ConvPool" in type(y.grad_fn.next_functions[0][0]).__name__
    assert 6 * 6 * 8 * 8 not in sizes  # the conv output [6, 6, 8, 8] is never kept
    assert sorted(sizes) == sorted([x.numel(), conv.weight.numel(), 6 * 6 * 4 * 4])


@pytest.mark.parametrize("variant", ["hooked", "same-padding", "reflect", "three-layers"])
def test_conv_pool_block_falls_back_where_it_must(variant):
    conv, pool = nn.Conv2d(2, 4, 3, padding=1), nn.MaxPool2d(2)
    seq = nn.Sequential(conv, pool)
    seen = []
    if variant == "hooked":
        conv.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    elif variant == "same-padding":
        conv.padding = "same"
    elif variant == "reflect":
        conv.padding_mode = "reflect"
    else:
        seq.append(nn.ReLU())
    x = torch.randn(2, 3, 2, 8, 8)
    fast = MultiStep(seq)(x)
    plain = MultiStep(seq)
    plain.fast = False
    torch.testing.assert_close(fast, plain(x))
    if variant == "hooked":
        assert len(seen) == 2


def test_multistep_conv_runs_channels_last_on_cpu_and_reshape_works():
    conv = MultiStep(nn.Conv2d(2, 4, 3))
    y = conv(torch.randn(3, 2, 2, 7, 7))
    assert y.shape == (3, 2, 4, 5, 5)
    assert y.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)
    flat = MultiStep(nn.Flatten())(y)
    assert torch.equal(flat, y.reshape(3, 2, -1))


def test_network_fast_equals_plain():
    """A conv-pool-LIF stack: every fast path at once gives the plain stack's spikes and gradients."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(2, 6, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 5)]
    weights = [p.detach().clone() * 6 for layer in layers for p in layer.parameters()]
    x = (torch.rand(5, 3, 2, 10, 10, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    outs = []
    for fast in (True, False):
        net = nn.Sequential(
            MultiStep(layers[0]),
            MultiStep(layers[1]),
            LIF(),
            MultiStep(layers[2]),
            MultiStep(layers[3]),
            LIF(),
        )
        with torch.no_grad():
            for p, w in zip(net.parameters(), weights):
                p.copy_(w)
        for m in net:
            m.fast = m.fused = fast
        net.zero_grad(set_to_none=True)
        out = net(x)
        (out * torch.arange(out.numel()).reshape(out.shape).sin()).sum().backward()
        outs.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    assert 0 < outs[1][0].mean() < 1
    assert torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- SpikingJelly, an independent implementation


def _sj_node(cls, reset: str, detach: bool, decay: bool):
    """SpikingJelly's multi-step node with our settings (scripts/bootstrap.py installs SpikingJelly)."""
    from spikingjelly.activation_based import neuron as sj_neuron
    from spikingjelly.activation_based import surrogate

    kw = dict(
        v_threshold=1.0,
        v_reset=RESETS[reset],
        surrogate_function=surrogate.ATan(alpha=2.0),
        detach_reset=detach,
        step_mode="m",
    )
    if cls is IF:
        node = sj_neuron.IFNode
    elif cls is LIF:
        node = sj_neuron.LIFNode
        kw.update(tau=3.0, decay_input=decay)
    else:
        node = sj_neuron.ParametricLIFNode
        kw.update(init_tau=2.5, decay_input=decay)
    if "backend" in inspect.signature(node.__init__).parameters:  # SpikingJelly < 2.0: pick its torch loop
        kw["backend"] = "torch"
    return node(**kw)


SJ_CASES = [
    (cls, reset, detach, decay)
    for cls, reset, detach, decay in itertools.product([IF, LIF, PLIF], RESETS, [False, True], [True, False])
    if not (cls is IF and not decay)
]


@pytest.mark.parametrize("cls,reset,detach,decay", SJ_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_same_spikes_as_spikingjelly(cls, reset, detach, decay):
    sj = _sj_node(cls, reset, detach, decay)
    ours = _neuron(cls, reset, detach, decay, "atan")
    x, grad = _inputs(11, shape=(12, 4, 3, 5))
    x = x * 1.5
    s_ours, gx_ours, _ = _run(ours, x, grad, fused=True)
    xr = x.clone().requires_grad_()
    s_sj = sj(xr)
    (s_sj * grad).sum().backward()
    assert 0.02 < s_ours.mean() < 0.98
    assert torch.equal(s_ours, s_sj.detach())
    _close(gx_ours, xr.grad)
