"""adcless_imc: R-row crossbar tiles read by 1-bit sense amplifiers, the STE, the progressive
schedule, and the harness path with the crossbar cards."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.metrics.footprint import footprint_rows
from snnbench.quantization import quantize
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUB = Path(__file__).resolve().parent.parent / "baselines" / "adcless_imc" / "submission.py"


def _load():
    spec = importlib.util.spec_from_file_location("adcless_sub", SUB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_linear_tiles_read_by_sense_amps_by_hand():
    sub = _load()
    torch.manual_seed(0)
    lin = sub.CrossbarLinear(10, 3, rows=4, bits=4)  # tiles: inputs 0-3, 4-7, 8-9
    assert lin.tiles == 3
    with torch.no_grad():
        lin.xbar_scale.copy_(torch.tensor([0.5, 2.0, 3.0]))
        lin.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    lin.aware.fill_(True)
    lin.eval()
    x = (torch.rand(5, 10) < 0.5).float()
    w = quantize(lin.weight.detach(), 4)
    steps = torch.round(w / (w.abs().max() / 7)).long()  # integer weight levels: exact partial sums
    want = torch.zeros(5, 3)
    for b in range(5):
        for o in range(3):
            for k, (lo, hi) in enumerate(((0, 4), (4, 8), (8, 10))):
                p = sum(int(x[b, i]) * int(steps[o, i]) for i in range(lo, hi))
                want[b, o] += lin.xbar_scale[k].item() * (1.0 if p > 0 else -1.0)
            want[b, o] += lin.bias[o].item()
    assert torch.allclose(lin(x), want, atol=1e-6)
    lin.aware.fill_(False)  # not aware: the exact sum (an ideal ADC)
    assert torch.allclose(lin(x), x @ w.T + lin.bias, atol=1e-6)


def test_conv_tiles_match_an_unfold_computation():
    sub = _load()
    torch.manual_seed(1)
    conv = sub.CrossbarConv2d(3, 4, 3, rows=8, bits=4, padding=1, bias=False)  # fan-in 27 -> 4 tiles
    assert conv.tiles == math.ceil(27 / 8) == 4
    with torch.no_grad():
        conv.xbar_scale.copy_(torch.tensor([1.0, 0.5, 0.25, 2.0]))
    conv.aware.fill_(True)
    conv.eval()
    x = (torch.rand(2, 3, 5, 5) < 0.4).float()
    w = quantize(conv.weight.detach(), 4).flatten(1)  # [4, 27] in (c, kh, kw) order
    w = torch.round(w / (w.abs().max() / 7)).double()  # integer levels: exact partial sums
    cols = nn.functional.unfold(x, 3, padding=1).double()  # [2, 27, 25]
    want = torch.zeros(2, 4, 25)
    for k in range(4):
        p = torch.einsum("on,bnl->bol", w[:, 8 * k : 8 * k + 8], cols[:, 8 * k : 8 * k + 8])
        want += conv.xbar_scale[k].item() * (2 * (p > 0).float() - 1)
    assert torch.allclose(conv(x), want.view(2, 4, 5, 5), atol=1e-6)


def test_sense_amp_ste_and_calibration():
    sub = _load()
    p = torch.tensor([-2.0, -0.5, 0.3, 0.9, 1.5], requires_grad=True)
    s = sub.sense_amp(p, torch.tensor(1.0))
    assert s.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]  # the bit [p > 0] read as +-1
    s.sum().backward()
    assert p.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # 1/a inside |p| <= a
    lin = sub.CrossbarLinear(4, 2, rows=2)
    parts = torch.tensor([[[1.0, -1.0], [3.0, 0.0]], [[2.0, 5.0], [-4.0, -1.0]]])  # [B=2, tiles=2, out=2]
    lin.calibrate_(parts, -2)
    assert torch.equal(lin.xbar_scale.detach(), torch.tensor([(1 + 1 + 2 + 5) / 4, (3 + 0 + 4 + 1) / 4]))


def test_schedule_and_training_end_aware_with_4_bit_weights():
    sub = _load()
    assert sub.phases(10, 3) == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert sub.phases(10, 3, "all") == [0] * 4 + [3] * 6
    task = get_task("digits-dvs")
    torch.manual_seed(0)
    model = sub.build(task)
    assert [m.tiles for m in model.crossbars()] == [1, 2, 4]  # fan-in 18, 72, 256 at R=64
    ds = torch.utils.data.Subset(load_split(task, "train").dataset, range(24))
    data = TrainingData(task, ds, task.timesteps, 0)
    sub.train(model, task, data, Budget(epochs=2, batch_size=12))
    assert [h["aware_layers"] for h in data.history] == [0, 1]
    assert all(bool(m.aware) for m in model.crossbars())  # deployed as the hardware reads
    assert all(m.weight.unique().numel() <= 15 for m in model.crossbars())  # frozen 4-bit
    x = torch.rand(task.timesteps, 3, *task.input_shape).round()
    assert model(x).shape == (task.timesteps, 3, task.outputs)
    shapes = {(r.metric, r.layer): r.value for r in footprint_rows(model) if r.layer}
    assert shapes[("layer_fan_in", "fc")] == 256 and shapes[("layer_fan_in", "block2.0.module")] == 72
    fresh = sub.build(task)
    fresh.load_state_dict(model.state_dict())  # aware flags, scales and bits travel in the checkpoint
    assert all(bool(m.aware) for m in fresh.crossbars())
    fresh.eval()
    model.eval()
    assert torch.equal(fresh(x), model(x))
    assert sub.CITATION.startswith("@article") and isinstance(sub.REPORTED, dict)


def test_cli_train_and_evaluate_end_to_end(tmp_path):
    """One epoch, then evaluate (--limit 32) into a temporary store: the crossbar cards are stored
    and the ADC-less card is the cheaper and faster one."""
    ckpt = tmp_path / "c.pt"
    model = str(SUB)
    args = ["train", "--task", "digits-dvs", "--model", model, "--out", str(ckpt), "--epochs", "1", "--quiet"]
    assert main(args) == 0
    store = tmp_path / "store"
    args = ["evaluate", "--task", "digits-dvs", "--model", model, "--checkpoint", str(ckpt), "--quiet"]
    assert main(args + ["--limit", "32", "--store", str(store)]) == 0
    assert pd.read_parquet(store / "runs").iloc[0].status == "ok"
    m = pd.read_parquet(store / "metrics")
    total = m[m.layer.isna() & m.timestep.isna()]
    e = dict(zip(total[total.metric == "energy_uj_per_sample"].condition, total.value))
    t = dict(zip(total[total.metric == "crossbar_latency_ns_per_sample"].condition, total.value))
    assert e["imc-adcless-r64"] < e["imc-adc6-r64"] and t["imc-adcless-r64"] < t["imc-adc6-r64"]
