"""nda: one geometric op per sample (flip, roll, rotate, cutout, shear, CutMix), the same for all
time bins and polarities, on the template's network; CutMix samples learn the area-mixed label."""

from __future__ import annotations

import copy
import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Subset

from snnbench.cli import main
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, default_train

ROOT = Path(__file__).resolve().parent.parent
SUBMISSION = ROOT / "baselines" / "nda" / "submission.py"


def load(path=SUBMISSION, name="nda_under_test"):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_data(n=24, seed=0):
    task = get_task("digits-dvs")
    ds = Subset(load_split(task, "train").dataset, range(n))
    return task, TrainingData(task, ds, task.timesteps, seed)


def test_builds_the_template_network():
    sub, template = load(), load(ROOT / "submissions" / "template.py", "template_for_nda")
    task = get_task("digits-dvs")
    torch.manual_seed(0)
    a = sub.build(task)
    torch.manual_seed(0)
    b = template.build(task)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a(torch.rand(task.timesteps, 3, *task.input_shape)).shape == (task.timesteps, 3, task.outputs)
    assert "li2022neuromorphic" in sub.CITATION and sub.TASKS == ("digits-dvs",)


def test_policy_ops_and_knobs():
    sub = load()
    policy = sub.policy_for(get_task("digits-dvs"))
    assert [type(op).__name__ for op in policy.geometric] == [
        "EventFlip",
        "EventRoll",
        "EventRotate",
        "EventCutout",
        "EventShear",
    ]
    flip, roll, rot, cut, shear = policy.geometric
    assert flip.p == 1.0 and roll.max_shift == 3 and rot.max_degrees == 15.0 and shear.max_shear == 0.3
    assert cut.size == 8 and policy.cutmix.alpha == 1.0 and policy.n_ops == 6


def test_one_op_per_sample_applied_to_every_bin():
    sub = load()
    policy = sub.policy_for(get_task("digits-dvs"))
    b, t, h = 120, 3, 16
    g = torch.Generator().manual_seed(0)
    frame = (torch.rand(b, 1, 1, h, h, generator=g) * 4).floor() + 1  # every pixel nonzero
    x = frame.expand(b, t, 2, h, h).contiguous().transpose(0, 1)  # [T, B, 2, H, W], bins equal
    y = torch.arange(b) % 10
    mixed, choice = policy(x, y, torch.Generator().manual_seed(1), batch_dim=1)
    out, src = mixed.x.transpose(0, 1), x.transpose(0, 1)
    counts = torch.bincount(choice, minlength=6)
    assert counts.sum() == b and (counts >= 8).all()  # each op drawn, about b / 6 times
    for i in range(b):
        o, s, k = out[i].numpy(), src[i].numpy(), int(choice[i])
        assert (o == o[:1, :1]).all()  # one op for every time bin and polarity
        if k != 5:
            assert mixed.lam[i] == 1 and mixed.y_b[i] == y[i]
        if k == 0:
            assert np.array_equal(o, s[..., ::-1])
        elif k == 1:
            rolls = [np.roll(s, d, axis=(-2, -1)) for d in itertools.product(range(-3, 4), repeat=2)]
            assert any(np.array_equal(o, r) for r in rolls)
        elif k == 3:
            zero = o[0, 0] == 0
            ys, xs = np.nonzero(zero)
            assert 0 < zero.sum() <= 64 and zero.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)
            assert np.array_equal(o[..., ~zero], s[..., ~zero])
        elif k == 5:
            j = int(mixed.partner[i])
            other = o[0, 0] != s[0, 0]
            if j != i:
                assert np.array_equal(o[..., other], src[j].numpy()[..., other])
            assert float(mixed.lam[i]) <= 1 and int(mixed.y_b[i]) == int(y[j])
    lam = mixed.lam[choice == 5]
    assert (lam < 1).sum() >= len(lam) // 2  # CutMix samples do carry mixed labels


def test_training_loss_is_the_area_mixed_cross_entropy():
    sub = load()
    task, data = small_data(n=24)
    torch.manual_seed(0)
    model = sub.build(task)
    start = copy.deepcopy(model)
    ((x, y),) = list(TrainingData(task, data.dataset, task.timesteps, 0).loader(24))  # the same batch
    g = torch.Generator().manual_seed(0 + sub.AUGMENT_SEED_OFFSET)
    mixed, choice = sub.policy_for(task)(x, y, g, batch_dim=1)
    assert (choice == 5).any() and (mixed.lam < 1).any()
    start.train()
    with torch.no_grad():
        logp = start(mixed.x).mean(0).log_softmax(1)
        lam = mixed.lam.float()
        hand = -(lam * logp[range(24), mixed.y_a] + (1 - lam) * logp[range(24), mixed.y_b]).mean()
    sub.train(model, task, data, Budget(epochs=1, lr=1e-3, batch_size=24, seed=0))
    assert abs(data.history[0]["loss"] - float(hand)) < 1e-5
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), start.parameters()))


def test_control_is_the_default_recipe():
    sub = load()
    task, data_a = small_data(n=24, seed=3)
    _, data_b = small_data(n=24, seed=3)
    torch.manual_seed(1)
    a = sub.build(task)
    b = copy.deepcopy(a)
    budget = Budget(epochs=2, lr=2e-3, batch_size=12, seed=3)
    sub.train(a, task, data_a, budget, augment=False)
    default_train(b, task, data_b, budget, progress=False)
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6)
    assert [h["loss"] for h in data_a.history] == pytest.approx([h["loss"] for h in data_b.history], rel=1e-6)


def test_augmentation_changes_training_but_not_the_batches():
    sub = load()
    task, data_a = small_data(n=24, seed=5)
    _, data_b = small_data(n=24, seed=5)
    torch.manual_seed(2)
    a = sub.build(task)
    b = copy.deepcopy(a)
    seen = {"a": [], "b": []}
    for data, key in ((data_a, "a"), (data_b, "b")):
        real = data.loader

        def spy(*args, _real=real, _key=key, **kw):
            for x, y in _real(*args, **kw):
                seen[_key].append((x.clone(), y.clone()))
                yield x, y

        data.loader = spy
    budget = Budget(epochs=1, lr=2e-3, batch_size=12, seed=5)
    sub.train(a, task, data_a, budget, augment=True)
    sub.train(b, task, data_b, budget, augment=False)
    assert all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(seen["a"], seen["b"])
    )
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_through_the_harness(tmp_path):
    ckpt = tmp_path / "nda.pt"
    args = ["--task", "digits-dvs", "--model", str(SUBMISSION)]
    assert main(["train", *args, "--epochs", "1", "--out", str(ckpt), "--quiet"]) == 0
    store = tmp_path / "store"
    assert (
        main(
            ["evaluate", *args, "--checkpoint", str(ckpt), "--limit", "32", "--store", str(store), "--quiet"]
        )
        == 0
    )
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and int(run.timesteps) == 10
