"""The SATA-style training-energy model, its probe during training, and the row evaluate stores."""

from __future__ import annotations

import copy
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


# ---------------------------------------------------------------------- modules trained besides the model


def _ann() -> nn.Module:
    """Linear(4->3) -> ReLU -> Linear(3->2): the two-layer network's shapes as an ANN."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))


def _train_ann_passes(net: nn.Module, passes: int, batch: int) -> None:
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    for _ in range(passes):
        loss = net(torch.rand(batch, 4)).square().sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def _ann_hand_pj(card, batch: float, input_grad: bool = False, weight_grad: bool = True) -> float:
    """pJ per sample of the 4-3-2 ANN by hand: every op a MAC, all words dense, batch `batch`."""
    mac, glb, dram = card.mac_pj, card.glb_pj, card.dram_pj
    g, u = float(input_grad), float(weight_grad)
    # layer 1 (12 ops, 12 weights, 4 in, 3 out): the network input needs a gradient only if asked
    l1 = 12 * mac + g * 12 * mac + u * 12 * mac
    l1 += (4 + 3 + 12 / batch) * glb + (3 + g * (4 + 12 / batch)) * glb + u * (4 + 3 + 24 / batch) * glb
    l1 += (2 + 2 * u) * 12 / batch * dram
    # layer 2 (6 ops, 6 weights, 3 in, 2 out): its input (the ReLU's output) always needs one
    l2 = 6 * mac + 6 * mac + u * 6 * mac
    l2 += (3 + 2 + 6 / batch) * glb + (2 + 3 + 6 / batch) * glb + u * (3 + 2 + 12 / batch) * glb
    l2 += (2 + 2 * u) * 6 / batch * dram
    relu = 3 * card.relu_fwd_pj + 3 * card.relu_bwd_pj + 2 * 3 * dram
    return l1 + l2 + relu


def test_a_tracked_ann_is_priced_by_ann_mode_from_its_own_counts():
    probe = te.TrainingProbe(timesteps=4)  # the model's T; an ANN part runs at T = 1
    model = _two_layer()
    probe.attach(model)
    net = _ann()
    handle = probe.track(net, "ann", name="ann")
    _train_ann_passes(net, passes=3, batch=2)
    with torch.no_grad():  # an evaluation pass: not training
        net(torch.rand(5, 4))
    copied = copy.deepcopy(net)  # e.g. a conversion's copy: its passes are not the tracked module's
    _train_ann_passes(copied, passes=2, batch=2)
    handle.stop()
    _train_ann_passes(net, passes=1, batch=2)  # after stop(): not counted
    probe.detach()
    rec = json.loads(json.dumps(probe.record()))
    assert rec["samples"] == 0 and rec["forward_passes"] == 0  # the model never ran
    (part,) = rec["parts"]
    assert (part["name"], part["kind"], part["timesteps"]) == ("ann", "ann", 1)
    assert part["samples"] == 6 and part["forward_passes"] == 3
    assert [n["name"] for n in part["neurons"]] == ["1"]  # the ReLU is the ANN's activation
    ((name, kind, work),) = te.parts_from_record(rec)
    assert (name, kind) == ("ann", "ann")
    assert te.energy_per_sample_pj(work, CARD, "ann") == pytest.approx(_ann_hand_pj(CARD, 2), rel=1e-12)
    rows = te.training_energy_rows({"training_activity": rec})
    for row in rows:
        card = te.TRAINING_ENERGY_MODELS[row.condition.split("/", 1)[1]]
        assert row.condition.startswith("sata-bptt/") and row.n == 6
        assert row.value == pytest.approx(6 * _ann_hand_pj(card, 2) / 1e12, rel=1e-12)
    assert len(rows) == len(te.TRAINING_ENERGY_MODELS)


def test_an_inversion_through_a_frozen_ann_prices_no_weight_gradient():
    probe = te.TrainingProbe(timesteps=1)
    net = _ann().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    with probe.track(net, "ann", name="inversion"):
        u = torch.rand(4, 4, requires_grad=True)  # 4 images optimised through the frozen ANN
        for _ in range(2):
            net(u).sum().backward()
    rec = probe.record()
    assert rec["parts"][0]["samples"] == 8 and rec["parts"][0]["layers"][0]["wgrad_in_numel"] == 0
    ((_, _, work),) = te.parts_from_record(rec)
    hand = _ann_hand_pj(CARD, 4, input_grad=True, weight_grad=False)
    assert te.energy_per_sample_pj(work, CARD, "ann") == pytest.approx(hand, rel=1e-12)


def test_tracked_parts_add_and_leave_the_model_counts_unchanged():
    alone = _probe_two_layer()
    probe = te.TrainingProbe(timesteps=2)
    net = _two_layer().train()
    probe.attach(net)
    inner = probe.track(net[2], "snn", name="readout")  # a submodule: counted by the model's passes
    x = torch.tensor([[[1.0, 0, 0, 1]], [[0.0, 0, 0, 0]]], requires_grad=True)
    (net(x) * torch.tensor([1.0, -2.0])).sum().backward()
    ann = _ann()
    probe.track(ann, "ann", name="ann")
    _train_ann_passes(ann, passes=2, batch=3)
    probe.detach()
    inner.stop()
    rec = json.loads(json.dumps(probe.record()))
    assert {k: v for k, v in rec.items() if k not in ("version", "parts")} == {
        k: v for k, v in alone.items() if k not in ("version", "parts")
    }
    assert alone["parts"] == [] and [p["samples"] for p in rec["parts"]] == [0, 6]
    model = te.workload_from_record(rec)
    assert [(n, k) for n, k, _ in te.parts_from_record(rec)] == [("model", "snn"), ("ann", "ann")]
    for row in te.training_energy_rows({"training_activity": rec}):
        card = te.TRAINING_ENERGY_MODELS[row.condition.split("/", 1)[1]]
        want = te.training_energy_j(model, card) + 6 * _ann_hand_pj(card, 3) / 1e12
        assert row.value == pytest.approx(want, rel=1e-12) and row.n == 1 + 6
    # the same record without parts gives exactly the model's figure (and a version-1 record reads)
    old = {k: v for k, v in rec.items() if k != "parts"} | {"version": 1}
    for layer in old["layers"]:
        del layer["wgrad_in_numel"]
    for row in te.training_energy_rows({"training_activity": old}):
        card = te.TRAINING_ENERGY_MODELS[row.condition.split("/", 1)[1]]
        assert row.value == pytest.approx(te.training_energy_j(model, card), rel=1e-12) and row.n == 1


def test_an_stdp_part_is_priced_as_forward_traces_and_declared_updates():
    probe = te.TrainingProbe(timesteps=2)
    net = _two_layer()
    with probe.track(net, "stdp", name="stdp") as handle, torch.no_grad():  # local learning: no graph
        net(torch.tensor([[[1.0, 0, 0, 1]], [[0.0, 0, 0, 0]]]))
        handle.count_updates(5)
    rec = json.loads(json.dumps(probe.record()))
    part = rec["parts"][0]
    assert (part["kind"], part["samples"], part["updates"]) == ("stdp", 1, 5.0)
    ((_, kind, work),) = te.parts_from_record(rec)
    ac, mac, lif, glb, dram = 1.0, 10.0, 100.0, 1e4, 1e5
    trace = mac + 2 * glb
    # layer 1: spikes in at t=1 (2 of 4), none at t=2; 4 inputs traced per step; 3 W from DRAM
    l1 = 12 * 0.5 * ac + 2 * (4 / 4 + 3 + 12) * glb + 2 * 4 * trace + 3 * 12 * dram
    l2 = 6 * (1 / 3) * ac + 2 * (3 / 4 + 2 + 6) * glb + 2 * 3 * trace + 3 * 6 * dram
    neurons = 2 * 3 * (lif + trace)
    updates = 5 * (2 * mac + 3 * glb)
    assert te.energy_per_sample_pj(work, CARD, kind) == pytest.approx(l1 + l2 + neurons + updates, rel=1e-12)
    rows = te.training_energy_rows({"training_activity": rec})
    assert {r.condition for r in rows} == {f"sata-bptt+stdp/{n}" for n in te.TRAINING_ENERGY_MODELS}
    with pytest.raises(ValueError, match="stdp"):
        te.TrackedTraining(te._Part(probe, "x", "ann", 1, "grad")).count_updates(1)


def test_track_training_outside_snnbench_train_is_a_no_op():
    task = get_task("digits")
    data = training.TrainingData(task, [], task.timesteps, 0)
    net = _ann()
    with data.track_training(net, "ann") as handle:
        _train_ann_passes(net, passes=1, batch=2)
        handle.count_updates(3)
    with pytest.raises(ValueError, match="kind must be one of"):
        data.track_training(net, "cnn")


TRACKED_ANN = """
import torch
from torch import nn

TASKS = ("digits",)


class Readout(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(2))


def build(task):
    return Readout()


def train(model, task, data, budget):
    ann = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    data.track_training(ann, "ann")
    optimiser = torch.optim.Adam(ann.parameters(), lr=1e-2)
    for x, y in data.loader(budget.batch_size):
        loss = nn.functional.cross_entropy(ann(x.mean(0).flatten(1)), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        model.fc.weight.copy_(ann[2].weight @ ann[0].weight)
    return model
"""


def test_a_submission_that_trains_another_module_stores_its_training_energy(
    two_batches, tmp_path, write_submission
):
    task, ref = get_task("digits"), resolve(write_submission(TRACKED_ANN))
    result = training.train(task, ref, epochs=1, out=tmp_path / "ck.pt", progress=False)
    rec = result.record["training_activity"]
    assert rec["samples"] == 0 and rec["parts"][0]["samples"] == 128  # two batches of 64
    store = Store(tmp_path / "store")
    assert (
        evaluate(task, ref, store, checkpoint=str(result.checkpoint), limit=8, progress=False).run["status"]
        == "ok"
    )
    stored = store.read_metrics()
    rows = stored[stored.metric == "training_energy_j"]
    assert len(rows) == len(te.TRAINING_ENERGY_MODELS) and set(rows.n) == {128}
    for condition, value in zip(rows.condition, rows.value):
        card = te.TRAINING_ENERGY_MODELS[condition.removeprefix("sata-bptt/")]
        mac, glb, dram, b = card.mac_pj, card.glb_pj, card.dram_pj, 64
        # ANN mode by hand: 64 -> 16 (input needs no gradient) -> ReLU -> 10, every op a MAC
        l1 = 2 * 1024 * mac + (64 + 16 + 1024 / b) * glb + 16 * glb + (64 + 16 + 2048 / b) * glb
        l2 = 3 * 160 * mac + (16 + 10 + 160 / b) * glb + (10 + 16 + 160 / b) * glb + (16 + 10 + 320 / b) * glb
        dram_w = 4 * (1024 + 160) / b * dram
        relu = 16 * (card.relu_fwd_pj + card.relu_bwd_pj) + 2 * 16 * dram
        assert value == pytest.approx(128 * (l1 + l2 + dram_w + relu) / 1e12, rel=1e-12)
