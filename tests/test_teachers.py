"""snnbench.teachers: a seeded on-demand cache of ANN teachers, keyed by task, version, size, seed."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import Subset

from snnbench import teachers
from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import TrainingData


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "teachers"
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(path))
    return path


@pytest.fixture
def digits_data():
    task = get_task("digits")
    subset = Subset(load_split(task, "train").dataset, range(40))
    return task, TrainingData(task, subset, task.timesteps, 0)


def counting_fit(monkeypatch):
    calls = []
    real = teachers._fit

    def fit(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(teachers, "_fit", fit)
    return calls


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_cache_hit_returns_identical_weights_without_retraining(cache, digits_data, monkeypatch, capsys):
    task, data = digits_data
    calls = counting_fit(monkeypatch)
    first = teachers.get_teacher(task, data, "tiny", seed=3, epochs=1, batch_size=16)
    assert len(calls) == 1 and "training 1 epochs" in capsys.readouterr().err
    second = teachers.get_teacher(task, data, "tiny", seed=3, epochs=1, batch_size=16)
    assert len(calls) == 1 and "cached" in capsys.readouterr().err  # no second training
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not second.training and not any(p.requires_grad for p in second.parameters())
    files = list(cache.iterdir())
    assert len(files) == 1 and not any(f.name.startswith(".tmp-") for f in files)  # atomic, no leftovers


def test_training_is_seeded_and_leaves_global_rng_and_student_batches_alone(cache, digits_data, monkeypatch):
    task, data = digits_data
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = teachers.get_teacher(task, data, "tiny", seed=1, epochs=1, batch_size=16, progress=False)
    assert torch.equal(torch.get_rng_state(), state) and data._calls == 0
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(cache.parent / "other"))
    b = teachers.get_teacher(task, data, "tiny", seed=1, epochs=1, batch_size=16, progress=False)
    wa, wb = weights(a), weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # retrained from scratch: same weights
    c = teachers.get_teacher(task, data, "tiny", seed=2, epochs=1, batch_size=16, progress=False)
    assert not torch.equal(weights(c)["head.weight"], wa["head.weight"])


def test_key_changes_with_version_size_seed_timesteps_and_recipe(monkeypatch):
    task = get_task("digits")
    base = dict(size="small", seed=0, timesteps=4, epochs=30, batch_size=64, lr=1e-3, n_train=1347)

    def key(t=task, **kw):
        return teachers.teacher_key(t, **{**base, **kw})

    k = key()
    assert key() == k  # deterministic
    assert key(t=dataclasses.replace(task, version=task.version + 1)) != k
    assert key(t=get_task("digits-dvs")) != k
    assert key(tag="") == k  # an empty tag keeps the key of untagged teachers
    changes = (
        dict(size="large"),
        dict(seed=1),
        dict(timesteps=8),
        dict(epochs=10),
        dict(n_train=40),
        dict(tag="a"),
    )
    for change in changes:
        assert key(**change) != k, change
    monkeypatch.setattr(teachers, "RECIPE_VERSION", teachers.RECIPE_VERSION + 1)
    assert key() != k
    with pytest.raises(ValueError, match="unknown teacher size 'huge'; choose one of tiny"):
        key(size="huge")


def test_cache_dir_env_order(tmp_path, monkeypatch):
    monkeypatch.delenv("SNNBENCH_TEACHERS", raising=False)
    monkeypatch.delenv("SNNBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert teachers.cache_dir() == tmp_path / "xdg" / "snnbench" / "teachers"
    monkeypatch.setenv("SNNBENCH_CACHE", str(tmp_path / "sc"))
    assert teachers.cache_dir() == tmp_path / "sc" / "teachers"
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(tmp_path / "t"))
    assert teachers.cache_dir() == tmp_path / "t"


def test_kept_epoch_equals_a_shorter_run_and_is_served_from_cache(cache, digits_data, monkeypatch):
    task, data = digits_data
    calls = counting_fit(monkeypatch)
    teachers.get_teacher(
        task, data, "tiny", seed=0, epochs=3, batch_size=16, keep_epochs=(1,), progress=False
    )
    kept = teachers.load_cached(task, data, "tiny", 0, epochs=1, batch_size=16)
    assert kept is not None and len(calls) == 1
    monkeypatch.setenv("SNNBENCH_TEACHERS", str(cache.parent / "fresh"))
    short = teachers.get_teacher(task, data, "tiny", seed=0, epochs=1, batch_size=16, progress=False)
    wk, ws = weights(kept), weights(short)
    assert all(torch.equal(wk[k], ws[k]) for k in wk)  # constant lr: epoch 1 of 3 == a 1-epoch run


def test_corrupt_entry_is_retrained(cache, digits_data, monkeypatch):
    task, data = digits_data
    calls = counting_fit(monkeypatch)
    teachers.get_teacher(task, data, "tiny", seed=0, epochs=1, batch_size=16, progress=False)
    (path,) = cache.iterdir()
    path.write_bytes(b"not a checkpoint")
    teachers.get_teacher(task, data, "tiny", seed=0, epochs=1, batch_size=16, progress=False)
    assert len(calls) == 2 and torch.load(path, weights_only=True)["meta"]["size"] == "tiny"


def test_teacher_folds_time_into_channels():
    for task_id in ("digits", "digits-dvs"):
        task = get_task(task_id)
        torch.manual_seed(0)
        net = teachers.build_teacher(task, "tiny", 3).eval()
        x = torch.rand(3, 2, *task.input_shape)
        folded = torch.cat([x[0], x[1], x[2]], dim=1)  # [B, 3C, H, W]
        assert torch.equal(net.static_input(x), folded)
        assert net(x).shape == (2, task.outputs)
        with pytest.raises(ValueError, match="get a teacher for the T"):
            net(torch.rand(4, 2, *task.input_shape))


def test_a_cache_hit_leaves_the_global_rng_alone_like_a_miss(cache, digits_data):
    """Whatever a baseline draws after get_teacher must not depend on the cache's state."""
    task, data = digits_data
    teachers.get_teacher(task, data, "tiny", seed=4, epochs=1, batch_size=16, progress=False)  # fill
    torch.manual_seed(321)
    state = torch.get_rng_state()
    teachers.get_teacher(task, data, "tiny", seed=4, epochs=1, batch_size=16, progress=False)  # hit
    assert torch.equal(torch.get_rng_state(), state)
