"""tcl_conversion: shapes, the learned clip becomes the IF threshold, the L2 pull, and the harness."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.conversion import TrainableClip
from snnbench.data import load_split
from snnbench.neurons import IF
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

PATH = Path(__file__).resolve().parent.parent / "baselines" / "tcl_conversion" / "submission.py"
spec = importlib.util.spec_from_file_location("tcl_conversion_submission", PATH)
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)

TASK = get_task("digits")


def _data(n: int = 48) -> TrainingData:
    return TrainingData(TASK, Subset(load_split(TASK, "train").dataset, range(n)), TASK.timesteps, 0)


def test_builds_a_converted_snn_with_spiking_inputs_to_hidden_synapses():
    torch.manual_seed(0)
    model = sub.build(TASK)
    for t in (4, 32):
        assert model(torch.rand(t, 3, 1, 8, 8)).shape == (t, 3, 10)
    layers = list(model.snn.net)
    ifs = [i for i, m in enumerate(layers) if isinstance(m, IF)]
    assert len(ifs) == 2 and all(layers[i].v_reset is None and layers[i].v_threshold == 1.0 for i in ifs)
    # pooling sits before each IF, so the next synaptic layer reads spikes (SynOps, not MACs)
    for i in ifs[:-1]:
        assert isinstance(layers[i + 1].module, nn.Conv2d)
    assert model.clips.shape == (2,) and "clips" in model.state_dict()
    assert isinstance(sub.CITATION, str) and "Ho" in sub.CITATION and sub.REPORTED


def test_l2_penalty_pulls_every_clip_below_its_init():
    torch.manual_seed(1)
    net = sub.ann(TASK)
    sub.train_ann(net, _data(), Budget(epochs=1, lr=1e-3, batch_size=16))
    clips = [float(m.clip.detach()) for m in net if isinstance(m, TrainableClip)]
    assert all(c < sub.CLIP_INIT for c in clips), clips
    # without the penalty and with the clips out of reach of the activations, they would not move down
    torch.manual_seed(1)
    free = sub.ann(TASK)
    sub.train_ann(free, _data(), Budget(epochs=1, lr=1e-3, batch_size=16), l2=0.0)
    assert all(float(m.clip.detach()) >= sub.CLIP_INIT - 1e-6 for m in free if isinstance(m, TrainableClip))


def test_learned_clip_is_the_threshold_after_bn_folding():
    torch.manual_seed(2)
    model = sub.build(TASK)
    data = _data()
    captured = {}
    original = sub.ann

    def spy(task, clip=True):
        captured["net"] = original(task, clip)
        return captured["net"]

    sub.ann = spy
    try:
        sub.train(model, TASK, data, Budget(epochs=1, lr=1e-3, batch_size=16))
    finally:
        sub.ann = original
    net = captured["net"]
    lam = [float(m.clip.detach()) for m in net if isinstance(m, TrainableClip)]
    torch.testing.assert_close(model.clips, torch.tensor(lam))
    # first conv: w * gamma / sqrt(var + eps) / lambda_0 (analog input, lambda_in = 1)
    conv, bn = net[0], net[1]
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    want = conv.weight.detach() * scale.reshape(-1, 1, 1, 1) / lam[0]
    torch.testing.assert_close(model.snn.net[0].module.weight, want)
    # second conv: scaled by lambda_0 / lambda_1
    conv2, bn2 = net[4], net[5]
    scale2 = bn2.weight.detach() / torch.sqrt(bn2.running_var + bn2.eps)
    want2 = conv2.weight.detach() * scale2.reshape(-1, 1, 1, 1) * lam[0] / lam[1]
    convs = [m.module for m in model.snn.net if hasattr(m, "module") and isinstance(m.module, nn.Conv2d)]
    torch.testing.assert_close(convs[1].weight, want2)
    # the SNN's rate output approaches the clipped ANN as T grows
    x = torch.stack([torch.as_tensor(data.dataset[i][0]) for i in range(16)]).float()
    with torch.no_grad():
        ref = net(x)
        err = [float((model(x.expand(t, *x.shape)).mean(0) - ref).abs().max()) for t in (8, 64, 512)]
    assert err[2] < min(err[0], err[1]) / 4, err
    assert len(data.history) == 1 and {"clip_0", "clip_1"} <= set(data.history[0])
    assert not model.training


def test_trains_and_evaluates_through_the_harness(tmp_path):
    ckpt = tmp_path / "tcl.pt"
    assert (
        main(
            [
                "train",
                "--task",
                "digits",
                "--model",
                str(PATH),
                "--epochs",
                "1",
                "--out",
                str(ckpt),
                "--quiet",
            ]
        )
        == 0
    )
    args = ["evaluate", "--task", "digits", "--model", str(PATH), "--checkpoint", str(ckpt), "--quiet"]
    assert main([*args, "--limit", "32", "--store", str(tmp_path / "s")]) == 0
    run = pd.read_parquet(tmp_path / "s" / "runs").iloc[0]
    assert run.status == "ok" and run.method == "tcl_conversion" and int(run.timesteps) == sub.TIMESTEPS
    metrics = pd.read_parquet(tmp_path / "s" / "metrics")
    synops = metrics[(metrics.metric == "synops_per_sample") & metrics.layer.isna()].value
    assert float(synops.iloc[0]) > 0  # the hidden layers read spikes
