"""pl_sdqn: spiking deep Q-network with potential-based layer normalisation (pbLN).

Sun, Zeng & Li 2022, Frontiers in Neuroscience ("Solving the spike feature information vanishing
problem in spiking deep Q network with potential based normalization").

Mechanism (this file: the CartPole form, a 4-layer spiking MLP 4-H-H-H-A; the paper's Atari
network is the Nature-DQN conv stack, not built here)
- Direct input: the observation is the input current at every one of the T steps.
- Every hidden layer: Linear -> pbLN -> LIF. pbLN is a LayerNorm over the layer's features, per
  sample and per timestep, of the potential increment (the charge W s_t + b) that the LIF
  integrates before its threshold compare (snnbench.norm.MembraneLayerNorm). Its affine scale
  starts at theta - v_reset = 1 and its shift at v_reset = 0, so the normalised charge is in
  threshold units: however small the previous layer's spike count, about the same share of
  neurons reaches threshold, and the firing cannot fade with depth. Placement (normalise the
  charge, before the neuron) follows the authors' released code (BrainCog PopNorm); see README.
- LIF: tau 2 (decay input), threshold 1, hard reset to 0, ATan surrogate (snnbench.neurons.LIF).
- Output: a non-spiking linear layer feeding leaky integrators (snnbench.neurons.Integrator,
  tau 2) that never fire; the model returns their membrane [T, B, A] and the harness's mean over T
  (the mean membrane) is Q.
- Training: DQN with surrogate BPTT through the spiking network. train() calls the harness's DQN
  loop, snnbench.rl.train_dqn (uniform replay, hard target net, linear epsilon decay, Huber loss,
  double-DQN targets, Adam, best-validation weights kept) with the task's [train] budget: the loop
  is shared infrastructure, the method is the network.

Variants (VARIANT, or the sibling submissions ablation_none.py / ann_twin.py):
- "pbln": the method.
- "none": the same spiking network without normalisation (the paper's ablation).
- "ann": the ANN DQN twin, Linear-ReLU x3 - Linear on the time-mean input, output [B, A].
"""

from __future__ import annotations

import torch
from torch import nn

from snnbench.neurons import LIF, Integrator, MultiStep
from snnbench.norm import MembraneLayerNorm

CITATION = """@article{sun2022plsdqn,
  author  = {Sun, Yinqian and Zeng, Yi and Li, Yang},
  title   = {Solving the Spike Feature Information Vanishing Problem in Spiking Deep {Q} Network
             with Potential Based Normalization},
  journal = {Frontiers in Neuroscience},
  volume  = {16},
  pages   = {953368},
  year    = {2022},
  doi     = {10.3389/fnins.2022.953368}
}"""

# The paper reports Atari game scores in tables and plots; METHODS.md gives no figure we could
# check ("higher Atari scores than converted or earlier spiking DQNs", unverified), so none here.
TASKS = ("cartpole", "atari-pong", "atari-breakout")  # RL tasks only (snnbench sweep leaves out others)
REPORTED: dict = {}

VARIANT = "pbln"
VARIANTS = ("pbln", "none", "ann")
HIDDEN = 128
ATARI_HIDDEN = 512
TAU = 2.0
THRESHOLD = 1.0
V_RESET = 0.0
OUT_TAU = 2.0


class SpikingQNet(nn.Module):
    """4-H-H-H-A spiking MLP; `norm` = "pbln" puts a MembraneLayerNorm before every LIF."""

    def __init__(self, features: int, actions: int, hidden: int = HIDDEN, norm: str = "pbln") -> None:
        super().__init__()
        if norm not in ("pbln", "none"):
            raise ValueError(f"norm must be 'pbln' or 'none', got {norm!r}")
        self.norm = norm
        layers: list[nn.Module] = [MultiStep(nn.Flatten())]
        width = features
        for _ in range(3):
            layers.append(MultiStep(nn.Linear(width, hidden)))
            if norm == "pbln":
                layers.append(PotentialLayerNorm(hidden))
            layers.append(LIF(tau=TAU, v_threshold=THRESHOLD, v_reset=V_RESET, surrogate="atan"))
            width = hidden
        layers.append(MultiStep(nn.Linear(width, actions)))
        self.body = nn.Sequential(*layers)
        self.readout = Integrator(tau=OUT_TAU)

    def hidden_neurons(self) -> list[LIF]:
        return [m for m in self.body if isinstance(m, LIF)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, *obs] -> membrane [T, B, A]
        return self.readout(self.body(x))


class PotentialLayerNorm(MembraneLayerNorm):
    """pbLN: LayerNorm of the charge over features per (t, b); affine init gamma = theta - v_reset,
    beta = v_reset (both 1 and 0 here, i.e. nn.LayerNorm's own init), as in the released code.
    `features` is the feature shape: (N,) after a Linear, (C, H, W) after a conv."""

    def __init__(self, features: int | tuple[int, ...]) -> None:
        super().__init__((features,) if isinstance(features, int) else tuple(features))
        with torch.no_grad():
            self.norm.weight.fill_(THRESHOLD - V_RESET)
            self.norm.bias.fill_(V_RESET)


class SpikingConvQNet(nn.Module):
    """The paper's Atari network: the Nature-DQN stack, spiking. Conv(32, 8, /4), Conv(64, 4, /2),
    Conv(64, 3, /1), Linear(512), each followed by pbLN (if `norm` = "pbln") and an LIF, then a
    Linear to the actions feeding non-spiking integrators; input [T, B, 4, 84, 84] frames in [0, 1].

    With direct input the first layer's charge (conv1 and its pbLN) is the same at every step, so
    it is computed once and repeated over T: the same values as computing it T times (tested),
    and what the activity counters see is the work actually done (conv1's MACs once, not T times).
    """

    def __init__(self, in_shape: tuple[int, int, int], actions: int, norm: str = "pbln") -> None:
        super().__init__()
        if norm not in ("pbln", "none"):
            raise ValueError(f"norm must be 'pbln' or 'none', got {norm!r}")
        self.norm = norm
        channels, height, width = in_shape

        def out(size: int, kernel: int, stride: int) -> int:
            return (size - kernel) // stride + 1

        def normed(shape: tuple[int, ...]) -> nn.Module:
            return PotentialLayerNorm(shape) if norm == "pbln" else nn.Identity()

        def lif() -> LIF:
            return LIF(tau=TAU, v_threshold=THRESHOLD, v_reset=V_RESET, surrogate="atan")

        h1, w1 = out(height, 8, 4), out(width, 8, 4)
        h2, w2 = out(h1, 4, 2), out(w1, 4, 2)
        h3, w3 = out(h2, 3, 1), out(w2, 3, 1)
        self.conv1 = nn.Conv2d(channels, 32, 8, stride=4)
        self.norm1 = normed((32, h1, w1))
        self.body = nn.Sequential(
            lif(),
            MultiStep(nn.Conv2d(32, 64, 4, stride=2)),
            normed((64, h2, w2)),
            lif(),
            MultiStep(nn.Conv2d(64, 64, 3, stride=1)),
            normed((64, h3, w3)),
            lif(),
            MultiStep(nn.Flatten()),
            MultiStep(nn.Linear(64 * h3 * w3, ATARI_HIDDEN)),
            normed((ATARI_HIDDEN,)),
            lif(),
            MultiStep(nn.Linear(ATARI_HIDDEN, actions)),
        )
        self.readout = Integrator(tau=OUT_TAU)

    def hidden_neurons(self) -> list[LIF]:
        return [m for m in self.body if isinstance(m, LIF)]

    def first_charge(self, x: torch.Tensor) -> torch.Tensor:
        """pbLN(conv1(x)) for [T, B, C, H, W]; computed once when x is the same at every step."""
        steps, batch = x.shape[:2]
        if steps > 1 and bool((x[1:] == x[:1]).all()):
            once = self.norm1(self.conv1(x[0]))
            return once.unsqueeze(0).expand(steps, *once.shape)
        charge = self.norm1(self.conv1(x.reshape(steps * batch, *x.shape[2:])))
        return charge.reshape(steps, batch, *charge.shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, C, H, W] -> membrane [T, B, A]
        return self.readout(self.body(self.first_charge(x)))


class AnnQNet(nn.Module):
    """The ANN DQN twin: same widths, ReLU, on the time-mean of the (direct) input; returns [B, A]."""

    def __init__(self, features: int, actions: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, actions),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.mean(0))


def build_variant(task, variant: str) -> nn.Module:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    features = 1
    for size in task.input_shape:
        features *= int(size)
    if len(task.input_shape) == 3:  # frame stacks (Atari): the Nature-DQN conv stack
        if variant == "ann":
            raise ValueError("the ANN twin is built for vector observations (CartPole) only")
        return SpikingConvQNet(tuple(int(s) for s in task.input_shape), task.outputs, norm=variant)
    if variant == "ann":
        return AnnQNet(features, task.outputs)
    return SpikingQNet(features, task.outputs, norm=variant)


def build(task) -> nn.Module:
    return build_variant(task, VARIANT)


# This baseline's Atari schedule, sized for a CPU (the task's [train] is Nature DQN's, in agent
# steps: 1M steps, replay 100k, epsilon over 250k; weeks here). Epochs come from the budget (the
# task's 50), each `steps_per_epoch` agent steps: 500k steps = 2M frames. Faster exploration decay,
# a 50k replay (2.8 GB of uint8 frame stacks) and target updates every 1,000 updates follow the
# short-schedule Pong settings of public DQN tutorials; they are this baseline's choice, not the
# paper's. The online net's next-state forward runs without grad (pbLN has no batch statistics).
ATARI_RECIPE = {
    "steps_per_epoch": 10_000,
    "learning_starts": 10_000,
    "eps_decay_steps": 100_000,
    "eps_end": 0.02,
    "replay_size": 50_000,
    "target_update": 4_000,
    "train_every": 4,
    "validate_episodes": 2,
    "validate_epsilon": 0.05,  # as the protocol evaluates; greedy Breakout can stall without FIRE
    "next_forward": "separate",
    "save_every": 10_000,
    "threads": 1,
}


def train(model, task, data, budget, seed: int | None = None, progress: bool = True):
    """DQN with surrogate BPTT via the harness loop (snnbench.rl.train_dqn) under the task's budget.

    The harness seeds torch with the run seed before build(); train() does not receive the seed,
    so it reads it back with torch.initial_seed() (the replay, epsilon draws and env seeds of
    train_dqn then follow the run seed)."""
    from snnbench.rl import train_dqn

    if task.kind != "rl":
        raise ValueError(f"pl_sdqn is a DQN method; task {task.id} is {task.kind}, not rl")
    if seed is None:
        seed = int(torch.initial_seed() % (2**31))
    overrides = ATARI_RECIPE if len(task.input_shape) == 3 else None
    return train_dqn(model, task, budget, seed, progress, overrides=overrides)
