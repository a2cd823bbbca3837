"""Small-scale check of asa_attention (METHODS.md): on digits-dvs, ASA cuts spikes per sample by
>= 20% and costs <= 1 point of accuracy against the same network without attention.

Both networks: build(task, attention=True/False) (2 conv-BN-LIF layers, widths 16/32), the same
surrogate-BPTT recipe (Adam 2e-3, batch 64, cosine), evaluated on the full test split; 3 seeds.
Reduced to fit ~10 min of one shared core: the event frames are binned to T=5 instead of 10,
training uses the first 640 of the 1347 training samples and runs 5 epochs instead of 15.
Spikes per sample are the harness's own count (snnbench.metrics.activity.ActivityProbe: non-zero
outputs of every LIF over T, summed over layers), cross-checked against a direct sum of the LIF
outputs taken with forward hooks. Run: .venv/bin/python baselines/asa_attention/check.py
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from snnbench.data import load_split
from snnbench.metrics.activity import ActivityProbe
from snnbench.neurons import BaseNeuron
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, readout

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
STEPS = 5
EPOCHS = 5
TRAIN_SAMPLES = 640


def load_submission():
    spec = importlib.util.spec_from_file_location("asa_attention_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(model, task, dataset, steps: int) -> tuple[float, float, float]:
    """(accuracy, spikes/sample by ActivityProbe, spikes/sample by hooks on the neurons)."""
    model.eval()
    probe = ActivityProbe()
    probe.attach(model, task)
    hooked = [0.0]
    handles = [
        m.register_forward_hook(
            lambda _m, _a, out: hooked.__setitem__(0, hooked[0] + float((out != 0).sum()))
        )
        for m in model.modules()
        if isinstance(m, BaseNeuron)
    ]
    correct = seen = 0
    try:
        with torch.no_grad():
            for x, y in TrainingData(task, dataset, steps, 0).loader(128, shuffle=False):
                probe.before_batch(x.shape[1], x.shape[0])
                out = model(x)
                probe.after_batch(out)
                correct += int((readout(out).argmax(1) == y).sum())
                seen += y.numel()
    finally:
        probe.detach()
        for h in handles:
            h.remove()
    rows = probe.rows()
    spikes = [
        r.value for r in rows if r.metric == "spikes_per_sample" and r.layer is None and r.timestep is None
    ]
    assert len(spikes) == 1, rows
    return correct / seen, spikes[0], hooked[0] / seen


def mean_sd(values, fmt: str = "{:.4f}") -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(sd)}"


def main() -> int:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits-dvs")
    train_set = Subset(load_split(task, "train", timesteps=STEPS).dataset, range(TRAIN_SAMPLES))
    test_set = load_split(task, "test", timesteps=STEPS).dataset
    spec = task.train
    budget = Budget(epochs=EPOCHS, lr=spec["lr"], batch_size=spec["batch_size"])
    rows: dict[str, dict[str, list[float]]] = {}
    started = time.monotonic()
    for seed in SEEDS:
        for attention in (False, True):
            name = "ASA (both layers, k=3, time-shared)" if attention else "no attention (control)"
            torch.manual_seed(seed)
            model = sub.build(task, attention=attention)
            t0 = time.monotonic()
            sub.train(model, task, TrainingData(task, train_set, STEPS, seed), budget)
            seconds = time.monotonic() - t0
            acc, spikes, hooked = evaluate(model, task, test_set, STEPS)
            r = rows.setdefault(name, {})
            for key, value in (("acc", acc), ("spikes", spikes), ("hooked", hooked), ("train_s", seconds)):
                r.setdefault(key, []).append(value)
            print(
                f"seed {seed} {name}: acc {acc:.4f} spikes {spikes:.1f} (hooks {hooked:.1f}) {seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"digits-dvs, T={STEPS}, {EPOCHS} epochs, first {TRAIN_SAMPLES} training samples, test split ({len(test_set)}), "
        f"seeds {SEEDS}: mean ± sd"
    )
    print("| network | accuracy | spikes/sample (ActivityProbe) | spikes/sample (hooks) | train time (s) |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {mean_sd(r['acc'])} | {mean_sd(r['spikes'], '{:.0f}')} | "
            f"{mean_sd(r['hooked'], '{:.0f}')} | {mean_sd(r['train_s'], '{:.0f}')} |"
        )
    base, asa = rows["no attention (control)"], rows["ASA (both layers, k=3, time-shared)"]
    drop = 1 - statistics.mean(asa["spikes"]) / statistics.mean(base["spikes"])
    cost = (statistics.mean(base["acc"]) - statistics.mean(asa["acc"])) * 100
    ok_spikes, ok_acc = drop >= 0.20, cost <= 1.0
    print()
    print(
        f"spikes per sample: {drop * 100:+.1f}% fewer with ASA (>= 20%) -> {'PASS' if ok_spikes else 'FAIL'}"
    )
    print(f"accuracy: ASA costs {cost:+.2f} points (<= 1) -> {'PASS' if ok_acc else 'FAIL'}")
    print(f"check wall time: {time.monotonic() - started:.0f} s")
    return 0 if ok_spikes and ok_acc else 1


if __name__ == "__main__":
    sys.exit(main())
