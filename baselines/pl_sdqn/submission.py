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
    beta = v_reset (both 1 and 0 here, i.e. nn.LayerNorm's own init), as in the released code."""

    def __init__(self, features: int) -> None:
        super().__init__((features,))
        with torch.no_grad():
            self.norm.weight.fill_(THRESHOLD - V_RESET)
            self.norm.bias.fill_(V_RESET)


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
    if variant == "ann":
        return AnnQNet(features, task.outputs)
    return SpikingQNet(features, task.outputs, norm=variant)


def build(task) -> nn.Module:
    return build_variant(task, VARIANT)


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
    return train_dqn(model, task, budget, seed, progress)
