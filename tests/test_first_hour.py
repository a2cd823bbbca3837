"""Issue 20 and the bugs of issue 21: what a new user hits in the first hour.

Every test here failed before its fix: framework models that keep state in modules could not be
trained, re-trainings changed the result id, the leaderboard averaged re-trained seeds and
untrained runs, package-folder submissions did not load, a robustness evaluation was replaced by
a plain one, every epoch of a custom recipe saw the same batches, and unknown or unbuilt metric
families were silently accepted.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import torch

from snnbench import leaderboard, training
from snnbench.cli import main
from snnbench.metrics import MetricRow
from snnbench.store import Store, result_id
from snnbench.submission import resolve
from snnbench.tasks import get_task
from tests import runs
from tests.conftest import PLAIN_TORCH, REPO

EXAMPLES = REPO / "submissions" / "examples"


@pytest.fixture
def few_batches(monkeypatch):
    """Training on the first two batches of every epoch: the recipe runs for real, just briefly."""
    original = training.TrainingData.loader

    def short(self, batch_size=64, shuffle=True):
        return itertools.islice(original(self, batch_size, shuffle), 2)

    monkeypatch.setattr(training.TrainingData, "loader", short)


# ---------------------------------------------------------------- training state and checkpoints


@pytest.mark.parametrize(
    "task_id, example",
    [("digits", "snntorch_mlp.py"), ("digits-dvs", "spikingjelly_cnn.py")],
)
def test_default_recipe_trains_models_that_keep_state_in_modules(few_batches, tmp_path, task_id, example):
    """Before: 'Trying to backward through the graph a second time' on the second batch."""
    result = training.train(
        get_task(task_id), resolve(EXAMPLES / example), epochs=2, out=tmp_path / "ck.pt", progress=False
    )
    assert result.checkpoint.is_file()
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_same_seed_gives_the_same_checkpoint_hash_and_result_id(few_batches, tmp_path):
    template = resolve(REPO / "submissions" / "template.py")
    task = get_task("digits")
    a = training.train(task, template, epochs=1, out=tmp_path / "a" / "ck.pt", progress=False)
    b = training.train(task, template, epochs=1, out=tmp_path / "b" / "other-name.pt", progress=False)
    assert a.sha256 == b.sha256
    assert (tmp_path / "a" / "ck.pt").read_bytes() == (tmp_path / "b" / "other-name.pt").read_bytes()
    store = tmp_path / "store"
    ids = []
    for ck in (a.checkpoint, b.checkpoint):
        argv = ["evaluate", "--task", "digits", "--model", str(template.path), "--checkpoint", str(ck)]
        assert main([*argv, "--quiet", "--limit", "16", "--store", str(store)]) == 0
        ids.append(set(pd.read_parquet(store / "runs")["result_id"]))
    assert ids[0] == ids[1] and len(ids[1]) == 1


def test_training_record_is_written_and_copied_into_the_run(few_batches, tmp_path):
    ref = resolve(REPO / "submissions" / "template.py")
    result = training.train(get_task("digits"), ref, epochs=1, out=tmp_path / "ck.pt", progress=False)
    record = json.loads((tmp_path / "ck.pt.json").read_text())
    assert record["checkpoint_sha256"] == result.sha256 and record["budget_complete"] is True
    assert record["epochs_completed"] == 1 and record["recipe"].startswith("snnbench default BPTT")
    argv = ["evaluate", "--task", "digits", "--model", str(ref.path), "--checkpoint", str(result.checkpoint)]
    assert main([*argv, "--quiet", "--store", str(tmp_path / "s")]) == 0
    run = pd.read_parquet(tmp_path / "s" / "runs").iloc[0]
    assert run.train_budget_complete and run.train_recipe == record["recipe"] and run.reportable
    assert run.spec_hash == get_task("digits").spec_hash() and not run.untrained


def test_a_budget_cut_by_the_wall_time_cap_is_recorded(tmp_path, capsys):
    ref = resolve(REPO / "submissions" / "template.py")
    argv = ["train", "--task", "digits", "--model", str(ref.path), "--epochs", "50", "--wall-time", "0.01"]
    assert main([*argv, "--quiet", "--out", str(tmp_path / "ck.pt")]) == 0
    assert "wall-time cap after 1 of 50 epochs" in capsys.readouterr().err
    record = json.loads((tmp_path / "ck.pt.json").read_text())
    assert record["budget_complete"] is False and record["stopped_by"] == "wall_time_s"
    argv = ["evaluate", "--task", "digits", "--model", str(ref.path), "--checkpoint", str(tmp_path / "ck.pt")]
    assert main([*argv, "--quiet", "--limit", "8", "--store", str(tmp_path / "s")]) == 0
    assert pd.read_parquet(tmp_path / "s" / "runs").iloc[0].train_budget_complete == False  # noqa: E712


def test_custom_recipes_get_a_new_order_every_epoch():
    """Before: the loader's shuffle was seeded by len(history), which only the default recipe grew."""
    from snnbench.data import load_split

    task = get_task("digits")
    data = training.TrainingData(task, load_split(task, "train").dataset, 4, seed=0)
    first = torch.cat([y for _, y in data.loader(256)])
    second = torch.cat([y for _, y in data.loader(256)])
    assert not torch.equal(first, second)
    again = training.TrainingData(task, load_split(task, "train").dataset, 4, seed=0)
    assert torch.equal(first, torch.cat([y for _, y in again.loader(256)]))  # still reproducible


def test_a_checkpoint_that_does_not_fit_names_the_first_mismatch(write_submission, tmp_path, capsys):
    wide = write_submission(PLAIN_TORCH, "wide.py")
    torch.save({"fc.weight": torch.zeros(10, 63), "fc.bias": torch.zeros(10)}, tmp_path / "bad.pt")
    argv = ["evaluate", "--task", "digits", "--model", str(wide), "--checkpoint", str(tmp_path / "bad.pt")]
    assert main([*argv, "--quiet", "--limit", "8"]) == 1
    err = capsys.readouterr().err.splitlines()[0]
    assert "'fc.weight' has shape [10, 63] in the checkpoint but [10, 64] in the model" in err
    torch.save({"fc.weight": torch.zeros(10, 64)}, tmp_path / "short.pt")
    argv[-1] = str(tmp_path / "short.pt")
    assert main([*argv, "--quiet", "--limit", "8"]) == 1
    assert "missing key 'fc.bias'" in capsys.readouterr().err.splitlines()[0]


def test_the_child_loads_the_bytes_the_parent_hashed(write_submission, tmp_path):
    """The checkpoint is read once; replacing the file mid-run cannot change what was hashed."""
    from snnbench.sandbox import Sandbox

    sub = resolve(write_submission(PLAIN_TORCH))
    good = {"fc.weight": torch.ones(10, 64), "fc.bias": torch.zeros(10)}
    path = tmp_path / "ck.pt"
    torch.save(good, path)
    with Sandbox(sub, get_task("digits"), 0, 4, checkpoint=str(path)) as box:
        path.write_bytes(b"replaced after hashing")
        box.call("build", False)
        out = box.call("forward", torch.ones(4, 2, 1, 8, 8))
    assert torch.allclose(out, torch.full((4, 2, 10), 64.0))


# ---------------------------------------------------------------- submissions and metric families


def test_package_folder_submission_with_relative_import(tmp_path):
    pkg = tmp_path / "mine"
    pkg.mkdir()
    (pkg / "net.py").write_text(PLAIN_TORCH)
    (pkg / "__init__.py").write_text("from .net import build\n")
    assert main(["evaluate", "--task", "digits", "--model", str(pkg), "--quiet", "--limit", "8"]) == 0


def test_metric_families_are_part_of_the_result_id():
    key = dict(
        task="digits",
        task_version=1,
        submission_sha256="a" * 64,
        checkpoint_sha256=None,
        seed=0,
        timesteps=4,
        snnbench_version="0.1.0",
    )
    plain = result_id(**key, families=("accuracy", "activity"))
    assert plain != result_id(**key, families=("accuracy", "activity", "robustness"))
    assert plain == result_id(**key, families=("activity", "accuracy"))  # order does not matter


def test_a_plain_evaluate_does_not_replace_the_robustness_rows(write_submission, tmp_path):
    sub = write_submission(PLAIN_TORCH)
    store = tmp_path / "s"
    base = ["evaluate", "--task", "digits", "--model", str(sub), "--quiet", "--store", str(store)]
    assert main([*base, "--metrics", "robustness"]) == 0
    assert main(base) == 0
    stored = pd.read_parquet(store / "runs")
    assert len(stored) == 2
    metrics = pd.read_parquet(store / "metrics")
    assert (metrics.metric == "robust_accuracy").any()
    assert sorted(len(m) for m in stored["metrics"]) == [5, 6]


@pytest.mark.parametrize(
    "families, says",
    [
        ("fisher_information,unbuilt", "not built yet"),  # "unbuilt": marked unbuilt below
        ("robustnes", "did you mean 'robustness'"),
        ("rl", "does not apply to classification tasks"),
    ],
)
def test_unknown_unbuilt_or_inapplicable_families_are_one_line_errors(
    write_submission, capsys, monkeypatch, families, says
):
    import dataclasses

    from snnbench.metrics import registry

    # every shipped family is built now: register one that is not, the way a new family starts
    unbuilt = dataclasses.replace(registry.FAMILIES["privacy"], name="unbuilt", built=False)
    monkeypatch.setitem(registry.FAMILIES, "unbuilt", unbuilt)
    sub = write_submission(PLAIN_TORCH)
    assert main(["evaluate", "--task", "digits", "--model", str(sub), "--metrics", families]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- untrained runs and the leaderboard


def test_an_untrained_evaluation_is_not_reportable_unless_declared(write_submission, tmp_path):
    store = tmp_path / "s"
    trains = write_submission(PLAIN_TORCH, "trains.py")
    declared = write_submission("NEEDS_TRAINING = False\n" + PLAIN_TORCH, "fixed.py")
    for sub in (trains, declared):
        assert (
            main(["evaluate", "--task", "digits", "--model", str(sub), "--quiet", "--store", str(store)]) == 0
        )
    stored = pd.read_parquet(store / "runs").set_index("method")
    assert not stored.loc["trains", "reportable"] and stored.loc["trains", "untrained"]
    assert stored.loc["fixed", "reportable"] and not stored.loc["fixed", "untrained"]


def _write(store: Store, method: str, seed: int, accuracy: float, minutes: int, **over) -> str:
    run = runs.make_run(
        method=method,
        seed=seed,
        submission_path=f"subs/{method}.py",
        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes),
        **over,
    )
    store.write(run, [MetricRow("accuracy", accuracy, "fraction", n=450)])
    return run["result_id"]


def test_one_run_per_method_and_seed_newest_wins_untrained_excluded(tmp_path):
    store = Store(tmp_path / "store")
    _write(store, "tmpl", 0, 0.90, 0, checkpoint_sha256="1" * 64)
    newest = _write(store, "tmpl", 0, 0.98, 5, checkpoint_sha256="2" * 64)  # the same seed, re-trained
    _write(store, "tmpl", 1, 0.96, 1, checkpoint_sha256="3" * 64)
    _write(store, "tmpl", 2, 0.97, 2, checkpoint_sha256="4" * 64)
    untrained = runs.make_run(method="tmpl", seed=3, submission_path="subs/tmpl.py", untrained=True)
    untrained["reportable"] = False
    store.write(untrained, [MetricRow("accuracy", 0.10, "fraction", n=450)])

    summary = leaderboard.summarize(store.read())
    row = summary.iloc[0]
    assert len(summary) == 1 and row["seeds"] == "0, 1, 2" and newest in row["result_ids"]
    assert row["accuracy_mean"] == pytest.approx((0.98 + 0.96 + 0.97) / 3)
    md = leaderboard.build(store.path, tmp_path / "out")[0].read_text()
    assert "superseded" in md and "untrained" in md and "Rows come from snnbench commits: abc123" in md


def test_an_edited_submission_replaces_its_older_self(tmp_path):
    store = Store(tmp_path / "store")
    _write(store, "m", 0, 0.5, 0, submission_sha256="a" * 64)
    _write(store, "m", 1, 0.5, 1, submission_sha256="a" * 64)
    _write(store, "m", 0, 0.9, 2, submission_sha256="b" * 64)
    row = leaderboard.summarize(store.read()).iloc[0]
    assert row["seeds"] == "0" and row["accuracy_mean"] == pytest.approx(0.9)


def test_latency_is_not_averaged_across_devices(tmp_path):
    store = Store(tmp_path / "store")
    for seed, device in enumerate(["cpu: A", "cpu: B"]):
        run = runs.make_run(method="m", seed=seed, device=device)
        store.write(run, [MetricRow("latency_ms_per_sample", 1.0 + seed, "ms")])
    row = leaderboard.summarize(store.read()).iloc[0]
    assert row["latency_ms_per_sample_n"] == 0 and row["devices"] == ["cpu: A", "cpu: B"]


def test_user_runs_show_next_to_the_read_only_baselines(tmp_path):
    mine, committed = Store(tmp_path / "mine"), Store(tmp_path / "committed")
    _write(mine, "mine", 0, 0.9, 0)
    _write(committed, "bptt", 0, 0.95, 0, submission_sha256="c" * 64)
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "committed").rglob("*"))
    md = leaderboard.build(mine.path, mine.path, baselines=committed.path)[0].read_text()
    assert "bptt (baseline)" in md and "mine (yours)" in md
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "committed").rglob("*")) == before
    assert not (tmp_path / "committed" / "LEADERBOARD.md").exists()


def test_the_default_store_and_page_stay_out_of_the_repository(tmp_path, monkeypatch, write_submission):
    monkeypatch.delenv("SNNBENCH_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    sub = write_submission(PLAIN_TORCH)
    assert main(["evaluate", "--task", "digits", "--model", str(sub), "--quiet", "--limit", "8"]) == 0
    assert main(["leaderboard"]) == 0
    assert (tmp_path / "xdg" / "snnbench" / "results" / "LEADERBOARD.md").is_file()
    assert len(list((tmp_path / "xdg" / "snnbench" / "results" / "runs").iterdir())) == 1


def test_device_option_is_checked_and_recorded(write_submission, tmp_path, capsys):
    sub = write_submission(PLAIN_TORCH)
    argv = ["evaluate", "--task", "digits", "--model", str(sub), "--quiet", "--limit", "8"]
    assert main([*argv, "--device", "tpu9"]) == 2
    assert "--device" in capsys.readouterr().err
    assert main([*argv, "--device", "cpu", "--store", str(tmp_path / "s")]) == 0
    assert pd.read_parquet(tmp_path / "s" / "runs").iloc[0].device.startswith("cpu: ")


def test_sweep_ends_with_a_table_of_its_cells(tmp_path, write_submission, capsys):
    sub = write_submission(PLAIN_TORCH)
    argv = ["sweep", "--tasks", "digits", "--models", str(sub), "--seeds", "0,1", "--limit", "8"]
    assert main([*argv, "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    ids = list(pd.read_parquet(tmp_path / "s" / "runs")["result_id"])
    assert all(rid in out for rid in ids) and "accuracy/return" in out


def test_every_subcommand_help_has_a_description():
    from snnbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert p.description and len(p.description) > 40, name


def test_no_readme_link_or_help_points_outside_the_repository():
    readme = (REPO / "README.md").read_text()
    assert "../shared" not in readme and "shared/design" not in readme
    for path in (REPO / "snnbench").rglob("*.py"):
        assert "../shared" not in path.read_text(), path
    assert Path(REPO / "docs" / "PROTOCOLS.md").is_file() and Path(REPO / "docs" / "DATASETS.md").is_file()


# ---------------------------------------------------------------- the typed task spec


def test_task_sections_are_typed_and_unknown_keys_get_a_did_you_mean(tmp_path):
    import dataclasses

    import tomllib

    from snnbench.tasks import TaskError, TrainSpec, parse_task

    raw = tomllib.loads((REPO / "tasks" / "digits.toml").read_text())
    task = parse_task(raw, "digits.toml")
    assert isinstance(task.train, TrainSpec) and task.train.epochs == 30 and task.train.lr == 0.002
    assert dict(task.train) == {"epochs": 30, "lr": 0.002, "batch_size": 64}  # unset knobs stay unset
    assert task.robustness.samples == 256  # a default, kept in one place
    raw["train"] = {**raw["train"], "epoch": 3}
    with pytest.raises(TaskError, match=r"unknown key 'epoch' in \[train\] \(did you mean 'epochs'\?\)"):
        parse_task(raw, "digits.toml")
    raw["train"] = {"epochs": "many"}
    with pytest.raises(TaskError, match=r"\[train\] epochs must be int"):
        parse_task(raw, "digits.toml")
    with pytest.raises(TaskError, match="unknown key 'sauce'"):
        dataclasses.replace(task, data={**task.data, "sauce": 1})


def test_a_submission_can_declare_its_timesteps(write_submission, tmp_path):
    sub = write_submission("TIMESTEPS = 2\n" + PLAIN_TORCH)
    argv = ["evaluate", "--task", "digits", "--model", str(sub), "--quiet", "--limit", "8"]
    assert main([*argv, "--store", str(tmp_path / "a")]) == 0
    assert pd.read_parquet(tmp_path / "a" / "runs").iloc[0].timesteps == 2
    assert main([*argv, "--timesteps", "3", "--store", str(tmp_path / "b")]) == 0  # the flag wins
    assert pd.read_parquet(tmp_path / "b" / "runs").iloc[0].timesteps == 3


def test_build_sees_the_timesteps_the_run_uses(write_submission, tmp_path):
    """--timesteps (or a declared TIMESTEPS) reaches build(task), not only the input's length."""
    body = PLAIN_TORCH.replace(
        "    return Net(features, task.outputs)",
        "    net = Net(features, task.outputs)\n"
        "    net.forward_checked = net.forward\n"
        "    T = task.timesteps\n"
        "    def forward(x):\n"
        "        assert x.shape[0] == T, (x.shape[0], T)\n"
        "        return net.forward_checked(x)\n"
        "    net.forward = forward\n"
        "    return net",
    )
    sub = write_submission(body)
    argv = ["evaluate", "--task", "digits", "--model", str(sub), "--quiet", "--limit", "8"]
    assert main([*argv, "--timesteps", "3", "--store", str(tmp_path / "s")]) == 0
    run = pd.read_parquet(tmp_path / "s" / "runs").iloc[0]
    assert run.timesteps == 3 and run.spec_hash == get_task("digits").spec_hash()
