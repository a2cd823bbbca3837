"""sew_resnet: the SEW connect functions, the exact identity of a silent ADD/IAND branch, the
plain Spiking ResNet control, and the harness path."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.neurons import IF, PLIF
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

SUB = Path(__file__).resolve().parent.parent / "baselines" / "sew_resnet" / "submission.py"


def _load():
    spec = importlib.util.spec_from_file_location("sew_resnet_sub", SUB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("task_id", "cell"), [("digits", IF), ("digits-dvs", PLIF)])
def test_builds_trains_and_returns_t_b_c(task_id, cell):
    sub = _load()
    task = get_task(task_id)
    torch.manual_seed(0)
    model = sub.build(task, blocks=2, width=4)
    neurons = [m for m in model.modules() if isinstance(m, (IF, PLIF))]
    assert neurons and all(type(m) is cell and m.surrogate == "atan" for m in neurons)
    ds = torch.utils.data.Subset(load_split(task, "train").dataset, range(16))
    data = TrainingData(task, ds, task.timesteps, 0)
    before = [p.detach().clone() for p in model.parameters()]
    sub.train(model, task, data, Budget(epochs=1, batch_size=8))
    assert len(data.history) == 1
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    x = torch.rand(task.timesteps, 3, *task.input_shape)
    assert model(x).shape == (task.timesteps, 3, task.outputs)
    assert sub.CITATION.startswith("@inproceedings") and isinstance(sub.REPORTED, dict)
    assert isinstance(sub.build(task), sub.SEWResNet)  # defaults build too


def test_connect_functions_truth_table():
    sub = _load()
    s = torch.tensor([0.0, 0.0, 1.0, 1.0])
    a = torch.tensor([0.0, 1.0, 0.0, 1.0])
    assert sub.sew("ADD", s, a).tolist() == [0, 1, 1, 2]
    assert sub.sew("AND", s, a).tolist() == [0, 0, 0, 1]
    assert sub.sew("IAND", s, a).tolist() == [0, 1, 0, 0]  # A and not S
    with pytest.raises(ValueError):
        sub.sew("OR", s, a)


def _silence(block):
    with torch.no_grad():
        block.last_bn().weight.zero_()
        block.last_bn().bias.zero_()


@pytest.mark.parametrize("g", ["ADD", "IAND"])
@pytest.mark.parametrize("events", [False, True])
def test_silent_branch_makes_add_and_iand_blocks_exact_identities(g, events):
    sub = _load()
    torch.manual_seed(2)
    block = sub.Block(6, 6, 1, g, events)
    _silence(block)
    for train_mode in (True, False):
        block.train(train_mode)
        a = (torch.rand(5, 3, 6, 8, 8) < 0.4).float()
        if g == "ADD":
            a = a + (torch.rand_like(a) < 0.2).float()  # ADD blocks also pass integer counts
        assert torch.equal(block(a), a)
    # ... and the branch is really silent then, not trivially so before (train mode: batch stats)
    fresh = sub.Block(6, 6, 1, g, events).train()
    a = (torch.rand(5, 3, 6, 8, 8) < 0.4).float()
    assert not torch.equal(fresh(a), a)


def test_and_block_is_not_an_identity_with_a_silent_branch():
    sub = _load()
    block = sub.Block(4, 4, 1, "AND", False).eval()
    _silence(block)
    a = (torch.rand(3, 2, 4, 8, 8) < 0.5).float()
    assert torch.equal(block(a), torch.zeros_like(a))


def test_a_deep_silent_add_network_passes_the_stem_spikes_through_its_first_stage():
    sub = _load()
    task = get_task("digits")
    torch.manual_seed(3)
    model = sub.build(task, g="ADD", blocks=16, width=4).eval()
    for block in model.blocks:
        _silence(block)
    x = torch.rand(4, 2, *task.input_shape)
    stem = model.stem(x)
    first_stage = model.blocks[:8](stem)
    assert torch.equal(first_stage, stem)


def test_plain_block_spikes_after_the_add_and_sew_add_emits_integers():
    sub = _load()
    torch.manual_seed(4)
    plain = sub.Block(4, 8, 2, "plain", False)
    assert isinstance(plain.branch[-1], nn.Module) and not isinstance(plain.branch[-1], IF)
    a = (torch.rand(4, 3, 4, 8, 8) < 0.5).float()
    out = plain(a)
    assert out.shape == (4, 3, 8, 4, 4) and set(out.unique().tolist()) <= {0.0, 1.0}
    add = sub.Block(4, 4, 1, "ADD", False)
    with torch.no_grad():
        add.last_bn().weight.zero_()
        add.last_bn().bias.fill_(3.0)  # the branch fires at every step
    out = add(a)
    assert torch.equal(out, a + 1)


def test_cli_train_and_evaluate_end_to_end(tmp_path):
    """snnbench train (1 epoch) then evaluate (--limit 32) into a temporary store: the run is ok,
    the checkpoint is trained weights that load into build(task), activity is counted."""
    ckpt = tmp_path / "c.pt"
    model = str(SUB)
    assert (
        main(["train", "--task", "digits", "--model", model, "--out", str(ckpt), "--epochs", "1", "--quiet"])
        == 0
    )
    store = tmp_path / "store"
    args = ["evaluate", "--task", "digits", "--model", model, "--checkpoint", str(ckpt), "--quiet"]
    assert main(args + ["--limit", "32", "--store", str(store)]) == 0
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and run.checkpoint_sha256
    m = pd.read_parquet(store / "metrics")
    overall = m.condition.isna() & m.timestep.isna() & m.layer.isna()
    acc = float(m[(m.metric == "accuracy") & overall].value.iloc[0])
    assert 0.0 <= acc <= 1.0
    assert float(m[(m.metric == "spikes_per_sample") & overall].value.iloc[0]) > 0
    state = torch.load(ckpt, weights_only=True)
    torch.manual_seed(0)
    fresh = _load().build(get_task("digits")).state_dict()
    assert set(state) == set(fresh)
    assert any(not torch.equal(state[k], fresh[k]) for k in fresh if fresh[k].is_floating_point())
