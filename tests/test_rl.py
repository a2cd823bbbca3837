"""RL task family: environments, the episode evaluator, scores and the DQN recipe (snnbench.rl)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import gymnasium as gym  # a core dependency: a missing install must fail, not skip
import numpy as np
import pytest
import torch

from snnbench import rl
from snnbench.tasks import get_task
from snnbench.training import Budget

REPO_SUBMISSION = Path(__file__).resolve().parent.parent / "submissions" / "examples" / "cartpole_snn.py"


def constant_policy(action: int, actions: int = 2):
    """Always `action`: Q is one-hot, returned as [B, A]."""

    def policy(x: torch.Tensor) -> torch.Tensor:
        q = torch.zeros(x.shape[1], actions)
        q[:, action] = 1.0
        return q

    return policy


def angle_policy(x: torch.Tensor) -> torch.Tensor:
    """Push towards the side the pole leans to: a decent CartPole controller, [T, B, A] output."""
    lean = x[..., 2] + 0.5 * x[..., 3]
    return torch.stack([-lean, lean], dim=-1)


def gym_returns(seeds, action: int) -> list[tuple[float, int]]:
    """Independent reference: plain gymnasium, constant action, until terminated or truncated."""
    out = []
    for s in seeds:
        env = gym.make("CartPole-v1")
        env.reset(seed=s)
        total, length, done = 0.0, 0, False
        while not done:
            _, r, term, trunc, _ = env.step(action)
            total, length, done = total + r, length + 1, term or trunc
        env.close()
        out.append((total, length))
    return out


def test_constant_policy_matches_plain_gymnasium():
    task = get_task("cartpole")
    seeds = rl.eval_seeds(task)
    assert seeds == list(range(20))  # PROTOCOLS: CartPole seeds 0..19
    got = rl.run_episodes(constant_policy(0), task, seeds)
    want = gym_returns(seeds, 0)
    assert got.returns.tolist() == [r for r, _ in want]
    assert got.lengths.tolist() == [n for _, n in want]
    assert len(set(got.returns.tolist())) > 1  # seeds really differ


def test_rows_against_numpy():
    task = get_task("cartpole")
    rows = {r.metric: r for r in rl.episode_rows(angle_policy, task, seed=0)}
    result = rl.run_episodes(angle_policy, task, rl.eval_seeds(task))
    r = result.returns
    assert rows["episode_return_mean"].value == pytest.approx(np.mean(r))
    assert rows["episode_return_mean"].stderr == pytest.approx(np.std(r, ddof=1) / np.sqrt(len(r)))
    assert rows["episode_return_median"].value == pytest.approx(np.median(r))
    assert rows["episode_return_std"].value == pytest.approx(np.std(r))
    assert rows["episode_length_mean"].value == pytest.approx(np.mean(result.lengths))
    assert {row.n for row in rows.values()} == {20}
    assert rows["episode_return_mean"].unit == "score"
    assert "human_normalized_score" not in rows  # CartPole has no reference scores
    assert np.mean(r) > 30  # the lean controller beats always-left (about 9 steps)


def test_output_is_averaged_over_time():
    """Step 0 says 'right' loudly, steps 1..3 say 'left' softly: the mean over T says right."""

    def policy(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], x.shape[1], 2)
        out[0, :, 1] = 10.0
        out[1:, :, 0] = 1.0
        return out

    task = get_task("cartpole")
    seeds = [3, 4]
    got = rl.run_episodes(policy, task, seeds)
    assert got.returns.tolist() == [r for r, _ in gym_returns(seeds, 1)]


def test_vectorised_equals_sequential_with_epsilon():
    task = get_task("cartpole")
    seeds = list(range(6))
    batched = rl.run_episodes(angle_policy, task, seeds, epsilon=0.3, seed=7)
    one_by_one = rl.run_episodes(angle_policy, task, seeds, epsilon=0.3, seed=7, parallel=1)
    pairs = rl.run_episodes(angle_policy, task, seeds, epsilon=0.3, seed=7, parallel=4)
    assert batched.returns.tolist() == one_by_one.returns.tolist() == pairs.returns.tolist()
    assert batched.lengths.tolist() == one_by_one.lengths.tolist()


def test_epsilon_is_seeded():
    task = get_task("cartpole")
    task = dataclasses.replace(task, rl={**task.rl, "epsilon": 0.5})
    a = rl.episode_rows(angle_policy, task, seed=1, episodes=4)
    b = rl.episode_rows(angle_policy, task, seed=1, episodes=4)
    c = rl.run_episodes(angle_policy, task, range(4), epsilon=0.5, seed=2)
    assert a == b
    assert (
        c.returns.tolist()
        != rl.run_episodes(angle_policy, task, range(4), epsilon=0.5, seed=1).returns.tolist()
    )
    greedy = rl.run_episodes(angle_policy, task, range(4))
    assert greedy.returns.tolist() != c.returns.tolist()


def test_human_normalized_score_uses_the_reference_scores():
    references = {"atari-pong": (-20.7, 14.6), "atari-breakout": (1.7, 30.5)}  # PROTOCOLS section 5
    returns = [-21.0, -19.0, 3.0, 10.0]
    for task_id, (random_score, human_score) in references.items():
        task = get_task(task_id)
        assert (task.rl["random_score"], task.rl["human_score"]) == (random_score, human_score)
        rows = {r.metric: r for r in rl.score_rows(returns, None, task)}
        want = (np.mean(returns) - random_score) / (human_score - random_score)
        assert rows["human_normalized_score"].value == pytest.approx(want)
        assert rows["human_normalized_score"].n == 4
        assert "episode_length_mean" not in rows


def test_bad_output_shape_and_seeds_are_errors():
    task = get_task("cartpole")
    with pytest.raises(rl.RLError, match=r"\[T, B, actions\]"):
        rl.run_episodes(lambda x: torch.zeros(x.shape[1], 3), task, [0])
    assert rl.parse_seeds("2..4", 3) == [2, 3, 4]
    assert rl.eval_seeds(task, 3) == [0, 1, 2]
    assert rl.eval_seeds(task, 22)[-3:] == [19, 20, 21]
    with pytest.raises(rl.RLError, match="0..19"):
        rl.parse_seeds("5", 1)
    wrong = dataclasses.replace(task, actions=3)
    with pytest.raises(rl.RLError, match="actions = 3"):
        rl.make_env(wrong)


def test_dqn_config_scales_env_steps_with_epochs():
    task = get_task("cartpole")
    cfg = rl.dqn_config(task, Budget(epochs=4, lr=3e-4, batch_size=32))
    assert cfg.env_steps == 4 * task.train["steps_per_epoch"]
    assert (cfg.lr, cfg.batch_size, cfg.gamma) == (3e-4, 32, task.train["gamma"])
    assert cfg.steps_per_epoch == task.train["steps_per_epoch"]


def load_submission():
    spec = importlib.util.spec_from_file_location("cartpole_snn", REPO_SUBMISSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_dqn_run_learns_q_values():
    """A 3k-step run: Huber TD loss stays finite, the greedy policy beats always-left, and the Q of
    a start state moves from ~0 towards the discounted return scale (gamma 0.99, reward 1)."""
    task = get_task("cartpole")
    task = dataclasses.replace(
        task,
        train={
            **task.train,
            "steps_per_epoch": 1500,
            "learning_starts": 300,
            "eps_decay_steps": 1500,
            "target_update": 200,
            "validate_episodes": 3,
        },
    )
    torch.manual_seed(0)
    module = load_submission()
    model = module.build(task)
    start = torch.tensor(gym.make("CartPole-v1").reset(seed=0)[0])[None]
    x = start.unsqueeze(0).expand(task.timesteps, 1, 4)
    q_before = rl.model_policy(model)(x).mean(0).abs().max().item()
    model = rl.train_dqn(model, task, Budget(epochs=2, lr=1e-3, batch_size=64), seed=0, progress=False)
    q_after = rl.model_policy(model)(x).mean(0).min().item()
    history = model.dqn_history
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
    assert q_before < 1.0 and q_after > 3.0
    trained = rl.run_episodes(rl.model_policy(model), task, range(5)).returns.mean()
    left = np.mean([r for r, _ in gym_returns(range(5), 0)])
    assert trained > 2 * left


def test_atari_env_builds_offline_and_smoke_evaluates():
    import ale_py  # noqa: F401  (a core dependency: registers the ALE environments)

    from snnbench.neurons import LIF, MultiStep

    task = get_task("atari-pong")
    task = dataclasses.replace(task, rl={**task.rl, "max_frames": 120})  # 30 agent steps
    env = rl.make_env(task)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert (obs[0] == obs[3]).all()  # the stack starts as four copies of the first frame
    obs2, *_ = env.step(0)
    assert (obs2[:3] == obs[1:]).all()
    env.close()
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        MultiStep(torch.nn.Conv2d(4, 8, 8, stride=4)),
        LIF(),
        MultiStep(torch.nn.Flatten()),
        MultiStep(torch.nn.Linear(8 * 20 * 20, task.actions)),
    )
    rows = {r.metric: r for r in rl.episode_rows(rl.model_policy(net), task, seed=0, episodes=2)}
    assert rows["episode_length_mean"].value == 30
    assert rows["episode_return_mean"].n == 2
    want = (rows["episode_return_mean"].value + 20.7) / (14.6 + 20.7)
    assert rows["human_normalized_score"].value == pytest.approx(want)


def test_dqn_loop_runs_on_atari_frames():
    """Smoke test of the training loop on uint8 frame stacks: a few updates, finite loss, weights move."""
    import ale_py  # noqa: F401  (a core dependency: registers the ALE environments)

    from snnbench.neurons import LIF, MultiStep

    task = get_task("atari-breakout")
    task = dataclasses.replace(
        task,
        rl={**task.rl, "max_frames": 80},
        train={
            **task.train,
            "steps_per_epoch": 24,
            "learning_starts": 16,
            "target_update": 4,
            "train_every": 2,
            "validate_episodes": 1,
        },
    )
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        MultiStep(torch.nn.Conv2d(4, 4, 8, stride=8)),
        LIF(),
        MultiStep(torch.nn.Flatten()),
        MultiStep(torch.nn.Linear(4 * 10 * 10, task.actions)),
    )
    before = [p.detach().clone() for p in net.parameters()]
    net = rl.train_dqn(net, task, Budget(epochs=1, lr=1e-3, batch_size=4), seed=0, progress=False)
    (entry,) = net.dqn_history
    assert entry["step"] == 24 and np.isfinite(entry["loss"]) and np.isfinite(entry["validation_return"])
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
