"""The episode metric (PROTOCOLS.md sections 3 and 5): play a task's evaluation episodes against a
policy and score the returns.

The environment always runs in the harness process; the model is only ever called as
`policy(x [T, B, ...]) -> [T, B, A] or [B, A]`, so for evaluation it can sit in the submission's
child process (every decision step is one forward that the activity probes count). Q-values are
the output averaged over T. Episodes run in lockstep, one forward for all running episodes, and
every episode owns its env seed and its epsilon RNG: the result does not depend on how many
episodes share a forward.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from snnbench.encoding import encoder_for
from snnbench.metrics import MetricRow, mean_and_stderr
from snnbench.rl.envs import RLError, make_env, observation_tensor

Policy = Callable[[torch.Tensor], torch.Tensor]


def q_values(out: torch.Tensor, batch: int, actions: int) -> torch.Tensor:
    """Policy output [T, B, A] (mean over T) or [B, A] -> Q [B, A]; any other shape is an error."""
    out = torch.as_tensor(out)
    q = out.mean(0) if out.dim() == 3 else out
    if tuple(q.shape) != (batch, actions):
        raise RLError(
            f"the model returned shape {tuple(out.shape)}; an RL model must return [T, B, actions] or "
            f"[B, actions] with B={batch}, actions={actions}"
        )
    return q.float()


def parse_seeds(spec: str | Sequence[int] | None, count: int) -> list[int]:
    """Env seeds of the task's episodes: "a..b" (inclusive), a list, or none given (0..count-1)."""
    if spec is None:
        return list(range(count))
    if isinstance(spec, str):
        lo, sep, hi = spec.partition("..")
        if not sep:
            raise RLError(f"seeds must look like '0..19' or be a list of integers, got {spec!r}")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in spec]


def eval_seeds(task, episodes: int | None = None) -> list[int]:
    """The evaluation env seeds: the task's `seeds`, the first `episodes` of them (or extended by +1s)."""
    count = int(task.rl.episodes)
    seeds = parse_seeds(task.rl.seeds, count)
    n = count if episodes is None else episodes
    if n < 1:
        raise RLError(f"episodes must be >= 1, got {n}")
    while len(seeds) < n:
        seeds.append(seeds[-1] + 1)
    return seeds[:n]


@dataclass(frozen=True)
class Episodes:
    """Outcome of a set of episodes, in the order of their env seeds."""

    seeds: list[int]
    returns: np.ndarray
    lengths: np.ndarray


def run_episodes(
    policy: Policy,
    task,
    env_seeds: Sequence[int],
    *,
    epsilon: float = 0.0,
    seed: int = 0,
    timesteps: int | None = None,
    parallel: int | None = None,
    progress: bool = False,
) -> Episodes:
    """Play one episode per env seed, `parallel` of them in lockstep (default: all at once).

    Episode i resets its env with env_seeds[i] and draws its epsilon-greedy choices from its own
    RNG seeded by (seed, env_seeds[i]); the greedy action is the first argmax of Q. Truncated
    episodes (time limit, 108k frames) end there with the return so far.
    """
    steps = timesteps or task.timesteps
    encoder = encoder_for(task)
    seeds = list(env_seeds)
    width = max(1, min(parallel or len(seeds), len(seeds)))
    envs = [make_env(task) for _ in range(width)]
    returns = np.zeros(len(seeds))
    lengths = np.zeros(len(seeds), dtype=np.int64)
    slots: list[dict | None] = [None] * width
    pending = deque(range(len(seeds)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(seeds), desc=f"episodes {task.id}", unit="ep", file=sys.stderr)

    def start(slot: int) -> None:
        if not pending:
            slots[slot] = None
            return
        i = pending.popleft()
        obs, _ = envs[slot].reset(seed=seeds[i])
        slots[slot] = {"i": i, "obs": obs, "rng": np.random.default_rng([seed, seeds[i]])}

    try:
        for s in range(width):
            start(s)
        while any(slots):
            live = [s for s in range(width) if slots[s] is not None]
            x = encoder(observation_tensor([slots[s]["obs"] for s in live], task), steps)
            with torch.no_grad():
                q = q_values(policy(x), len(live), task.actions)
            greedy = q.argmax(1).tolist()
            for s, action in zip(live, greedy, strict=True):
                ep = slots[s]
                if epsilon > 0 and ep["rng"].random() < epsilon:
                    action = int(ep["rng"].integers(task.actions))
                obs, reward, terminated, truncated, _ = envs[s].step(action)
                returns[ep["i"]] += float(reward)
                lengths[ep["i"]] += 1
                ep["obs"] = obs
                if terminated or truncated:
                    if bar is not None:
                        bar.update(1)
                    start(s)
    finally:
        for env in envs:
            env.close()
        if bar is not None:
            bar.close()
    return Episodes(seeds, returns, lengths)


def score_rows(returns: Sequence[float], lengths: Sequence[int] | None, task) -> list[MetricRow]:
    """The rl metric rows of PROTOCOLS.md section 3 for a set of episode returns.

    std is the population std of the returns (numpy's default, ddof=0); the mean's stderr is the
    sample std / sqrt(n). human_normalized_score normalises the mean return (and its stderr) with
    the task's random_score / human_score, when the task file gives both.
    """
    r = np.asarray(returns, dtype=np.float64)
    n = int(r.size)
    mean, stderr = mean_and_stderr(r.tolist())
    rows = [
        MetricRow("episode_return_mean", mean, "score", n=n, stderr=stderr),
        MetricRow("episode_return_median", float(np.median(r)), "score", n=n),
        MetricRow("episode_return_std", float(np.std(r)), "score", n=n),
    ]
    random_score, human_score = task.rl.random_score, task.rl.human_score
    if random_score is not None and human_score is not None:
        span = float(human_score) - float(random_score)
        rows.append(
            MetricRow(
                "human_normalized_score",
                (mean - float(random_score)) / span,
                "fraction",
                n=n,
                stderr=None if stderr is None else stderr / abs(span),
            )
        )
    if lengths is not None:
        length_mean, length_err = mean_and_stderr(np.asarray(lengths, dtype=np.float64).tolist())
        rows.append(MetricRow("episode_length_mean", length_mean, "steps", n=n, stderr=length_err))
    return rows


def episode_rows(
    policy: Policy,
    task,
    seed: int,
    episodes: int | None = None,
    progress: bool = False,
    timesteps: int | None = None,
    parallel: int | None = None,
) -> list[MetricRow]:
    """Run the task's evaluation episodes against `policy` and return the rl metric rows.

    The env seeds are the task's (`seeds`, CartPole 0..19); `seed` (the run seed) only drives the
    epsilon-greedy draws (task `epsilon`, Atari 0.05; CartPole is greedy).
    """
    result = run_episodes(
        policy,
        task,
        eval_seeds(task, episodes),
        epsilon=float(task.rl.epsilon),
        seed=seed,
        timesteps=timesteps,
        parallel=parallel,
        progress=progress,
    )
    return score_rows(result.returns, result.lengths, task)


def state_resetter(model: nn.Module) -> Callable[[], None]:
    """A function that clears the neuron state a framework keeps inside modules (snnTorch,
    SpikingJelly, sinabs), found once: a model of stateless neurons gets a no-op, so the per-step
    forwards of DQN do not walk the module tree every time."""
    from snnbench.frameworks import reset_state

    stateful_packages = {"snntorch", "spikingjelly", "sinabs"}
    stateful = [
        m
        for m in model.modules()
        if any((c.__module__ or "").split(".")[0] in stateful_packages for c in type(m).__mro__)
    ]

    def reset() -> None:
        for m in stateful:
            reset_state(m)

    return reset


def model_policy(model: nn.Module) -> Policy:
    """policy(x) for an in-process model: eval mode, neuron state cleared before every forward."""
    reset = state_resetter(model)

    def policy(x: torch.Tensor) -> torch.Tensor:
        model.eval()
        reset()
        with torch.no_grad():
            return model(x)

    return policy
