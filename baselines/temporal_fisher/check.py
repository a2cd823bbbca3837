"""METHODS.md small-scale check for temporal_fisher (digits, direct input, T=8, 3 seeds).

Claims: (1) with plain BPTT the Fisher concentration index (share of FI_t in the first ceil(T/3)
steps) at the last epoch exceeds the epoch-1 index and 1/3; (2) the anti-concentration model
(ANTI weight 1.0, reconstruction) is within 1 point of the plain one on clean test accuracy and
lower under FGSM (eps = the task's robustness eps, 0.1 on [0, 1] pixels, through the surrogate
gradients, snnbench.metrics.robustness.fgsm). Both share architecture, seed, split and budget.
Writes the per-epoch concentration curve (mean over seeds) to fisher_concentration.svg.

The pruning part (`--part pruning`) trains, per seed, the submission's FI-guided IMP (rounds stop
once the concentration index has settled, at most round_max_epochs) and plain IMP (every round
round_max_epochs) to the same TARGET_SPARSITY, each ticket then trained `--epochs`, plus the dense
network as a reference; it prints the tickets' test accuracy, the epochs each search spent, where
each round stopped, and the weight sparsity of the checkpointed weights. Claim (paper: an
"efficient" IMP; our stopping rule is a reconstruction): FI-guided IMP searches in fewer epochs
and its ticket is within 1 point of plain IMP's.

    .venv/bin/python baselines/temporal_fisher/check.py [--part all|concentration|pruning]
        [--seeds 0,1,2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

from snnbench import pruning
from snnbench.data import load_split
from snnbench.encoding import Direct
from snnbench.metrics.robustness import LocalOracle, PixelSpace, fgsm
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("temporal_fisher_submission", HERE / "submission.py")
sub = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sub)

STEPS = 8
ANTI = 1.0


def tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[dataset[i] for i in range(len(dataset))])
    return torch.stack([torch.as_tensor(x) for x in xs]).float(), torch.as_tensor(ys)


def evaluate(model, x, y, eps: float) -> tuple[float, float]:
    """(clean, FGSM) accuracy on pixels x in [0, 1] (digits: pixel / 16, direct coding)."""
    oracle = LocalOracle(model)
    space = PixelSpace(Direct(), STEPS)
    adv, out = fgsm(oracle, space, x, y, eps)
    clean = float((out.mean(0).argmax(1) == y).float().mean())
    robust = float((oracle.outputs(space.encode(adv, None)).mean(0).argmax(1) == y).float().mean())
    return clean, robust


def run(task, train_set, x, y, seed: int, epochs: int, anti: float) -> dict:
    torch.manual_seed(seed)
    model = sub.build(task)
    data = TrainingData(task, train_set, STEPS, seed)
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    started = time.monotonic()
    sub.train_dense(model, task, data, budget, anti_weight=anti)
    seconds = time.monotonic() - started
    clean, robust = evaluate(model, x, y, float(task.robustness["eps"]))
    curve = [h["fisher_concentration"] for h in data.history]
    shares = [data.history[-1][f"fisher_share_t{t + 1}"] for t in range(STEPS)]
    return {"clean": clean, "fgsm": robust, "curve": curve, "shares": shares, "seconds": seconds}


def fmt(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def plot(curves: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker=".", label=label)
    ax.axhline(1 / 3, color="grey", lw=0.8, ls="--", label="uniform (1/3)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("FI share of steps 1-3 (T=8)")
    ax.set_title("Fisher concentration index, digits, mean of 3 seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def check_concentration(args, task, train_set, x, y, seeds) -> bool:
    started = time.monotonic()
    runs = {
        name: [run(task, train_set, x, y, s, args.epochs, anti) for s in seeds]
        for name, anti in (("plain BPTT", 0.0), (f"anti-concentration (alpha={ANTI})", ANTI))
    }
    eps = task.robustness["eps"]
    print(
        f"temporal_fisher check: digits, direct input, T={STEPS}, {args.epochs} epochs, seeds {args.seeds}, "
        f"FI on {sub.FI_SAMPLES} training samples per epoch, FGSM eps={eps} on the {len(y)} test images"
    )
    print("| variant | clean acc | FGSM acc | index epoch 1 | index last epoch |")
    print("|---|---|---|---|---|")
    for name, rs in runs.items():
        print(
            f"| {name} | {fmt([r['clean'] for r in rs])} | {fmt([r['fgsm'] for r in rs])} | "
            f"{fmt([r['curve'][0] for r in rs])} | {fmt([r['curve'][-1] for r in rs])} |"
        )
    curves = {name: [statistics.mean(c) for c in zip(*[r["curve"] for r in rs])] for name, rs in runs.items()}
    print("concentration index per epoch (mean of seeds):")
    print("| epoch | " + " | ".join(curves) + " |")
    print("|---|" + "---|" * len(curves))
    for e in range(len(next(iter(curves.values())))):
        print(f"| {e + 1} | " + " | ".join(f"{c[e]:.4f}" for c in curves.values()) + " |")
    print("FI share per step at the last epoch (mean of seeds):")
    for name, rs in runs.items():
        shares = [statistics.mean(s) for s in zip(*[r["shares"] for r in rs])]
        print(f"  {name}: " + ", ".join(f"t{t + 1} {v:.3f}" for t, v in enumerate(shares)))
    plain, anti = runs.values()
    first = statistics.mean(r["curve"][0] for r in plain)
    last = statistics.mean(r["curve"][-1] for r in plain)
    rises = last > first and last > 1 / 3
    d_clean = statistics.mean(r["clean"] for r in anti) - statistics.mean(r["clean"] for r in plain)
    d_fgsm = statistics.mean(r["fgsm"] for r in anti) - statistics.mean(r["fgsm"] for r in plain)
    print(f"plain: final index {last:.4f} > epoch-1 index {first:.4f} and > 1/3: {rises}")
    print(f"anti-concentration within 1 point clean: {abs(d_clean) <= 0.01} ({d_clean:+.4f})")
    print(f"anti-concentration lower under FGSM: {d_fgsm < 0} ({d_fgsm:+.4f})")
    ok = rises and abs(d_clean) <= 0.01 and d_fgsm < 0
    print(f"verdict: {'reproduced' if ok else 'not reproduced'}")
    plot(curves, HERE / "fisher_concentration.svg")
    per_run = statistics.mean(r["seconds"] for rs in runs.values() for r in rs)
    print(f"train time per run (with per-epoch FI): {per_run:.1f} s")
    print(f"concentration part wall time: {time.monotonic() - started:.0f} s")
    return ok


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        out = model(Direct()(x, STEPS, None))
    return float((out.mean(0).argmax(1) == y).float().mean())


def run_pruned(task, train_set, x, y, seed: int, epochs: int, fi_stop: bool) -> dict:
    """IMP (FI-stopped rounds or plain full rounds) to sub.TARGET_SPARSITY, then the ticket trained
    `epochs` epochs (no FI logging in the ticket: it only measures, the weights are the same)."""
    torch.manual_seed(seed)
    model = sub.build(task)
    data = TrainingData(task, train_set, STEPS, seed)
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    started = time.monotonic()
    masks, rounds = sub.fi_imp(model, data, budget, fi_stop=fi_stop)
    search_s = time.monotonic() - started
    sub._fit(model, data, budget, epochs, masks=masks, log={"phase": "ticket"}, measure=False)
    pruning.apply_masks(model, masks)
    model.eval()
    nz, n = pruning.connectivity(model)["total"]
    return {
        "acc": accuracy(model, x, y),
        "rounds": rounds,
        "search_epochs": sum(r["epochs"] for r in rounds),
        "search_s": search_s,
        "total_s": time.monotonic() - started,
        "sparsity": 1 - nz / n,
        "nonzero": nz,
    }


def per_seed(rs: list[dict]) -> str:
    return ", ".join(f"{r['acc']:.4f}" for r in rs)


def run_dense(task, train_set, x, y, seed: int, epochs: int) -> dict:
    torch.manual_seed(seed)
    model = sub.build(task)
    data = TrainingData(task, train_set, STEPS, seed)
    budget = Budget(epochs=epochs, lr=task.train["lr"], batch_size=task.train["batch_size"])
    started = time.monotonic()
    sub._fit(model, data, budget, epochs, measure=False)
    model.eval()
    return {"acc": accuracy(model, x, y), "total_s": time.monotonic() - started}


def check_pruning(args, task, train_set, x, y, seeds) -> bool:
    started = time.monotonic()
    budget = Budget(epochs=args.epochs)
    cap = sub.round_max_epochs(budget)
    fi = [run_pruned(task, train_set, x, y, s, args.epochs, True) for s in seeds]
    plain = [run_pruned(task, train_set, x, y, s, args.epochs, False) for s in seeds]
    dense = [run_dense(task, train_set, x, y, s, args.epochs) for s in seeds]
    level = sub.uniform_share(STEPS) if sub.FI_LEVEL is None else sub.FI_LEVEL
    print(
        f"temporal_fisher pruning check: digits, direct input, T={STEPS}, seeds {args.seeds}, target sparsity "
        f"{sub.TARGET_SPARSITY} (global |w|, {sub.PRUNE_RATE:.0%} of the remaining weights per round, "
        f"rewind to init), rounds of at most {cap} epochs, tickets trained {args.epochs} epochs; FI stop: last "
        f"{sub.FI_WINDOW} indices within {sub.FI_TOL} and >= {level:.4f}; test accuracy on the {len(y)} test images"
    )
    print(
        "| variant | test acc | per seed | search epochs | search s / seed | weight sparsity | non-zero weights |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, rs in (("FI-guided IMP", fi), ("plain IMP", plain)):
        print(
            f"| {name} | {fmt([r['acc'] for r in rs])} | {per_seed(rs)} | "
            f"{fmt([r['search_epochs'] for r in rs])} | {statistics.mean(r['search_s'] for r in rs):.1f} | "
            f"{fmt([r['sparsity'] for r in rs])} | {', '.join(str(r['nonzero']) for r in rs)} |"
        )
    print(f"| dense (no pruning) | {fmt([r['acc'] for r in dense])} | {per_seed(dense)} | 0 | 0 | 0 | all |")
    print("where the FI-guided rounds stopped (epochs, stopped_by, last index):")
    for s, r in zip(seeds, fi):
        print(
            f"  seed {s}: "
            + "; ".join(
                f"round {x['round']} (-> {x['sparsity']:.3f}): {x['epochs']} ep, {x['stopped_by']}, "
                f"{x['fisher_concentration']:.4f}"
                for x in r["rounds"]
            )
        )
    d_acc = statistics.mean(r["acc"] for r in fi) - statistics.mean(r["acc"] for r in plain)
    fewer = statistics.mean(r["search_epochs"] for r in fi) < statistics.mean(
        r["search_epochs"] for r in plain
    )
    same = all(abs(a["sparsity"] - b["sparsity"]) < 1e-9 for a, b in zip(fi, plain))
    print(f"FI-guided search uses fewer epochs than plain IMP: {fewer}")
    print(f"FI-guided ticket within 1 point of plain IMP's: {abs(d_acc) <= 0.01 or d_acc > 0} ({d_acc:+.4f})")
    print(f"same weight sparsity: {same}")
    d_dense = statistics.mean(r["acc"] for r in fi) - statistics.mean(r["acc"] for r in dense)
    print(f"FI-guided ticket vs dense: {d_dense:+.4f}")
    ok = fewer and d_acc >= -0.01 and same
    print(f"pruning verdict: {'reproduced' if ok else 'not reproduced'}")
    print(f"pruning part wall time: {time.monotonic() - started:.0f} s")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("all", "concentration", "pruning"), default="all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.monotonic()
    task = get_task("digits")
    train_set = load_split(task, "train").dataset
    x, y = tensors(load_split(task, "test").dataset)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.part in ("all", "concentration"):
        check_concentration(args, task, train_set, x, y, seeds)
    if args.part in ("all", "pruning"):
        check_pruning(args, task, train_set, x, y, seeds)
    print(f"check wall time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
