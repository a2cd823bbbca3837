"""Small-scale check of fastdeep_multispike (METHODS.md): (1) exact gradients equal central finite
differences within 1e-3 for perturbations that keep every spike count; (2) on digits, K=3 spikes
per hidden neuron is at least as accurate as K=1, with fewer silent hidden neurons. 3 seeds,
64-64-10, 10 epochs each (reduced from the 30 of the digits budget that train() runs)."""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from snnbench.data import load_split
from snnbench.tasks import get_task
from snnbench.training import Budget, TrainingData

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("fastdeep_sub", HERE / "submission.py")
fd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fd)


def tensors(split):
    xs = torch.stack([split.dataset[i][0] for i in range(len(split.dataset))]).float()
    ys = torch.tensor([int(split.dataset[i][1]) for i in range(len(split.dataset))])
    return xs.unsqueeze(0).expand(4, *xs.shape), ys


def grad_check(task, x, y, k=3, eps=1e-6):
    """Max |autograd - central FD| over a grid of weights whose +-eps keeps all spike counts."""
    torch.manual_seed(0)
    model = fd.build(task, k=k).double()
    x = x.double()

    def loss():
        h, out = model.spike_times(x)
        t = torch.nan_to_num(out[..., 0], posinf=fd.T_CAP).clamp(max=fd.T_CAP)
        return F.cross_entropy(-t / fd.TAU_SYN, y), torch.isfinite(h).sum(), torch.isfinite(out).sum()

    loss()[0].backward()
    worst, used, skipped = 0.0, 0, 0
    for p in (model.w1, model.w2):
        g = p.grad.clone()
        for i in range(0, p.shape[0], 5):
            for j in range(0, p.shape[1], 7):
                with torch.no_grad():
                    p[i, j] += eps
                    lp, hp, op = loss()
                    p[i, j] -= 2 * eps
                    lm, hm, om = loss()
                    p[i, j] += eps
                if hp != hm or op != om:
                    skipped += 1
                    continue
                worst = max(worst, abs(float((lp - lm) / (2 * eps) - g[i, j])))
                used += 1
    return worst, used, skipped, float(g.abs().max())


def main():
    torch.set_num_threads(1)
    started = time.monotonic()
    task = get_task("digits")
    train_split, test_split = load_split(task, "train"), load_split(task, "test")
    x, y = tensors(test_split)
    worst, used, skipped, gmax = grad_check(task, x[:, :16], y[:16])
    print(
        f"gradient check (float64, 16 test digits, K=3): max |autograd - FD| = {worst:.2e} over {used} "
        f"weights ({skipped} skipped: a spike count changed), max |grad| {gmax:.3f} -> "
        f"{'PASS' if worst < 1e-3 and used > 50 else 'FAIL'}"
    )
    rows = {}
    for k in (1, 3):
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            model = fd.build(task, k=k)
            data = TrainingData(task, train_split.dataset, task.timesteps, seed)
            t0 = time.monotonic()
            fd.train(model, task, data, Budget(epochs=10), epoch_scale=1.0)
            secs = time.monotonic() - t0
            with torch.no_grad():
                h, out = model.spike_times(x)
                acc = float((model(x).argmax(1) == y).float().mean())
            silent = float((~torch.isfinite(h[..., 0])).float().mean())
            dead = int((~torch.isfinite(h[..., 0])).all(0).sum())
            spikes = float(torch.isfinite(h).sum((1, 2)).float().mean())
            rows.setdefault(k, []).append((acc, silent, dead, spikes, secs))
            print(
                f"K={k} seed {seed}: acc {acc:.4f} silent {silent:.4f} dead {dead} "
                f"hidden spikes/sample {spikes:.1f} train {secs:.0f}s",
                flush=True,
            )
    print(
        "\n| K | test accuracy | silent hidden (sample, neuron) pairs | never-firing hidden neurons "
        "| hidden spikes / sample | train s / seed |"
    )
    print("|---|---|---|---|---|---|")
    for k, r in rows.items():
        cols = []
        for i in range(5):
            v = [row[i] for row in r]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cols.append(
                f"{statistics.mean(v):.4f} ± {sd:.4f}" if i < 2 else f"{statistics.mean(v):.1f} ± {sd:.1f}"
            )
        print(f"| {k} | " + " | ".join(cols) + " |")
    acc1, acc3 = (statistics.mean(r[0] for r in rows[k]) for k in (1, 3))
    sil1, sil3 = (statistics.mean(r[1] for r in rows[k]) for k in (1, 3))
    verdict = "reproduced" if acc3 >= acc1 and sil3 < sil1 else "not reproduced"
    print(f"\nK=3 >= K=1 accuracy: {acc3 >= acc1}; fewer silent: {sil3 < sil1} -> {verdict}")
    print(f"check ran {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
