"""lth_early_time check (METHODS.md): digits, 90% sparsity: ET-IMP uses fewer timestep-epochs
(sum of T x epochs) than IMP, its ticket is within 1.5 points of IMP's, and both beat a random
re-initialisation of the same mask. Also shown: the dense network and a one-shot ET Early-Bird ticket.

Run: .venv/bin/python baselines/lth_early_time/check.py [--seeds 0,1,2] [--task digits]
(one core; the task's full training split and budget: tickets train 30 epochs at T=4; search
rounds are max(2, epochs // 6) = 5 epochs each, see the README).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from snnbench import pruning
from snnbench.data import load_split
from snnbench.encoding import encoder_for
from snnbench.frameworks import reset_state
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData, readout

HERE = Path(__file__).resolve().parent
VARIANTS = ("dense", "IMP", "ET-IMP", "ET-EB (one-shot)", "random re-init of ET-IMP mask")
CLAIM = ("IMP", "ET-IMP", "random re-init of ET-IMP mask")  # what the METHODS.md claim needs


def load_submission():
    spec = importlib.util.spec_from_file_location("lth_early_time_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def accuracy(model, task, seed: int) -> float:
    split = load_split(task, "test")
    encoder = encoder_for(task)
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    correct = seen = 0
    for x, y in DataLoader(split.dataset, batch_size=task.batch_size, shuffle=False):
        reset_state(model)
        out = readout(model(encoder(x.float(), task.timesteps, gen)))
        correct += int((out.argmax(1) == y).sum())
        seen += y.numel()
    return correct / seen


def dense(sub, task, seed, fresh) -> dict:
    model, tr = fresh(seed)
    tr.run(tr.budget.epochs, task.timesteps, pruning.full_masks(model))
    return {
        "acc": accuracy(model, task, seed),
        "search": 0,
        "ticket": tr.timestep_epochs,
        "search_s": 0.0,
        "sparsity": 1 - pruning.connectivity_fraction(model),
        "t_et": task.timesteps,
    }


def run_seed(sub, task, seed: int, extras: bool) -> dict[str, dict]:
    budget = Budget(**{k: v for k, v in dict(task.train).items() if k in Budget.__dataclass_fields__})
    dataset = load_split(task, "train").dataset
    out: dict[str, dict] = {}

    def fresh(build_seed: int):
        torch.manual_seed(build_seed)
        model = sub.build(task)
        data = TrainingData(task, dataset, task.timesteps, seed)
        return model, sub.Trainer(model, task, data, budget)

    if extras:  # dense reference
        out["dense"] = dense(sub, task, seed, fresh)
    et_masks = None
    for name, kwargs in (
        ("IMP", {"early_time": False}),
        ("ET-IMP", {"early_time": True}),
        ("ET-EB (one-shot)", None),
    ):
        if kwargs is None and not extras:
            continue
        model, tr = fresh(seed)
        t0 = time.monotonic()
        if kwargs is None:
            masks, info = sub.early_bird_ticket(tr, early_time=True)
        else:
            masks, info = sub.search_ticket(tr, **kwargs)
        search_s = time.monotonic() - t0
        search = tr.timestep_epochs
        sub.train_ticket(tr, masks, budget.epochs)
        out[name] = {
            "acc": accuracy(model, task, seed),
            "search": search,
            "ticket": tr.timestep_epochs - search,
            "search_s": search_s,
            "sparsity": 1 - pruning.connectivity_fraction(model),
            "t_et": info["t_et"],
        }
        if name == "ET-IMP":
            et_masks = masks

    # the same mask on a random re-initialisation (no rewinding to the ticket's weights)
    model, tr = fresh(10_000 + seed)
    pruning.apply_masks(model, et_masks)
    sub.train_ticket(tr, et_masks, budget.epochs)
    out["random re-init of ET-IMP mask"] = {
        "acc": accuracy(model, task, seed),
        "search": 0,
        "ticket": tr.timestep_epochs,
        "search_s": 0.0,
        "sparsity": 1 - pruning.connectivity_fraction(model),
        "t_et": task.timesteps,
    }
    return out


def mean_sd(values: list[float], fmt: str = ".4f") -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):{fmt}} ± {sd:{fmt}}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="digits")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--extras", action="store_true", help="also the dense network and the ET-EB ticket")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    task = get_task(args.task)
    sub = load_submission()
    started = time.monotonic()
    runs = []
    for s in seeds:
        runs.append(run_seed(sub, task, s, args.extras))
        print(f"seed {s}: " + ", ".join(f"{v} {r['acc']:.4f}" for v, r in runs[-1].items()), flush=True)
    variants = VARIANTS if args.extras else CLAIM
    print(f"task {task.id}, T={task.timesteps}, ticket epochs {task.train['epochs']}, seeds {seeds}")
    print(
        "| variant | accuracy (mean ± sd) | per seed | T_ET | search ΣT×epochs | ticket ΣT×epochs "
        "| search s / seed | weight sparsity |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for v in variants:
        rs = [r[v] for r in runs]
        per_seed = ", ".join(f"{r['acc']:.4f}" for r in rs)
        print(
            f"| {v} | {mean_sd([r['acc'] for r in rs])} | {per_seed} | "
            f"{', '.join(str(r['t_et']) for r in rs)} | {statistics.mean(r['search'] for r in rs):.0f} | "
            f"{statistics.mean(r['ticket'] for r in rs):.0f} | {statistics.mean(r['search_s'] for r in rs):.1f} | "
            f"{statistics.mean(r['sparsity'] for r in rs):.4f} |"
        )
    acc = {v: statistics.mean(r[v]["acc"] for r in runs) for v in variants}
    cost = {v: statistics.mean(r[v]["search"] + r[v]["ticket"] for r in runs) for v in variants}
    checks = {
        "ET-IMP uses fewer timestep-epochs than IMP": cost["ET-IMP"] < cost["IMP"],
        "ET-IMP ticket within 1.5 points of IMP's": acc["ET-IMP"] >= acc["IMP"] - 0.015,
        "IMP beats the random re-init": acc["IMP"] > acc["random re-init of ET-IMP mask"],
        "ET-IMP beats the random re-init": acc["ET-IMP"] > acc["random re-init of ET-IMP mask"],
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")
    print(
        f"ΣT×epochs total: IMP {cost['IMP']:.0f}, ET-IMP {cost['ET-IMP']:.0f} "
        f"({100 * (1 - cost['ET-IMP'] / cost['IMP']):.0f}% fewer)"
    )
    print(f"verdict: {'reproduced' if all(checks.values()) else 'not reproduced'}")
    print(f"check time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
