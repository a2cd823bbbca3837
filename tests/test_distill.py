"""snnbench.distill: KD with two temperatures, hint and Gram losses, the shared KD loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnbench.distill import (
    HintRegressor,
    distill_train,
    gram_loss,
    hint_loss,
    kd_loss,
    modality_gram,
    modality_gram_loss,
    similarity_matrix,
    soft_kl,
)
from snnbench.training import Budget

Z_S = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
Z_T = [[4.0, 1.0, -2.0], [2.0, 2.5, 6.0]]


def softmax_py(z, t):
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def kl_py(zs, zt, ts, tt):
    """KL(p_t || p_s) averaged over the rows, in plain Python."""
    total = 0.0
    for s_row, t_row in zip(zs, zt):
        ps, pt = softmax_py(s_row, ts), softmax_py(t_row, tt)
        total += sum(b * math.log(b / a) for a, b in zip(ps, pt))
    return total / len(zs)


@pytest.mark.parametrize("ts,tt", [(4.0, 4.0), (1.0, 4.0), (2.0, 8.0), (3.0, 1.5)])
def test_soft_kl_equals_hand_computation_with_tau_s_squared_scale(ts, tt):
    got = soft_kl(torch.tensor(Z_S), torch.tensor(Z_T), ts, tt)
    assert float(got) == pytest.approx(ts**2 * kl_py(Z_S, Z_T, ts, tt), rel=1e-5)


def test_equal_temperatures_are_hintons_t_squared_kl():
    zs, zt, t = torch.tensor(Z_S), torch.tensor(Z_T), 4.0
    hinton = F.kl_div(F.log_softmax(zs / t, 1), F.softmax(zt / t, 1), reduction="batchmean") * t * t
    assert float(soft_kl(zs, zt, t)) == pytest.approx(float(hinton), rel=1e-6)
    assert float(soft_kl(zs, zt, t, scale=1.0)) == pytest.approx(kl_py(Z_S, Z_T, t, t), rel=1e-5)


def test_soft_kl_gradient_is_scale_times_ps_minus_pt_over_tau_s():
    ts, tt = 1.0, 4.0
    zs = torch.tensor(Z_S, requires_grad=True)
    zt = torch.tensor(Z_T, requires_grad=True)
    soft_kl(zs, zt, ts, tt).backward()
    expected = [
        [ts**2 * (a - b) / ts / len(Z_S) for a, b in zip(softmax_py(s, ts), softmax_py(t, tt))]
        for s, t in zip(Z_S, Z_T)
    ]
    assert torch.allclose(zs.grad, torch.tensor(expected), atol=1e-6)
    assert zt.grad is None  # the teacher is never trained by the loss


def test_soft_kl_is_zero_where_student_matches_scaled_teacher():
    # z_s / tau_s = z_t / tau_t: the student's counts are tau_s / tau_t of the teacher's logits
    zt = torch.tensor(Z_T)
    assert float(soft_kl(zt / 4.0, zt, 1.0, 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(soft_kl(zt, zt, 1.0, 4.0)) > 0.1


def test_kd_loss_mixes_cross_entropy_and_soft_term():
    zs, zt, y = torch.tensor(Z_S), torch.tensor(Z_T), torch.tensor([1, 2])
    ce = -sum(math.log(softmax_py(row, 1.0)[c]) for row, c in zip(Z_S, [1, 2])) / 2
    soft = 4.0 * kl_py(Z_S, Z_T, 2.0, 5.0)
    assert float(kd_loss(zs, zt, y, 0.3, 2.0, 5.0)) == pytest.approx(0.7 * ce + 0.3 * soft, rel=1e-5)
    assert float(kd_loss(zs, zt, y, 0.0)) == pytest.approx(ce, rel=1e-6)


def test_bad_temperature_alpha_and_shapes_are_one_line_errors():
    zs, zt = torch.tensor(Z_S), torch.tensor(Z_T)
    with pytest.raises(ValueError, match="t_student must be > 0"):
        soft_kl(zs, zt, 0.0)
    with pytest.raises(ValueError, match="alpha must be in"):
        kd_loss(zs, zt, torch.tensor([0, 1]), 1.5)
    with pytest.raises(ValueError, match="differ"):
        soft_kl(zs, zt[:, :2])


def test_hint_regressor_maps_student_to_teacher_shape_and_loss_is_mse():
    torch.manual_seed(0)
    conv = HintRegressor((4, 8, 8), (6, 4, 4))
    s, t = torch.rand(3, 4, 8, 8), torch.rand(3, 6, 4, 4)
    mapped = conv(s)
    assert mapped.shape == (3, 6, 4, 4)
    # independent: 1x1 conv = per-pixel matrix product, then 2x2 average pooling
    w, b = conv.map.weight[:, :, 0, 0], conv.map.bias
    per_pixel = torch.einsum("oc,bchw->bohw", w, s) + b[None, :, None, None]
    pooled = per_pixel.reshape(3, 6, 4, 2, 4, 2).mean((3, 5))
    assert torch.allclose(mapped, pooled, atol=1e-6)
    loss = hint_loss(s, t, conv)
    assert float(loss.detach()) == pytest.approx(float(((pooled - t) ** 2).mean().detach()), rel=1e-5)
    flat = HintRegressor((10,), (6,))
    x = torch.rand(2, 10, requires_grad=True)
    teacher_feature = torch.rand(2, 6, requires_grad=True)
    hint_loss(x, teacher_feature, flat).backward()
    assert flat.map[1].weight.grad is not None and teacher_feature.grad is None
    with pytest.raises(ValueError, match="built for student features"):
        flat(torch.rand(2, 9))


def test_gram_loss_equals_numpy_similarity_preserving_loss():
    rng = np.random.default_rng(0)
    fs, ft = rng.normal(size=(5, 7)), rng.normal(size=(5, 3, 2, 2))

    def g(f):
        f = f.reshape(f.shape[0], -1)
        m = f @ f.T
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    expected = ((g(fs) - g(ft)) ** 2).sum() / 25
    got = gram_loss(torch.tensor(fs), torch.tensor(ft))
    assert float(got) == pytest.approx(expected, rel=1e-9)
    assert torch.allclose(similarity_matrix(torch.tensor(fs)), torch.tensor(g(fs)))
    same = torch.tensor(fs)
    assert float(gram_loss(same, 3.0 * same)) == pytest.approx(0.0, abs=1e-12)  # scale-free
    with pytest.raises(ValueError, match="same batch"):
        gram_loss(same, same[:4])


def _cos_py(a, b):
    na = math.sqrt(sum(v * v for v in a))
    nb = math.sqrt(sum(v * v for v in b))
    return 0.0 if na == 0 or nb == 0 else sum(x * y for x, y in zip(a, b)) / (na * nb)


def test_modality_gram_is_per_sample_cosine_matrix_of_the_modalities():
    # sample 0: modality embeddings (3, 4) and (4, 3); sample 1: (1, 0) and (0, 2)
    img = [[3.0, 4.0], [1.0, 0.0]]
    dvs = [[4.0, 3.0], [0.0, 2.0]]
    g = modality_gram([torch.tensor(img), torch.tensor(dvs)])
    assert g.shape == (2, 2, 2)
    # hand: cos((3,4),(4,3)) = 24/25; orthogonal -> 0; diagonal 1
    assert torch.allclose(g[0], torch.tensor([[1.0, 0.96], [0.96, 1.0]]))
    assert torch.allclose(g[1], torch.eye(2))
    # the same from a [B, M, d] tensor, and M = 3 with d = 3 against plain Python
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(4, 3, 3))
    got = modality_gram(torch.tensor(emb))
    for b in range(4):
        for i in range(3):
            for j in range(3):
                assert float(got[b, i, j]) == pytest.approx(_cos_py(emb[b, i], emb[b, j]), rel=1e-9)
    # a silent (all-zero) modality gives a zero row and column, not NaN
    silent = modality_gram([torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 2.0]])])
    assert torch.allclose(silent[0], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="differ in shape"):
        modality_gram([torch.zeros(2, 3), torch.zeros(2, 4)])


def test_modality_gram_loss_equals_hand_computation_and_ignores_width():
    rng = np.random.default_rng(2)
    s_emb = [rng.normal(size=(5, 6)), rng.normal(size=(5, 6)), rng.normal(size=(5, 6))]  # d_s = 6
    t_emb = [rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4))]  # d_t = 4
    expected = 0.0
    for b in range(5):
        for i in range(3):
            for j in range(3):
                d = _cos_py(s_emb[i][b], s_emb[j][b]) - _cos_py(t_emb[i][b], t_emb[j][b])
                expected += d * d
    expected /= 5  # mean over the batch of the squared Frobenius norm
    student = [torch.tensor(e, requires_grad=True) for e in s_emb]
    teacher = [torch.tensor(e, requires_grad=True) for e in t_emb]
    loss = modality_gram_loss(student, teacher)
    assert float(loss) == pytest.approx(expected, rel=1e-9)
    loss.backward()
    assert all(e.grad is not None for e in student) and all(e.grad is None for e in teacher)
    # scale-free per modality and per sample: rescaling one modality changes nothing
    same = [torch.tensor(e) for e in s_emb]
    scaled = [same[0] * 3.0, same[1] * 0.5, same[2]]
    assert float(modality_gram_loss(same, scaled)) == pytest.approx(0.0, abs=1e-12)
    # but it is not the batch-level similarity-preserving loss
    assert float(modality_gram_loss(same, teacher)) != pytest.approx(
        float(gram_loss(torch.stack(same, 1), torch.stack([t.detach() for t in teacher], 1))), rel=1e-3
    )
    with pytest.raises(ValueError, match="same batch"):
        modality_gram_loss(same, [t[:4] for t in teacher])


class _Data:
    def __init__(self, x, y):
        self.x, self.y, self.history = x, y, []

    def loader(self, batch_size):
        for i in range(0, len(self.y), batch_size):
            yield self.x[:, i : i + batch_size], self.y[i : i + batch_size]


def test_distill_train_calls_frozen_teacher_and_keeps_budget():
    torch.manual_seed(0)
    x, y = torch.rand(2, 12, 5), torch.randint(0, 3, (12,))
    student = nn.Linear(5, 3)
    teacher = nn.Linear(5, 3)
    before = teacher.weight.detach().clone()
    calls = []

    def teach(batch):
        calls.append(torch.is_grad_enabled())
        return teacher(batch.mean(0))

    data = _Data(x, y)
    s_before = student.weight.detach().clone()
    distill_train(
        student,
        None,
        data,
        Budget(epochs=2, lr=0.1, batch_size=6),
        teach,
        alpha=0.5,
        t_student=1.0,
        t_teacher=4.0,
    )
    assert len(calls) == 4 and not any(calls)  # 2 epochs x 2 batches, always without gradients
    assert torch.equal(teacher.weight, before) and not torch.equal(student.weight, s_before)
    assert [h["epoch"] for h in data.history] == [1, 2]
    # alpha = 0 never asks the teacher
    calls.clear()
    distill_train(student, None, _Data(x, y), Budget(epochs=1, lr=0.1, batch_size=6), teach, alpha=0.0)
    assert calls == []
