"""A small spiking Q-network for CartPole-v1: two LIF layers, a non-spiking linear readout.

The observation (4 numbers) is fed directly at every one of the T steps; the first Linear turns it
into input current, the LIF layers spike, and the last Linear reads the spikes out. The harness
averages the [T, B, 2] output over time to get the two Q-values (PROTOCOLS.md section 5).

    snnbench train    --task cartpole --model submissions/examples/cartpole_snn.py
    snnbench evaluate --task cartpole --model submissions/examples/cartpole_snn.py --checkpoint ...

With no train() here, `snnbench train` runs the harness's DQN recipe (snnbench.rl.train_dqn).
"""

from torch import nn

from snnbench.neurons import LIF, MultiStep

CITATION = ""


def build(task) -> nn.Module:
    features = 1
    for size in task.input_shape:
        features *= size
    hidden = 128
    return nn.Sequential(
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(features, hidden)),
        LIF(tau=2.0),
        MultiStep(nn.Linear(hidden, hidden)),
        LIF(tau=2.0),
        MultiStep(nn.Linear(hidden, task.outputs)),
    )
