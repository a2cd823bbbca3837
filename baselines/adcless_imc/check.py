"""adcless_imc check (METHODS.md), digits-dvs: post-hoc binarization of the partial sums costs >= 10
points; progressive hardware-aware training recovers to within 3 points of float and >= all-at-once;
model energy ADC-less < high-precision ADC.

Per seed: one float pretraining (exact partial sums, 4-bit weights as in every variant), then three
branches from those same weights with the same number of epochs: float (then binarized post hoc,
alpha calibrated on one training batch, no training), progressive (layers made aware first to last)
and all-at-once. Energy and latency of the progressive model from the harness's own counts
(ActivityProbe + footprint rows on the test split) priced by the crossbar cards. 3 seeds.
Budget: the whole training split, EPOCHS_FLOAT + EPOCHS_BRANCH = 4 + 6 epochs per variant (task
budget: 15 epochs; progressive: layers 1, 1, 2, 2, 3, 3 aware); T = 10. N_TRAIN samples a fixed
subset instead, for a quicker run.
Run: nice -n 5 .venv/bin/python baselines/adcless_imc/check.py
"""

from __future__ import annotations

import copy
import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from snnbench.data import load_split
from snnbench.frameworks import reset_state
from snnbench.metrics.activity import ActivityProbe
from snnbench.metrics.energy import crossbar_rows
from snnbench.metrics.footprint import footprint_rows
from snnbench.quantization import freeze_
from snnbench.tasks import get_task
from snnbench.training import TrainingData, readout

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
N_TRAIN = None  # None: the whole training split (1347)
EPOCHS_FLOAT = 4
EPOCHS_BRANCH = 6


def load_submission():
    spec = importlib.util.spec_from_file_location("adcless_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def accuracy(model, data: TrainingData) -> float:
    model.eval()
    correct = seen = 0
    for x, y in data.loader(256, shuffle=False):
        correct += int((readout(model(x)).argmax(1) == y).sum())
        seen += y.numel()
    return correct / seen


@torch.no_grad()
def crossbar_costs(model, data: TrainingData) -> dict:
    model.eval()
    probe = ActivityProbe()
    probe.attach(model, None)
    for x, _ in data.loader(256, shuffle=False):
        reset_state(model)
        probe.before_batch(x.shape[1], x.shape[0])
        probe.after_batch(model(x))
    probe.detach()
    rows = crossbar_rows(probe.rows() + footprint_rows(model), per_sample=probe.per_sample())
    return {(r.metric, r.condition): r.value for r in rows}


def run(sub, task, seed: int, train_set, test_set) -> dict:
    lr, batch = task.train["lr"], task.train["batch_size"]
    train_data = TrainingData(task, train_set, task.timesteps, seed)
    test_data = TrainingData(task, test_set, task.timesteps, seed)
    torch.manual_seed(seed)
    base = sub.build(task)
    sub.run_epochs(base, train_data, [0] * EPOCHS_FLOAT, lr, batch, [])
    n = len(base.crossbars())
    plans = {
        "float": [0] * EPOCHS_BRANCH,
        "progressive": [1 + i * n // EPOCHS_BRANCH for i in range(EPOCHS_BRANCH)],
        "all": [n] * EPOCHS_BRANCH,
    }
    row = {}
    for name, plan in plans.items():
        torch.manual_seed(seed + 100)
        model = copy.deepcopy(base)
        sub.run_epochs(model, train_data, plan, lr, batch, [])
        freeze_(model)
        row[name] = accuracy(model, test_data)
        if name == "float":
            x, _ = next(iter(train_data.loader(batch)))
            sub.make_aware_(model, model.crossbars(), x)
            row["posthoc"] = accuracy(model, test_data)
        if name == "progressive":
            costs = crossbar_costs(model, test_data)
            for card in ("imc-adcless-r64", "imc-adc6-r64"):
                row[f"uj {card}"] = costs[("energy_uj_per_sample", card)]
                row[f"ns {card}"] = costs[("crossbar_latency_ns_per_sample", card)]
    return row


def ms(values) -> str:
    values = list(values)
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits-dvs")
    full = load_split(task, "train").dataset
    train_set, test_set = full, load_split(task, "test").dataset
    if N_TRAIN:
        idx = torch.randperm(len(full), generator=torch.Generator().manual_seed(1234))[:N_TRAIN].tolist()
        train_set = Subset(full, idx)
    started = time.monotonic()
    rows = []
    for seed in SEEDS:
        rows.append(run(sub, task, seed, train_set, test_set))
        print(f"seed {seed}: {rows[-1]}", flush=True)
    col = lambda k: [r[k] for r in rows]  # noqa: E731
    print("\n| variant (digits-dvs, T=10, 3 seeds) | test accuracy, mean ± std |")
    print("|---|---|")
    print(f"| float partial sums (ideal ADC) | {ms(col('float'))} |")
    print(f"| float, binarized post hoc | {ms(col('posthoc'))} |")
    print(f"| progressive hardware-aware | {ms(col('progressive'))} |")
    print(f"| all-at-once hardware-aware | {ms(col('all'))} |")
    print(
        "\n| progressive model, crossbar cards | ADC-less (imc-adcless-r64) | 6-bit ADC (imc-adc6-r64) | ratio |"
    )
    print("|---|---|---|---|")
    e1, e6 = col("uj imc-adcless-r64"), col("uj imc-adc6-r64")
    t1, t6 = col("ns imc-adcless-r64"), col("ns imc-adc6-r64")
    print(f"| energy µJ / sample | {ms(e1)} | {ms(e6)} | {ms(b / a for a, b in zip(e1, e6))} |")
    print(f"| latency ns / sample | {ms(t1)} | {ms(t6)} | {ms(b / a for a, b in zip(t1, t6))} |")
    fl, ph, pr, al = (statistics.mean(col(k)) for k in ("float", "posthoc", "progressive", "all"))
    print("\nverdicts:")
    print(f"- post-hoc binarization costs >= 10 points: {fl - ph >= 0.10} ({100 * (fl - ph):.1f} points)")
    print(f"- progressive within 3 points of float: {fl - pr <= 0.03} ({100 * (fl - pr):.1f} points)")
    print(f"- progressive >= all-at-once: {pr >= al} ({100 * (pr - al):+.1f} points)")
    print(f"- model energy ADC-less < 6-bit ADC (every seed): {all(a < b for a, b in zip(e1, e6))}")
    print(f"\ncheck time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
