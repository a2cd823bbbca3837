"""The leaderboard: numbers from a hand-built store, markers, separation, determinism, CITATION."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from snnbench import leaderboard
from snnbench.metrics import MetricRow
from snnbench.store import CorruptStoreError, Store
from tests import runs

TASK_TOML = """id = "digits"
version = {version}
kind = "classification"
title = "scikit-learn digits, direct input"
input_shape = [1, 8, 8]
classes = 10
timesteps = 4
batch_size = 128

[data]
source = "digits"

[encoding]
kind = "direct"
"""

CARD, CARD_MEM = "horowitz45nm-fp32", "horowitz45nm-fp32-mem"


def make_run(method, seed, *, sub="a", T=4, **over):
    fields = dict(
        method=method, seed=seed, submission_sha256=sub * 64, timesteps=T, submission_path=f"subs/{method}.py"
    )
    return runs.make_run(**{**fields, **over})


# Per run: accuracy, top-5, spikes, synops, macs, energy (compute), energy (memory), decision, latency, params
FIGS = {
    ("alpha", 0): (0.91, 0.991, 1200.0, 5.1e6, 2.0e5, 4.6, 31.0, 2.10, 0.50, 12345),
    ("alpha", 1): (0.93, 0.995, 1100.0, 4.9e6, 2.0e5, 4.4, 30.0, 2.30, 0.52, 12345),
    ("alpha", 2): (0.94, 0.990, 1300.0, 5.3e6, 2.0e5, 4.9, 32.5, 2.00, 0.47, 12345),
    ("beta", 0): (0.96, 0.999, 800.0, 3.0e6, 1.0e5, 2.7, 20.0, 1.50, 0.61, 54321),
    ("beta", 1): (0.95, 0.998, 850.0, 3.2e6, 1.0e5, 2.9, 21.0, 1.70, 0.66, 54321),
    ("gamma", 0): (0.80, 0.970, 300.0, 1.0e6, 5.0e4, 0.9, 7.0, 3.00, 0.20, 999),
}
NAMES = (
    "accuracy",
    "accuracy_top5",
    "spikes_per_sample",
    "synops_per_sample",
    "macs_per_sample",
    "energy_c",
    "energy_m",
    "decision_timestep",
    "latency_ms_per_sample",
    "params",
)


def rows_for(fig) -> list[MetricRow]:
    v = dict(zip(NAMES, fig))
    rows = [
        MetricRow("accuracy", v["accuracy"], "fraction", n=450, stderr=0.01),
        MetricRow("accuracy", v["accuracy"] - 0.3, "fraction", n=450, timestep=0),  # anytime, not headline
        MetricRow("accuracy_top5", v["accuracy_top5"], "fraction", n=450),
        MetricRow("spikes_per_sample", v["spikes_per_sample"], "count"),
        MetricRow("spikes_per_sample", 7.0, "count", layer="fc1"),  # per layer, not headline
        MetricRow("firing_rate", v["accuracy"] / 4, "fraction", layer="fc10"),  # the site's per-layer plot
        MetricRow("firing_rate", v["accuracy"] / 8, "fraction", layer="fc2"),
        MetricRow("synops_per_sample", v["synops_per_sample"], "count"),
        MetricRow("macs_per_sample", v["macs_per_sample"], "count"),
        MetricRow("energy_uj_per_sample", v["energy_c"], "microjoule", condition=CARD),
        MetricRow("energy_uj_per_sample", v["energy_m"], "microjoule", condition=CARD_MEM),
        MetricRow("decision_timestep", v["decision_timestep"], "steps"),
        MetricRow("latency_ms_per_sample", v["latency_ms_per_sample"], "ms"),
        MetricRow("params", float(v["params"]), "count"),
    ]
    return rows


def populate(root: Path, reverse: bool = False) -> None:
    writes = []
    for (method, seed), fig in FIGS.items():
        over = {"submission_path": "subs/beta"} if method == "beta" else {}  # a package folder
        if method == "beta" and seed == 1:
            over["uncounted"] = ["LSTM", "MultiheadAttention"]
        rows = rows_for(fig)
        if method == "gamma":
            rows.append(MetricRow("gradient_masking_suspected", 1.0, "0/1", condition="pgd<=fgsm"))
            rows.append(MetricRow("robust_accuracy", 0.41, "fraction", n=450, condition="fgsm eps=0.1"))
        writes.append((make_run(method, seed, sub=method[0], **over), rows))
    writes.append((make_run("beta", 2, sub="b", status="failed", error="model returned a tuple"), []))
    writes.append((make_run("alpha", 0, sub="a", limit=32), rows_for((0.1,) * 10)))
    writes.append((make_run("alpha", 0, sub="a", T=8), rows_for((0.5,) * 10)))
    # a metrics_version bump ships with a new harness version (the version is part of the id)
    mv2 = make_run("alpha", 0, sub="a", metrics_version="2", snnbench_version="0.2.0")
    writes.append((mv2, rows_for((0.6,) * 10)))
    writes.append((make_run("alpha", 0, sub="a", task_version=2), rows_for((0.7,) * 10)))
    store = Store(root)
    for run, rows in reversed(writes) if reverse else writes:
        store.write(run, rows)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("lb")
    tasks = base / "tasks"
    tasks.mkdir()
    (tasks / "digits.toml").write_text(TASK_TOML.format(version=2))
    subs = base / "subs"
    subs.mkdir()
    (subs / "alpha.py").write_text(
        'import os\nos.makedirs("EXECUTED", exist_ok=True)\nraise SystemExit("executed")\n'
        'CITATION = "@article{alpha2024, title={Alpha spikes}}"\n'
    )
    (subs / "beta").mkdir()
    (subs / "beta" / "__init__.py").write_text(
        'CITATION: str = (\n    "@inproceedings{beta2023,"\n    " year={2023}}"\n)\n'
    )
    store = base / "store"
    populate(store)
    out = base / "out"
    paths = leaderboard.build(store, out, tasks_dir=tasks, submissions_root=base)
    return {
        "base": base,
        "tasks": tasks,
        "store": store,
        "paths": paths,
        "md": paths[0].read_text(encoding="utf-8"),
        "html": paths[1].read_text(encoding="utf-8"),
    }


def _table_lines(md: str, heading: str) -> list[str]:
    section = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_outputs_are_written(world):
    md_path, html_path = world["paths"][:2]
    assert md_path == world["base"] / "out" / "LEADERBOARD.md"
    assert html_path == world["base"] / "out" / "site" / "index.html"
    assert not (world["base"] / "EXECUTED").exists() and not Path("EXECUTED").exists()


def test_summary_numbers_match_numpy(world):
    view = Store(world["store"]).read()
    s = leaderboard.summarize(view)
    main = s[(s["timesteps"] == 4) & (s["task_version"] == 1) & (s["metrics_version"] == "1")]
    assert sorted(main["method"]) == ["alpha", "beta", "gamma"]
    keys = {
        "accuracy": 0,
        "accuracy_top5": 1,
        "spikes_per_sample": 2,
        "synops_per_sample": 3,
        "macs_per_sample": 4,
        f"energy_uj_per_sample[{CARD}]": 5,
        f"energy_uj_per_sample[{CARD_MEM}]": 6,
        "decision_timestep": 7,
        "latency_ms_per_sample": 8,
        "params": 9,
    }
    for method in ("alpha", "beta", "gamma"):
        row = main[main["method"] == method].iloc[0]
        figs = np.array([f for (m, _), f in FIGS.items() if m == method], dtype=np.float64)
        assert row["runs"] == len(figs)
        for key, j in keys.items():
            assert row[f"{key}_n"] == len(figs)
            assert row[f"{key}_mean"] == pytest.approx(np.mean(figs[:, j]), rel=1e-12)
            if len(figs) > 1:
                assert row[f"{key}_std"] == pytest.approx(np.std(figs[:, j], ddof=1), rel=1e-12)
            else:
                assert np.isnan(row[f"{key}_std"])
    # the --limit run and the failed run are not in any mean
    alpha = main[main["method"] == "alpha"].iloc[0]
    assert alpha["seeds"] == "0, 1, 2" and len(alpha["result_ids"].split()) == 3


def test_markdown_table_content_and_order(world):
    md = world["md"]
    lines = _table_lines(md, "digits v1, T=4, metrics v1")
    header = _cells(lines[0])
    assert header[:3] == ["method", "top-1 %", "top-5 %"]
    assert header[-3:] == ["T", "seeds", "result ids"]
    body = [_cells(x) for x in lines[2:]]
    assert [r[0] for r in body] == ["beta", "alpha", "gamma †"]  # best first by accuracy
    col = {h: i for i, h in enumerate(header)}

    acc = np.array([FIGS[("alpha", s)][0] for s in range(3)])
    alpha = body[1]
    assert alpha[col["top-1 %"]] == f"{100 * acc.mean():.2f} ± {100 * acc.std(ddof=1):.2f}"
    syn = np.array([FIGS[("alpha", s)][3] for s in range(3)])
    assert alpha[col["SynOps/sample"]] == f"{syn.mean() / 1e6:.3g}M ± {syn.std(ddof=1) / 1e3:.3g}k"
    mem = np.array([FIGS[("alpha", s)][6] for s in range(3)])
    assert alpha[col["µJ/sample memory-aware"]] == f"{mem.mean():.3g} ± {mem.std(ddof=1):.3g}"
    assert alpha[col["T"]] == "4" and alpha[col["seeds"]] == "0, 1, 2"
    alpha_ids = sorted(make_run("alpha", s, sub="a")["result_id"] for s in range(3))
    assert sorted(alpha[col["result ids"]].split()) == alpha_ids
    gamma = body[2]
    assert gamma[col["top-1 %"]] == f"{100 * 0.80:.2f}" and gamma[col["seeds"]] == "0"  # one seed: no ±


def test_uncounted_and_masking_markers(world):
    md = world["md"]
    lines = _table_lines(md, "digits v1, T=4, metrics v1")
    header = _cells(lines[0])
    beta = _cells(lines[2])
    for h in ("spikes/sample", "SynOps/sample", "MACs/sample", "µJ/sample compute", "µJ/sample memory-aware"):
        assert beta[header.index(h)].startswith("≥"), h
    assert not beta[header.index("top-1 %")].startswith("≥")
    alpha = _cells(lines[3])
    assert not alpha[header.index("spikes/sample")].startswith("≥")
    assert "activity is a lower bound: uncounted module types LSTM, MultiheadAttention" in md
    assert "† gradient masking suspected" in md


def test_versions_and_T_are_never_mixed(world):
    md = world["md"]
    for heading, acc in (
        ("digits v1, T=8, metrics v1", 0.5),
        ("digits v1, T=4, metrics v2", 0.6),
        ("digits v2, T=4, metrics v1", 0.7),
    ):
        lines = _table_lines(md, heading)
        assert len(lines) == 3, heading  # header, rule, one row
        assert _cells(lines[2])[:2] == ["alpha", f"{100 * acc:.2f}"]
    assert "the task file is now v2" in md.split("## digits v1, T=4, metrics v1")[1].split("\n\n")[1]


def test_left_out_runs_are_counted_and_listed(world):
    md = world["md"]
    section = md.split("## digits v1, T=4, metrics v1\n", 1)[1].split("\n## ", 1)[0]
    assert "Left out: 1 failed, 0 timed out, 1 not reportable" in section
    left = _table_lines(md, "Runs left out")
    reasons = {_cells(x)[0]: _cells(x)[-1] for x in left[2:]}
    assert reasons[make_run("beta", 2, sub="b")["result_id"]] == "model returned a tuple"
    assert reasons[make_run("alpha", 0, sub="a", limit=32)["result_id"]] == "not reportable: --limit 32"


def test_citations_are_parsed_not_executed(world):
    md = world["md"]
    refs = md.split("## References", 1)[1]
    assert "@article{alpha2024, title={Alpha spikes}}" in refs
    assert "@inproceedings{beta2023, year={2023}}" in refs  # package folder: its __init__.py
    assert "gamma" not in refs  # no submission file: no citation, no error
    assert not (world["base"] / "EXECUTED").exists()


def test_html_has_the_same_tables(world):
    page = world["html"]
    assert page.startswith("<!DOCTYPE html>")
    md_tables = sum(line.startswith("|-") for line in world["md"].splitlines())
    assert md_tables == 5 and page.count("<table") == md_tables  # four sections + runs left out
    acc = np.array([FIGS[("alpha", s)][0] for s in range(3)])
    assert f">{100 * acc.mean():.2f}<br><small>± {100 * acc.std(ddof=1):.2f}</small></td>" in page
    assert ">gamma</a>" in page and "† masking" in page and "≥" in page
    assert "`" not in page  # Markdown code spans are <code> in HTML
    assert "<code>snnbench cite RESULT_ID</code>" in page


def test_rebuild_is_byte_identical_whatever_the_write_order(world, tmp_path):
    again = leaderboard.build(
        world["store"], tmp_path / "a", tasks_dir=world["tasks"], submissions_root=world["base"]
    )
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in world["paths"]]
    other = tmp_path / "store2"
    populate(other, reverse=True)
    third = leaderboard.build(other, tmp_path / "b", tasks_dir=world["tasks"], submissions_root=world["base"])
    assert [p.read_bytes() for p in third] == [p.read_bytes() for p in world["paths"]]


def test_corrupt_store_stops_or_is_listed(world, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(world["store"], store)
    bad = store / "metrics" / "0123456789ab.parquet"
    bad.write_bytes(b"PAR1 but not really")
    (store / "runs" / "0123456789ab.parquet").write_bytes(b"nope")
    with pytest.raises(CorruptStoreError) as err:
        leaderboard.build(store, tmp_path / "out", tasks_dir=world["tasks"])
    assert "\n" not in str(err.value) and "--skip-corrupt" in str(err.value)
    assert not (tmp_path / "out").exists()
    md_path = leaderboard.build(store, tmp_path / "out", tasks_dir=world["tasks"], skip_corrupt=True)[0]
    md = md_path.read_text(encoding="utf-8")
    head = md.split("\n## ", 1)[0]
    assert "Skipped corrupt result files" in head and "- runs/0123456789ab.parquet" in head
    # every good run is still there
    assert _table_lines(md, "digits v1, T=4, metrics v1")[2].startswith("| beta")


def test_empty_store_builds_a_page(tmp_path, world):
    md_path, html_path = leaderboard.build(tmp_path / "none", tmp_path / "out", tasks_dir=world["tasks"])[:2]
    assert "no runs yet" in md_path.read_text(encoding="utf-8")
    assert not (tmp_path / "none").exists()
    assert html_path.exists()


def test_weight_sparsity_shows_only_where_a_network_is_pruned():
    """A dense table keeps its width; a table with a pruned row shows every row's sparsity."""
    import pandas as pd

    def part(sparsities):
        frame = {"method": [f"m{i}" for i in range(len(sparsities))]}
        for c in leaderboard.columns():
            frame[f"{c.key}_n"] = [0] * len(sparsities)
            frame[f"{c.key}_mean"] = [np.nan] * len(sparsities)
        frame["accuracy_n"] = [3] * len(sparsities)
        frame["accuracy_mean"] = [0.9] * len(sparsities)
        frame["weight_sparsity_n"] = [3] * len(sparsities)
        frame["weight_sparsity_mean"] = sparsities
        return pd.DataFrame(frame)

    dense = [c.key for c in leaderboard.shown_columns(part([0.0, 0.0]))]
    pruned = [c.key for c in leaderboard.shown_columns(part([0.0, 0.9]))]
    assert dense == ["accuracy"]
    assert pruned == ["accuracy", "weight_sparsity"]
