"""tinysnn: quantized weights and potentials, the PTQ/QAT search, the smallest-within-tolerance
selector, and the harness path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.quantization import QuantLIF, QuantLinear, quant_bytes
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUB = Path(__file__).resolve().parent.parent / "baselines" / "tinysnn" / "submission.py"


def _load():
    spec = importlib.util.spec_from_file_location("tinysnn_sub", SUB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task_id", ["digits", "digits-dvs"])
def test_builds_trains_selects_and_returns_t_b_c(task_id):
    sub = _load()
    task = get_task(task_id)
    torch.manual_seed(0)
    model = sub.build(task)
    ds = torch.utils.data.Subset(load_split(task, "train").dataset, range(40))
    data = TrainingData(task, ds, task.timesteps, 0)
    sub.train(model, task, data, Budget(epochs=2, batch_size=16))
    epochs = [h for h in data.history if "epoch" in h]
    assert [h["epoch"] for h in epochs] == [1, 2]  # 1 full precision + 1 QAT: the budget exactly
    sel = next(h for h in data.history if "selection" in h)
    schemes = {(c["bits"], c["scheme"]) for c in sel["selection"]}
    assert schemes == {(0, "fp32"), (16, "ptq"), (8, "ptq"), (6, "ptq"), (4, "ptq"), (4, "qat")}
    assert int(model.fc1.weight_bits) == sel["chosen"]["bits"] == int(model.lif.potential_bits)
    assert quant_bytes(model) == sel["chosen"]["bytes"]
    x = torch.rand(task.timesteps, 3, *task.input_shape)
    assert model(x).shape == (task.timesteps, 3, task.outputs)
    assert sub.CITATION.startswith("@article") and isinstance(sub.REPORTED, dict)


def test_selector_is_the_smallest_within_tolerance():
    sub = _load()
    c = [
        {"bits": 0, "scheme": "fp32", "val_accuracy": 0.90, "bytes": 400},
        {"bits": 8, "scheme": "ptq", "val_accuracy": 0.895, "bytes": 100},
        {"bits": 6, "scheme": "ptq", "val_accuracy": 0.889, "bytes": 75},  # 1.1 points down: out
        {"bits": 4, "scheme": "ptq", "val_accuracy": 0.80, "bytes": 50},
    ]
    assert sub.select(c, 0.01)["bits"] == 8
    assert sub.select(c, 0.2)["bits"] == 4
    assert (
        sub.select(c + [{"bits": 4, "scheme": "qat", "val_accuracy": 0.893, "bytes": 50}], 0.01)["scheme"]
        == "qat"
    )
    # equal bytes: the more accurate wins
    tie = c[:1] + [{"bits": 4, "scheme": "ptq", "val_accuracy": 0.895, "bytes": 50},
                   {"bits": 4, "scheme": "qat", "val_accuracy": 0.899, "bytes": 50}]  # fmt: skip
    assert sub.select(tie, 0.01)["scheme"] == "qat"
    assert sub.select(c[:1] + [dict(c[3])], 0.0)["bits"] == 0  # none within: full precision


def test_quantized_copy_is_ptq_of_weights_and_potentials():
    sub = _load()
    task = get_task("digits")
    torch.manual_seed(1)
    model = sub.build(task)
    q = sub.quantized_copy(model, 4)
    w = model.fc1.weight.detach()
    s = w.abs().max() / 7
    assert torch.allclose(q.fc1.weight, torch.clamp(torch.round(w / s), -7, 7) * s, atol=1e-7)
    assert int(q.lif.potential_bits) == 4 and int(model.lif.potential_bits) == 0  # the original untouched
    assert isinstance(q.lif, QuantLIF) and isinstance(q.fc2, QuantLinear)
    # bytes: 64x128 + 128x10 weights at 4 bits, one float32 scale per layer, no biases
    assert quant_bytes(q) == (64 * 128 + 128 * 10) // 2 + 2 * 4
    assert quant_bytes(model) == (64 * 128 + 128 * 10) * 4
    # the checkpoint carries the chosen widths
    fresh = sub.build(task)
    fresh.load_state_dict(q.state_dict())
    x = torch.rand(4, 5, 1, 8, 8)
    assert torch.equal(fresh(x), q(x))


def test_cli_train_and_evaluate_end_to_end(tmp_path):
    """snnbench train (2 epochs) then evaluate (--limit 32) into a temporary store: param_bytes is
    the selected model's quantized size, and the crossbar cards are stored."""
    ckpt = tmp_path / "c.pt"
    model = str(SUB)
    args = ["train", "--task", "digits", "--model", model, "--out", str(ckpt), "--epochs", "2", "--quiet"]
    assert main(args) == 0
    store = tmp_path / "store"
    args = ["evaluate", "--task", "digits", "--model", model, "--checkpoint", str(ckpt), "--quiet"]
    assert main(args + ["--limit", "32", "--store", str(store)]) == 0
    assert pd.read_parquet(store / "runs").iloc[0].status == "ok"
    m = pd.read_parquet(store / "metrics")
    total = m[m.layer.isna() & m.timestep.isna()]
    fresh = _load().build(get_task("digits"))
    fresh.load_state_dict(torch.load(ckpt, weights_only=True))
    stored = float(total[total.metric == "param_bytes"].value.iloc[0])
    assert stored == quant_bytes(fresh) and stored < (64 * 128 + 128 * 10) * 4
    assert {"imc-adcless-r64", "imc-adc6-r64"} <= set(total[total.metric == "energy_uj_per_sample"].condition)
