"""tinysnn check (METHODS.md), digits: 8 bits within 1 point of FP32 at >= 4x less memory; at 4-bit
QAT, nearest/stochastic rounding beats truncation; the selector returns the smallest model within
tolerance.

Per seed: one full-precision training (the task's 30 epochs less the QAT fifth: 24), then PTQ at
8 bits; three 4-bit QAT fine-tunes (6 epochs each, one per rounding) from those same weights;
then the submission's own train() (its selection on a held-out tenth of the training split),
whose choice is checked against an independent pass over its candidate list. Test accuracy on the
test split. Memory = param_bytes as the footprint probe counts it. 3 seeds.
Run: nice -n 5 .venv/bin/python baselines/tinysnn/check.py
"""

from __future__ import annotations

import copy
import importlib.util
import statistics
import time
from pathlib import Path

import torch

from snnbench.data import load_split
from snnbench.quantization import freeze_, quant_bytes, set_bits_
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
EPOCHS = 30
QAT_EPOCHS = EPOCHS // 5
ROUNDINGS = ("nearest", "stochastic", "trunc")


def load_submission():
    spec = importlib.util.spec_from_file_location("tinysnn_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(sub, task, seed: int, train_set, test_set) -> dict:
    torch.manual_seed(seed)
    lr, batch = task.train["lr"], task.train["batch_size"]
    train_data = TrainingData(task, train_set, task.timesteps, seed)
    test_data = TrainingData(task, test_set, task.timesteps, seed)
    fp = sub.build(task)
    sub.fit(fp, train_data, EPOCHS - QAT_EPOCHS, lr, batch, [], None)
    row = {"fp32": sub.accuracy(fp, test_data), "fp32_bytes": quant_bytes(fp)}
    q8 = sub.quantized_copy(fp, 8)
    row["ptq8"], row["ptq8_bytes"] = sub.accuracy(q8, test_data), quant_bytes(q8)
    for rounding in ROUNDINGS:
        torch.manual_seed(seed)
        m = copy.deepcopy(fp)
        set_bits_(m, 4, rounding)
        sub.fit(m, train_data, QAT_EPOCHS, lr / 2, batch, [], None)
        freeze_(m)
        row[f"qat4_{rounding}"] = sub.accuracy(m, test_data)
    torch.manual_seed(seed)
    model = sub.build(task)
    data = TrainingData(task, train_set, task.timesteps, seed)
    sub.train(model, task, data, Budget(epochs=EPOCHS, lr=lr, batch_size=batch))
    sel = next(h for h in data.history if "selection" in h)
    cands, chosen = sel["selection"], sel["chosen"]
    ref = next(c["val_accuracy"] for c in cands if c["bits"] == 0)
    within = [c for c in cands if c["val_accuracy"] >= ref - sub.TOLERANCE - 1e-12]
    smallest = min(c["bytes"] for c in within)
    row["selector_ok"] = chosen["bytes"] == smallest and chosen in within
    row["chosen"] = f"{chosen['bits']}b {chosen['scheme']}"
    row["chosen_bytes"] = quant_bytes(model)
    row["chosen_test"] = sub.accuracy(model, test_data)
    return row


def ms(values) -> str:
    values = list(values)
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    torch.set_num_threads(1)
    sub = load_submission()
    task = get_task("digits")
    train_set, test_set = load_split(task, "train").dataset, load_split(task, "test").dataset
    started = time.monotonic()
    rows = []
    for seed in SEEDS:
        rows.append(run(sub, task, seed, train_set, test_set))
        print(f"seed {seed}: {rows[-1]}", flush=True)
    fp, q8 = [r["fp32"] for r in rows], [r["ptq8"] for r in rows]
    ratio = [r["fp32_bytes"] / r["ptq8_bytes"] for r in rows]
    print("\n| quantity (digits, 3 seeds) | mean ± std |")
    print("|---|---|")
    print(f"| FP32 test accuracy | {ms(fp)} |")
    print(f"| PTQ 8-bit test accuracy | {ms(q8)} |")
    print(f"| FP32 - 8-bit (points) | {ms(100 * (a - b) for a, b in zip(fp, q8))} |")
    print(f"| memory FP32 / 8-bit (param_bytes) | {ms(ratio)} ({rows[0]['fp32_bytes']:.0f} / "
          f"{rows[0]['ptq8_bytes']:.0f} bytes) |")  # fmt: skip
    for rounding in ROUNDINGS:
        print(f"| 4-bit QAT, {rounding} rounding | {ms(r[f'qat4_{rounding}'] for r in rows)} |")
    print(f"| selector's choice per seed | {', '.join(r['chosen'] for r in rows)} |")
    print(f"| selector's model: test accuracy | {ms(r['chosen_test'] for r in rows)} |")
    sizes = ", ".join(str(int(r["chosen_bytes"])) for r in rows)
    print(f"| selector's model: param_bytes | {sizes} |")
    drop_ok = all(a - b <= 0.01 for a, b in zip(fp, q8)) and statistics.mean(fp) - statistics.mean(q8) <= 0.01
    mem_ok = min(ratio) >= 4.0
    near = statistics.mean(r["qat4_nearest"] for r in rows)
    stoch = statistics.mean(r["qat4_stochastic"] for r in rows)
    trunc = statistics.mean(r["qat4_trunc"] for r in rows)
    print("\nverdicts:")
    print(f"- 8 bits within 1 point of FP32 (mean and every seed): {drop_ok}")
    print(f"- >= 4x less memory at 8 bits: {mem_ok} (min ratio {min(ratio):.4f})")
    print(f"- 4-bit QAT: nearest > trunc: {near > trunc}; stochastic > trunc: {stoch > trunc}")
    print(
        f"- selector returns the smallest model within tolerance (every seed): {all(r['selector_ok'] for r in rows)}"
    )
    print(f"\ncheck time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
