"""RL environments (PROTOCOLS.md section 5): the task's gymnasium or ALE environment, with the Atari
preprocessing, and observations as the model's input tensors.

Atari follows ALE v5 (sticky actions 0.25, frameskip 4 inside the env, the game's minimal action
set, episodes cut at 108,000 frames); frames are read grey from ALE, area-resized to 84x84,
scaled to [0, 1] and stacked 4 deep. No frame max-pooling, no no-op starts, no life-loss
terminals: the v5 protocol as ALE defines it. gymnasium and ale-py are imported only when an
environment is made.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

INSTALL_HINT = "pip install 'gymnasium>=1.0' 'ale-py>=0.10' (ale-py ships the Atari ROMs)"


class RLError(RuntimeError):
    """An RL task cannot run (missing package, wrong action count, bad policy output)."""


def _gym():
    try:
        import gymnasium
    except ImportError:
        raise RLError(f"RL tasks need gymnasium, which is not installed; {INSTALL_HINT}") from None
    return gymnasium


class AtariFrames:
    """Grey ALE frames -> area-resized size x size uint8, stacked `stack` deep: [stack, size, size].

    A plain wrapper (reset/step/action_space/close) so that gymnasium is only imported when used.
    After reset the stack holds the first frame `stack` times.
    """

    def __init__(self, env: Any, size: int = 84, stack: int = 4) -> None:
        self.env = env
        self.size = size
        self.action_space = env.action_space
        self.frames: deque[np.ndarray] = deque(maxlen=stack)

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(obs)).float()[None, None]
        y = F.interpolate(x, size=(self.size, self.size), mode="area")
        return y[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        frame = self._frame(obs)
        for _ in range(self.frames.maxlen):
            self.frames.append(frame)
        return np.stack(self.frames), info

    def step(self, action: int):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(self._frame(obs))
        return np.stack(self.frames), reward, terminated, truncated, info

    def close(self) -> None:
        self.env.close()


def make_env(task) -> Any:
    """The task's environment (gymnasium API), with the action count checked against the task file."""
    gym = _gym()
    data = task.rl
    source = task.data.source
    if source == "gymnasium":
        env = gym.make(data["env"])
    elif source == "ale":
        try:
            import ale_py
        except ImportError:
            raise RLError(f"task {task.id} needs ale-py, which is not installed; {INSTALL_HINT}") from None
        gym.register_envs(ale_py)
        env = gym.make(
            data["env"],
            obs_type="grayscale",
            frameskip=int(data.get("frameskip", 4)),
            repeat_action_probability=float(data.get("sticky_actions", 0.25)),
            full_action_space=data.get("action_set", "minimal") == "full",
            max_num_frames_per_episode=int(data.get("max_frames", 108_000)),
        )
        h, w = task.input_shape[-2:]
        if h != w:
            raise RLError(f"task {task.id}: Atari frames are square, input_shape {task.input_shape} is not")
        env = AtariFrames(env, size=h, stack=task.input_shape[0])
    else:
        raise RLError(f"task {task.id}: unknown RL data source {source!r}; known: gymnasium, ale")
    actions = int(env.action_space.n)
    if actions != task.actions:
        env.close()
        raise RLError(
            f"task {task.id}: {data.get('env')} has {actions} actions but the task file says "
            f"actions = {task.actions}; fix the task file"
        )
    return env


def observation_tensor(obs: Sequence[np.ndarray] | np.ndarray, task) -> torch.Tensor:
    """A batch of raw observations -> float32 [B, *input_shape]; Atari pixels scaled to [0, 1]."""
    x = torch.from_numpy(np.stack(obs) if not isinstance(obs, np.ndarray) else obs)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    return x.reshape(x.shape[0], *task.input_shape)
