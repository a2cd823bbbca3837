"""Privacy family: ROC statistics against scikit-learn, the attacks against hand computations,
membership signal of a memorising vs a regularised net, chance-level results for random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve
from torch import nn

from snnbench.data import load_split
from snnbench.metrics.privacy import attack_scores, mia_rows
from snnbench.privacy import attacks, shadow
from snnbench.tasks import get_task


def test_auc_and_roc_equal_sklearn_with_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=300), 1)  # many ties
    member = rng.random(300) < 0.4
    assert attacks.auc(scores, member) == pytest.approx(roc_auc_score(member, scores), abs=1e-12)
    fpr, tpr, _ = sk_roc_curve(member, scores, drop_intermediate=False)
    ours_fpr, ours_tpr = attacks.roc_curve(scores, member)
    np.testing.assert_allclose(ours_fpr, fpr, atol=1e-12)
    np.testing.assert_allclose(ours_tpr, tpr, atol=1e-12)


def test_tpr_at_fpr_brute_force_and_needs_enough_non_members():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=400) + np.r_[np.ones(200) * 0.8, np.zeros(200)]
    member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    best = 0.0
    for t in np.r_[np.inf, np.unique(scores)]:
        pred = scores >= t
        if pred[~member].mean() <= 0.05:
            best = max(best, pred[member].mean())
    assert attacks.tpr_at_fpr(scores, member, 0.05) == pytest.approx(best)
    few = np.r_[np.ones(200, bool), np.zeros(50, bool)]  # 50 non-members < 1/0.01
    assert attacks.tpr_at_fpr(scores[:250], few, 0.01) is None
    rows, _ = mia_rows({"loss": scores[:250]}, few, (0.01, 0.05))
    conditions = {r.condition for r in rows if r.metric == "mia_tpr_at_fpr"}
    assert conditions == {"attack=loss fpr=0.05"}
    assert all(r.n == 250 for r in rows)


def test_lira_and_rmia_match_hand_computation():
    rng = np.random.default_rng(2)
    k, n, z = 4, 6, 5
    p_t, p_r = rng.uniform(0.05, 0.95, n), rng.uniform(0.05, 0.95, (k, n))
    ref_in = np.zeros((k, n), bool)
    ref_in[0, :3] = ref_in[1, 3:] = ref_in[2, ::2] = True
    ref_in[3] = ~ref_in[2]
    pz_t, pz_r = rng.uniform(0.05, 0.95, z), rng.uniform(0.05, 0.95, (k, z))

    def logit(p):
        return np.log(p / (1 - p))

    mus = [logit(p_r[~ref_in[:, i], i]).mean() for i in range(n)]
    res = [logit(p_r[j, i]) - mus[i] for i in range(n) for j in range(k) if not ref_in[j, i]]
    sigma = np.sqrt(np.sum(np.square(res)) / (len(res) - n))
    expected_lira = [(logit(p_t[i]) - mus[i]) / sigma for i in range(n)]
    np.testing.assert_allclose(attacks.lira_offline(p_t, p_r, ref_in), expected_lira, rtol=1e-9)

    a = 0.3
    expected_rmia = []
    for i in range(n):
        px = 0.5 * ((1 + a) * p_r[~ref_in[:, i], i].mean() + (1 - a))
        lr_x = p_t[i] / px
        lr_z = pz_t / pz_r.mean(0)
        expected_rmia.append(np.mean(lr_x > lr_z))
    np.testing.assert_allclose(attacks.rmia_offline(p_t, p_r, ref_in, pz_t, pz_r), expected_rmia)


def test_member_split_is_disjoint_and_pairs_reference_models():
    split = shadow.member_split(1347, 100, 6, seed=3)
    assert len(split.pool) == 200 and split.member.sum() == 100
    assert not set(split.pool) & set(split.population)
    assert (split.ref_in.sum(1) == 100).all()
    assert ((~split.ref_in).sum(0) == 3).all()  # every sample OUT for exactly K/2 models
    with pytest.raises(ValueError, match="lower \\[privacy\\] members"):
        shadow.member_split(100, 80, 2, seed=0)
    with pytest.raises(ValueError, match="reference_models"):
        attacks.lira_offline(np.full(3, 0.5), np.full((1, 3), 0.5), np.ones((1, 3), bool))


def _digits(count: int, seed: int):
    data = load_split(get_task("digits"), "train").dataset
    idx = np.random.default_rng(seed).permutation(len(data))[:count]
    x = torch.stack([data[int(i)][0] for i in idx]).flatten(1)
    y = torch.tensor([data[int(i)][1] for i in idx])
    return x, y


def _p_true(model, x, y):
    with torch.no_grad():
        return torch.softmax(model(x), 1).gather(1, y[:, None]).squeeze(1).numpy()


def _fit(model, x, y, steps, weight_decay, noise=0.0):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(steps):
        xb = x + noise * torch.randn_like(x)
        loss = nn.functional.cross_entropy(model(xb), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_memorising_model_leaks_membership_more_than_a_regularised_one():
    """Random labels: only memorisation fits them, so the loss gap measures memorisation alone."""
    torch.set_num_threads(1)
    x, _ = _digits(100, seed=4)
    y = torch.randint(0, 10, (100,), generator=torch.Generator().manual_seed(4))
    members = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    xm, ym = x[:50], y[:50]
    torch.manual_seed(0)
    memoriser = _fit(nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)), xm, ym, 300, 0.0)
    torch.manual_seed(0)
    regularised = _fit(nn.Linear(64, 10), xm, ym, 100, 0.5, noise=0.5)
    auc_mem = attacks.auc(attacks.loss_scores(_p_true(memoriser, x, y)), members)
    auc_reg = attacks.auc(attacks.loss_scores(_p_true(regularised, x, y)), members)
    assert auc_mem > 0.95
    assert auc_mem > auc_reg + 0.1


def test_random_weights_give_auc_near_half_for_every_attack():
    torch.set_num_threads(1)
    x, y = _digits(800, seed=5)
    split = shadow.member_split(600, 200, 4, seed=5)  # pool 400, population 200
    nets = []
    for s in range(5):
        torch.manual_seed(100 + s)
        nets.append(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval())
    pool, pop = torch.from_numpy(split.pool), torch.from_numpy(split.population)
    p = [_p_true(m, x, y) for m in nets]
    target, refs = p[0], np.stack(p[1:])
    scores = attack_scores(target[pool], refs[:, pool], split.ref_in, target[pop], refs[:, pop])
    assert set(scores) == {"loss", "lira", "rmia"}
    for name, s in scores.items():
        assert abs(attacks.auc(s, split.member) - 0.5) < 0.08, name
