"""ActivityProbe against independent counts: hand counts, brute-force loops, thop, NeuroBench, and
the same network written in snnbench, snnTorch, SpikingJelly and Norse."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from snnbench.frameworks import reset_state
from snnbench.metrics import activity
from snnbench.metrics.activity import ActivityProbe, fanout_map
from snnbench.neurons import IF, LIF, PLIF, MultiStep

# ---------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True, params=["numba", "torch"])
def kernel_path(request, monkeypatch):
    """Every test runs on both counting paths: numba's one-pass CPU kernels and torch ops."""
    monkeypatch.setattr(activity, "USE_NUMBA", request.param == "numba")
    return request.param


def test_the_path_under_test_is_the_one_used(kernel_path):
    kernels = activity._cpu_kernels(torch.zeros(2, 3))
    assert (kernels is not None) == (kernel_path == "numba")  # numba ships with snnbench (via tonic)
    assert activity._cpu_kernels(torch.zeros(2, 3)[:, :2]) is None  # not row-contiguous: torch path


def run_probe(model: nn.Module, batches: list[torch.Tensor], probe: ActivityProbe | None = None):
    """The evaluator's loop; batches are [T, B, ...]. Returns (rows, probe)."""
    probe = probe or ActivityProbe()
    probe.attach(model, None)
    with torch.no_grad():
        for x in batches:
            reset_state(model)
            probe.before_batch(x.shape[1], x.shape[0])
            out = model(x)
            probe.after_batch(out)
    probe.detach()
    return probe.rows(), probe


def value(rows, metric, layer=None, timestep=None):
    found = [r for r in rows if r.metric == metric and r.layer == layer and r.timestep == timestep]
    assert len(found) == 1, f"{metric} layer={layer} timestep={timestep}: {len(found)} rows"
    return found[0].value


def has(rows, metric, layer=None):
    return any(r.metric == metric and r.layer == layer and r.timestep is None for r in rows)


class Seq(nn.Module):
    """Apply a per-sample module to [T, B, ...] (single call, t-major fold)."""

    def __init__(self, *mods):
        super().__init__()
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return _fold(self.body, x)


def _fold(mod, x):
    t, b = x.shape[:2]
    y = mod(x.reshape(t * b, *x.shape[2:]))
    return y.reshape(t, b, *y.shape[1:])


def _map_index(i: int, n: int, mode: str):
    """Where padded coordinate i reads from in an input of length n (None: a zero pad)."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    raise ValueError(mode)


def brute_conv(conv: nn.Module, x: torch.Tensor) -> tuple[list[float], list[float], int]:
    """Loop over every output element and every kernel tap: (synops per row, macs per row,
    dense taps per row). Integer-valued x counts |x| per connection, else (x != 0)."""
    w = conv.weight.detach()
    nd = x.dim() - 2
    spatial = x.shape[2:]
    k = w.shape[2:]
    pad = conv.padding
    if isinstance(pad, str):
        assert pad == "same" and all(s == 1 for s in conv.stride)
        total = [conv.dilation[d] * (k[d] - 1) for d in range(nd)]
        pad = tuple(t // 2 for t in total)  # torch puts the extra pad on the right
        right = tuple(total[d] - pad[d] for d in range(nd))
    else:
        right = pad
    out_shape = [
        (spatial[d] + pad[d] + right[d] - conv.dilation[d] * (k[d] - 1) - 1) // conv.stride[d] + 1
        for d in range(nd)
    ]
    groups = conv.groups
    cin_g, cout_g = w.shape[1], w.shape[0] // groups
    integral = bool(torch.equal(x, x.round()))
    syn, mac, dense = [], [], 0
    xs = x.tolist()
    ws = w.tolist()
    for n in range(x.shape[0]):
        count = 0.0
        dense = 0
        for co in range(w.shape[0]):
            g = co // cout_g
            for o in itertools.product(*(range(s) for s in out_shape)):
                for ci_l in range(cin_g):
                    ci = g * cin_g + ci_l
                    for kk in itertools.product(*(range(s) for s in k)):
                        dense += 1
                        pos = [o[d] * conv.stride[d] - pad[d] + kk[d] * conv.dilation[d] for d in range(nd)]
                        src = [_map_index(pos[d], spatial[d], conv.padding_mode) for d in range(nd)]
                        if any(s is None for s in src):
                            continue
                        wv = ws[co][ci_l]
                        for kd in kk:
                            wv = wv[kd]
                        if wv == 0:
                            continue
                        v = xs[n][ci]
                        for sd in src:
                            v = v[sd]
                        count += abs(v) if integral else float(v != 0)
        (syn if integral else mac).append(count)
        (mac if integral else syn).append(0.0)
    return syn, mac, dense


def brute_linear(lin: nn.Linear, rows: torch.Tensor) -> list[float]:
    """Per row: sum over input entries i and outputs o with W[o, i] != 0 of |x_i| (or 1)."""
    w = lin.weight.detach().tolist()
    integral = bool(torch.equal(rows, rows.round()))
    out = []
    for r in rows.tolist():
        c = 0.0
        for i, xi in enumerate(r):
            if xi == 0:
                continue
            for o in range(len(w)):
                if w[o][i] != 0:
                    c += abs(xi) if integral else 1.0
        out.append(c)
    return out


def one_layer(layer: nn.Module, x: torch.Tensor, steps: int = 1):
    """Run a single synaptic layer on [N, ...] (N = steps * B rows, t-major) through the probe."""
    model = Seq(layer)
    xb = x.reshape(steps, x.shape[0] // steps, *x.shape[1:])
    rows, probe = run_probe(model, [xb])
    return rows, probe


# ---------------------------------------------------------------------- hand counts


def test_linear_two_spikes_hand_count():
    lin = nn.Linear(4, 3, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 3.0, 1.0], [4.0, 5.0, 0.0, 6.0]]))
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])  # spikes at inputs 0 and 2
    rows, _ = one_layer(lin, x)
    # input 0 reaches outputs 0 and 2 (2 non-zero weights), input 2 reaches outputs 0 and 1 (2)
    assert value(rows, "synops_per_sample", "body.0") == 4
    assert value(rows, "synops_per_sample") == 4
    assert value(rows, "macs_per_sample") == 0
    assert value(rows, "dense_ops_per_sample") == 12  # 3 outputs x 4 inputs
    # a signed spike counts |x|; a non-integer input is a MAC per non-zero weight
    rows, _ = one_layer(lin, torch.tensor([[0.0, -1.0, 0.0, 1.0]]))
    assert value(rows, "synops_per_sample") == 1 + 2
    rows, _ = one_layer(lin, torch.tensor([[0.5, 0.0, 0.0, 2.0]]))
    assert value(rows, "synops_per_sample") == 0
    assert value(rows, "macs_per_sample") == 2 + 2


def test_padded_conv_one_spike_in_a_corner():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 0.5)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 0] = 1
    rows, _ = one_layer(conv, x)
    # the corner feeds the 2x2 outputs around it, in each of 2 output channels
    assert value(rows, "synops_per_sample") == 2 * 4
    assert value(rows, "dense_ops_per_sample") == 2 * 25 * 9  # padding taps included


def test_strided_dilated_grouped_hand_count():
    # Conv1d k=3, stride 2, padding 1 on L=5: output o reads inputs 2o-1, 2o, 2o+1
    conv = nn.Conv1d(1, 1, 3, stride=2, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    for pos, expected in ((0, 1), (1, 2), (2, 1), (3, 2), (4, 1)):
        x = torch.zeros(1, 1, 5)
        x[0, 0, pos] = 1
        rows, _ = one_layer(conv, x)
        assert value(rows, "synops_per_sample") == expected, pos
    # dilation 2, no padding, L=7: outputs o=0..2 read o, o+2, o+4; input 4 is read by o=0 and o=2
    conv = nn.Conv1d(1, 1, 3, dilation=2, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    for pos, expected in ((0, 1), (2, 2), (4, 2), (6, 1), (1, 1), (3, 1)):
        x = torch.zeros(1, 1, 7)
        x[0, 0, pos] = 1
        assert value(one_layer(conv, x)[0], "synops_per_sample") == expected, pos
    # all at once: groups=2 (channel c feeds output channel c only), stride 2, padding 2,
    # dilation 2 on L=5: output o reads 2o-2, 2o, 2o+2; odd inputs are never read
    conv = nn.Conv1d(2, 2, 3, stride=2, padding=2, dilation=2, groups=2, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    for pos, expected in ((0, 2), (1, 0), (2, 3), (3, 0), (4, 2)):
        x = torch.zeros(1, 2, 5)
        x[0, 1, pos] = 1
        assert value(one_layer(conv, x)[0], "synops_per_sample") == expected, pos
    # groups=2, 1x1: input channel 0 feeds output channels 0, 1 only; channel 3 feeds 2, 3
    conv = nn.Conv1d(4, 4, 1, groups=2, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    x = torch.zeros(1, 4, 3)
    x[0, 0, 1] = 1
    x[0, 3, 2] = 1
    assert value(one_layer(conv, x)[0], "synops_per_sample") == 2 + 2


def test_pruned_weights_change_the_fan_out_at_the_border():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    with torch.no_grad():
        conv.weight[0, 0, :, 0] = 0  # prune the left kernel column
    # input (0,0) is read by outputs (0,0),(0,1),(1,0),(1,1) through taps (1,1),(1,0),(0,1),(0,0):
    # the two taps in column 0 are pruned; input (0,4) uses taps in columns 1 and 2 only
    for pos, expected in (((0, 0), 2), ((0, 4), 4), ((2, 2), 6)):
        x = torch.zeros(1, 1, 5, 5)
        x[0, 0, pos[0], pos[1]] = 1
        assert value(one_layer(conv, x)[0], "synops_per_sample") == expected, pos
    rows, _ = one_layer(conv, torch.zeros(1, 1, 5, 5))
    assert value(rows, "dense_ops_per_sample") == 25 * 9  # dense counts ignore pruning


def test_sew_add_counts_feed_a_conv():
    class SewBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif_a, self.lif_b = IF(v_threshold=0.5), IF(v_threshold=0.5)
            self.conv = MultiStep(nn.Conv2d(1, 1, 3, padding=1, bias=False))
            nn.init.constant_(self.conv.module.weight, 1.0)

        def forward(self, x):
            return self.conv(self.lif_a(x) + self.lif_b(x))  # SEW ADD: values in {0, 1, 2}

    x = torch.zeros(1, 1, 1, 5, 5)
    x[0, 0, 0, 0, 0] = 1.0  # both neurons spike at the corner: the conv sees a 2 there
    x[0, 0, 0, 2, 2] = 1.0  # and a 2 in the middle
    rows, _ = run_probe(SewBlock(), [x])
    assert value(rows, "synops_per_sample") == 2 * 4 + 2 * 9
    assert value(rows, "macs_per_sample") == 0
    assert value(rows, "spikes_per_sample") == 4  # read at the two neurons, not again at the conv


# ---------------------------------------------------------------------- brute force


def _random_conv(g: torch.Generator):
    def pick(options):
        return options[int(torch.randint(len(options), (1,), generator=g))]

    while True:  # draw until the configuration is a valid conv for its input
        nd = pick([1, 2, 2, 3])
        groups = pick([1, 2])
        cin, cout = groups * pick([1, 2]), groups * pick([1, 2])
        k = tuple(pick([1, 2, 3]) for _ in range(nd))
        stride = tuple(pick([1, 2, 3]) for _ in range(nd))
        dilation = tuple(pick([1, 2]) for _ in range(nd))
        padding = tuple(pick([0, 1, 2]) for _ in range(nd))
        mode = pick(["zeros", "zeros", "reflect", "replicate", "circular"])
        size = tuple(pick([5, 6, 7]) if nd < 3 else pick([4, 5]) for _ in range(nd))
        cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd]
        conv = cls(
            cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode
        )
        try:
            conv(torch.zeros(1, cin, *size))
        except RuntimeError:
            continue
        with torch.no_grad():
            conv.weight.mul_(torch.rand(conv.weight.shape, generator=g) < 0.6)  # random pruning
        x = (torch.rand((2, cin, *size), generator=g) < 0.4).float()
        kind = pick(["binary", "signed", "counts", "analog"])
        if kind == "signed":
            x = x * torch.where(torch.rand(x.shape, generator=g) < 0.5, -1.0, 1.0)
        elif kind == "counts":
            x = x * torch.randint(1, 4, x.shape, generator=g)
        elif kind == "analog":
            x = x * torch.rand(x.shape, generator=g)
        return conv, x


@pytest.mark.parametrize("seed", range(10))
def test_random_convs_match_brute_force(seed):
    conv, x = _random_conv(torch.Generator().manual_seed(seed))
    n = x.shape[0]
    syn, mac, dense = brute_conv(conv, x)
    # T=1, B=2: per-sample values are the brute-force rows; odd seeds force one row per chunk
    rows, probe = run_probe(
        Seq(conv), [x.unsqueeze(0)], ActivityProbe(chunk_elements=1 if seed % 2 else None)
    )
    assert value(rows, "synops_per_sample") == sum(syn) / n
    assert value(rows, "macs_per_sample") == sum(mac) / n
    fan_in = conv.in_channels // conv.groups * math.prod(conv.kernel_size)
    assert value(rows, "dense_ops_per_sample") == conv(x)[0].numel() * fan_in == dense
    per = probe.per_sample()
    assert per["synops_per_sample"].tolist() == syn
    assert per["macs_per_sample"].tolist() == mac


def test_same_padding_and_channels_last_input():
    conv = nn.Conv2d(3, 4, (3, 2), padding="same", dilation=(1, 2), bias=False)
    with torch.no_grad():
        conv.weight.mul_(torch.rand(conv.weight.shape, generator=torch.Generator().manual_seed(3)) < 0.7)
    x = (torch.rand(2, 3, 6, 5, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    syn, _, _ = brute_conv(conv, x)
    seen = []

    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            y = x.reshape(-1, *x.shape[2:]).contiguous(memory_format=torch.channels_last)
            seen.append(y.stride())
            return self.conv(y)

    rows, _ = run_probe(ChannelsLast(), [x.unsqueeze(0)])
    assert seen[0][1] == 1  # the conv really got a channels-last tensor
    assert value(rows, "synops_per_sample") == sum(syn) / 2


def test_fanout_map_is_the_brute_force_fan_out():
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=1, groups=1, bias=False)
    with torch.no_grad():
        conv.weight.mul_(torch.rand(conv.weight.shape, generator=torch.Generator().manual_seed(5)) < 0.5)
    f = fanout_map(conv, (2, 5, 6))
    for c, i, j in itertools.product(range(2), range(5), range(6)):
        x = torch.zeros(1, 2, 5, 6)
        x[0, c, i, j] = 1
        assert f[c, i, j] == brute_conv(conv, x)[0][0]


@pytest.mark.parametrize("chunk", [None, 1])
def test_a_call_is_classified_as_a_whole(chunk):
    """One analog entry in the last row makes the whole call MACs, however it is chunked."""
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]))
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, -2.0, 1.0], [0.0, 0.0, 0.5]])  # [T*B] with T=3, B=1
    rows, _ = run_probe(Seq(lin), [x.unsqueeze(1)], ActivityProbe(chunk_elements=chunk))
    assert value(rows, "synops_per_sample") == 0
    assert value(rows, "macs_per_sample") == (2 + 1) + (1 + 1) + 1  # non-zero entries x fan-out
    rows, _ = run_probe(Seq(lin), [x[:2].unsqueeze(1)], ActivityProbe(chunk_elements=chunk))
    assert value(rows, "synops_per_sample") == (2 + 1) + (2 * 1 + 1)  # |x| x fan-out
    assert value(rows, "macs_per_sample") == 0


def test_sums_beyond_float32_integers_stay_exact():
    lin = nn.Linear(2, 3, bias=False)
    nn.init.constant_(lin.weight, 1.0)
    big = 16777215.0  # 2**24 - 1: exact in float32, but 3 * big is not
    rows, _ = one_layer(lin, torch.tensor([[big, 0.0]]))
    assert value(rows, "synops_per_sample") == 3 * 16777215
    # from 2**24 on every float32 is whole: such input is not spike counts but analog, hence MACs
    rows, _ = one_layer(lin, torch.tensor([[2.0**25, 0.0]]))
    assert (value(rows, "synops_per_sample"), value(rows, "macs_per_sample")) == (0, 3)


# ---------------------------------------------------------------------- peers


def test_dense_ops_equal_thop():
    import thop  # in the [test] extra: a missing install must fail, not skip

    torch.manual_seed(0)
    body = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1, bias=True),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3, stride=2, padding=2, dilation=2, groups=2),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
    )
    x = torch.rand(3, 2, 8, 8)
    ops, _ = thop.profile(body, inputs=(x,), verbose=False)
    rows, _ = run_probe(Seq(*body), [x.unsqueeze(0)])
    assert value(rows, "dense_ops_per_sample") * 3 == ops


def _neurobench_counts(net: nn.Module, x_tb: torch.Tensor, activation_modules=()):
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel
    from torch.utils.data import DataLoader, TensorDataset

    class BatchFirst(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.transpose(0, 1))

    data = x_tb.transpose(0, 1).contiguous()
    loader = DataLoader(TensorDataset(data, torch.zeros(len(data))), batch_size=len(data))
    model = TorchModel(BatchFirst(net))
    for a in activation_modules:
        model.add_activation_module(a)
    bench = Benchmark(model, loader, [], [], [[], [SynapticOperations, ActivationSparsity]])
    res = bench.run(quiet=True)
    model.cleanup_hooks()
    return res


def test_synops_equal_neurobench_effective_acs_and_macs():
    torch.manual_seed(1)
    snn = nn.Sequential(
        MultiStep(nn.Conv2d(2, 4, 3, padding=1)),
        LIF(tau=2.0),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(4 * 6 * 6, 5)),
        LIF(tau=2.0),
    )
    with torch.no_grad():
        snn[0].module.weight.mul_(4)
        snn[3].module.weight.mul_(3)
        snn[3].module.weight[:, ::3] = 0  # pruned columns
    x = (torch.rand(4, 3, 2, 6, 6) < 0.3).float()
    rows, _ = run_probe(snn, [x])
    nb = _neurobench_counts(snn, x, activation_modules=(LIF,))
    assert value(rows, "spikes_per_sample") > 0
    assert value(rows, "synops_per_sample") == nb["SynapticOperations"]["Effective_ACs"]
    assert value(rows, "macs_per_sample") == nb["SynapticOperations"]["Effective_MACs"] == 0
    assert value(rows, "firing_rate") == pytest.approx(1 - nb["ActivationSparsity"], rel=1e-12)
    # a direct-coded SNN: the first layer sees analog pixels, so it does effective MACs
    xa = torch.rand(4, 3, 2, 6, 6) * (torch.rand(4, 3, 2, 6, 6) < 0.5)
    rows, _ = run_probe(snn, [xa])
    nb = _neurobench_counts(snn, xa, activation_modules=(LIF,))
    assert value(rows, "macs_per_sample", "0.module") == nb["SynapticOperations"]["Effective_MACs"] > 0
    assert value(rows, "synops_per_sample") == nb["SynapticOperations"]["Effective_ACs"]


def test_ann_has_macs_and_no_spikes():
    torch.manual_seed(2)
    ann = Seq(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 5, 4))
    x = torch.rand(1, 2, 1, 5, 5)
    rows, _ = run_probe(ann, [x])
    conv, lin = ann.body[0], ann.body[3]
    _, mac_conv, _ = brute_conv(conv, x[0])
    hidden = torch.relu(conv(x[0])).flatten(1)
    expected = (sum(mac_conv) + sum(brute_linear(lin, hidden))) / 2
    assert value(rows, "macs_per_sample") == expected
    assert value(rows, "synops_per_sample") == 0
    assert value(rows, "spikes_per_sample") == 0
    assert value(rows, "neuron_updates_per_sample") == 0
    assert not has(rows, "firing_rate")


# ---------------------------------------------------------------------- frameworks


T, B = 4, 3


def _weights(seed: int):
    """Non-negative weights of 0 or 100, so every framework's neuron fires iff its input is > 0."""
    g = torch.Generator().manual_seed(seed)
    wc = 100.0 * (torch.rand(4, 2, 3, 3, generator=g) < 0.5).float()
    wl = 100.0 * (torch.rand(3, 4 * 6 * 6, generator=g) < 0.3).float()
    return wc, wl


def _layers(wc, wl):
    conv, fc = nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.Linear(4 * 6 * 6, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(wc)
        fc.weight.copy_(wl)
    return conv, fc


def snnbench_net(wc, wl):
    conv, fc = _layers(wc, wl)
    return nn.Sequential(MultiStep(conv), LIF(tau=2.0), MultiStep(nn.Flatten()), MultiStep(fc), LIF(tau=2.0))


def snntorch_net(wc, wl):
    import snntorch as snn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = _layers(wc, wl)
            self.lif1 = snn.Leaky(beta=0.5, reset_mechanism="zero")
            self.lif2 = snn.Leaky(beta=0.5, reset_mechanism="zero")

        def forward(self, x):
            mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
            out = []
            for t in range(x.shape[0]):
                spk1, mem1 = self.lif1(self.conv(x[t]), mem1)
                spk2, mem2 = self.lif2(self.fc(spk1.flatten(1)), mem2)
                out.append(spk2)
            return torch.stack(out)

    return Net()


def snntorch_hidden_net(wc, wl):
    """snnTorch's Sequential style: init_hidden keeps membranes in the modules across calls."""
    import snntorch as snn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            conv, fc = _layers(wc, wl)
            self.net = nn.Sequential(
                conv,
                snn.Leaky(beta=0.5, reset_mechanism="zero", init_hidden=True),
                nn.Flatten(),
                fc,
                snn.Leaky(beta=0.5, reset_mechanism="zero", init_hidden=True, output=True),
            )

        def forward(self, x):
            return torch.stack([self.net(x[t])[0] for t in range(x.shape[0])])

    return Net()


def spikingjelly_net(wc, wl):
    from spikingjelly.activation_based import layer, neuron

    net = nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1, bias=False, step_mode="m"),
        neuron.LIFNode(tau=2.0, step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(4 * 6 * 6, 3, bias=False, step_mode="m"),
        neuron.LIFNode(tau=2.0, step_mode="m"),
    )
    with torch.no_grad():
        net[0].weight.copy_(wc)
        net[3].weight.copy_(wl)
    return net


def spikingjelly_single_net(wc, wl):
    """SpikingJelly single-step neurons in a per-step loop: state lives in the modules."""
    from spikingjelly.activation_based import neuron

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = _layers(wc, wl)
            self.lif1, self.lif2 = neuron.LIFNode(tau=2.0), neuron.LIFNode(tau=2.0)

        def forward(self, x):
            out = [self.lif2(self.fc(self.lif1(self.conv(x[t])).flatten(1))) for t in range(x.shape[0])]
            return torch.stack(out)

    return Net()


def norse_net(wc, wl):
    from norse.torch import LIFBoxCell

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = _layers(wc, wl)
            self.lif1, self.lif2 = LIFBoxCell(), LIFBoxCell()

        def forward(self, x):
            s1 = s2 = None
            out = []
            for t in range(x.shape[0]):
                z1, s1 = self.lif1(self.conv(x[t]), s1)
                z2, s2 = self.lif2(self.fc(z1.flatten(1)), s2)
                out.append(z2)
            return torch.stack(out)

    return Net()


def norse_sequence_net(wc, wl):
    """Norse's sequence module (LIF with current dynamics), [T, B, ...] in, (spikes, state) out."""
    from norse.torch import LIF as NorseLIF

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = _layers(wc, wl)
            self.lif1, self.lif2 = NorseLIF(), NorseLIF()

        def forward(self, x):
            z1, _ = self.lif1(_fold(self.conv, x))
            z2, _ = self.lif2(_fold(self.fc, z1.flatten(2)))
            return z2

    return Net()


BUILDERS = {
    "snnbench": snnbench_net,
    "snntorch": snntorch_net,
    "snntorch-hidden": snntorch_hidden_net,
    "spikingjelly": spikingjelly_net,
    "spikingjelly-single": spikingjelly_single_net,
    "norse": norse_net,
}


def _record(model: nn.Module):
    """Independently of the probe: every spike tensor each neuron returned, and every input of
    the conv and the linear layer, as [rows, features] in call order."""
    from snnbench.frameworks import neuron_info

    rec = {"spikes": {}, "conv": [], "fc": []}
    handles = []
    names = {m: n for n, m in model.named_modules()}
    for m in model.modules():
        if neuron_info(m) is not None:

            def hook(mod, args, out, name=names[m]):
                s = out[0] if isinstance(out, tuple) else out
                rec["spikes"].setdefault(name, []).append(s.detach().clone())

            handles.append(m.register_forward_hook(hook))
        elif isinstance(m, nn.Conv2d):
            handles.append(
                m.register_forward_hook(lambda mod, a, o: rec["conv"].append(a[0].detach().clone()))
            )
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(lambda mod, a, o: rec["fc"].append(a[0].detach().clone())))
    return rec, handles


def _expected(rec, wc, wl, samples):
    conv, fc = _layers(wc, wl)
    conv_in = torch.cat([c.reshape(-1, *c.shape[-3:]) for c in rec["conv"]])
    fc_in = torch.cat([f.reshape(-1, f.shape[-1]) for f in rec["fc"]])
    syn_conv, mac_conv, _ = brute_conv(conv, conv_in)
    spikes = sum(int((s != 0).sum()) for calls in rec["spikes"].values() for s in calls)
    return {
        "spikes_per_sample": spikes / samples,
        "synops_per_sample": (sum(syn_conv) + sum(brute_linear(fc, fc_in))) / samples,
        "macs_per_sample": sum(mac_conv) / samples,
        "dense_ops_per_sample": T * (4 * 36 * 18 + 3 * 144),
        "neuron_updates_per_sample": T * (4 * 36 + 3),
    }


@pytest.fixture(scope="module")
def framework_inputs():
    g = torch.Generator().manual_seed(7)
    return [(torch.rand(T, B, 2, 6, 6, generator=g) < 0.15).float() for _ in range(2)]


@pytest.mark.parametrize("framework", [*BUILDERS, "norse-sequence"])
def test_each_framework_counts_its_own_spikes(framework, framework_inputs):
    wc, wl = _weights(11)
    build = BUILDERS.get(framework, norse_sequence_net)
    model = build(wc, wl)
    rec, handles = _record(model)
    rows, probe = run_probe(model, framework_inputs)
    for h in handles:
        h.remove()
    samples = B * len(framework_inputs)
    expected = _expected(rec, wc, wl, samples)
    for metric, v in expected.items():
        assert value(rows, metric) == v, metric
    assert probe.uncounted == []
    # per-timestep spikes from the recorded spikes, whatever the framework's layout
    per_t = torch.zeros(T)
    for calls in rec["spikes"].values():
        if len(calls) == len(framework_inputs):  # one [T, B, ...] call per batch
            for s in calls:
                per_t += (s != 0).reshape(T, -1).sum(1)
        else:  # one [B, ...] call per timestep
            for i, s in enumerate(calls):
                per_t[i % T] += (s != 0).sum()
    for t in range(T):
        assert value(rows, "spikes_per_sample", timestep=t + 1) == pytest.approx(
            float(per_t[t]) / samples, abs=1e-12
        )
    # layers are named by their qualified module name
    assert {r.layer for r in rows if r.metric == "neuron_updates_per_sample" and r.layer} == set(
        rec["spikes"]
    )


def test_identical_spikes_give_identical_counts(framework_inputs):
    wc, wl = _weights(12)
    results, spikes = {}, {}
    for name, build in BUILDERS.items():
        model = build(wc, wl)
        rec, handles = _record(model)
        rows, _ = run_probe(model, framework_inputs)
        for h in handles:
            h.remove()
        results[name] = {(r.metric, r.timestep): r.value for r in rows if r.layer is None}
        # the networks are built to spike identically: check that they did
        flat = [torch.cat([s.reshape(-1) for s in calls]) for calls in rec["spikes"].values()]
        spikes[name] = sorted(float(f.sum()) for f in flat)
    first = next(iter(results))
    assert results[first][("spikes_per_sample", None)] > 0
    for name in results:
        assert spikes[name] == spikes[first], name
        assert results[name] == results[first], name


def test_shapes_that_fit_two_layouts_follow_the_framework():
    """T == B == features: [T, B, F] and one step's [B, F, ...] look alike; the framework decides."""
    import snntorch as snn

    n = 3
    lin = nn.Linear(n, n, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]))

    class PerStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.lif = lin, snn.Leaky(beta=0.0)

        def forward(self, x):
            return torch.stack([self.lif(self.lin(x[t]))[0] for t in range(x.shape[0])])

    x = torch.zeros(n, n, n)  # [T, B, F]: sample b spikes at timestep 0 only, once per feature <= b
    for b in range(n):
        x[0, b, : b + 1] = 1.0
    for model in (PerStep(), nn.Sequential(MultiStep(lin), IF())):
        rows, probe = run_probe(model, [x])
        assert probe.per_sample()["spikes_per_sample"].tolist() == [1.0, 2.0, 3.0]
        assert [value(rows, "spikes_per_sample", timestep=t) for t in range(1, n + 1)] == [2.0, 0.0, 0.0]


def _fake_sinabs(name: str, squeeze: bool):
    """A class named and laid out like sinabs's IAF (input [B, T, ...], or [B*T, ...] for the
    *Squeeze variants), defined in a module called sinabs.layers: sinabs itself is not installed,
    and snnbench recognises it by name only."""

    def forward(self, x):
        if squeeze:
            x = x.reshape(self.batch_size, -1, *x.shape[1:])
        v = torch.zeros_like(x[:, 0]) if self.v is None else self.v
        out = []
        for t in range(x.shape[1]):
            v = v + x[:, t]
            s = (v >= 1.0).float()
            v = v - s
            out.append(s)
        self.v = v
        out = torch.stack(out, 1)
        return out.reshape(-1, *out.shape[2:]) if squeeze else out

    def reset_states(self):
        self.v = None

    def init(self, batch_size=None):
        nn.Module.__init__(self)
        self.batch_size, self.v = batch_size, None

    base = type("StatefulLayer", (nn.Module,), {"__module__": "sinabs.layers.stateful_layer",
                                                "reset_states": reset_states})  # fmt: skip
    return type(name, (base,), {"__module__": "sinabs.layers.iaf", "__init__": init, "forward": forward})


@pytest.mark.parametrize("squeeze", [False, True])
def test_sinabs_style_batch_major_neurons(squeeze):
    iaf = _fake_sinabs("IAFSqueeze" if squeeze else "IAF", squeeze)(batch_size=B)
    lin = nn.Linear(5, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.rand(4, 5, generator=torch.Generator().manual_seed(8)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.iaf = lin, iaf

        def forward(self, x):  # the harness gives [T, B, ...]; sinabs wants batch first
            xb = x.transpose(0, 1).contiguous()
            y = self.iaf(self.lin(xb.reshape(-1, 5)) if squeeze else self.lin(xb))
            return y.reshape(B, T, -1).transpose(0, 1)

    x = (torch.rand(T, B, 5, generator=torch.Generator().manual_seed(9)) < 0.6).float()
    net = Net()
    rows, probe = run_probe(net, [x, x])  # the same batch twice: reset_state must clear iaf.v
    with torch.no_grad():
        iaf.reset_states()
        s = net(x)  # [T, B, 4]
    assert probe.per_sample()["spikes_per_sample"].tolist() == (s != 0).sum((0, 2)).tolist() * 2
    for t in range(T):
        assert value(rows, "spikes_per_sample", timestep=t + 1) == float((s[t] != 0).sum()) / B
    assert value(rows, "neuron_updates_per_sample", "iaf") == T * 4


def test_reset_state_clears_each_instance_and_only_it():
    import snntorch as snn
    from spikingjelly.activation_based import neuron

    a = snn.Leaky(beta=0.5, init_hidden=True)
    other = snn.Leaky(beta=0.5, init_hidden=True)
    sj = neuron.LIFNode(tau=2.0)
    x = torch.full((2, 3), 0.7)
    with torch.no_grad():
        for m in (a, other, sj):
            m(x)
    kept = other.mem.clone()
    assert float(a.mem.abs().sum()) > 0 and float(sj.v.abs().sum()) > 0
    reset_state(nn.Sequential(a, sj))
    assert float(a.mem.abs().sum()) == 0
    assert float(torch.as_tensor(sj.v).abs().sum()) == 0
    assert torch.equal(other.mem, kept)  # no class-wide reset (snnTorch's reset_hidden touches all)


# ---------------------------------------------------------------------- fallback, per sample, time


def _spike_fn(x):
    return (x > 0.5).float()


class CustomSNN(nn.Module):
    """No recognised neuron: spikes from a hand-written function; one spike tensor feeds two layers."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 5, bias=False)
        self.fc2a = nn.Linear(5, 2, bias=False)
        self.fc2b = nn.Linear(5, 2, bias=False)
        for m in (self.fc1, self.fc2a, self.fc2b):
            nn.init.uniform_(m.weight, -1, 2)

    def forward(self, x):
        out = []
        for t in range(x.shape[0]):
            s = _spike_fn(self.fc1(x[t]))
            out.append(self.fc2a(s) + self.fc2b(s))
        return torch.stack(out)


def test_without_known_neurons_spikes_are_read_at_synaptic_inputs_once():
    torch.manual_seed(3)
    model = CustomSNN()
    x = (torch.rand(T, B, 6) < 0.5).float()
    rows, _ = run_probe(model, [x])
    with torch.no_grad():
        s = _spike_fn(model.fc1(x))
    assert value(rows, "spikes_per_sample") == float(s.sum()) / B  # input events are data, not spikes
    assert value(rows, "spikes_per_sample", "fc2a") == float(s.sum()) / B
    assert not has(rows, "spikes_per_sample", "fc2b")  # the same tensor is not counted twice
    assert not has(rows, "spikes_per_sample", "fc1")
    assert value(rows, "neuron_updates_per_sample") == T * 5
    expected = sum(brute_linear(model.fc1, x.reshape(-1, 6))) + 2 * 0
    for lin in (model.fc2a, model.fc2b):
        expected += sum(brute_linear(lin, s.reshape(-1, 5)))
    assert value(rows, "synops_per_sample") == expected / B


def test_signed_spikes_count_as_spikes():
    """A ternary spike function ({-1, 0, 1}): every non-zero entry is a spike, |x| a synop."""
    torch.manual_seed(5)
    fc1, fc2 = nn.Linear(4, 6, bias=False), nn.Linear(6, 3, bias=False)

    class Ternary(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = fc1, fc2

        def forward(self, x):
            s = torch.sign(torch.trunc(_fold(self.fc1, x)))  # -1, 0 or 1
            return _fold(self.fc2, s)

    x = torch.rand(T, B, 4) * 3
    rows, _ = run_probe(Ternary(), [x])
    with torch.no_grad():
        s = torch.sign(torch.trunc(fc1(x)))
    assert float((s < 0).sum()) > 0 and float((s > 0).sum()) > 0
    assert value(rows, "spikes_per_sample", "fc2") == float((s != 0).sum()) / B
    assert value(rows, "synops_per_sample", "fc2") == sum(brute_linear(fc2, s.reshape(-1, 6))) / B


def test_per_sample_stderr_and_uneven_batches():
    torch.manual_seed(4)
    model = nn.Sequential(MultiStep(nn.Linear(5, 4, bias=False)), IF(v_threshold=0.5))
    batches = [(torch.rand(T, 3, 5) < 0.4).float(), (torch.rand(T, 2, 5) < 0.4).float()]
    rows, _ = run_probe(model, batches)
    lin = model[0].module
    per_sample, spikes = [], []
    with torch.no_grad():
        for xb in batches:
            s = model(xb)
            for b in range(xb.shape[1]):
                per_sample.append(sum(brute_linear(lin, xb[:, b])))
                spikes.append(float(s[:, b].sum()))
    vals = torch.tensor(per_sample, dtype=torch.float64)
    row = next(r for r in rows if r.metric == "synops_per_sample" and r.layer is None)
    assert row.n == 5
    assert row.value == pytest.approx(float(vals.mean()), rel=1e-15)
    assert row.stderr == pytest.approx(float(vals.std() / math.sqrt(5)), rel=1e-12)
    rate = next(r for r in rows if r.metric == "firing_rate" and r.layer == "1")
    assert rate.value == pytest.approx(sum(spikes) / (5 * T * 4), rel=1e-12)


def test_plif_is_understood_and_lstm_attention_custom_are_uncounted():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.scale

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = MultiStep(nn.Linear(3, 3))
            self.bn = nn.BatchNorm1d(3)
            self.ln = nn.LayerNorm(3)
            self.plif = PLIF()
            self.lstm = nn.LSTM(3, 3)
            self.attn = nn.MultiheadAttention(3, 1)
            self.custom = Custom()

        def forward(self, x):
            y = self.plif(self.ln(self.fc(x)))
            y = y + self.lstm(y)[0] + self.attn(y, y, y)[0]
            t, b = y.shape[:2]
            return self.custom(self.bn(y.reshape(t * b, 3)).reshape(t, b, 3))

    rows, probe = run_probe(Model().eval(), [torch.rand(T, 2, 3)])
    # MultiheadAttention calls its out_proj's weights directly: that Linear never runs, so it is listed
    assert probe.uncounted == ["Custom", "LSTM", "MultiheadAttention", "NonDynamicallyQuantizableLinear"]
    assert has(rows, "spikes_per_sample", "plif")


def test_collectors_fail_loudly():
    class Odd(LIF):
        def forward(self, x):
            return {"spikes": super().forward(x)}

    with pytest.raises(TypeError, match="not a spike tensor"):
        run_probe(nn.Sequential(MultiStep(nn.Linear(3, 3)), Odd()), [torch.rand(T, 2, 3)])
    model = nn.Sequential(MultiStep(nn.Linear(3, 3)), LIF())
    probe = ActivityProbe()
    probe.attach(model, None)
    with pytest.raises(RuntimeError, match="before_batch"), torch.no_grad():
        model(torch.rand(T, 2, 3))  # no before_batch: B and T unknown
    with pytest.raises(RuntimeError, match="no batch"):
        probe.rows()  # nothing counted is an error, never a 0
    probe.before_batch(5, T)  # the batch really has 2 samples: cannot attribute
    with pytest.raises(ValueError, match="cannot attribute"), torch.no_grad():
        model(torch.rand(T, 2, 3))
    probe.detach()
    with pytest.raises(RuntimeError, match="already attached"):
        probe.attach(model, None)
        probe.attach(model, None)


def test_weights_changed_between_batches_are_noticed():
    lin = nn.Linear(3, 2, bias=False)
    nn.init.constant_(lin.weight, 1.0)
    model = Seq(lin)
    probe = ActivityProbe()
    probe.attach(model, None)
    x = torch.ones(1, 1, 3)
    with torch.no_grad():
        probe.before_batch(1, 1)
        model(x)
        probe.after_batch(None)
        lin.weight[0] = 0  # pruned in place: the fan-out halves
        probe.before_batch(1, 1)
        model(x)
        probe.after_batch(None)
    probe.detach()
    assert probe.per_sample()["synops_per_sample"].tolist() == [6.0, 3.0]
