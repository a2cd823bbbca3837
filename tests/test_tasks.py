"""Task registry: every shipped task file validates; malformed files fail with the key named."""

from __future__ import annotations

import pytest

from snnbench.tasks import TaskError, get_task, load_tasks, parse_task, tasks_dir

PROTOCOL_TABLE = {  # PROTOCOLS.md section 1: id -> (input shape, default T)
    "digits": ((1, 8, 8), 4),
    "digits-dvs": ((2, 32, 32), 10),
    "cifar10": ((3, 32, 32), 4),
    "cifar100": ((3, 32, 32), 4),
    "tinyimagenet": ((3, 64, 64), 4),
    "cifar10dvs": ((2, 48, 48), 10),
    "nmnist": ((2, 34, 34), 10),
    "dvsgesture": ((2, 64, 64), 16),
    "ncaltech101": ((2, 48, 48), 10),
    "cartpole": ((4,), 4),
    "atari-pong": ((4, 84, 84), 4),
    "atari-breakout": ((4, 84, 84), 4),
}


def test_every_protocol_task_ships_with_its_shape_and_T():
    tasks = load_tasks()
    assert set(tasks) == set(PROTOCOL_TABLE)
    for tid, (shape, steps) in PROTOCOL_TABLE.items():
        assert (tasks[tid].input_shape, tasks[tid].timesteps) == (shape, steps), tid


def test_classes_match_the_datasets():
    tasks = load_tasks()
    assert {
        t: tasks[t].classes
        for t in ("digits", "cifar10", "cifar100", "tinyimagenet", "dvsgesture", "ncaltech101")
    } == {
        "digits": 10,
        "cifar10": 10,
        "cifar100": 100,
        "tinyimagenet": 200,
        "dvsgesture": 11,
        "ncaltech101": 101,
    }


def test_unknown_task_suggests_the_closest():
    with pytest.raises(TaskError, match="did you mean 'digits-dvs'"):
        get_task("digit-dvs")
    with pytest.raises(TaskError, match="snnbench tasks"):
        get_task("imagenet-xyz-unrelated")


GOOD = dict(
    id="t",
    version=1,
    kind="classification",
    title="x",
    input_shape=[1, 2],
    timesteps=2,
    batch_size=4,
    classes=3,
    data={"source": "digits"},
    encoding={"kind": "direct"},
)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": 0}, "version must be a positive integer"),
        ({"timesteps": "4"}, "timesteps must be a positive integer"),
        ({"kind": "regression"}, "kind must be one of"),
        ({"input_shape": [0, 3]}, "input_shape"),
        ({"classes": 1}, "classes >= 2"),
        ({"metrics": ["accuracy", "vibes"]}, "unknown metric family"),
        ({"data": {}}, "source"),
        ({"encoding": {"gain": 2}}, "kind"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_malformed_task_names_the_problem(change, message):
    with pytest.raises(TaskError, match=message):
        parse_task({**GOOD, **change}, "t.toml")


def test_missing_keys_are_listed():
    raw = dict(GOOD)
    del raw["timesteps"], raw["data"]
    with pytest.raises(TaskError, match="missing key\\(s\\) timesteps, data"):
        parse_task(raw, "t.toml")


def test_file_name_must_match_id(tmp_path):
    (tmp_path / "other.toml").write_text((tasks_dir() / "digits.toml").read_text())
    with pytest.raises(TaskError, match="must match the file name"):
        load_tasks(tmp_path)


def test_spec_hash_changes_with_any_field():
    a = parse_task(GOOD, "a")
    b = parse_task({**GOOD, "encoding": {"kind": "rate"}}, "b")
    assert a.spec_hash() == parse_task(dict(GOOD), "c").spec_hash()
    assert a.spec_hash() != b.spec_hash()
