"""random_policy: the uniformly random agent, the reference row of every RL task.

Each forward returns Q-values drawn uniformly from [0, 1) by the model's own torch.Generator, so
the greedy action (first argmax) is a uniform random action, independent across steps and
episodes. Output [T, B, A] (the same draw at every step, so the harness's time mean is the draw).

Reproducibility: build() draws the generator's seed from torch's global RNG, which the harness
seeds with the run seed before build(); the seed is kept in a buffer (`seed`, part of the
state_dict), and the generator is seeded from it on the first forward (and again whenever
reseed() is called). The same run seed and the same sequence of forwards therefore give the same
actions. No training: NEEDS_TRAINING = False makes its checkpoint-free runs reportable.

The published random returns (ALE, Mnih et al. 2015 / Machado et al. 2018 protocols differ in
details): Pong -20.7, Breakout 1.7; the task files carry them as random_score.
"""

from __future__ import annotations

import torch
from torch import nn

NEEDS_TRAINING = False
CITATION = ""
TASKS = ("cartpole", "atari-pong", "atari-breakout")  # RL tasks only (snnbench sweep leaves out others)
REPORTED = {"atari-pong return": -20.7, "atari-breakout return": 1.7}


class RandomQ(nn.Module):
    def __init__(self, actions: int, seed: int) -> None:
        super().__init__()
        self.actions = int(actions)
        self.register_buffer("seed", torch.tensor(int(seed), dtype=torch.int64))
        self._generator: torch.Generator | None = None

    def reseed(self) -> None:
        self._generator = torch.Generator().manual_seed(int(self.seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._generator is None:
            self.reseed()
        steps, batch = x.shape[0], x.shape[1]
        q = torch.rand(batch, self.actions, generator=self._generator)
        return q.to(x.device).unsqueeze(0).expand(steps, batch, self.actions)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._generator = None  # a loaded seed restarts the stream


def build(task) -> nn.Module:
    return RandomQ(task.outputs, int(torch.randint(0, 2**31 - 1, ())))
