"""The Atari training curve of pl_sdqn: returns against frames, from a checkpoint's training record.

Reads the history `snnbench train` stores beside the checkpoint (`<checkpoint>.json`, one entry
per epoch of `steps_per_epoch` agent steps: training return over the last 20 episodes, validation
return over the epoch's episodes) or, while a run is still going, the same history inside its
`--resume` state (`<checkpoint>.state/state.pt`). One agent step is 4 frames (ALE v5 frameskip).
The random and human references of the task file are drawn for scale.

Run: .venv/bin/python baselines/pl_sdqn/plot_curve.py CHECKPOINT --task atari-breakout --out curve.svg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FRAMES_PER_STEP = 4  # ALE v5 frameskip, tasks/atari-*.toml


def load_history(checkpoint: Path) -> list[dict]:
    record = checkpoint.with_name(checkpoint.name + ".json")
    if record.is_file():
        return json.loads(record.read_text())["history"]
    state = checkpoint.with_name(checkpoint.name + ".state") / "state.pt"
    if state.is_file():
        import torch

        return torch.load(state, weights_only=False)["history"]
    raise SystemExit(f"no training record at {record} and no resume state at {state}: train first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--task", default="atari-breakout")
    parser.add_argument("--out", type=Path, required=True, help="picture to write (.svg or .png)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snnbench.tasks import get_task

    task = get_task(args.task)
    history = [h for h in load_history(args.checkpoint) if "step" in h]
    frames = [h["step"] * FRAMES_PER_STEP / 1e6 for h in history]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(frames, [h["train_return"] for h in history], "o-", ms=3, label="training episodes (last 20)")
    ax.plot(frames, [h["validation_return"] for h in history], "s-", ms=3, label="validation (eps 0.05)")
    rl = task.rl
    ax.axhline(rl["random_score"], color="grey", ls=":", label=f"random {rl['random_score']}")
    ax.axhline(
        rl["random_score"] + 5, color="k", ls="--", lw=0.8, label=f"random + 5 = {rl['random_score'] + 5}"
    )
    ax.set_xlabel("frames (millions)")
    ax.set_ylabel("episode return")
    ax.set_title(f"pl_sdqn on {task.id}, seed 0")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    plt.rcParams["svg.hashsalt"] = "snnbench"
    fig.savefig(args.out, metadata={"Date": None} if args.out.suffix == ".svg" else None)
    last = history[-1]
    print(f"{len(history)} epochs, {last['step']} agent steps, last validation {last['validation_return']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
