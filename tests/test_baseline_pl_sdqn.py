"""pl_sdqn (spiking DQN with pbLN) and the random-policy reference: mechanism, variants, a few DQN
steps, harness runs. Never trains for real."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from snnbench import rl
from snnbench.cli import main
from snnbench.neurons import LIF, BaseNeuron, Integrator
from snnbench.submission import declares_no_training, load_module, resolve, static_constant
from snnbench.tasks import get_task
from snnbench.training import Budget

REPO = Path(__file__).resolve().parent.parent
PL = REPO / "baselines" / "pl_sdqn"
SUBMISSION = PL / "submission.py"
NONE = PL / "pl_sdqn_none.py"
ANN = PL / "pl_sdqn_ann.py"
RANDOM = REPO / "baselines" / "random_policy" / "submission.py"


def load(path: Path):
    return load_module(resolve(path))


def charges_and_inputs(model: nn.Module, x: torch.Tensor):
    """(output of each hidden Linear, input of each hidden LIF) for one forward."""
    # the MultiStep wrappers of the hidden Linears: their outputs are [T, B, H]
    linears = [m for m in model.body if isinstance(getattr(m, "module", None), nn.Linear)][:3]
    neurons = [m for m in model.body if isinstance(m, LIF)]
    z, u = [], []
    hooks = [lin.register_forward_hook(lambda _m, _i, out: z.append(out.detach().clone())) for lin in linears]
    hooks += [n.register_forward_pre_hook(lambda _m, inp: u.append(inp[0].detach().clone())) for n in neurons]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return z, u


def numpy_layer_norm(z: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Independent pbLN: per timestep and sample, over the last (feature) axis."""
    out = np.empty_like(z)
    for t in range(z.shape[0]):
        for b in range(z.shape[1]):
            v = z[t, b].astype(np.float64)
            out[t, b] = (v - v.mean()) / math.sqrt(v.var() + eps) * weight + bias
    return out


def test_pbln_normalises_the_charge_over_features_per_timestep():
    task = get_task("cartpole")
    torch.manual_seed(0)
    model = load(SUBMISSION).build(task)
    assert model.norm == "pbln"
    # very different scales per step: one LayerNorm over all steps (or over the batch) would fail
    x = torch.randn(4, 5, 4) * torch.tensor([0.01, 1.0, 30.0, 500.0])[:, None, None]
    z, u = charges_and_inputs(model, x)
    assert len(z) == len(u) == 3
    for zi, ui in zip(z, u, strict=True):
        # affine starts at gamma = theta - v_reset = 1, beta = v_reset = 0: zero mean, unit variance
        assert ui.mean(-1).abs().max() < 1e-5
        # unit variance up to LayerNorm's eps: var(z) / (var(z) + 1e-5) per step and sample
        var_z = zi.double().var(-1, unbiased=False)
        torch.testing.assert_close(
            ui.double().var(-1, unbiased=False), var_z / (var_z + 1e-5), atol=1e-4, rtol=0
        )
        np.testing.assert_allclose(
            ui.numpy(), numpy_layer_norm(zi.numpy(), np.ones(zi.shape[-1]), np.zeros(zi.shape[-1])), atol=1e-5
        )
    # with a trained-looking affine the LIF sees gamma * LN(z) + beta
    norms = [m for m in model.body if type(m).__name__ == "PotentialLayerNorm"]
    assert len(norms) == 3
    with torch.no_grad():
        for n in norms:
            n.norm.weight.uniform_(0.5, 2.0)
            n.norm.bias.uniform_(-0.5, 0.5)
    z, u = charges_and_inputs(model, x)
    for zi, ui, n in zip(z, u, norms, strict=True):
        np.testing.assert_allclose(
            ui.numpy(),
            numpy_layer_norm(zi.numpy(), n.norm.weight.detach().numpy(), n.norm.bias.detach().numpy()),
            atol=1e-5,
        )


def test_ablation_feeds_the_raw_charge_and_keeps_the_same_weights():
    task = get_task("cartpole")
    torch.manual_seed(1)
    with_norm = load(SUBMISSION).build(task)
    torch.manual_seed(1)
    without = load(NONE).build(task)
    assert without.norm == "none"
    assert not any(type(m).__name__ == "PotentialLayerNorm" for m in without.modules())
    # same linear weights for the same seed: the variants differ only in the normalisation
    lin_a = [p for n, p in with_norm.named_parameters() if ".module." in n]
    lin_b = [p for n, p in without.named_parameters() if ".module." in n]
    assert len(lin_a) == len(lin_b) == 8 and all(torch.equal(a, b) for a, b in zip(lin_a, lin_b, strict=True))
    z, u = charges_and_inputs(without, torch.randn(4, 3, 4))
    assert all(torch.equal(zi, ui) for zi, ui in zip(z, u, strict=True))


def test_output_integrators_never_spike_and_their_time_mean_is_q():
    task = get_task("cartpole")
    torch.manual_seed(2)
    model = load(SUBMISSION).build(task)
    assert isinstance(model.readout, Integrator) and not isinstance(model.readout, BaseNeuron)
    last_linear = model.body[-1]  # MultiStep(Linear(H, A)): its output [T, B, A] drives the integrators
    assert isinstance(last_linear.module, nn.Linear) and last_linear.module.out_features == task.actions
    spiking = [m for m in model.modules() if isinstance(m, BaseNeuron)]
    assert len(spiking) == 3 and all(isinstance(m, LIF) for m in spiking)  # hidden layers only
    x = torch.randn(4, 6, 4)
    drive = []
    h = last_linear.register_forward_hook(lambda _m, _i, out: drive.append(out.detach().clone()))
    with torch.no_grad():
        out = model(x)
    h.remove()
    assert out.shape == (4, 6, task.actions)
    # independent leaky integrator, tau = 2, from rest: v_t = v_{t-1} + (W s_t + b - v_{t-1}) / 2
    v = np.zeros((6, task.actions))
    membrane = []
    for t in range(4):
        v = v + (drive[0][t].numpy() - v) / 2.0
        membrane.append(v.copy())
    np.testing.assert_allclose(out.numpy(), np.stack(membrane), atol=1e-6)
    # the output is a membrane, not spikes: continuous values, not 0/1
    assert not torch.all((out == 0) | (out == 1))
    q = rl.q_values(out, 6, task.actions)
    np.testing.assert_allclose(q.numpy(), np.stack(membrane).mean(0), atol=1e-6)


def test_hidden_layers_fire_with_pbln_and_fade_without():
    """The mechanism's point, at initialisation: without pbLN the deep layers of a CartPole net
    barely fire; with pbLN every layer keeps a share of its neurons firing."""
    task = get_task("cartpole")
    x = (torch.randn(256, 4) * torch.tensor([0.5, 0.5, 0.05, 0.5]))[None].expand(4, 256, 4)
    rates = {}
    for name, path in (("pbln", SUBMISSION), ("none", NONE)):
        torch.manual_seed(3)
        model = load(path).build(task)
        with torch.no_grad():
            h = model.body[1](model.body[0](x))  # the 1st hidden Linear's charge
            seen = []
            for layer in model.body[2:-1]:  # [pbLN,] LIF, Linear, ... up to the last hidden LIF
                h = layer(h)
                if isinstance(layer, LIF):
                    seen.append(float(h.mean()))
        rates[name] = seen
    assert min(rates["pbln"]) > 0.01
    assert rates["none"][-1] < 0.01 < rates["pbln"][-1]


def test_variants_build_with_their_own_names_and_shapes():
    task = get_task("cartpole")
    assert [resolve(p).method for p in (SUBMISSION, NONE, ANN)] == ["pl_sdqn", "pl_sdqn_none", "pl_sdqn_ann"]
    assert [static_constant(p, "VARIANT") for p in (SUBMISSION, NONE, ANN)] == ["pbln", "none", "ann"]
    assert "Sun" in static_constant(SUBMISSION, "CITATION")
    assert isinstance(static_constant(SUBMISSION, "REPORTED"), dict)
    x = torch.randn(task.timesteps, 7, 4)
    for path, shape in ((SUBMISSION, (4, 7, 2)), (NONE, (4, 7, 2)), (ANN, (7, 2))):
        torch.manual_seed(0)
        model = load(path).build(task)
        with torch.no_grad():
            assert tuple(model(x).shape) == shape
        assert rl.q_values(model(x), 7, 2).shape == (7, 2)
    ann = load(ANN).build(task)
    assert not any(isinstance(m, BaseNeuron) for m in ann.modules())
    assert sum(isinstance(m, nn.ReLU) for m in ann.modules()) == 3
    with pytest.raises(ValueError, match="unknown variant"):
        load(SUBMISSION).build_variant(task, "batchnorm")


def tiny_task():
    task = get_task("cartpole")
    return dataclasses.replace(
        task,
        train={
            **task.train,
            "steps_per_epoch": 80,
            "learning_starts": 40,
            "eps_decay_steps": 40,
            "target_update": 20,
            "validate_episodes": 1,
        },
    )


@pytest.mark.parametrize("path", [SUBMISSION, NONE, ANN], ids=["pbln", "none", "ann"])
def test_a_few_dqn_steps_update_the_network(path):
    task = tiny_task()
    module = load(path)
    torch.manual_seed(0)  # what the harness does before build(); train() reads the seed back
    model = module.build(task)
    before = [p.detach().clone() for p in model.parameters()]
    model = module.train(model, task, None, Budget(epochs=1, lr=1e-3, batch_size=8))
    (entry,) = model.dqn_history  # one epoch of 80 env steps, 40 of them with updates
    assert entry["step"] == 80 and np.isfinite(entry["loss"]) and np.isfinite(entry["validation_return"])
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)]
    assert changed[-1]  # the output bias learns in every variant
    if path != NONE:  # every parameter (pbLN's affine included) received gradient
        assert all(changed)
    else:  # without pbLN the deep layers are silent at init: no gradient reaches their weights
        assert not all(changed)
    assert not model.training


def test_pl_sdqn_train_refuses_classification():
    module = load(SUBMISSION)
    task = get_task("digits")
    with pytest.raises(ValueError, match="DQN"):
        module.train(None, task, None, Budget(epochs=1))


# ----------------------------------------------------------------------------- random policy


def actions_of(model, steps: int, batch: int = 5, t: int = 4, features: tuple = (4,)):
    x = torch.zeros(t, batch, *features)
    return torch.cat([rl.q_values(model(x), batch, model.actions).argmax(1) for _ in range(steps)])


def test_random_policy_returns_float_q_of_the_right_shape():
    task = get_task("atari-pong")
    torch.manual_seed(0)
    model = load(RANDOM).build(task)
    out = model(torch.zeros(4, 3, 4, 84, 84))
    assert out.shape == (4, 3, 6) and out.dtype == torch.float32
    assert torch.equal(out[0], out[3])  # one draw per decision, the same at every step
    assert not torch.equal(out[0, 0], out[0, 1])  # independent per episode
    assert model(torch.zeros(3, 4, 4, 84, 84)).shape == (3, 4, 6)


def test_random_policy_is_reproducible_and_picks_every_action():
    task = get_task("atari-pong")
    module = load(RANDOM)
    assert declares_no_training(resolve(RANDOM))
    torch.manual_seed(0)
    a = module.build(task)
    torch.manual_seed(0)
    b = module.build(task)
    torch.manual_seed(1)
    c = module.build(task)
    first, second, other = actions_of(a, 120), actions_of(b, 120), actions_of(c, 120)
    assert torch.equal(first, second)  # same run seed, same stream
    assert not torch.equal(second, other)  # another run seed, another stream
    counts = torch.bincount(second, minlength=6)
    # 600 uniform draws over 6 actions: 100 each, std 9.1; every action within 4.4 std
    assert counts.min() >= 60 and counts.max() <= 140, counts
    # the stream restarts from the seed buffer after a state_dict load
    d = module.build(task)
    d.load_state_dict(b.state_dict())
    b.reseed()
    assert torch.equal(actions_of(d, 30), actions_of(b, 30))


def test_random_policy_evaluates_through_the_cli_on_cartpole(tmp_path):
    store = tmp_path / "store_random"
    args = ["evaluate", "--task", "cartpole", "--model", str(RANDOM), "--store", str(store), "--quiet"]
    assert main(args + ["--limit", "3"]) == 0
    runs = pd.read_parquet(store / "runs")
    (run,) = runs.itertuples()
    assert run.method == "random_policy" and run.status == "ok" and not run.untrained
    m = pd.read_parquet(store / "metrics")
    ret = float(m[m.metric == "episode_return_mean"].value.iloc[0])
    assert 8 <= ret <= 60  # random CartPole play lasts about 22 steps


def test_pl_sdqn_evaluates_through_the_cli(tmp_path):
    store = tmp_path / "store"
    args = ["evaluate", "--task", "cartpole", "--model", str(SUBMISSION), "--store", str(store), "--quiet"]
    assert main(args + ["--limit", "2"]) == 0
    (run,) = pd.read_parquet(store / "runs").itertuples()
    assert run.method == "pl_sdqn" and run.status == "ok" and run.untrained and not run.reportable
    m = pd.read_parquet(store / "metrics")
    assert float(m[m.metric == "episode_return_mean"].value.iloc[0]) >= 8
    spikes = m[(m.metric == "spikes_per_sample") & m.layer.isna()]
    assert float(spikes.value.iloc[0]) > 0


def test_atari_network_is_the_spiking_nature_dqn_with_pbln_and_folds_the_first_layer():
    """On frame stacks pl_sdqn builds Conv(32,8,/4)-Conv(64,4,/2)-Conv(64,3)-Linear(512)-Linear(A),
    pbLN + LIF after each hidden layer; conv1's charge computed once under direct input equals
    computing it at every step, and the ablation has no normalisation."""
    module = load(SUBMISSION)
    task = get_task("atari-pong")
    torch.manual_seed(0)
    model = module.build(task)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (32, 8, 4),
        (64, 4, 2),
        (64, 3, 1),
    ]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (64 * 7 * 7, 512),
        (512, task.actions),
    ]
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert [tuple(n.normalized_shape) for n in norms] == [(32, 20, 20), (64, 9, 9), (64, 7, 7), (512,)]
    assert len(model.hidden_neurons()) == 4
    frames = torch.rand(2, *task.input_shape)
    x = frames.unsqueeze(0).expand(task.timesteps, *frames.shape)
    with torch.no_grad():
        folded = model(x)
        # the same input, but not recognisably constant over T: every step computed
        unfolded = model.readout(
            model.body(
                model.norm1(model.conv1(x.reshape(-1, *x.shape[2:]))).reshape(task.timesteps, 2, 32, 20, 20)
            )
        )
    assert folded.shape == (task.timesteps, 2, task.actions)
    torch.testing.assert_close(folded, unfolded, rtol=1e-5, atol=1e-6)
    changing = x.clone()
    changing[1:] = 0.0  # not direct input: each step's own charge
    with torch.no_grad():
        per_step = model.first_charge(changing)
    assert torch.equal(per_step[1], model.norm1(model.conv1(changing[1])))
    ablation = module.build_variant(task, "none")
    assert not any(isinstance(m, nn.LayerNorm) for m in ablation.modules())
    with pytest.raises(ValueError, match="vector observations"):
        module.build_variant(task, "ann")


def test_the_shipped_breakout_checkpoint_loads_and_matches_its_record():
    """The committed Atari checkpoint is the one its record (and the committed row) names, and it
    loads strictly into the network build() makes for the task."""
    import hashlib
    import json

    ckpt = PL / "atari" / "pl_sdqn-atari-breakout-seed0.pt"
    record = json.loads(ckpt.with_name(ckpt.name + ".json").read_text())
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == record["checkpoint_sha256"]
    assert record["task"] == "atari-breakout" and record["budget_complete"] is False
    assert "training_activity" not in record  # resumed: no partial training energy
    task = get_task("atari-breakout")
    model = load(SUBMISSION).build(task)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    steps = [h["step"] for h in record["history"]]
    assert steps == sorted(steps) and steps[-1] >= 160_000
