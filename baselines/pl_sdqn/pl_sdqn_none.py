"""pl_sdqn_none: the pl_sdqn spiking Q-network without pbLN (the paper's ablation).

The same 4-H-H-H-A LIF network, integrator readout and DQN loop as submission.py, built with
VARIANT "none": no normalisation before the LIF neurons. Loads its sibling submission.py by path,
so the two stay one implementation (this file's hash does not cover submission.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
REPORTED: dict = {}
VARIANT = "none"

_spec = importlib.util.spec_from_file_location("pl_sdqn_base_none", Path(__file__).with_name("submission.py"))
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)


def build(task):
    return _base.build_variant(task, VARIANT)


def train(model, task, data, budget):
    return _base.train(model, task, data, budget)
