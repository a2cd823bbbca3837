"""`snnbench cite`: BibTeX from the store, CITATION strings read with ast (never executed)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

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
