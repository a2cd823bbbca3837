"""The SATA-style training-energy model, its probe during training, and the row evaluate stores."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from snnbench import training
from snnbench.evaluate import evaluate
from snnbench.metrics import training_energy as te
from snnbench.neurons import IF
from snnbench.store import Store
from snnbench.submission import resolve
from snnbench.tasks import get_task
from tests.conftest import REPO

# Round, distinct prices so that a term priced by the wrong constant changes the total.
CARD = te.TrainingEnergyModel(
    "test",
    word_bits=4,
    ac_pj=1.0,
    mac_pj=10.0,
    lif_pj=100.0,
    pgu_pj=1000.0,
    relu_fwd_pj=3.0,
    relu_bwd_pj=7.0,
    glb_pj=1e4,
    dram_pj=1e5,
)


def _two_layer() -> nn.Module:
    """Linear(4->3) -> IF -> Linear(3->2) with weights chosen so every count is known by hand:
    hidden neuron 0 fires at t=1 only, 1 and 2 never; hidden neuron 1 gets no gradient (W2[:, 1] = 0)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3, bias=False), IF(), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[2.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0.5]]))
        net[2].weight.copy_(torch.tensor([[1.0, 0, 1.0], [-1.0, 0, 2.0]]))
    return net


def _probe_two_layer() -> dict:
    net = _two_layer().train()
    probe = te.TrainingProbe(timesteps=2)
    probe.attach(net)
    x = torch.tensor([[[1.0, 0, 0, 1]], [[0.0, 0, 0, 0]]], requires_grad=True)  # [T=2, B=1, 4]
    out = net(x)
    (out * torch.tensor([1.0, -2.0])).sum().backward()
    probe.detach()
    return probe.record()


def test_probe_counts_the_two_layer_network_by_hand():
    rec = json.loads(json.dumps(_probe_two_layer()))  # what the training record holds
    assert rec["samples"] == 1 and rec["forward_passes"] == 1 and rec["timesteps"] == 2
    first, second = rec["layers"]
    assert (first["name"], second["name"]) == ("0", "2")
    assert first["in_nnz"] == [2, 0] and first["in_count"] == [4, 4]
    assert first["dense_ops"] == 2 * 3 * 4 and first["weights"] == 12
    assert first["grad_nnz"] == [2, 2] and first["grad_count"] == [3, 3]  # hidden neuron 1: no gradient
    assert first["binary_nnz"] == 2 and first["in_grad_numel"] == 8
    assert second["in_nnz"] == [1, 0] and second["in_count"] == [3, 3]  # the spike of hidden neuron 0
    assert second["grad_nnz"] == [2, 2] and second["dense_ops"] == 2 * 2 * 3
    (neuron,) = rec["neurons"]
    assert neuron["spikes"] == [1, 0] and neuron["out_numel"] == 6


def test_energy_equals_a_hand_count_on_a_two_layer_network():
    work = te.workload_from_record(_probe_two_layer())
    ac, mac, lif, pgu, glb, dram = 1.0, 10.0, 100.0, 1000.0, 1e4, 1e5
    # layer 1: 12 dense ops per step, input density 1/2 then 0, gradient density 2/3, input needs grad
    l1 = 12 * 0.5 * ac + 12 * (2 / 3) * 2 * mac + 12 * 0.5 * ac
    l1 += 2 * (4 / 4 + 3 + 12) * glb  # forward: packed input spikes, outputs, weights (batch 1)
    l1 += 2 * (3 + 4 + 12) * glb  # backward: gradient in, gradient out, weights
    l1 += 2 * (4 / 4 + 3 + 2 * 12) * glb  # weight gradient: inputs, gradient, accumulator r/w
    l1 += 4 * 12 * dram
    # layer 2: 6 dense ops per step, input density 1/3 then 0, dense gradient
    l2 = 6 * (1 / 3) * ac + 6 * 1.0 * 2 * mac + 6 * (1 / 3) * ac
    l2 += 2 * (3 / 4 + 2 + 6) * glb + 2 * (2 + 3 + 6) * glb + 2 * (3 / 4 + 2 + 2 * 6) * glb
    l2 += 4 * 6 * dram
    # 3 neurons x 2 steps: update, gradient update, potential (word) + spike (bit) stored and read
    neurons = 6 * lif + 6 * pgu + 2 * 6 * (1 + 1 / 4) * dram
    hand = l1 + l2 + neurons
    assert te.energy_per_sample_pj(work, CARD) == pytest.approx(hand, rel=1e-12)
    assert te.training_energy_j(work, CARD) == pytest.approx(hand / 1e12, rel=1e-12)


def test_ann_mode_is_the_dense_mac_count_of_the_same_shapes():
    work = te.workload_from_record(_probe_two_layer())
    mac, glb, dram = 10.0, 1e4, 1e5
    hand = 3 * 12 * mac + (4 + 3 + 12) * glb + (3 + 4 + 12) * glb + (4 + 3 + 24) * glb + 48 * dram
    hand += 3 * 6 * mac + (3 + 2 + 6) * glb + (2 + 3 + 6) * glb + (3 + 2 + 12) * glb + 24 * dram
    hand += 3 * 3.0 + 3 * 7.0 + 2 * 3 * dram  # ReLU forward, backward; one activation stored and read
    assert te.energy_per_sample_pj(work, CARD, "ann") == pytest.approx(hand, rel=1e-12)
    # ANN mode reads only the shapes: neither T nor the measured sparsity changes it
    longer = _work(timesteps=8, density=0.1)
    assert te.energy_per_sample_pj(longer, CARD, "ann") == pytest.approx(
        te.energy_per_sample_pj(_work(timesteps=2, density=1.0), CARD, "ann"), rel=1e-12
    )
    with pytest.raises(ValueError, match="mode must be 'snn' or 'ann'"):
        te.breakdown(work, CARD, "cnn")


def _work(timesteps: int, density: float, grad: float = 1.0) -> te.Workload:
    layers = (
        te.SynapseLayer(
            "conv", 64, 1024, 9216, 144, (density,), (grad,), binary_input=0.0, needs_input_grad=0
        ),
        te.SynapseLayer("fc", 512, 10, 5120, 5120, (density,), (grad,)),
    )
    return te.Workload(timesteps, 1000, 50, layers, (te.NeuronLayer("lif", 1024),))


@pytest.mark.parametrize("card", list(te.TRAINING_ENERGY_MODELS.values()), ids=lambda c: c.name)
def test_energy_is_linear_in_t_for_a_fixed_network_and_sparsity(card):
    e = {t: te.energy_per_sample_pj(_work(t, 0.3, 0.6), card) for t in (1, 2, 4, 8)}
    step = e[2] - e[1]
    assert step > 0
    for t in (2, 4, 8):
        assert e[t] == pytest.approx(e[1] + (t - 1) * step, rel=1e-12)
    # what does not grow with T is exactly the per-optimiser-step weight traffic
    fixed = sum(pj for _, ts, _, pj in te.breakdown(_work(4, 0.3, 0.6), card) if ts is None)
    assert e[1] - step == pytest.approx(fixed, rel=1e-9)


@pytest.mark.parametrize("card", list(te.TRAINING_ENERGY_MODELS.values()), ids=lambda c: c.name)
def test_sparse_costs_less_than_dense(card):
    sparse, dense = _work(4, 0.1, 0.2), _work(4, 1.0, 1.0)
    assert te.energy_per_sample_pj(sparse, card) < te.energy_per_sample_pj(dense, card)
    s, d = _synapse_phases(sparse, card), _synapse_phases(dense, card)
    assert s["forward_compute"] == pytest.approx(0.1 * d["forward_compute"], rel=1e-12)
    assert s["weight_grad_compute"] == pytest.approx(0.1 * d["weight_grad_compute"], rel=1e-12)
    assert s["backward_compute"] == pytest.approx(0.2 * d["backward_compute"], rel=1e-12)
    # the neurons' updates and stored state do not depend on the synapses' sparsity
    assert sum(s.values()) < sum(d.values())


def _synapse_phases(work: te.Workload, card: te.TrainingEnergyModel) -> dict[str, float]:
    out: dict[str, float] = {}
    for layer, _, phase, pj in te.breakdown(work, card):
        if layer != "lif":
            out[phase] = out.get(phase, 0.0) + pj
    return out


@pytest.fixture
def two_batches(monkeypatch):
    """Training on the first two batches of every epoch: the recipe runs for real, just briefly."""
    original = training.TrainingData.loader

    def short(self, batch_size=64, shuffle=True):
        return itertools.islice(original(self, batch_size, shuffle), 2)

    monkeypatch.setattr(training.TrainingData, "loader", short)


def test_training_record_carries_the_sparsities(two_batches, tmp_path):
    task, ref = get_task("digits"), resolve(REPO / "submissions" / "template.py")
    result = training.train(task, ref, epochs=1, out=tmp_path / "ck.pt", progress=False)
    rec = json.loads(training.record_path(result.checkpoint).read_text())["training_activity"]
    assert rec["samples"] == 128 and rec["forward_passes"] == 2 and rec["timesteps"] == task.timesteps
    assert [layer["name"] for layer in rec["layers"]] == ["0.module", "4.module", "9.module"]
    assert [n["name"] for n in rec["neurons"]] == ["2", "6"]
    # the first layer's input density, counted independently from the same two encoded batches
    data = training.TrainingData(task, training.load_split(task, "train", None, task.timesteps).dataset, 4, 0)
    xs = [x for x, _ in itertools.islice(data.loader(64), 2)]
    nnz = [sum(int(torch.count_nonzero(x[t])) for x in xs) for t in range(4)]
    assert rec["layers"][0]["in_nnz"] == nnz
    assert rec["layers"][0]["in_count"] == [128 * 64] * 4
    for d in te.densities(rec).values():
        assert all(0.0 < v <= 1.0 for v in d.values())
    assert te.has_data(json.loads(training.record_path(result.checkpoint).read_text()))


def test_probing_changes_neither_the_training_nor_the_checkpoint(two_batches, tmp_path):
    task, ref = get_task("digits"), resolve(REPO / "submissions" / "template.py")
    on = training.train(task, ref, epochs=1, out=tmp_path / "a.pt", progress=False)
    off = training.train(task, ref, epochs=1, out=tmp_path / "b.pt", progress=False, measure_training=False)
    assert on.sha256 == off.sha256
    assert "training_activity" in on.record and "training_activity" not in off.record


def test_evaluate_stores_the_training_energy_row(two_batches, tmp_path):
    task, ref = get_task("digits"), resolve(REPO / "submissions" / "template.py")
    result = training.train(task, ref, epochs=1, out=tmp_path / "ck.pt", progress=False)
    store = Store(tmp_path / "store")
    outcome = evaluate(task, ref, store, checkpoint=str(result.checkpoint), limit=8, progress=False)
    assert outcome.run["status"] == "ok"
    work = te.workload_from_record(result.record["training_activity"])
    want = {f"sata-bptt/{n}": te.training_energy_j(work, c) for n, c in te.TRAINING_ENERGY_MODELS.items()}
    stored = store.read_metrics()
    rows = stored[stored.metric == "training_energy_j"]
    assert dict(zip(rows.condition, rows.value)) == pytest.approx(want, rel=1e-9)
    assert set(rows.unit) == {"joule"} and set(rows.n) == {128}
    assert store.read_runs().train_wall_time_s.iloc[0] == pytest.approx(result.record["train_wall_time_s"])

    # a record written before the probe existed (or by measure_training=False) gives no row
    old = dict(result.record)
    del old["training_activity"]
    assert te.training_energy_rows(old) == [] and te.training_energy_rows(None) == []
    with pytest.warns(UserWarning, match="not readable"):
        assert te.training_energy_rows({"training_activity": {**work_record(result), "version": 99}}) == []


def work_record(result) -> dict:
    return dict(result.record["training_activity"])


def test_compare_reports_snn_and_ann_per_card(tmp_path, capsys):
    record = {"training_activity": _probe_two_layer()}
    work = te.workload_from_record(record["training_activity"])
    got = te.compare(record)
    for name, card in te.TRAINING_ENERGY_MODELS.items():
        row = got[f"sata-bptt/{name}"]
        assert row["snn_j"] == te.training_energy_j(work, card)
        assert row["ann_j"] == te.training_energy_j(work, card, "ann")
        assert row["snn_over_ann"] == pytest.approx(row["snn_j"] / row["ann_j"])
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"")
    training.record_path(ck).write_text(json.dumps({"recipe": "old"}))
    assert te.main([str(ck)]) == 2
    assert "no training_activity" in capsys.readouterr().out
    training.record_path(ck).write_text(json.dumps(record))
    assert te.main([str(ck)]) == 0
    printed = json.loads(capsys.readouterr().out)["energy"]
    assert printed.keys() == got.keys()
    for key, row in got.items():
        assert printed[key] == pytest.approx(row, rel=1e-12)
