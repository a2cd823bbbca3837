"""Reinforcement-learning tasks: environments, the episode evaluator and the default DQN recipe.

PROTOCOLS.md sections 3 and 5. The environment always runs in the harness process; the model is
only ever called as `policy(x [T, B, ...]) -> [T, B, A] or [B, A]`, so for evaluation it can sit
in the submission's child process (every decision step is one forward that the activity probes
count). Q-values are the output averaged over T. Episodes run in lockstep, one forward for all
running episodes, and every episode owns its env seed and its epsilon RNG: the result does not
depend on how many episodes share a forward.

Atari follows ALE v5 (sticky actions 0.25, frameskip 4 inside the env, the game's minimal action
set, episodes cut at 108,000 frames); frames are read grey from ALE, area-resized to 84x84,
scaled to [0, 1] and stacked 4 deep. No frame max-pooling, no no-op starts, no life-loss
terminals: the v5 protocol as ALE defines it.
"""

from __future__ import annotations

import copy
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snnbench.encoding import encoder_for
from snnbench.metrics import MetricRow, mean_and_stderr

Policy = Callable[[torch.Tensor], torch.Tensor]

INSTALL_HINT = "pip install 'gymnasium>=1.0' 'ale-py>=0.10' (ale-py ships the Atari ROMs)"
# Validation episodes of the training recipe use these env seeds, far from any evaluation seed.
VALIDATION_SEED_BASE = 1_000_000


class RLError(RuntimeError):
    """An RL task cannot run (missing package, wrong action count, bad policy output)."""


# --------------------------------------------------------------------------- environments


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


# --------------------------------------------------------------------------- evaluation


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


# --------------------------------------------------------------------------- training (DQN)


@dataclass(frozen=True)
class DQNConfig:
    """The DQN recipe's knobs; defaults are the task file's [train] values (see tasks/cartpole.toml)."""

    env_steps: int = 30_000
    lr: float = 1e-3
    batch_size: int = 64
    gamma: float = 0.99
    target_update: int = 500
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_steps: int = 10_000
    replay_size: int = 50_000
    learning_starts: int = 1_000
    train_every: int = 1
    grad_clip: float = 10.0
    double: bool = True
    validate_episodes: int = 5
    threads: int = 0
    epochs: int = 1

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.env_steps // max(1, self.epochs))


def dqn_config(task, budget) -> DQNConfig:
    """Merge the task's [train] with the Budget: env_steps = budget.epochs x steps_per_epoch.

    One "epoch" is `steps_per_epoch` env steps (task [train]); `--epochs` therefore scales the
    env-step budget, and lr / batch_size come from the Budget (which the task's [train] fills).
    """
    spec = dict(task.train)
    epochs = int(getattr(budget, "epochs", spec.get("epochs", 1)))
    per_epoch = int(spec.pop("steps_per_epoch", 3_000))
    known = {f.name for f in fields(DQNConfig)}
    kwargs = {k: v for k, v in spec.items() if k in known}
    kwargs.update(env_steps=epochs * per_epoch, epochs=epochs)
    kwargs["lr"] = float(getattr(budget, "lr", kwargs.get("lr", DQNConfig.lr)))
    kwargs["batch_size"] = int(getattr(budget, "batch_size", kwargs.get("batch_size", DQNConfig.batch_size)))
    return DQNConfig(**kwargs)


class Replay:
    """Uniform replay of (obs, action, reward, next_obs, terminal), stored in the env's dtype."""

    def __init__(self, capacity: int, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.obs = torch.zeros((capacity, *shape), dtype=dtype)
        self.next_obs = torch.zeros((capacity, *shape), dtype=dtype)
        self.action = torch.zeros(capacity, dtype=torch.long)
        self.reward = torch.zeros(capacity)
        self.terminal = torch.zeros(capacity)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(self, obs, action: int, reward: float, next_obs, terminal: bool) -> None:
        self.obs[self.pos] = torch.from_numpy(np.asarray(obs))
        self.next_obs[self.pos] = torch.from_numpy(np.asarray(next_obs))
        self.action[self.pos], self.reward[self.pos], self.terminal[self.pos] = (
            action,
            reward,
            float(terminal),
        )
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, generator: torch.Generator):
        idx = torch.randint(self.size, (batch,), generator=generator)
        return self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.terminal[idx]


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


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


def train_dqn(model: nn.Module, task, budget, seed: int, progress: bool = True) -> nn.Module:
    """Default RL recipe: DQN with replay, a hard-updated target net, linear epsilon decay, Huber
    loss, Adam and surrogate BPTT through the spiking Q-network (Q = output mean over T).

    Double-DQN targets (online argmax, target value), bootstrapping cut only on true terminals
    (not time-limit truncation), gradient norm clipped. After every epoch the greedy policy plays
    `validate_episodes` episodes on seeds far from the evaluation seeds and the best weights so far
    are kept; the model returned holds them (eval mode). Stops early at budget.wall_time_s.
    `threads` in [train] sets torch's CPU threads for the run (restored after).
    """
    cfg = dqn_config(task, budget)
    threads = torch.get_num_threads()
    if cfg.threads > 0:  # tiny nets: one thread is 10-20x faster than two contended ones
        torch.set_num_threads(cfg.threads)
    try:
        return _train_dqn(model, task, budget, seed, progress, cfg)
    finally:
        torch.set_num_threads(threads)


def _train_dqn(model: nn.Module, task, budget, seed: int, progress: bool, cfg: DQNConfig) -> nn.Module:
    steps = task.timesteps
    encoder = encoder_for(task)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = make_env(task)
    obs, _ = env.reset(seed=VALIDATION_SEED_BASE // 2 + seed)
    sample = np.asarray(obs)
    replay = Replay(min(cfg.replay_size, cfg.env_steps), task.input_shape, torch.from_numpy(sample).dtype)
    target = copy.deepcopy(model)
    target.eval()
    for p in target.parameters():
        p.requires_grad_(False)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    act = model_policy(model)
    resets = (state_resetter(model), state_resetter(target))
    history: list[dict] = []
    best_state, best_return = copy.deepcopy(model.state_dict()), -np.inf
    started = time.monotonic()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.env_steps, desc=f"dqn {task.id}", unit="step", file=sys.stderr)
    episode_return, recent, losses = 0.0, deque(maxlen=20), deque(maxlen=200)
    try:
        for step in range(cfg.env_steps):
            frac = min(1.0, step / max(1, cfg.eps_decay_steps))
            epsilon = cfg.eps_start + frac * (cfg.eps_end - cfg.eps_start)
            if step < cfg.learning_starts or rng.random() < epsilon:
                action = int(rng.integers(task.actions))
            else:
                x = encoder(observation_tensor([obs], task), steps)
                action = int(q_values(act(x), 1, task.actions).argmax(1))
            next_obs, reward, terminated, truncated, _ = env.step(action)
            replay.add(obs, action, float(reward), next_obs, bool(terminated))
            episode_return += float(reward)
            obs = next_obs
            if terminated or truncated:
                recent.append(episode_return)
                episode_return = 0.0
                obs, _ = env.reset()
            if step >= cfg.learning_starts and step % cfg.train_every == 0:
                losses.append(
                    _dqn_update(model, target, resets, replay, optimiser, cfg, encoder, steps, gen, task)
                )
            if (step + 1) % cfg.target_update == 0:
                target.load_state_dict(model.state_dict())
            if bar is not None and (step + 1) % 250 == 0:
                bar.update(250)
                bar.set_postfix(
                    ret=f"{np.mean(recent):.0f}" if recent else "-",
                    loss=f"{np.mean(losses):.3f}" if losses else "-",
                    eps=f"{epsilon:.2f}",
                )
            end_of_epoch = (step + 1) % cfg.steps_per_epoch == 0 or step + 1 == cfg.env_steps
            out_of_time = bool(budget.wall_time_s) and time.monotonic() - started > budget.wall_time_s
            if end_of_epoch or out_of_time:
                if step >= cfg.learning_starts:
                    seeds = [
                        VALIDATION_SEED_BASE + 1000 * seed + len(history) * 100 + i
                        for i in range(cfg.validate_episodes)
                    ]
                    val = float(run_episodes(act, task, seeds).returns.mean())
                    if val >= best_return:
                        best_return, best_state = val, copy.deepcopy(model.state_dict())
                else:
                    val = float("nan")
                history.append(
                    {
                        "step": step + 1,
                        "validation_return": val,
                        "train_return": float(np.mean(recent)) if recent else float("nan"),
                        "loss": float(np.mean(losses)) if losses else float("nan"),
                    }
                )
                if out_of_time:
                    break
    finally:
        env.close()
        if bar is not None:
            bar.close()
    if best_return > -np.inf:
        model.load_state_dict(best_state)
    resets[0]()
    model.eval()
    model.dqn_history = history  # read by callers that want the curve; not part of the state_dict
    return model


def _dqn_update(
    model, target, resets, replay: Replay, optimiser, cfg: DQNConfig, encoder, steps, gen, task
) -> float:
    """One gradient step on a replay batch; returns the Huber loss.

    The online net sees obs and next_obs in one train-mode forward (one call instead of two);
    its next_obs half, detached, picks the Double-DQN action that the target net values.
    """
    obs, action, reward, next_obs, terminal = replay.sample(cfg.batch_size, gen)
    b = cfg.batch_size
    with torch.no_grad():
        resets[1]()
        q_next_target = q_values(target(encoder(_as_float(next_obs), steps)), b, task.actions)
    model.train()
    resets[0]()
    both = torch.cat([obs, next_obs]) if cfg.double else obs
    q_all = q_values(model(encoder(_as_float(both), steps)), len(both), task.actions)
    if cfg.double:
        best = q_all[b:].detach().argmax(1, keepdim=True)
        q_next = q_next_target.gather(1, best).squeeze(1)
    else:
        q_next = q_next_target.max(1).values
    y = reward + cfg.gamma * (1.0 - terminal) * q_next
    q = q_all[:b].gather(1, action[:, None]).squeeze(1)
    loss = F.smooth_l1_loss(q, y)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimiser.step()
    return float(loss.detach())
