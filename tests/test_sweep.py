"""`snnbench sweep`: a grid of real evaluate processes into one store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from snnbench.cli import main
from snnbench.sweep import expand_models, grid
from tests.conftest import PLAIN_TORCH


def test_grid_lands_every_cell(write_submission, tmp_path, capsys):
    a = write_submission(PLAIN_TORCH, "alpha.py")
    b = write_submission(PLAIN_TORCH + "\nVARIANT = 2\n", "beta.py")
    code = main(
        [
            "sweep",
            "--tasks",
            "digits",
            "--models",
            f"{a},{b}",
            "--seeds",
            "0,1",
            "--jobs",
            "2",
            "--limit",
            "16",
        ]
    )
    assert code == 0, capsys.readouterr().err
    runs = pd.read_parquet(tmp_path / "store" / "runs")
    assert sorted(zip(runs.method, runs.seed)) == [("alpha", 0), ("alpha", 1), ("beta", 0), ("beta", 1)]
    assert set(runs.status) == {"ok"}
    assert "4 of 4 runs ok" in capsys.readouterr().out


def test_a_failing_cell_is_reported_and_the_rest_land(write_submission, tmp_path, capsys):
    good = write_submission(PLAIN_TORCH, "good.py")
    bad = write_submission("def build(task):\n    raise RuntimeError('nope')\n", "bad.py")
    assert main(["sweep", "--tasks", "digits", "--models", f"{good},{bad}", "--limit", "8"]) == 1
    err = capsys.readouterr().err
    assert "bad seed 0: exit 1" in err
    runs = pd.read_parquet(tmp_path / "store" / "runs").set_index("method")
    assert runs.loc["good", "status"] == "ok" and runs.loc["bad", "status"] == "failed"


def test_model_globs_expand_to_submission_files(tmp_path):
    for name in ("b", "a"):
        (tmp_path / "baselines" / name).mkdir(parents=True)
        (tmp_path / "baselines" / name / "submission.py").write_text("")
    (tmp_path / "baselines" / "__pycache__").mkdir()
    found = expand_models([str(tmp_path / "baselines" / "*")])
    assert found == [str(tmp_path / "baselines" / n / "submission.py") for n in ("a", "b")]
    assert len(grid(["digits", "digits-dvs"], found, [0, 1, 2])) == 12


def test_bad_sweep_input_exits_2(capsys):
    assert main(["sweep", "--tasks", "digitz", "--models", "x.py"]) == 2
    assert "did you mean 'digits'" in capsys.readouterr().err


def test_a_model_runs_only_on_the_tasks_it_declares(tmp_path):
    both = tmp_path / "both.py"
    both.write_text("def build(task): ...\n")
    dvs_only = tmp_path / "dvs.py"
    dvs_only.write_text("TASKS = ('digits-dvs',)\ndef build(task): ...\n")
    cells = grid(["digits", "digits-dvs"], [str(both), str(dvs_only)], [0, 1])
    assert [(c.task, Path(c.model).name, c.seed) for c in cells] == [
        ("digits", "both.py", 0),
        ("digits", "both.py", 1),
        ("digits-dvs", "both.py", 0),
        ("digits-dvs", "both.py", 1),
        ("digits-dvs", "dvs.py", 0),
        ("digits-dvs", "dvs.py", 1),
    ]
