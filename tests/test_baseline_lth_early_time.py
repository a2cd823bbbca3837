"""lth_early_time: the ET choice of T', event re-binning, IMP rounds with rewinding to a 90% ticket,
Early-Bird stopping, and the harness path (weight_sparsity of the stored run)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from snnbench import pruning
from snnbench.cli import main
from snnbench.data import load_split
from snnbench.metrics.footprint import footprint_rows
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, checkpoint_bytes

SUB = Path(__file__).resolve().parent.parent / "baselines" / "lth_early_time" / "submission.py"


def _load():
    spec = importlib.util.spec_from_file_location("lth_early_time_sub", SUB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny(task, n=24):
    ds = torch.utils.data.Subset(load_split(task, "train").dataset, range(n))
    return TrainingData(task, ds, task.timesteps, 0)


@pytest.mark.parametrize("task_id", ["digits", "digits-dvs"])
def test_builds_and_returns_t_b_c_with_mask_buffers(task_id):
    sub = _load()
    task = get_task(task_id)
    model = sub.build(task)
    x = torch.rand(task.timesteps, 3, *task.input_shape)
    assert model(x).shape == (task.timesteps, 3, task.outputs)
    masks = pruning.masks_from_buffers(model)
    assert len(masks) == 3 and all(bool(m.all()) for m in masks.values())
    assert sub.CITATION.startswith("@inproceedings") and isinstance(sub.REPORTED, dict)


def test_event_frames_are_rebinned_into_longer_bins_and_direct_input_is_cut():
    sub = _load()
    x = torch.arange(10 * 2 * 3, dtype=torch.float32).view(10, 2, 3)
    y = sub.shorten(x, 4, frames=True)  # bins of 3, 3, 2, 2 frames (tensor_split)
    expect = np.stack([x[0:3].sum(0), x[3:6].sum(0), x[6:8].sum(0), x[8:10].sum(0)])
    assert np.array_equal(y.numpy(), expect)
    assert float(y.sum()) == float(x.sum())  # every event counted once
    assert torch.equal(sub.shorten(x, 2, frames=False), x[:2])
    assert sub.shorten(x, 10, frames=True) is x


class FixedLogits(nn.Module):
    """Returns fixed per-timestep logits L[:T'] for an input of T' steps (T' read from x)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x):
        return self.logits[: x.shape[0]]


def test_early_time_rule_matches_a_direct_kl_computation():
    sub = _load()
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, 3, generator=g) * torch.tensor([4.0, 2.0, 1.0, 1.0]).view(4, 1, 1)
    model = FixedLogits(logits)
    t_et, norm = sub.choose_early_time(model, torch.zeros(4, 5, 1), frames=False)
    p = torch.softmax(logits.mean(0), 1).numpy().astype(np.float64)
    kls = []
    for t in (1, 2, 3):
        q = torch.softmax(logits[:t].mean(0), 1).numpy().astype(np.float64)
        kls.append(float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))))
    expect = [k / max(kls) for k in kls]
    assert norm == pytest.approx(expect, rel=1e-4)
    below = [t for t, n in zip((1, 2, 3), expect) if n < sub.ET_KL_THRESHOLD]
    assert t_et == (below[0] if below else 4)
    # a network whose output does not depend on T gives no evidence: keep the full T
    flat = FixedLogits(torch.ones(4, 5, 3))
    assert sub.choose_early_time(flat, torch.zeros(4, 5, 1), frames=False)[0] == 4


def test_et_imp_search_prunes_to_90_percent_rewinds_and_uses_t_et(monkeypatch):
    sub = _load()
    task = get_task("digits")
    torch.manual_seed(0)
    model = sub.build(task)
    data = _tiny(task, 12)
    monkeypatch.setattr(sub, "choose_early_time", lambda m, x, frames: (2, [1.0, 0.1, 0.05]))
    snaps = []
    real_snapshot = pruning.snapshot
    monkeypatch.setattr(sub.pruning, "snapshot", lambda m: snaps.append(real_snapshot(m)) or snaps[-1])
    schedule = pruning.imp_schedule(0.9, sub.PRUNE_RATE)
    assert len(schedule) == 8  # 25% per round: 0.75**8 = 0.1001
    monkeypatch.setattr(sub.pruning, "imp_schedule", lambda target, rate: [schedule[0], schedule[4], target])
    tr = sub.Trainer(model, task, data, Budget(epochs=12, batch_size=12))
    masks, info = sub.search_ticket(tr, early_time=True, round_epochs=3)
    assert [r["sparsity"] for r in info["rounds"]] == [schedule[0], schedule[4], 0.9]
    # round 1: REWIND_EPOCH epochs at T=4, then T_ET=2; later rounds all at T_ET=2
    assert info["rounds"][0]["timestep_epochs"] == sub.REWIND_EPOCH * 4 + (3 - sub.REWIND_EPOCH) * 2
    assert all(r["timestep_epochs"] == 3 * 2 for r in info["rounds"][1:])
    assert info["search_timestep_epochs"] == tr.timestep_epochs
    total = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.9 * total)
    rewind_to = snaps[1]  # [0] = at the call (init), [1] = late rewinding point after REWIND_EPOCH
    for name, layer in pruning.synaptic_layers(model).items():
        assert torch.equal(layer.weight.detach(), rewind_to[f"{name}.weight"] * masks[name])


def test_early_bird_round_stops_when_the_mask_settles(monkeypatch):
    sub = _load()
    task = get_task("digits")
    torch.manual_seed(1)
    model = sub.build(task)
    tr = sub.Trainer(model, task, _tiny(task, 12), Budget(epochs=12, batch_size=12))
    seq = iter([False, False, True])
    monkeypatch.setattr(sub.pruning.EarlyBird, "update", lambda self, masks: next(seq))
    masks, info = sub.early_bird_ticket(tr, early_time=False, max_epochs=12)
    assert info["epochs"] == sub.REWIND_EPOCH + 3  # stopped on the third EB check, not after 12
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.9 * 6032)


def test_train_gives_a_90_percent_ticket_whose_mask_travels_in_the_checkpoint(monkeypatch, tmp_path):
    sub = _load()
    task = get_task("digits")
    torch.manual_seed(2)
    model = sub.build(task)
    data = _tiny(task, 12)
    monkeypatch.setattr(sub.pruning, "imp_schedule", lambda target, rate: [0.5, target])
    sub.train(model, task, data, Budget(epochs=2, batch_size=12))
    rows = {r.metric: r.value for r in footprint_rows(model)}
    assert rows["weight_sparsity"] == pytest.approx(round(0.9 * 6032) / 6032, abs=1e-12)
    for name, m in pruning.masks_from_buffers(model).items():
        assert torch.equal(m, pruning.current_masks(model)[name])
    ticket = [h for h in data.history if h.get("phase") == "ticket"]
    assert [h["epoch"] for h in ticket] == [1, 2] and all(h["timesteps"] == 4 for h in ticket)
    # the harness path: evaluate the checkpoint through the CLI into a temporary store
    ckpt = tmp_path / "ticket.pt"
    ckpt.write_bytes(checkpoint_bytes(model.state_dict()))
    store = tmp_path / "store"
    args = ["evaluate", "--task", "digits", "--model", str(SUB), "--checkpoint", str(ckpt), "--quiet"]
    assert main(args + ["--limit", "32", "--store", str(store)]) == 0
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok"
    met = pd.read_parquet(store / "metrics")
    overall = met.condition.isna() & met.timestep.isna() & met.layer.isna()
    sparsity = float(met[(met.metric == "weight_sparsity") & overall].value.iloc[0])
    assert sparsity == pytest.approx(round(0.9 * 6032) / 6032, abs=1e-12)
    assert math.isfinite(float(met[(met.metric == "synops_per_sample") & overall].value.iloc[0]))
