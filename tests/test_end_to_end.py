"""The user's path on the embedded tasks: train, evaluate from the checkpoint, leaderboard, cite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from snnbench.cli import main

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = str(REPO / "submissions" / "template.py")


def metric(store: Path, name: str, **where) -> float:
    m = pd.read_parquet(store / "metrics")
    m = m[(m.metric == name)]
    for key in ("layer", "timestep", "condition"):
        value = where.get(key)
        m = m[m[key].isna()] if value is None else m[m[key] == value]
    assert len(m) == 1, (name, where, m)
    return float(m.value.iloc[0])


def test_template_trains_and_reaches_the_bar_on_digits(tmp_path, capsys):
    ckpt = tmp_path / "t.pt"
    assert main(["train", "--task", "digits", "--model", TEMPLATE, "--out", str(ckpt), "--quiet"]) == 0
    assert f"checkpoint: {ckpt}" in capsys.readouterr().out
    assert (
        main(["evaluate", "--task", "digits", "--model", TEMPLATE, "--checkpoint", str(ckpt), "--quiet"]) == 0
    )
    store = tmp_path / "store"
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.reportable and run.status == "ok" and run.checkpoint_sha256
    assert metric(store, "accuracy") >= 0.95
    assert metric(store, "synops_per_sample") > 0 and metric(store, "spikes_per_sample") > 0
    for card in ("horowitz45nm-fp32", "horowitz45nm-fp32-mem"):
        assert metric(store, "energy_uj_per_sample", condition=card) > 0
    # the rebuilt leaderboard shows it, and cite names it
    out = tmp_path / "board"
    assert main(["leaderboard", "--store", str(store), "--out", str(out)]) == 0
    board = (out / "LEADERBOARD.md").read_text()
    assert "template" in board and "digits" in board
    capsys.readouterr()
    assert main(["cite", run.result_id[:8], "--store", str(store)]) == 0
    assert run.result_id in capsys.readouterr().out


def test_checkpoint_that_does_not_fit_fails_the_run(tmp_path, write_submission):
    import torch

    bad = tmp_path / "bad.pt"
    torch.save({"nope": torch.zeros(1)}, bad)
    code = main(
        [
            "evaluate",
            "--task",
            "digits",
            "--model",
            TEMPLATE,
            "--checkpoint",
            str(bad),
            "--quiet",
            "--limit",
            "8",
        ]
    )
    assert code == 1
    run = pd.read_parquet(tmp_path / "store" / "runs").iloc[0]
    assert "does not fit build(task)'s model" in run.error


def _evaluate_example(name: str, tmp_path: Path, task: str = "digits") -> Path:
    path = REPO / "submissions" / "examples" / name
    assert "snnbench" not in path.read_text().replace("snnbench train", "").split('"""', 2)[-1]
    assert main(["evaluate", "--task", task, "--model", str(path), "--quiet", "--limit", "64"]) == 0
    return tmp_path / "store"


def test_snntorch_submission_without_snnbench_import(tmp_path):
    store = _evaluate_example("snntorch_mlp.py", tmp_path)
    assert metric(store, "spikes_per_sample") > 0
    # the hidden layer's spikes feed fc2: counted as SynOps; the pixels feed fc1: MACs
    assert metric(store, "synops_per_sample") > 0 and metric(store, "macs_per_sample") > 0
    assert pd.read_parquet(store / "runs").iloc[0].uncounted.tolist() == []


def test_spikingjelly_submission_without_snnbench_import(tmp_path):
    store = _evaluate_example("spikingjelly_cnn.py", tmp_path, task="digits-dvs")
    assert metric(store, "spikes_per_sample") > 0 and metric(store, "synops_per_sample") > 0
    assert metric(store, "neuron_updates_per_sample") == 16 * 32 * 32 * 10  # 16 channels x 32x32 x T=10


def test_robustness_runs_when_asked_and_only_then(tmp_path, write_submission):
    from tests.conftest import PLAIN_TORCH

    sub = str(write_submission(PLAIN_TORCH))
    assert main(["evaluate", "--task", "digits", "--model", sub, "--quiet", "--limit", "16"]) == 0
    m = pd.read_parquet(tmp_path / "store" / "metrics")
    assert "robust_accuracy" not in set(m.metric)
    assert (
        main(
            [
                "evaluate",
                "--task",
                "digits",
                "--model",
                sub,
                "--quiet",
                "--limit",
                "16",
                "--metrics",
                "robustness",
            ]
        )
        == 0
    )
    m = pd.read_parquet(tmp_path / "store" / "metrics")
    conditions = set(m[m.metric == "robust_accuracy"].condition)
    assert {"clean", "fgsm eps=0.1", "pgd eps=0.1 steps=10 step=0.025", "gaussian sigma=0.1"} <= conditions
    assert len(m[m.metric == "gradient_masking_suspected"]) == 3


def test_unknown_metric_family_is_a_usage_error(capsys):
    assert main(["evaluate", "--task", "digits", "--model", TEMPLATE, "--metrics", "vibes"]) == 2
    assert "unknown metric family 'vibes'" in capsys.readouterr().err


def test_rl_task_trains_and_evaluates_through_the_harness(tmp_path):
    """CartPole: the default DQN recipe writes a checkpoint; evaluation stores episode returns and
    per-decision activity from the child process."""
    sub = str(REPO / "submissions" / "examples" / "cartpole_snn.py")
    ckpt = tmp_path / "q.pt"
    assert (
        main(["train", "--task", "cartpole", "--model", sub, "--epochs", "1", "--out", str(ckpt), "--quiet"])
        == 0
    )
    args = [
        "evaluate",
        "--task",
        "cartpole",
        "--model",
        sub,
        "--checkpoint",
        str(ckpt),
        "--quiet",
        "--limit",
        "3",
    ]
    assert main(args) == 0
    store = tmp_path / "store"
    run = pd.read_parquet(store / "runs").iloc[0]
    assert run.status == "ok" and not run.reportable and run.limit == 3
    m = pd.read_parquet(store / "metrics")
    ret = m[m.metric == "episode_return_mean"]
    assert len(ret) == 1 and ret.n.iloc[0] == 3 and ret.value.iloc[0] >= 1
    assert metric(store, "spikes_per_sample") > 0 and metric(store, "synops_per_sample") > 0
