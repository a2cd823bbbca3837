"""bptt_lif check: the reference row's digits and digits-dvs accuracy and spikes, 3 seeds.

Run: .venv/bin/python baselines/bptt_lif/check.py [--tasks digits,digits-dvs] [--seeds 0,1,2]
(one core; full task budgets, full splits). Fewer seeds/tasks only to fit a busy machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from snnbench.data import load_split
from snnbench.encoding import encoder_for
from snnbench.neurons import BaseNeuron
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, readout

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)


def load_submission():
    spec = importlib.util.spec_from_file_location("bptt_lif_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def evaluate(model, task, seed: int) -> tuple[float, float]:
    """Test accuracy (argmax of the time-mean output) and spikes per sample at every neuron."""
    split = load_split(task, "test")
    encoder = encoder_for(task)
    gen = torch.Generator().manual_seed(seed)
    spikes = [0.0]

    def count(_m, _i, out):
        spikes[0] += float((out != 0).sum())

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, BaseNeuron)]
    model.eval()
    correct = seen = 0
    for x, y in DataLoader(split.dataset, batch_size=task.batch_size, shuffle=False):
        out = readout(model(encoder(x.float(), task.timesteps, gen)))
        correct += int((out.argmax(1) == y).sum())
        seen += y.numel()
    for h in hooks:
        h.remove()
    return correct / seen, spikes[0] / seen


def run(task, seed: int) -> tuple[float, float, float]:
    sub = load_submission()
    budget = Budget(**{k: v for k, v in dict(task.train).items() if k in Budget.__dataclass_fields__})
    torch.manual_seed(seed)
    model = sub.build(task)
    data = TrainingData(task, load_split(task, "train").dataset, task.timesteps, seed)
    started = time.monotonic()
    model = sub.train(model, task, data, budget)
    seconds = time.monotonic() - started
    acc, spikes = evaluate(model, task, seed)
    return acc, spikes, seconds


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="digits,digits-dvs")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    started = time.monotonic()
    print(
        "| task | T | epochs | accuracy (mean ± sd over seeds) | spikes / sample | per seed acc | train s / seed |"
    )
    print("|---|---|---|---|---|---|---|")
    for task_id in args.tasks.split(","):
        task = get_task(task_id)
        rows = [run(task, s) for s in seeds]
        accs, spikes, secs = zip(*rows)
        print(
            f"| {task_id} | {task.timesteps} | {task.train['epochs']} | {mean_sd(list(accs))} | "
            f"{statistics.mean(spikes):.0f} ± {statistics.stdev(spikes) if len(spikes) > 1 else float('nan'):.0f} | "
            f"{', '.join(f'{a:.4f}' for a in accs)} | {statistics.mean(secs):.0f} |",
            flush=True,
        )
    print(f"check time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
