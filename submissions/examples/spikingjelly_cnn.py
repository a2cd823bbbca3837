"""A submission written with SpikingJelly only (no snnbench import): a multi-step convolutional SNN."""

from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn


def build(task) -> nn.Module:
    channels = task.input_shape[0]
    return nn.Sequential(
        layer.Conv2d(channels, 16, 3, padding=1, bias=False, step_mode="m"),
        layer.BatchNorm2d(16, step_mode="m"),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True, step_mode="m"),
        layer.MaxPool2d(2, step_mode="m"),
        layer.Flatten(step_mode="m"),
        layer.Linear(
            16 * (task.input_shape[1] // 2) * (task.input_shape[2] // 2), task.outputs, step_mode="m"
        ),
    )
