"""Command-line input is checked before any work: one line on stderr, exit status 2, nothing stored."""

from __future__ import annotations

import pytest

from snnbench.cli import main
from tests.conftest import PLAIN_TORCH


def err_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def sub(write_submission):
    return str(write_submission(PLAIN_TORCH))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "digit"], "did you mean 'digits'"),
        (["--task", "digits", "--timesteps", "0"], "--timesteps must be at least 1"),
        (["--task", "digits", "--limit", "0"], "--limit must be at least 1"),
        (["--task", "digits", "--limit", "ten"], "--limit must be a whole number"),
        (["--task", "digits", "--timeout", "-1"], "--timeout must be positive"),
        (["--task", "digits", "--checkpoint", "nope.pt"], "no such file"),
    ],
)
def test_bad_evaluate_input_exits_2(args, message, sub, capsys, tmp_path):
    assert exit_code(["evaluate", "--model", sub, *args]) == 2
    assert message in err_line(capsys)
    assert not (tmp_path / "store").exists()


def exit_code(argv: list[str]) -> int:
    """main()'s status whether it returns it or argparse raises SystemExit with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_missing_model_file(capsys, tmp_path):
    assert main(["evaluate", "--task", "digits", "--model", str(tmp_path / "none.py")]) == 2
    assert "no such file or folder" in err_line(capsys)


def test_folder_without_init(capsys, tmp_path):
    (tmp_path / "pkg").mkdir()
    assert main(["evaluate", "--task", "digits", "--model", str(tmp_path / "pkg")]) == 2
    assert "no __init__.py" in err_line(capsys)


def test_store_that_is_a_file(sub, capsys, tmp_path):
    f = tmp_path / "store.txt"
    f.write_text("x")
    assert main(["evaluate", "--task", "digits", "--model", sub, "--store", str(f)]) == 2
    assert "store" in err_line(capsys)


def test_store_flag_wins_over_environment(sub, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBENCH_STORE", str(tmp_path / "from-env"))
    assert (
        main(
            [
                "evaluate",
                "--task",
                "digits",
                "--model",
                sub,
                "--store",
                str(tmp_path / "flag"),
                "--limit",
                "8",
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "flag" / "runs").is_dir() and not (tmp_path / "from-env").exists()


def test_missing_real_dataset_names_the_layout(sub, capsys, tmp_path):
    assert (
        main(["evaluate", "--task", "cifar10", "--model", sub, "--data-root", str(tmp_path / "empty")]) == 2
    )
    err = err_line(capsys)
    assert "cifar-10-batches-py" in err and ("--data-root" in err or "SNNBENCH_DATA" in err)
    assert not (tmp_path / "store").exists()


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "snnbench evaluate --task" in out and "exit status" in out


def test_tasks_lists_every_task_with_data_status(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for tid in ("digits", "digits-dvs", "cifar10dvs", "cartpole"):
        assert tid in out
    assert "missing" in out and "embedded" in out
