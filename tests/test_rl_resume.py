"""Resumable DQN training (`snnbench train --resume`): an interrupted run continues from its saved
state instead of starting over; the separate next-state forward gives the same update as the joint
one for a net without batch statistics. Never trains for real."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from snnbench import rl
from snnbench.recipes import dqn
from snnbench.tasks import get_task
from snnbench.training import Budget

REPO = Path(__file__).resolve().parent.parent
CARTPOLE_SUBMISSION = REPO / "submissions" / "examples" / "cartpole_snn.py"


def cartpole_task():
    task = get_task("cartpole")
    return dataclasses.replace(
        task,
        train={
            **task.train,
            "steps_per_epoch": 200,
            "learning_starts": 100,
            "eps_decay_steps": 300,
            "target_update": 50,
            "validate_episodes": 1,
            "replay_size": 1000,
        },
    )


def build(task):
    spec = importlib.util.spec_from_file_location("cartpole_snn", CARTPOLE_SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.build(task)


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_saved_state(tmp_path, monkeypatch):
    task = cartpole_task()
    state_dir = tmp_path / "ckpt.pt.state"
    budget = Budget(epochs=3, lr=1e-3, batch_size=16, state_dir=str(state_dir))
    real_save = dqn._save_state
    saved: list[dict] = []

    def save_then_die(*args):
        real_save(*args)
        model = args[1]
        saved.append({k: v.clone() for k, v in model.state_dict().items()})
        if len(saved) == 2:  # the process dies right after the save at step 400
            raise Interrupted

    monkeypatch.setattr(dqn, "_save_state", save_then_die)
    with pytest.raises(Interrupted):
        rl.train_dqn(build(task), task, budget, seed=0, progress=False, overrides={"save_every": 200})
    assert dqn.resume_state_exists(state_dir)
    assert not state_dir.with_name(state_dir.name + ".partial").exists()
    monkeypatch.setattr(dqn, "_save_state", real_save)

    # the second run must start from step 400 with the saved weights and replay
    loaded: dict = {}
    real_load = dqn._load_state

    def spy_load(*args):
        best = real_load(*args)
        loaded["weights"] = {k: v.clone() for k, v in args[1].state_dict().items()}
        loaded["replay_size"] = args[4].size
        return best

    steps_taken = []
    real_make_env = dqn.make_env

    def counting_env(t):
        env = real_make_env(t)
        step = env.step

        def counted(action):
            steps_taken.append(action)
            return step(action)

        env.step = counted
        return env

    monkeypatch.setattr(dqn, "_load_state", spy_load)
    monkeypatch.setattr(dqn, "make_env", counting_env)
    model = rl.train_dqn(build(task), task, budget, seed=0, progress=False, overrides={"save_every": 200})
    assert loaded["replay_size"] == 400
    assert all(torch.equal(loaded["weights"][k], saved[-1][k]) for k in saved[-1])
    training_steps = len(steps_taken)  # validation episodes run in their own envs
    history = model.dqn_history
    assert [h["step"] for h in history] == [200, 400, 600]
    assert all(np.isfinite(h["loss"]) for h in history)
    walls = [h["wall_time_s"] for h in history]
    assert walls == sorted(walls)
    assert training_steps == 200  # steps 400..599 only, not a restart from 0


def test_separate_next_forward_gives_the_joint_update():
    """For a net without batch statistics the Double-DQN action from a no-grad forward equals the
    one from the joint train-mode forward, so one update leaves the same weights."""
    task = cartpole_task()
    obs_shape = tuple(task.input_shape)
    weights = {}
    for mode in ("joint", "separate"):
        model = build(task)
        target = build(task)
        cfg = dqn.DQNConfig(batch_size=8, next_forward=mode)
        replay = dqn.Replay(32, obs_shape, torch.float32)
        gen = torch.Generator().manual_seed(1)
        data = torch.randn(32, *obs_shape, generator=gen)
        for i in range(31):
            replay.add(data[i].numpy(), i % 2, 1.0, data[i + 1].numpy(), i == 30)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
        resets = (lambda: None, lambda: None)
        from snnbench.encoding import encoder_for

        dqn._dqn_update(
            model, target, resets, replay, optimiser, cfg, encoder_for(task), task.timesteps,
            torch.Generator().manual_seed(2), task,
        )  # fmt: skip
        weights[mode] = [p.detach().clone() for p in model.parameters()]
    for a, b in zip(weights["joint"], weights["separate"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_unknown_recipe_override_is_a_one_line_error():
    task = get_task("cartpole")
    with pytest.raises(ValueError, match="unknown DQN recipe setting 'learning_start'"):
        dqn.dqn_config(task, Budget(epochs=1), {"learning_start": 5})
    with pytest.raises(ValueError, match="next_forward must be"):
        dqn.dqn_config(task, Budget(epochs=1), {"next_forward": "both"})


@pytest.mark.parametrize("epsilon", [0.0, 0.05])
def test_validation_plays_with_the_recipes_epsilon(monkeypatch, epsilon):
    """Greedy by default; an Atari recipe validates as the protocol evaluates (epsilon 0.05)."""
    task = cartpole_task()
    seen: list[float] = []
    real = dqn.run_episodes

    def spy(policy, task_, seeds, **kw):
        seen.append(kw.get("epsilon", 0.0))
        return real(policy, task_, seeds, **kw)

    monkeypatch.setattr(dqn, "run_episodes", spy)
    overrides = {"validate_epsilon": epsilon} if epsilon else None
    dqn.train_dqn(build(task), task, Budget(epochs=1, lr=1e-3, batch_size=16), 0, False, overrides=overrides)
    assert seen == [epsilon]


def test_a_state_without_its_replay_resumes_after_a_refill(tmp_path, monkeypatch):
    """Between machines or sessions only state.pt (tens of MB) may travel, not the multi-GB replay:
    the run resumes from the saved weights and step, and learns again only after refilling
    `learning_starts` transitions."""
    task = cartpole_task()
    state_dir = tmp_path / "ckpt.pt.state"
    budget = Budget(epochs=3, lr=1e-3, batch_size=16, state_dir=str(state_dir))
    real_save = dqn._save_state
    saves = []

    def save_then_die(*args):
        real_save(*args)
        saves.append(1)
        if len(saves) == 2:
            raise Interrupted

    monkeypatch.setattr(dqn, "_save_state", save_then_die)
    with pytest.raises(Interrupted):
        rl.train_dqn(build(task), task, budget, seed=0, progress=False, overrides={"save_every": 200})
    monkeypatch.setattr(dqn, "_save_state", real_save)
    (state_dir / dqn.REPLAY_FILE).unlink()
    assert dqn.resume_state_exists(state_dir)
    saved = torch.load(state_dir / dqn.STATE_FILE, weights_only=False)

    updates = []
    real_update = dqn._dqn_update

    def counting_update(*args):
        updates.append(1)
        return real_update(*args)

    monkeypatch.setattr(dqn, "_dqn_update", counting_update)
    model = rl.train_dqn(build(task), task, budget, seed=0, progress=False, overrides={"save_every": 200})
    cfg = dqn.dqn_config(task, budget)
    refill_end = 400 + cfg.learning_starts
    assert len(updates) == sum(1 for s in range(refill_end, 600) if s % cfg.train_every == 0)
    assert [h["step"] for h in model.dqn_history] == [200, 400, 600]
    assert saved["progress"]["start_step"] == 400


def test_a_resumed_training_stores_no_training_energy(tmp_path):
    """The probe sees only the segment that ran in this process; pricing that as the whole training
    would understate it by orders of magnitude, so a resumed checkpoint carries no training activity."""
    from snnbench import training
    from snnbench.submission import resolve

    task = cartpole_task()
    ref = resolve(CARTPOLE_SUBMISSION)
    out = tmp_path / "ck.pt"
    first = training.train(task, ref, out=out, wall_time_s=1e-6, resume=True, progress=False)
    assert "training_activity" in first.record and (training.state_path(out) / "state.pt").is_file()
    second = training.train(task, ref, out=out, wall_time_s=1e-6, resume=True, progress=False)
    assert "training_activity" not in second.record
    assert "resumed" in second.record["training_activity_missing"]
