"""Helpers shared by the baselines' small-scale checks (`baselines/<id>/check.py`): load a
baseline's submission by path, score a trained network the way every check reports it, and print
seed statistics. Kept in snnbench so the checks read the same figures the same way.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from snnbench.neurons import BaseNeuron
from snnbench.training import TrainingData, readout


def load_baseline(path: str | Path, name: str) -> ModuleType:
    """The submission file at `path` as a module named `name`, not registered in sys.modules."""
    spec = importlib.util.spec_from_file_location(name, Path(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accuracy(model: nn.Module, task, dataset, steps: int, batch_size: int = 256) -> float:
    """Test accuracy (argmax of the time-mean output), model left in eval mode; no spike hooks."""
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for x, y in TrainingData(task, dataset, steps, 0).loader(batch_size, shuffle=False):
            correct += int((readout(model(x)).argmax(1) == y).sum())
            seen += y.numel()
    return correct / seen


def accuracy_and_spikes(
    model: nn.Module, task, dataset, steps: int, batch_size: int = 256
) -> tuple[float, float]:
    """Test accuracy (argmax of the time-mean output) and spikes per sample over every snnbench
    neuron module, the figures a check's table reports; the model is left in eval mode."""
    model.eval()
    total = [0.0]
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: total.__setitem__(0, total[0] + float(out.sum())))
        for m in model.modules()
        if isinstance(m, BaseNeuron)
    ]
    correct = seen = 0
    try:
        with torch.no_grad():
            for x, y in TrainingData(task, dataset, steps, 0).loader(batch_size, shuffle=False):
                correct += int((readout(model(x)).argmax(1) == y).sum())
                seen += y.numel()
    finally:
        for h in hooks:
            h.remove()
    return correct / seen, total[0] / seen


def mean_sd(values: Sequence[float], digits: int = 4) -> str:
    """ "mean ± sample sd" (sd 0 for one value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"
