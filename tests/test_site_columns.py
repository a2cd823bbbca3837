"""Training-energy and privacy columns on the leaderboard and the site: shown for a task whose runs
measured them (one column per condition), absent elsewhere, values checked against numpy."""

from __future__ import annotations

import html
import re

import numpy as np

from snnbench import leaderboard
from snnbench.store import Store
from tests import runs

# per (method, seed): accuracy, training J under "sata-45nm", MIA AUC, TPR at fpr=0.01, class leakage
MEASURED = {
    ("alpha", 0): (0.90, 12.5, 0.512, 0.021, 0.30),
    ("alpha", 1): (0.92, 13.5, 0.534, 0.035, 0.40),
    ("beta", 0): (0.95, 40.0, 0.601, 0.080, 0.70),
    ("beta", 1): (0.94, 44.0, 0.588, 0.060, 0.80),
}


def _row(rid, metric, value, unit="fraction", condition=None):
    return {"result_id": rid, "metric": metric, "value": value, "unit": unit, "condition": condition}


def _store(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    for (method, seed), (acc, joule, auc, tpr, leak) in MEASURED.items():
        run = runs.make_run(method=method, seed=seed, submission_sha256=method[0] * 64)
        rid = run["result_id"]
        store.write(
            run,
            [
                _row(rid, "accuracy", acc),
                _row(rid, "training_energy_j", joule, "joule", "sata-45nm"),
                _row(rid, "mia_auc", auc),
                _row(rid, "mia_tpr_at_fpr", tpr, condition="fpr=0.01"),
                _row(rid, "class_leakage", leak),
            ],
        )
    # the same methods on another task with none of those figures: no such columns there
    for method, seed, acc in (("alpha", 0, 0.8), ("gamma", 0, 0.7)):
        run = runs.make_run(task="digits-dvs", method=method, seed=seed, submission_sha256=method[0] * 64)
        store.write(run, [_row(run["result_id"], "accuracy", acc)])
    return store


def _expected(method: str, i: int, fmt) -> str:
    vals = np.array([v[i] for (m, _), v in MEASURED.items() if m == method])
    return f"{fmt(vals.mean())} ± {fmt(vals.std(ddof=1))}"


HEADERS = ("training J (sata-45nm)", "MIA AUC", "MIA TPR @ fpr=0.01", "class leakage")


def _section(md: str, task: str) -> str:
    start = md.index(f"## {task} v1")
    nxt = md.find("\n## ", start + 1)
    return md[start : nxt if nxt >= 0 else None]


def test_markdown_table_has_the_measured_columns_only_where_measured(tmp_path):
    md = leaderboard.build(_store(tmp_path), tmp_path / "out")[0].read_text()
    digits, dvs = _section(md, "digits"), _section(md, "digits-dvs")
    header = next(line for line in digits.splitlines() if line.startswith("| method"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[:2] == ["method", "top-1 %"]
    # training energy beside the inference energy columns' place, privacy after params
    assert [c for c in cells if c in HEADERS] == list(HEADERS)
    for method in ("alpha", "beta"):
        line = next(row for row in digits.splitlines() if row.startswith(f"| {method}"))
        row = dict(zip(cells, (c.strip() for c in line.strip("|").split("|"))))
        assert row["training J (sata-45nm)"] == _expected(method, 1, lambda v: f"{v:.3g}")
        assert row["MIA AUC"] == _expected(method, 2, lambda v: f"{v:.3f}")
        assert row["MIA TPR @ fpr=0.01"] == _expected(method, 3, lambda v: f"{v:.3f}")
        assert row["class leakage"] == _expected(method, 4, lambda v: f"{v:.3f}")
    assert not any(h in dvs for h in HEADERS)


def test_site_table_and_method_page_show_them(tmp_path):
    leaderboard.build(_store(tmp_path), tmp_path / "out")
    site = tmp_path / "out" / "site"
    index = (site / "index.html").read_text()
    for h in HEADERS:
        assert f"<th>{html.escape(h)}</th>" in index
    digits_part = index[index.index('<section id="digits-v1') : index.index('<section id="digits-dvs-v1')]
    dvs_part = index[index.index('<section id="digits-dvs-v1') :]
    assert "MIA AUC" in digits_part and "MIA AUC" not in dvs_part
    # the sortable value of beta's MIA AUC is the mean over its two seeds
    beta_auc = np.mean([MEASURED[("beta", s)][2] for s in (0, 1)])
    values = [float(v) for v in re.findall(r'data-v="([0-9.e+-]+)"', digits_part)]
    assert any(abs(v - beta_auc) < 1e-12 for v in values)
    page = (site / "methods" / "beta.html").read_text()
    assert (
        "training J (sata-45nm)" in page
        and _expected("beta", 1, lambda v: f"{v:.3g}").split(" ± ")[0] in page
    )


def test_without_measured_figures_the_columns_are_the_static_ones(tmp_path):
    store = Store(tmp_path / "s")
    run = runs.make_run(method="solo")
    store.write(run, [_row(run["result_id"], "accuracy", 0.5)])
    md = leaderboard.build(store, tmp_path / "o")[0].read_text()
    assert not any(h in md for h in HEADERS)
    summary = leaderboard.summarize(store.read())
    assert [c.key for c in leaderboard.columns(summary)] == [c.key for c in leaderboard.COLUMNS]


def test_cite_table_carries_the_measured_figures(tmp_path):
    from snnbench.cite import cite_table

    store = _store(tmp_path)
    text = cite_table([(store.path, "yours")], "digits")
    entry = text[text.index("alpha on snnbench task digits") :]
    entry = entry[: entry.index("\n}")]
    three = lambda v: f"{v:.3f}"  # noqa: E731
    assert f"MIA AUC {_expected('alpha', 2, three).replace('±', '+/-')}" in entry
    assert "training J (sata-45nm)" in entry and "class leakage" in entry
    other = cite_table([(store.path, "yours")], "digits-dvs")
    assert "MIA AUC" not in other and "training J" not in other


def test_robustness_shows_only_its_worst_case_headline(tmp_path):
    store = Store(tmp_path / "store")
    worst = "worst case eps=0.1 over fgsm,pgd,apgd-ce x surrogates own,rectangular"
    for seed, (pgd, low) in enumerate([(0.75, 0.45), (0.77, 0.55)]):
        run = runs.make_run(method="alpha", seed=seed, submission_sha256="a" * 64)
        rid = run["result_id"]
        store.write(
            run,
            [
                _row(rid, "accuracy", 0.99),
                _row(rid, "robust_accuracy", pgd, condition="pgd eps=0.1 steps=10 step=0.025"),
                _row(rid, "robust_accuracy", low, condition=worst),
            ],
        )
    view = leaderboard.read_views([(store.path, "yours")])
    summary = leaderboard.summarize(view)
    headers = [c.header for c in leaderboard.columns(summary)]
    assert "robust acc @ worst eps=0.1" in headers
    assert not any("pgd" in h for h in headers)
    assert len(summary) == 1
    assert summary["robust_accuracy[worst eps=0.1]_mean"].iloc[0] == np.mean([0.45, 0.55])


def test_the_table_keeps_rmia_at_the_lowest_fpr_and_the_horowitz_training_card(tmp_path):
    store = Store(tmp_path / "store")
    run = runs.make_run(method="alpha", seed=0, submission_sha256="a" * 64)
    rid = run["result_id"]
    rows = [_row(rid, "accuracy", 0.9)]
    for attack, auc in (("loss", 0.61), ("lira", 0.66), ("rmia", 0.69)):
        rows.append(_row(rid, "mia_auc", auc, condition=f"attack={attack}"))
        rows.append(_row(rid, "mia_tpr_at_fpr", auc / 10, condition=f"attack={attack} fpr=0.01"))
        rows.append(_row(rid, "mia_tpr_at_fpr", auc / 5, condition=f"attack={attack} fpr=0.05"))
    rows.append(_row(rid, "training_energy_j", 0.4, "joule", "sata-bptt/horowitz45nm-fp32"))
    rows.append(_row(rid, "training_energy_j", 0.03, "joule", "sata-bptt/satasim-16b"))
    store.write(run, rows)
    local = runs.make_run(method="beta", seed=0, submission_sha256="b" * 64)  # STDP-trained: same column
    store.write(
        local,
        [
            _row(local["result_id"], "accuracy", 0.8),
            _row(local["result_id"], "training_energy_j", 0.01, "joule", "sata-bptt+stdp/horowitz45nm-fp32"),
        ],
    )
    summary = leaderboard.summarize(leaderboard.read_views([(store.path, "yours")]))
    headers = [c.header for c in leaderboard.columns(summary)]
    assert [h for h in headers if h.startswith("MIA")] == ["MIA AUC (rmia)", "MIA TPR @ rmia fpr=0.01"]
    alpha = summary[summary["method"] == "alpha"]
    assert alpha["mia_auc[rmia]_mean"].iloc[0] == 0.69
    assert [h for h in headers if h.startswith("training J")] == ["training J (horowitz45nm-fp32)"]
    by_method = dict(zip(summary["method"], summary["training_energy_j[horowitz45nm-fp32]_mean"]))
    assert by_method == {"alpha": 0.4, "beta": 0.01}
