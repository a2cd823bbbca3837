"""sew_resnet check (METHODS.md): (1) with the branch's last BN affine zeroed, ADD and IAND blocks
return their input exactly; (2) on digits with >= 8 blocks SEW-ADD beats plain Spiking ResNet,
with no smaller gap at double depth (16 blocks).

All runs share width (8), split, T=4 and budget (CHECK_EPOCHS epochs instead of the task's 30,
to fit one shared core), 3 seeds. Run: .venv/bin/python baselines/sew_resnet/check.py
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from snnbench.data import load_split
from snnbench.encoding import encoder_for
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
CHECK_EPOCHS = 8
WIDTH = 8
DEPTHS = (8, 16)
VARIANTS = ("ADD", "plain")


def load_submission():
    spec = importlib.util.spec_from_file_location("sew_resnet_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def identity_check(sub) -> list[str]:
    """Zero the last BN's weight and bias of every block's branch: ADD/IAND must be exact identities
    (AND and plain are shown for contrast), on random binary inputs."""
    torch.manual_seed(0)
    lines = []
    for g in ("ADD", "IAND", "AND", "plain"):
        block = sub.Block(8, 8, 1, g, events=False).eval()
        with torch.no_grad():
            block.last_bn().weight.zero_()
            block.last_bn().bias.zero_()
            a = (torch.rand(4, 16, 8, 8, 8) < 0.3).float()
            out = block(a)
        exact = torch.equal(out, a)
        lines.append(f"| {g} | {exact} | {float((out - a).abs().max()):.3g} |")
    return lines


@torch.no_grad()
def accuracy(model, task, dataset, seed: int) -> float:
    encoder = encoder_for(task)
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    correct = seen = 0
    for x, y in DataLoader(dataset, batch_size=128, shuffle=False):
        out = model(encoder(x.float(), task.timesteps, gen)).mean(0)
        correct += int((out.argmax(1) == y).sum())
        seen += y.numel()
    return correct / seen


def main() -> None:
    torch.set_num_threads(1)
    started = time.monotonic()
    sub = load_submission()
    print("identity with a silent branch (last BN weight and bias = 0), block on binary input:")
    print("| g | output == input exactly | max abs difference |")
    print("|---|---|---|")
    for line in identity_check(sub):
        print(line, flush=True)
    task = get_task("digits")
    train_set = load_split(task, "train").dataset
    test_set = load_split(task, "test").dataset
    budget = Budget(epochs=CHECK_EPOCHS, lr=task.train["lr"], batch_size=task.train["batch_size"])
    acc: dict[tuple[int, str], list[float]] = {}
    for depth in DEPTHS:
        for g in VARIANTS:
            for seed in SEEDS:
                torch.manual_seed(seed)
                model = sub.build(task, g=g, blocks=depth, width=WIDTH)
                data = TrainingData(task, train_set, task.timesteps, seed)
                t0 = time.monotonic()
                sub.train(model, task, data, budget)
                a = accuracy(model, task, test_set, seed)
                acc.setdefault((depth, g), []).append(a)
                print(
                    f"  {depth} blocks {g:5s} seed {seed}: test {a:.4f} "
                    f"train-acc {data.history[-1]['train_accuracy']:.4f}  {time.monotonic() - t0:.0f} s",
                    flush=True,
                )
    print(f"\ndigits, T=4, width {WIDTH}, {CHECK_EPOCHS} epochs, seeds {SEEDS}: test accuracy % (mean ± sd)")
    print("| blocks | SEW-ADD | plain Spiking ResNet | gap (ADD - plain) |")
    print("|---|---|---|---|")
    gaps = {}
    for depth in DEPTHS:
        a, p = acc[(depth, "ADD")], acc[(depth, "plain")]
        gaps[depth] = 100 * (statistics.mean(a) - statistics.mean(p))
        print(
            f"| {depth} | {100 * statistics.mean(a):.2f} ± {100 * statistics.stdev(a):.2f} | "
            f"{100 * statistics.mean(p):.2f} ± {100 * statistics.stdev(p):.2f} | {gaps[depth]:+.2f} |"
        )
    d1, d2 = DEPTHS
    print("\n| claim | measured | verdict |")
    print("|---|---|---|")
    print(
        f"| SEW-ADD beats plain at {d1} blocks | gap {gaps[d1]:+.2f} | {'reproduced' if gaps[d1] > 0 else 'not reproduced'} |"
    )
    ok = gaps[d2] >= gaps[d1]
    print(
        f"| gap at {d2} blocks >= gap at {d1} | {gaps[d2]:+.2f} vs {gaps[d1]:+.2f} | "
        f"{'reproduced' if ok else 'not reproduced'} |"
    )
    print(f"check time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
