"""Reinforcement-learning tasks (PROTOCOLS.md sections 3 and 5).

- snnbench.rl.envs: the task's environment (`make_env(task)`, which submissions may call in their
  own train()), the Atari preprocessing, observations as input tensors;
- snnbench.rl.episodes: the episode metric: play the task's evaluation episodes against a policy
  and score the returns (`episode_rows`, `run_episodes`, `score_rows`);
- the default DQN recipe lives beside the BPTT recipe in snnbench.recipes.dqn; its names are
  importable from here too (`from snnbench.rl import train_dqn`), loaded on first use.
"""

from __future__ import annotations

import importlib

from snnbench.rl.envs import INSTALL_HINT, AtariFrames, RLError, make_env, observation_tensor
from snnbench.rl.episodes import (
    Episodes,
    Policy,
    episode_rows,
    eval_seeds,
    model_policy,
    parse_seeds,
    q_values,
    run_episodes,
    score_rows,
    state_resetter,
)

# The recipe imports this package's modules, so it is loaded lazily (no import circle).
_RECIPE = ("DQNConfig", "Replay", "VALIDATION_SEED_BASE", "dqn_config", "train_dqn")

__all__ = [
    "INSTALL_HINT",
    "AtariFrames",
    "Episodes",
    "Policy",
    "RLError",
    "episode_rows",
    "eval_seeds",
    "make_env",
    "model_policy",
    "observation_tensor",
    "parse_seeds",
    "q_values",
    "run_episodes",
    "score_rows",
    "state_resetter",
    *_RECIPE,
]


def __getattr__(name: str):
    if name in _RECIPE:
        return getattr(importlib.import_module("snnbench.recipes.dqn"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
