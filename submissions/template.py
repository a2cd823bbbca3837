"""The smallest correct snnbench submission: a small convolutional spiking network.

Copy this file, change build(), and run

    snnbench train    --task digits-dvs --model submissions/mine.py
    snnbench evaluate --task digits-dvs --model submissions/mine.py --checkpoint checkpoints/digits-dvs/mine-seed0-T10.pt

The contract (see README "Writing a submission"):
- build(task) returns a torch.nn.Module. task.input_shape is (C, H, W) or (features,),
  task.outputs is the number of classes, task.timesteps is T.
- The model receives a float tensor [T, B, *input_shape] and returns logits [T, B, classes]
  (the harness averages over time) or [B, classes]. It never receives labels.
- train(model, task, data, budget) is optional; without it `snnbench train` runs the default
  surrogate-gradient BPTT recipe (Adam, cross-entropy on the time-averaged output).
- Nothing here needs snnbench: any framework (snnTorch, SpikingJelly, Norse, plain torch) works,
  and spikes are counted from the outside. snnbench.neurons is simply the fastest option.
"""

from torch import nn

from snnbench.neurons import LIF, MultiStep

CITATION = ""  # a BibTeX entry for your method's paper, printed by `snnbench cite`


def build(task) -> nn.Module:
    channels, height, width = task.input_shape
    return nn.Sequential(
        MultiStep(nn.Conv2d(channels, 16, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(16)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),  # max of spikes is a spike: every synaptic layer below sees spikes
        MultiStep(nn.Conv2d(16, 32, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(32)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(32 * (height // 4) * (width // 4), task.outputs)),
    )
