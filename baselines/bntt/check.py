"""bntt check (METHODS.md): digits-dvs, T <= 8: per-timestep BN >= 3 points over no BN, <= 1 point
under one time-shared BN; the early exit (step <= T) costs <= 1 point.

All three variants share the network, split, T and budget; 3 seeds each. To fit one core in
about 10 minutes the check runs at T=CHECK_T and CHECK_EPOCHS epochs (task budget: T=10, 15 epochs).
Run: .venv/bin/python baselines/bntt/check.py
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from snnbench.data import load_split
from snnbench.neurons import BaseNeuron
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
CHECK_T = 6
CHECK_EPOCHS = 4
VARIANTS = ("bntt", "shared", "none")


def load_submission():
    spec = importlib.util.spec_from_file_location("bntt_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def evaluate(model, dataset, steps: int, seed: int) -> tuple[float, float]:
    """Accuracy of the time-mean output and spikes per sample (all neurons)."""
    torch.manual_seed(seed)
    spikes = [0.0]
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, out: spikes.__setitem__(0, spikes[0] + float((out != 0).sum()))
        )
        for m in model.modules()
        if isinstance(m, BaseNeuron)
    ]
    model.eval()
    correct = seen = 0
    for x, y in DataLoader(dataset, batch_size=128, shuffle=False):
        out = model(x.float().transpose(0, 1).contiguous()).mean(0)  # frames [B,T,...] -> [T,B,...]
        correct += int((out.argmax(1) == y).sum())
        seen += y.numel()
    for h in hooks:
        h.remove()
    return correct / seen, spikes[0] / seen


def run(sub, task, norm: str, seed: int, train_set, test_set) -> dict:
    torch.manual_seed(seed)
    model = sub.build(task, norm=norm, timesteps=CHECK_T)
    data = TrainingData(task, train_set, CHECK_T, seed)
    budget = Budget(epochs=CHECK_EPOCHS, lr=task.train["lr"], batch_size=task.train["batch_size"])
    started = time.monotonic()
    sub.train(model, task, data, budget)
    row = {"seconds": time.monotonic() - started, "exit": int(model.exit_step)}
    row["acc_exit"], row["spikes_exit"] = evaluate(model, test_set, CHECK_T, seed)
    # accuracy if the exit were forced at every step k (1..T): what an exit would cost here
    row["acc_at"] = []
    for k in range(1, CHECK_T + 1):
        model.exit_step.fill_(k)
        row["acc_at"].append(evaluate(model, test_set, CHECK_T, seed)[0])
    model.exit_step.fill_(CHECK_T)
    row["acc"], row["spikes"] = evaluate(model, test_set, CHECK_T, seed)
    gamma = model.output_gamma()
    row["gamma"] = None if gamma is None else [round(float(g), 3) for g in gamma]
    return row


def ms(values) -> str:
    values = list(values)
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def main() -> None:
    torch.set_num_threads(1)
    started = time.monotonic()
    sub = load_submission()
    task = get_task("digits-dvs")
    train_set = load_split(task, "train", timesteps=CHECK_T).dataset
    test_set = load_split(task, "test", timesteps=CHECK_T).dataset
    results = {}
    for norm in VARIANTS:
        results[norm] = [run(sub, task, norm, s, train_set, test_set) for s in SEEDS]
        for s, r in zip(SEEDS, results[norm]):
            print(
                f"  {norm:6s} seed {s}: acc {r['acc']:.4f}  exit step {r['exit']} acc@exit {r['acc_exit']:.4f}"
                f"  spikes {r['spikes']:.0f} (@exit {r['spikes_exit']:.0f})  train {r['seconds']:.0f} s"
                f"  output-BN mean gamma_t {r['gamma']}",
                flush=True,
            )
    print(
        f"\ndigits-dvs, T={CHECK_T}, {CHECK_EPOCHS} epochs, full splits, seeds {SEEDS}: accuracy % (mean ± sd)"
    )
    print("| variant | accuracy (all T steps) | spikes / sample | exit step | accuracy at exit |")
    print("|---|---|---|---|---|")
    for norm in VARIANTS:
        rs = results[norm]
        exits = ", ".join(str(r["exit"]) for r in rs)
        print(
            f"| {norm} | {ms(r['acc'] for r in rs)} | {statistics.mean(r['spikes'] for r in rs):.0f} | "
            f"{exits} | {ms(r['acc_exit'] for r in rs)} |"
        )

    def mean(norm, key="acc"):
        return 100 * statistics.mean(r[key] for r in results[norm])

    print("\naccuracy % if the network stopped after k steps (exit forced; mean over seeds):")
    print("| variant | " + " | ".join(f"k={k}" for k in range(1, CHECK_T + 1)) + " |")
    print("|---|" + "---|" * CHECK_T)
    for norm in VARIANTS:
        cells = [100 * statistics.mean(r["acc_at"][k] for r in results[norm]) for k in range(CHECK_T)]
        print(f"| {norm} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")

    over_none = mean("bntt") - mean("none")
    under_shared = mean("shared") - mean("bntt")
    exit_cost = mean("bntt") - mean("bntt", "acc_exit")
    print("\n| claim | measured (points) | verdict |")
    print("|---|---|---|")
    print(
        f"| BNTT >= 3 points over no BN | {over_none:+.2f} | {'reproduced' if over_none >= 3 else 'not reproduced'} |"
    )
    print(
        f"| BNTT <= 1 point under time-shared BN | {-under_shared:+.2f} (shared - BNTT = {under_shared:+.2f}) | "
        f"{'reproduced' if under_shared <= 1 else 'not reproduced'} |"
    )
    print(
        f"| early exit costs <= 1 point | {exit_cost:+.2f} | {'reproduced' if exit_cost <= 1 else 'not reproduced'} |"
    )
    print(f"check time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
