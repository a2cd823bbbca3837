"""The default RL recipe of `snnbench train`: double DQN through the spiking Q-network.

Like the BPTT recipe (snnbench.recipes.bptt) it returns the trained model and appends one dict
per epoch to `history`: `epoch` (epochs completed), `step` (env steps so far), `validation_return`
(mean return of the greedy policy on validation seeds), `train_return` and `loss`.
"""

from __future__ import annotations

import copy
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snnbench.encoding import encoder_for
from snnbench.rl.envs import make_env, observation_tensor
from snnbench.rl.episodes import model_policy, q_values, run_episodes, state_resetter

# Validation episodes of the training recipe use these env seeds, far from any evaluation seed.
VALIDATION_SEED_BASE = 1_000_000


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
    # epsilon of the validation episodes: 0 is greedy; an Atari recipe sets the protocol's 0.05,
    # since a greedy Breakout policy that never presses FIRE plays out all 108,000 frames
    validate_epsilon: float = 0.0
    threads: int = 0
    epochs: int = 1
    # "joint": obs and next_obs in one train-mode forward (what a net with batch statistics needs);
    # "separate": next_obs in a no-grad forward, so the backward covers only the obs half (about
    # 40% less work per update for a conv net without batch statistics).
    next_forward: str = "joint"
    # With budget.state_dir set, save the whole training state every this many env steps (and when
    # the wall-time cap stops the run), so an interrupted training continues where it stopped.
    save_every: int = 25_000

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.env_steps // max(1, self.epochs))


def dqn_config(task, budget, overrides: dict | None = None) -> DQNConfig:
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
    for key, value in (overrides or {}).items():
        if key not in known and key != "steps_per_epoch":
            raise ValueError(f"unknown DQN recipe setting {key!r}; known: {', '.join(sorted(known))}")
        if key == "steps_per_epoch":
            kwargs["env_steps"] = epochs * int(value)
        else:
            kwargs[key] = value
    if kwargs.get("next_forward", "joint") not in ("joint", "separate"):
        raise ValueError(f"next_forward must be 'joint' or 'separate', got {kwargs['next_forward']!r}")
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


def train_dqn(
    model: nn.Module,
    task,
    budget,
    seed: int,
    progress: bool = True,
    history: list[dict] | None = None,
    overrides: dict | None = None,
) -> nn.Module:
    """Default RL recipe: DQN with replay, a hard-updated target net, linear epsilon decay, Huber
    loss, Adam and surrogate BPTT through the spiking Q-network (Q = output mean over T).

    Double-DQN targets (online argmax, target value), bootstrapping cut only on true terminals
    (not time-limit truncation), gradient norm clipped. After every epoch the greedy policy plays
    `validate_episodes` episodes (epsilon `validate_epsilon`) on seeds far from the evaluation seeds and the best weights so far
    are kept; the model returned holds them (eval mode). Stops early at budget.wall_time_s.
    `threads` in [train] sets torch's CPU threads for the run (restored after). One dict per
    epoch is appended to `history` (also kept as `model.dqn_history`). `overrides` are a
    submission's own settings over the task's [train] (e.g. a faster Atari schedule for a CPU).

    With `budget.state_dir` the run is resumable: every `save_every` env steps, and when the wall
    time stops it, the whole state (weights, target net, optimiser, replay, random generators,
    history, best weights) is saved there; a later call with the same folder continues from it
    (a new episode starts at the resume point). The history's `wall_time_s` adds up across runs.
    """
    cfg = dqn_config(task, budget, overrides)
    threads = torch.get_num_threads()
    if cfg.threads > 0:  # tiny nets: one thread is 10-20x faster than two contended ones
        torch.set_num_threads(cfg.threads)
    try:
        return _train_dqn(model, task, budget, seed, progress, cfg, [] if history is None else history)
    finally:
        torch.set_num_threads(threads)


def _train_dqn(
    model: nn.Module, task, budget, seed: int, progress: bool, cfg: DQNConfig, history: list[dict]
) -> nn.Module:
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
    progress_state = {"epochs_logged": 0, "best_return": -np.inf, "elapsed_s": 0.0, "start_step": 0}
    best_state = copy.deepcopy(model.state_dict())
    recent, losses = deque(maxlen=20), deque(maxlen=200)
    state_dir = getattr(budget, "state_dir", None)
    learn_from = cfg.learning_starts
    if state_dir and resume_state_exists(state_dir):
        best_state = _load_state(
            state_dir, model, target, optimiser, replay, gen, rng, history, progress_state, recent, losses
        )
        if replay.size == 0:  # a weights-only state (no replay file): refill before learning again
            learn_from = max(learn_from, int(progress_state["start_step"]) + cfg.learning_starts)
            print(
                f"resuming {state_dir} without its replay: collecting {cfg.learning_starts} steps with "
                "the current policy before the updates resume",
                file=sys.stderr,
            )
        # ALE cannot restore an episode mid-way from here: a fresh one starts at the resume point
        obs, _ = env.reset(seed=VALIDATION_SEED_BASE // 2 + seed + 7919 * progress_state["start_step"])
    first = int(progress_state["start_step"])
    started = time.monotonic() - float(progress_state["elapsed_s"])
    run_started = time.monotonic()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.env_steps, initial=first, desc=f"dqn {task.id}", unit="step", file=sys.stderr)
    episode_return = 0.0
    step = first - 1
    try:
        for step in range(first, cfg.env_steps):
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
            if step >= learn_from and step % cfg.train_every == 0:
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
            out_of_time = bool(budget.wall_time_s) and time.monotonic() - run_started > budget.wall_time_s
            if end_of_epoch or out_of_time:
                if step >= cfg.learning_starts:
                    logged = progress_state["epochs_logged"]
                    seeds = [
                        VALIDATION_SEED_BASE + 1000 * seed + logged * 100 + i
                        for i in range(cfg.validate_episodes)
                    ]
                    val = float(run_episodes(act, task, seeds, epsilon=cfg.validate_epsilon).returns.mean())
                    if val >= progress_state["best_return"]:
                        progress_state["best_return"], best_state = val, copy.deepcopy(model.state_dict())
                else:
                    val = float("nan")
                progress_state["epochs_logged"] += 1
                history.append(
                    {
                        "epoch": (step + 1) // cfg.steps_per_epoch,
                        "step": step + 1,
                        "validation_return": val,
                        "train_return": float(np.mean(recent)) if recent else float("nan"),
                        "loss": float(np.mean(losses)) if losses else float("nan"),
                        "wall_time_s": round(time.monotonic() - started, 1),
                    }
                )
            due = cfg.save_every > 0 and (step + 1) % cfg.save_every == 0
            if state_dir and (due or out_of_time) and step + 1 < cfg.env_steps:
                progress_state.update(start_step=step + 1, elapsed_s=time.monotonic() - started)
                _save_state(
                    state_dir, model, target, optimiser, replay, gen, rng, history, progress_state,
                    best_state, recent, losses,
                )  # fmt: skip
            if out_of_time:
                break
    finally:
        env.close()
        if bar is not None:
            bar.close()
    if progress_state["best_return"] > -np.inf:
        model.load_state_dict(best_state)
    resets[0]()
    model.eval()
    model.dqn_history = history  # read by callers that want the curve; not part of the state_dict
    return model


STATE_FILE = "state.pt"
REPLAY_FILE = "replay.pt"


def resume_state_exists(state_dir: str | Path) -> bool:
    """A state folder to resume from: state.pt, with or without replay.pt. Without the replay (the
    multi-GB part, which a copy between machines or sessions may leave behind) the run refills it
    with `learning_starts` steps of the current epsilon-greedy policy before updating again."""
    return (Path(state_dir) / STATE_FILE).is_file()


def _save_state(
    state_dir, model, target, optimiser, replay, gen, rng, history, progress_state, best_state, recent, losses
) -> None:
    """Write the state into a fresh sibling folder, then swap it in: a crash mid-save leaves the
    previous state whole."""
    final = Path(state_dir)
    tmp = final.with_name(final.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    torch.save(
        {
            "model": model.state_dict(),
            "target": target.state_dict(),
            "optimiser": optimiser.state_dict(),
            "best": best_state,
            "torch_generator": gen.get_state(),
            "torch_global": torch.get_rng_state(),
            "numpy": rng.bit_generator.state,
            "history": history,
            "progress": dict(progress_state),
            "recent": list(recent),
            "losses": list(losses),
        },
        tmp / STATE_FILE,
    )
    n = replay.size
    torch.save(
        {
            "obs": replay.obs[:n].clone(),
            "next_obs": replay.next_obs[:n].clone(),
            "action": replay.action[:n].clone(),
            "reward": replay.reward[:n].clone(),
            "terminal": replay.terminal[:n].clone(),
            "pos": replay.pos,
        },
        tmp / REPLAY_FILE,
    )
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _load_state(
    state_dir, model, target, optimiser, replay, gen, rng, history, progress_state, recent, losses
) -> dict:
    state = torch.load(Path(state_dir) / STATE_FILE, weights_only=False)
    model.load_state_dict(state["model"])
    target.load_state_dict(state["target"])
    optimiser.load_state_dict(state["optimiser"])
    gen.set_state(state["torch_generator"])
    torch.set_rng_state(state["torch_global"])
    rng.bit_generator.state = state["numpy"]
    history[:] = state["history"]
    progress_state.update(state["progress"])
    recent.extend(state["recent"])
    losses.extend(state["losses"])
    if not (Path(state_dir) / REPLAY_FILE).is_file():
        return state["best"]
    stored = torch.load(Path(state_dir) / REPLAY_FILE, weights_only=False)
    n = len(stored["action"])
    if n > replay.capacity:
        raise ValueError(
            f"the saved replay holds {n} transitions, more than this run's capacity {replay.capacity}"
        )
    for name in ("obs", "next_obs", "action", "reward", "terminal"):
        getattr(replay, name)[:n] = stored[name]
    replay.size, replay.pos = n, int(stored["pos"]) % replay.capacity
    return state["best"]


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
    joint = cfg.double and cfg.next_forward == "joint"
    if cfg.double and not joint:
        with torch.no_grad():
            resets[0]()
            best = q_values(model(encoder(_as_float(next_obs), steps)), b, task.actions).argmax(
                1, keepdim=True
            )
    resets[0]()
    both = torch.cat([obs, next_obs]) if joint else obs
    q_all = q_values(model(encoder(_as_float(both), steps)), len(both), task.actions)
    if cfg.double:
        if joint:
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
