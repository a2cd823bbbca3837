"""Benchmark: spiking DQN training speed, agent steps per second, snnbench against its peers.

One agent step of DQN training on Atari is one environment step, one greedy action (a forward of
one frame stack) and, every `train_every` = 4 steps, one batch-32 update (a no-grad forward of the
target net and of the online net on the next states, then forward and backward on the states);
snnbench.recipes.dqn runs exactly that. The network is pl_sdqn's spiking Nature-DQN (Conv 32-8/4,
Conv 64-4/2, Conv 64-3/1, Linear 512, each followed by a LayerNorm of the charge and an LIF, then
a Linear into non-spiking integrators) at T = 4 on [T, B, 4, 84, 84] frames, written:

- snnbench: `baselines/pl_sdqn/submission.py` as the baseline builds it (snnbench's fused LIF,
  conv1 and its norm computed once when the input is the same at every step, as direct input is);
- snnbench, no fold (for reference): the same module with conv1 run at every step;
- SpikingJelly: its multi-step layers (`step_mode="m"`) and LIFNode (tau 2, decay_input, hard
  reset to 0, ATan) - the same dynamics as snnbench's LIF, checked below (equal Q-values);
- snnTorch: torch layers folded over [T*B, ...] and `snntorch.Leaky` stepped over T (beta 0.5,
  reset to zero, ATan): the same layer sizes; its charge rule (beta*v + x) differs from
  decay_input's, so its Q-values are not compared, only its time.

All share the DQN update code (snnbench.recipes.dqn._dqn_update) and one ALE Pong environment;
replay is pre-filled with real frames. Timing: one CPU thread, process CPU time, frameworks
interleaved round by round, the median round kept. The headline takes snnbench (with the fold,
as it trains) against the fastest peer.

    python benchmarks/rl_training.py                 # about 2-3 minutes on an idle core
    python benchmarks/rl_training.py --rounds 3 --steps 16
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnbench.encoding import encoder_for  # noqa: E402
from snnbench.neurons import Integrator  # noqa: E402
from snnbench.recipes import dqn  # noqa: E402
from snnbench.rl import make_env, model_policy, q_values, state_resetter  # noqa: E402
from snnbench.rl.envs import observation_tensor  # noqa: E402
from snnbench.tasks import get_task  # noqa: E402

TRAIN_EVERY = 4
BATCH = 32


def pl_sdqn_module():
    spec = importlib.util.spec_from_file_location("pl_sdqn", ROOT / "baselines" / "pl_sdqn" / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class NoFold(nn.Module):
    """The snnbench network with conv1 computed at every step (the fold switched off)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        charge = self.net.norm1(self.net.conv1(x.reshape(steps * batch, *x.shape[2:])))
        return self.net.readout(self.net.body(charge.reshape(steps, batch, *charge.shape[1:])))


def spikingjelly_net(reference: nn.Module) -> nn.Module:
    """The same network in SpikingJelly's multi-step layers, with the reference's weights."""
    from spikingjelly.activation_based import layer, neuron, surrogate

    def lif() -> nn.Module:
        return neuron.LIFNode(
            tau=2.0,
            decay_input=True,
            v_threshold=1.0,
            v_reset=0.0,
            surrogate_function=surrogate.ATan(alpha=2.0),
            detach_reset=False,
            step_mode="m",
        )

    convs = [m for m in reference.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in reference.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in reference.modules() if isinstance(m, nn.LayerNorm)]

    def conv(c: nn.Conv2d) -> nn.Module:
        new = layer.Conv2d(c.in_channels, c.out_channels, c.kernel_size, stride=c.stride, step_mode="m")
        new.load_state_dict(c.state_dict())
        return new

    def linear(lin: nn.Linear) -> nn.Module:
        new = layer.Linear(lin.in_features, lin.out_features, step_mode="m")
        new.load_state_dict(lin.state_dict())
        return new

    def norm(n: nn.LayerNorm) -> nn.Module:
        return layer.SeqToANNContainer(copy.deepcopy(n))

    body = nn.Sequential(
        conv(convs[0]), norm(norms[0]), lif(),
        conv(convs[1]), norm(norms[1]), lif(),
        conv(convs[2]), norm(norms[2]), lif(),
        layer.Flatten(step_mode="m"),
        linear(linears[0]), norm(norms[3]), lif(),
        linear(linears[1]),
    )  # fmt: skip
    return nn.Sequential(body, Integrator(tau=2.0))


class _SnnTorchLIF(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import snntorch
        from snntorch import surrogate

        self.lif = snntorch.Leaky(
            beta=0.5, threshold=1.0, spike_grad=surrogate.atan(alpha=2.0), reset_mechanism="zero"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem = self.lif.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk, mem = self.lif(x[t], mem)
            out.append(spk)
        return torch.stack(out)


class _Fold(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        y = self.module(x.reshape(steps * batch, *x.shape[2:]))
        return y.reshape(steps, batch, *y.shape[1:])


def snntorch_net(reference: nn.Module) -> nn.Module:
    convs = [copy.deepcopy(m) for m in reference.modules() if isinstance(m, nn.Conv2d)]
    linears = [copy.deepcopy(m) for m in reference.modules() if isinstance(m, nn.Linear)]
    norms = [copy.deepcopy(m) for m in reference.modules() if isinstance(m, nn.LayerNorm)]
    body = nn.Sequential(
        _Fold(convs[0]), _Fold(norms[0]), _SnnTorchLIF(),
        _Fold(convs[1]), _Fold(norms[1]), _SnnTorchLIF(),
        _Fold(convs[2]), _Fold(norms[2]), _SnnTorchLIF(),
        _Fold(nn.Flatten()),
        _Fold(linears[0]), _Fold(norms[3]), _SnnTorchLIF(),
        _Fold(linears[1]),
    )  # fmt: skip
    return nn.Sequential(body, Integrator(tau=2.0))


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class Agent:
    """One framework's training loop pieces: online and target nets, Adam, the shared replay."""

    def __init__(self, name: str, model: nn.Module, task, replay: dqn.Replay) -> None:
        self.name, self.model, self.task, self.replay = name, model, task, replay
        self.target = copy.deepcopy(model).eval()
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
        self.resets = (state_resetter(model), state_resetter(self.target))
        self.policy = model_policy(model)
        self.cfg = dqn.DQNConfig(batch_size=BATCH, next_forward="separate")
        self.encoder = encoder_for(task)
        self.gen = torch.Generator().manual_seed(0)

    def steps(self, env, obs, count: int) -> tuple[float, np.ndarray]:
        """CPU seconds for `count` agent steps of training (greedy actions, update every 4th)."""
        started = time.process_time()
        for i in range(count):
            x = self.encoder(observation_tensor([obs], self.task), self.task.timesteps)
            action = int(q_values(self.policy(x), 1, self.task.actions).argmax(1))
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                obs, _ = env.reset()
            if i % TRAIN_EVERY == 0:
                dqn._dqn_update(
                    self.model, self.target, self.resets, self.replay, self.optimiser, self.cfg,
                    self.encoder, self.task.timesteps, self.gen, self.task,
                )  # fmt: skip
        return time.process_time() - started, obs


def filled_replay(task, env, size: int) -> tuple[dqn.Replay, np.ndarray]:
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    replay = dqn.Replay(size, task.input_shape, torch.uint8)
    for _ in range(size):
        action = int(rng.integers(task.actions))
        nxt, reward, terminated, truncated, _ = env.step(action)
        replay.add(obs, action, float(reward), nxt, bool(terminated))
        obs = nxt if not (terminated or truncated) else env.reset()[0]
    return replay, obs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (median kept)")
    parser.add_argument("--steps", type=int, default=32, help="agent steps per framework per round")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    task = get_task("atari-pong")
    env = make_env(task)
    replay, obs = filled_replay(task, env, 512)
    module = pl_sdqn_module()
    torch.manual_seed(0)
    reference = module.build(task)
    models: dict[str, nn.Module] = {
        "snnbench": reference,
        "snnbench, no fold (info)": NoFold(copy.deepcopy(reference)),
    }
    if available("spikingjelly"):
        models["spikingjelly"] = spikingjelly_net(reference)
    if available("snntorch"):
        models["snntorch"] = snntorch_net(reference)
    x = replay.obs[:8].float().div(255).unsqueeze(0).expand(task.timesteps, 8, *task.input_shape)
    with torch.no_grad():
        q_ref = q_values(model_policy(reference)(x), 8, task.actions)
        print(f"check: snnbench Q-values over 8 replay states: std {float(q_ref.std()):.3g} (not constant)")
        for name in ("snnbench, no fold (info)", "spikingjelly"):
            if name in models:
                q = q_values(model_policy(models[name])(x), 8, task.actions)
                print(
                    f"check: {name} Q-values equal snnbench's: max |diff| {float((q - q_ref).abs().max()):.2e}"
                )
    agents = [Agent(name, model, task, replay) for name, model in models.items()]
    for agent in agents:  # warm-up: allocator, kernels
        _, obs = agent.steps(env, obs, TRAIN_EVERY)
    times: dict[str, list[float]] = {a.name: [] for a in agents}
    for _ in range(args.rounds):
        for agent in agents:
            seconds, obs = agent.steps(env, obs, args.steps)
            times[agent.name].append(seconds)
    env.close()
    rates = {name: args.steps / statistics.median(ts) for name, ts in times.items()}
    print(
        f"\nspiking Nature-DQN, T={task.timesteps}, batch {BATCH}, update every {TRAIN_EVERY} steps, one thread"
    )
    print(f"{'framework':<28} {'agent steps/s':>14} {'vs snnbench':>12}")
    for name, rate in rates.items():
        print(f"{name:<28} {rate:>14.1f} {rate / rates['snnbench']:>11.2f}x")
    peers = {n: r for n, r in rates.items() if not n.startswith("snnbench")}
    if not peers:
        print("rl_training: no peer framework installed (spikingjelly, snntorch); no headline")
        return 1
    fastest = max(peers, key=peers.get)
    ratio = rates["snnbench"] / peers[fastest]
    print(
        f"rl_training: agent steps/s of DQN training vs fastest peer ({fastest}) {ratio:.2f}x (target >= 1.0x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
