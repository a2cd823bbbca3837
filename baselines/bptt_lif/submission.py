"""bptt_lif: the reference row. The template's network trained by the default recipe.

Surrogate-gradient BPTT (Neftci, Mostafa & Zenke 2019; Wu et al. 2018, STBP): a two-layer
convolutional LIF network (tau=2, hard reset, ATan surrogate, BatchNorm, max pooling) with a
linear readout averaged over time, trained by Adam + cross-entropy on the time-averaged output
with a cosine schedule. It is exactly submissions/template.py and snnbench.training.default_train,
so every other baseline reads its delta against this row.
"""

from __future__ import annotations

from torch import nn

from snnbench.neurons import LIF, MultiStep
from snnbench.training import default_train

CITATION = """@article{neftci2019surrogate,
  author  = {Neftci, Emre O. and Mostafa, Hesham and Zenke, Friedemann},
  title   = {Surrogate Gradient Learning in Spiking Neural Networks: Bringing the Power of
             Gradient-Based Optimization to Spiking Neural Networks},
  journal = {IEEE Signal Processing Magazine},
  volume  = {36},
  number  = {6},
  pages   = {51--63},
  year    = {2019},
  doi     = {10.1109/MSP.2019.2931595}
}
@article{wu2018stbp,
  author  = {Wu, Yujie and Deng, Lei and Li, Guoqi and Zhu, Jun and Shi, Luping},
  title   = {Spatio-Temporal Backpropagation for Training High-Performance Spiking Neural Networks},
  journal = {Frontiers in Neuroscience},
  volume  = {12},
  pages   = {331},
  year    = {2018},
  doi     = {10.3389/fnins.2018.00331}
}"""

# Figures the papers report (plain literals, read statically). Wu et al. 2018 (STBP), MNIST,
# as we recall it (unverified): 98.89% with an MLP.
TASKS = ("digits", "digits-dvs")  # the embedded tasks it applies to (snnbench sweep leaves out others)
REPORTED = {"mnist accuracy (STBP, unverified)": 0.9889}


def build(task) -> nn.Module:
    """Exactly submissions/template.py's network."""
    channels, height, width = task.input_shape
    return nn.Sequential(
        MultiStep(nn.Conv2d(channels, 16, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(16)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Conv2d(16, 32, 3, padding=1, bias=False)),
        MultiStep(nn.BatchNorm2d(32)),
        LIF(tau=2.0),
        MultiStep(nn.MaxPool2d(2)),
        MultiStep(nn.Flatten()),
        MultiStep(nn.Linear(32 * (height // 4) * (width // 4), task.outputs)),
    )


def train(model: nn.Module, task, data, budget) -> nn.Module:
    """The default recipe, unchanged: that is this baseline's point."""
    return default_train(model, task, data, budget, progress=False)
