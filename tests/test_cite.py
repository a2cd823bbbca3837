"""`snnbench cite`: BibTeX from the store, CITATION strings read with ast (never executed)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from snnbench.cite import cite, read_citation
from snnbench.metrics import MetricRow
from snnbench.store import Store
from tests import runs


def make_run(seed=0, **over):
    fields = dict(
        seed=seed,
        checkpoint_sha256="c" * 64,
        method="my_lif",
        submission_path="subs/mine.py",
        device="cpu: test (2 threads)",
        git_commit="0123abcd",
        created_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc),
        wall_time_s=3.5,
    )
    return runs.make_run(**{**fields, **over})


ACC, SYNOPS, ENERGY, ENERGY_MEM = 0.9377, 123456.0, 0.4321, 2.5


def metric_rows():
    return [
        MetricRow("accuracy", ACC, "fraction", n=450),
        MetricRow("accuracy", 0.5, "fraction", n=450, timestep=0),
        MetricRow("synops_per_sample", SYNOPS, "count"),
        MetricRow("synops_per_sample", 17.0, "count", layer="fc2"),
        MetricRow("energy_uj_per_sample", ENERGY, "microjoule", condition="horowitz45nm-fp32"),
        MetricRow("energy_uj_per_sample", ENERGY_MEM, "microjoule", condition="horowitz45nm-fp32-mem"),
    ]


def balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.fixture
def world(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "mine.py").write_text(
        'open("EXECUTED", "w").close()\n'
        'CITATION = """@inproceedings{lif2024,\n  title = {Leaky spikes}\n}"""\n'
        "def build(task):\n    raise RuntimeError\n"
    )
    store = Store(tmp_path / "store")
    run = make_run()
    store.write(run, metric_rows())
    return tmp_path, store, run


def test_cite_has_result_numbers_method_and_software(world):
    base, store, run = world
    text = cite(store.path, run["result_id"], submissions_root=base)
    entries = text.strip().split("\n\n")
    assert len(entries) == 3
    ours, method, software = entries
    assert ours.startswith(f"@misc{{snnbench:{run['result_id']},")
    assert "my\\_lif on snnbench task digits v1 (T=4)" in ours
    assert f"top-1 accuracy {100 * ACC:.2f}\\%" in ours
    assert f"{SYNOPS:,.0f} SynOps/sample" in ours
    assert f"energy {ENERGY:.4g} uJ/sample (horowitz45nm-fp32)" in ours
    assert f"energy {ENERGY_MEM:.4g} uJ/sample (horowitz45nm-fp32-mem)" in ours
    for fact in ("commit 0123abcd", "snnbench 0.1.0", "metrics v1", "created 2026-03-04T05:06:07Z", "seed 0"):
        assert fact in ours, fact
    assert "year = {2026}" in ours and "url" not in ours.lower()
    assert method == "@inproceedings{lif2024,\n  title = {Leaky spikes}\n}"
    assert software.startswith("@misc{snnbench_0_1_0,") and "version 0.1.0" in software
    assert all(balanced(e) for e in entries)
    assert not (base / "EXECUTED").exists()


def test_unique_prefix_works_and_bad_ids_are_one_line(world):
    base, store, run = world
    rid = run["result_id"]
    assert cite(store.path, rid[:3], submissions_root=base) == cite(store.path, rid, submissions_root=base)
    # add runs until two ids share a first character, then ask for that character
    seed = 1
    while True:
        other = make_run(seed=seed)
        store.write(other, [])
        ids = store.result_ids()
        firsts = [i[0] for i in ids]
        dup = next((c for c in firsts if firsts.count(c) > 1), None)
        if dup:
            break
        seed += 1
    with pytest.raises(ValueError) as err:
        cite(store.path, dup)
    msg = str(err.value)
    assert "\n" not in msg and "matches" in msg and "run `snnbench leaderboard` to list ids" in msg
    with pytest.raises(
        ValueError, match=r"no result 'ffffffffffffff'.*run `snnbench leaderboard` to list ids"
    ):
        cite(store.path, "ffffffffffffff")


def test_failed_run_without_submission_file_still_cites(tmp_path):
    store = Store(tmp_path / "store")
    run = make_run(status="timeout", error="submission ran past --timeout 600 s", submission_path="gone.py")
    run.update(uncounted=["LSTM"], git_commit=None)
    store.write(run, [])
    text = cite(store.path, run["result_id"], submissions_root=tmp_path)
    assert text.count("@misc{") == 2  # the result and snnbench; no method citation, no error
    assert "status timeout: submission ran past --timeout 600 s" in text
    assert "uncounted: LSTM" in text and "commit unknown" in text


@pytest.mark.parametrize(
    "source, expected",
    [
        ('CITATION = "@article{a}"\n', "@article{a}"),
        ('CITATION: str = "@article{b}"\n', "@article{b}"),
        ('CITATION = (\n  "@article{c,"\n  " year={2020}}"\n)\n', "@article{c, year={2020}}"),
        ('CITATION = "old"\nCITATION = "@article{d}"\n', "@article{d}"),
        ('name = "x"\nCITATION = f"@article{{{name}}}"\n', None),  # not a literal: never evaluated
        ("CITATION = make_citation()\n", None),
        ('def f():\n    CITATION = "@article{inner}"\n', None),  # not module level
        ("CITATION = '@article{e}'\ndef broken(:\n", None),  # a syntax error: no citation
        ("", None),
    ],
)
def test_read_citation_literals_only(tmp_path, source, expected):
    (tmp_path / "sub.py").write_text(source)
    assert read_citation("sub.py", tmp_path) == expected


def test_read_citation_package_folder_and_missing(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('import sys\nsys.exit(3)\nCITATION = "@misc{pkg}"\n')
    assert read_citation(pkg) == "@misc{pkg}"
    assert read_citation(tmp_path / "nope.py") is None
    assert read_citation(tmp_path / "empty_folder") is None
    (tmp_path / "binary.py").write_bytes(b"\xff\xfe\x00garbage")
    assert read_citation(tmp_path / "binary.py") is None


# ---------------------------------------------------------------------------------------------
# the software entry and `snnbench cite --task`


def test_software_entry_has_year_version_and_the_pyprojects_repository_url(world):
    import tomllib

    from snnbench.cite import REPOSITORY_URL

    base, store, run = world
    software = cite(store.path, run["result_id"], submissions_root=base).strip().split("\n\n")[-1]
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["urls"]["Repository"] == REPOSITORY_URL
    for field in ("year = {2026}", "version = {0.1.0}", f"url = {{{REPOSITORY_URL}}}"):
        assert field in software, field
    assert balanced(software)


@pytest.fixture
def table_world(tmp_path):
    from tests.test_leaderboard import populate

    subs = tmp_path / "subs"
    (subs / "beta").mkdir(parents=True)
    (subs / "alpha.py").write_text(
        'open("EXECUTED", "w").close()\nCITATION = "@article{alpha2024, title={Alpha spikes}}"\n'
    )
    (subs / "beta" / "__init__.py").write_text('CITATION = "@inproceedings{beta2023, year={2023}}"\n')
    populate(tmp_path / "store")
    return tmp_path


def _entries(text: str) -> list[str]:
    return [e for e in text.strip().split("\n\n") if e]


def test_cite_table_has_one_entry_per_row_then_papers_then_software(table_world):
    from snnbench import leaderboard
    from snnbench.cite import cite_table
    from tests.test_leaderboard import make_run as lb_run

    base = table_world
    text = cite_table([(base / "store", "yours")], "digits", timesteps=4, submissions_root=base)
    entries = _entries(text)
    assert all(balanced(e) for e in entries)
    rows = [e for e in entries if e.startswith("@misc{snnbench:")]
    # T=4: three rows in (digits v1, metrics v1), one each in metrics v2 and task v2, best first per table
    keys = [e.split(",", 1)[0] for e in rows]
    assert keys == [
        "@misc{snnbench:digits-v1-T4-m1:beta",
        "@misc{snnbench:digits-v1-T4-m1:alpha",
        "@misc{snnbench:digits-v1-T4-m1:gamma",
        "@misc{snnbench:digits-v1-T4-m2:alpha",
        "@misc{snnbench:digits-v2-T4-m1:alpha",
    ]
    alpha = rows[1]
    for seed in range(3):
        assert lb_run("alpha", seed, sub="a")["result_id"] in alpha
    assert "top-1 \\% 92.67 +/- 1.53" in alpha and "seeds 0, 1, 2 (3 runs)" in alpha
    assert "year = {2026}" in alpha
    assert "activity a lower bound (uncounted: LSTM, MultiheadAttention)" in rows[0]
    assert "gradient masking suspected" in rows[2]
    # each paper once, then snnbench per harness version used by the rows
    assert entries.count("@article{alpha2024, title={Alpha spikes}}") == 1
    assert "@inproceedings{beta2023, year={2023}}" in entries
    software = [e for e in entries if e.startswith("@misc{snnbench_")]
    assert [s.split(",", 1)[0] for s in software] == ["@misc{snnbench_0_1_0", "@misc{snnbench_0_2_0"]
    assert not (base / "EXECUTED").exists()
    # the same rows the leaderboard shows: every row id of the T=4 tables is cited
    summary = leaderboard.summarize(leaderboard.read_views([(base / "store", "yours")]))
    for ids in summary[summary["timesteps"] == 4]["result_ids"]:
        assert all(rid in text for rid in ids.split())


def test_cite_table_all_T_and_no_row(table_world):
    from snnbench.cite import cite_table

    base = table_world
    text = cite_table([(base / "store", "yours")], "digits", submissions_root=base)
    assert "@misc{snnbench:digits-v1-T8-m1:alpha" in text and "@misc{snnbench:digits-v1-T4-m1:beta" in text
    with pytest.raises(ValueError, match="no reportable leaderboard row for task digits at T=16"):
        cite_table([(base / "store", "yours")], "digits", timesteps=16, submissions_root=base)


def test_cli_cite_task(table_world, capsys, monkeypatch):
    from snnbench.cli import main

    base = table_world
    monkeypatch.chdir(base)
    assert main(["cite", "--task", "digits", "--timesteps", "8", "--store", str(base / "store")]) == 0
    out = capsys.readouterr().out
    assert "digits-v1-T8-m1:alpha" in out and "@misc{snnbench_" in out
    assert main(["cite", "--store", str(base / "store")]) == 2
    assert "give a result id, or --task" in capsys.readouterr().err
    assert main(["cite", "abc", "--task", "digits", "--store", str(base / "store")]) == 2
    assert main(["cite", "--task", "nope", "--store", str(base / "store")]) == 2
    assert "no reportable leaderboard row for task nope" in capsys.readouterr().err
