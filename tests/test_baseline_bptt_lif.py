"""bptt_lif: the template's network under the default recipe, as a named baseline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

REPO = Path(__file__).resolve().parent.parent
SUB = REPO / "baselines" / "bptt_lif" / "submission.py"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.parent.name + "_sub", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny(task, n: int = 32, seed: int = 0) -> TrainingData:
    ds = load_split(task, "train").dataset
    return TrainingData(task, torch.utils.data.Subset(ds, range(n)), task.timesteps, seed)


@pytest.mark.parametrize("task_id", ["digits", "digits-dvs"])
def test_builds_trains_and_returns_t_b_c(task_id):
    sub = _load(SUB)
    task = get_task(task_id)
    torch.manual_seed(0)
    model = sub.build(task)
    data = _tiny(task)
    model = sub.train(model, task, data, Budget(epochs=1, batch_size=16))
    assert len(data.history) == 1
    x = torch.rand(task.timesteps, 3, *task.input_shape)
    assert sub.build(task)(x).shape == (task.timesteps, 3, task.outputs)
    assert sub.CITATION.startswith("@") and isinstance(sub.REPORTED, dict)


def test_is_exactly_the_template_network_and_the_default_recipe():
    """Same parameters as submissions/template.py (same seed gives the same weights), and train()
    gives the very same weights as snnbench.training.default_train."""
    sub, template = _load(SUB), _load(REPO / "submissions" / "template.py")
    task = get_task("digits")
    torch.manual_seed(3)
    a = sub.build(task)
    torch.manual_seed(3)
    b = template.build(task)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    from snnbench.training import default_train

    budget = Budget(epochs=1, batch_size=16)
    sub.train(a, task, _tiny(task), budget)
    default_train(b, task, _tiny(task), budget, progress=False)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


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
    fresh = _load(SUB).build(get_task("digits")).state_dict()
    assert set(state) == set(fresh)
    assert any(not torch.equal(state[k], fresh[k]) for k in fresh if fresh[k].is_floating_point())
