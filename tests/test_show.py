"""`snnbench show RESULT_ID`: provenance, headline figures and the per-layer table of a stored run."""

from __future__ import annotations

import pytest

from snnbench.cli import main
from snnbench.store import Store

# A tiny spiking submission whose neurons do fire untrained: weights scaled up so the LIF layer spikes.
TINY_SNN = """
import torch
from torch import nn
from snnbench.neurons import LIF, MultiStep

def build(task):
    features = 1
    for s in task.input_shape:
        features *= s
    fc = nn.Linear(features, 16)
    with torch.no_grad():
        fc.weight.mul_(8.0)
    return nn.Sequential(MultiStep(nn.Flatten()), MultiStep(fc), LIF(tau=2.0), MultiStep(nn.Linear(16, task.outputs)))
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One real evaluation (16 samples) in a store of its own: (store path, run, metrics)."""
    root = tmp_path_factory.mktemp("show")
    sub = root / "tiny_snn.py"
    sub.write_text(TINY_SNN)
    store = root / "store"
    mp = pytest.MonkeyPatch()
    mp.setenv("SNNBENCH_STORE", str(store))
    try:
        assert main(["evaluate", "--task", "digits", "--model", str(sub), "--limit", "16", "--quiet"]) == 0
    finally:
        mp.undo()
    s = Store(store)
    (rid,) = s.result_ids()
    return store, s.read_run(rid), s.read_metrics(result_ids=[rid])


def test_show_prints_provenance_headline_and_layers(stored, capsys):
    store, run, metrics = stored
    capsys.readouterr()
    assert main(["show", run["result_id"][:8], "--store", str(store)]) == 0
    out = capsys.readouterr().out
    for text in (
        run["result_id"],
        "digits v1",
        f"spec {run['spec_hash']}",
        "tiny_snn",
        run["submission_sha256"],
        f"snnbench {run['snnbench_version']}, metrics v{run['metrics_version']}",
        run["git_commit"] or "-",
        "no (--limit 16; evaluated without a checkpoint (untrained))",
        "accuracy, activity, energy, footprint, latency",
        "train recipe",
        "headline figures",
        "SynOps / sample",
    ):
        assert text in out, text
    lines = dict(
        line.split(None, 1)
        for line in out.split("\n\n", 1)[0].replace("checkpoint sha256", "checkpoint").splitlines()
    )
    assert lines["checkpoint"].strip() == "-"
    # the per-layer table holds exactly the stored per-layer rows, one line per layer
    table = out.split("per layer (mean per sample)\n", 1)[1].splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["layer", "spikes", "firing rate", "SynOps", "MACs", "dense ops", "neuron updates"]
    body = {}
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        body[cells[0]] = dict(zip(header[1:], cells[1:]))
    layered = metrics[metrics["layer"].notna() & metrics["timestep"].isna()]
    assert set(body) == set(layered["layer"])
    spikes = layered[layered.metric == "spikes_per_sample"]
    assert len(spikes) == 1 and spikes.iloc[0].value > 0  # the neurons fired: the table is not all zeros
    column = {
        "spikes_per_sample": "spikes",
        "synops_per_sample": "SynOps",
        "macs_per_sample": "MACs",
        "dense_ops_per_sample": "dense ops",
        "neuron_updates_per_sample": "neuron updates",
    }
    for r in layered.itertuples(index=False):
        if r.metric in column:
            assert float(body[r.layer][column[r.metric]]) == pytest.approx(r.value, rel=1e-5)
        elif r.metric == "firing_rate":
            assert float(body[r.layer]["firing rate"]) == pytest.approx(r.value, abs=1e-4)


def test_show_unknown_id_is_one_line_exit_2(stored, capsys):
    store, _run, _metrics = stored
    assert main(["show", "ffffffffffff", "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no result 'ffffffffffff'" in err


def test_show_falls_back_to_the_committed_store(stored, capsys, tmp_path, monkeypatch):
    store, run, _metrics = stored
    monkeypatch.setattr("snnbench.store.COMMITTED_STORE", store)
    assert main(["show", run["result_id"], "--store", str(tmp_path / "empty")]) == 0
    assert run["result_id"] in capsys.readouterr().out
