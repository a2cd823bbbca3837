"""pl_sdqn check (METHODS.md): CartPole, 4-layer spiking MLP, fixed step budget, 3 seeds.

pbLN vs no normalisation (and the ANN DQN twin as a reference): every variant is trained by the
same DQN loop (snnbench.rl.train_dqn) under the same env-step budget and seed, then plays the
task's 20 greedy evaluation episodes (env seeds 0..19) through snnbench's episode evaluator
(snnbench.rl.run_episodes / score_rows). A forward hook on each hidden LIF layer counts its spikes
during those episodes: firing = spikes / (neurons x T x decisions).

Run: nice -n 5 .venv/bin/python baselines/pl_sdqn/check.py [--variants pbln,none,ann]
     [--seeds 0,1,2] [--epochs N]   (--epochs scales the budget: N x 3000 env steps; default the
     task's 10 epochs = 30,000 env steps). One thread. Rows print as they finish.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

from snnbench.neurons import BaseNeuron
from snnbench.rl import eval_seeds, model_policy, run_episodes, score_rows
from snnbench.tasks import get_task
from snnbench.training import Budget

HERE = Path(__file__).resolve().parent


def load_submission():
    spec = importlib.util.spec_from_file_location("pl_sdqn_check_submission", HERE / "submission.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(model, task, seed: int) -> dict:
    """Greedy returns on the task's evaluation seeds and per-hidden-layer firing during them."""
    neurons = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    counts = [[0.0, 0] for _ in neurons]

    def hook(i):
        def count(_m, _inp, out):
            counts[i][0] += float(out.detach().sum())
            counts[i][1] += out.numel()

        return count

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(neurons)]
    try:
        episodes = run_episodes(
            model_policy(model), task, eval_seeds(task), epsilon=float(task.rl.epsilon), seed=seed
        )
    finally:
        for h in handles:
            h.remove()
    rows = {r.metric: r.value for r in score_rows(episodes.returns, episodes.lengths, task)}
    firing = [s / n if n else float("nan") for s, n in counts]
    return {
        "mean": rows["episode_return_mean"],
        "median": rows["episode_return_median"],
        "firing": firing,
    }


def run(sub, task, variant: str, seed: int, epochs: int | None) -> dict:
    spec = {k: v for k, v in dict(task.train).items() if k in Budget.__dataclass_fields__}
    if epochs is not None:
        spec["epochs"] = epochs
    budget = Budget(**spec)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # what the harness does before build(): the same init per seed
    model = sub.build_variant(task, variant)
    started, cpu = time.monotonic(), time.process_time()
    model = sub.train(model, task, None, budget, seed=seed, progress=False)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    history = getattr(model, "dqn_history", [])
    best_val = max(
        (h["validation_return"] for h in history if h["validation_return"] == h["validation_return"]),
        default=float("nan"),
    )
    result = evaluate(model, task, seed)
    result.update(seconds=seconds, cpu=cpu, best_val=best_val)
    return result


def job(variant: str, seed: int, epochs: int | None) -> tuple[str, int, dict]:
    """One (variant, seed) training and evaluation, in a worker process of --jobs."""
    torch.set_num_threads(1)
    task = get_task("cartpole")
    return variant, seed, run(load_submission(), task, variant, seed, epochs)


def fmt_firing(f: list[float]) -> str:
    return "/".join(f"{x:.3f}" for x in f) if f else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="pbln,none,ann")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="budget in epochs of 3000 env steps")
    parser.add_argument("--jobs", type=int, default=1, help="(variant, seed) runs in parallel processes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task("cartpole")  # loaded once: the task file may change under a long run
    sub = load_submission()
    variants = args.variants.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    per_epoch = int(dict(task.train)["steps_per_epoch"])
    epochs = args.epochs or int(dict(task.train)["epochs"])
    print(
        f"cartpole, T={task.timesteps}, budget {epochs} x {per_epoch} = {epochs * per_epoch} env steps, "
        f"20 greedy eval episodes (env seeds 0..19), one thread",
        flush=True,
    )
    print(
        "variant | seed | return mean | return median | best validation | firing per hidden layer "
        "(1st/2nd/last) | train s (wall / cpu)",
        flush=True,
    )
    started = time.monotonic()
    results: dict[str, list[dict]] = {v: [] for v in variants}

    def show(variant, seed, r):
        results[variant].append(r)
        print(
            f"{variant} | {seed} | {r['mean']:.1f} | {r['median']:.1f} | {r['best_val']:.1f} | "
            f"{fmt_firing(r['firing'])} | {r['seconds']:.0f} / {r['cpu']:.0f}",
            flush=True,
        )

    # spiking runs first: the ANN twin is the cheap one, it fills the last slots
    order = sorted(variants, key=lambda v: v == "ann")
    pairs = [(v, s) for v in order if v != "ann" for s in seeds] + [
        (v, s) for v in order if v == "ann" for s in seeds
    ]
    if args.jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futures = [pool.submit(job, v, s, args.epochs) for v, s in pairs]
            for f in as_completed(futures):
                show(*f.result())
    else:
        for v, s in pairs:
            show(v, s, run(sub, task, v, s, args.epochs))
    print("\nsummary over seeds (mean ± sample std):", flush=True)
    print("variant | return mean | best seed | last-hidden firing | seeds >= 195", flush=True)

    def ms(xs):
        return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"

    for variant, rs in results.items():
        means = [r["mean"] for r in rs]
        last = [r["firing"][-1] for r in rs if r["firing"]]
        firing = f"{statistics.mean(last):.4f} (min {min(last):.4f})" if last else "- (ANN)"
        print(
            f"{variant} | {ms(means)} | {max(means):.1f} | {firing} | "
            f"{sum(m >= 195 for m in means)}/{len(means)}",
            flush=True,
        )
    if "pbln" in results and "none" in results:
        p, n = results["pbln"], results["none"]
        beats = statistics.mean(r["mean"] for r in p) > statistics.mean(r["mean"] for r in n)
        fires = all(r["firing"][-1] > 0.01 for r in p)
        bar = max(r["mean"] for r in p) >= 195
        print(
            f"\npbLN beats none in mean return: {beats}; pbLN last-hidden firing > 1% on every seed: "
            f"{fires}; best pbLN seed >= 195: {bar}",
            flush=True,
        )
        print("verdict:", "reproduced" if beats and fires else "not reproduced", flush=True)
    print(f"total time {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
