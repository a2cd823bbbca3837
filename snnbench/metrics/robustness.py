"""Robustness: accuracy under attacks and corruptions, with gradient-masking checks (PROTOCOLS.md s. 4).

The model is reached only through a GradientOracle. White-box gradients are a vector-Jacobian
product: the oracle returns the model's outputs, the caller turns its own labels into
g = dLoss/dOutput (loss = cross-entropy of the time-mean readout, section 2) and the oracle sends
back g's pull-back to the encoded input. With a SandboxOracle only encoded inputs and cotangents
cross into the submission's process, never labels.

Static image tasks are attacked on the [0, 1] pixel scale (digits: pixel / 16; CIFAR and
TinyImageNet: un-normalised with the dataset's channel mean/std, attacked, clamped to [0, 1],
re-normalised). The gradient of the encoded input [T, B, ...] is summed over T back to the frame:
exact for direct coding; for rate (Poisson) coding it is the straight-through estimate, the
gradient with respect to the firing rate (gain * sum over T, the Bernoulli draw treated as the
identity, one fresh draw per gradient). Other encodings get corruptions only.

Event tasks (frames of integer event counts) get no pixel-gradient attack by default: an L-inf
step of eps on an integer count is not an input a sensor can produce. They get event drop
(binomial thinning), hot pixels and an L0 gradient attack that adds or removes whole events
(`event_fgsm`, see there). Gaussian noise on counts is not meaningful and is skipped.

White-box attacks on static inputs (issue 28): FGSM, PGD and APGD-CE (Croce & Hein 2020, the
step-size-free PGD of AutoAttack) run once per surrogate gradient: the submission's own and the
swaps of [robustness] surrogates (rectangular, fast_sigmoid, atan; snnbench.surrogates swaps the
backward of every known neuron in the submission's process and never its forward). Rows through
a swapped surrogate say `surrogate=<name>` in their condition; rows through the own surrogate keep
the plain names. The headline is the per-sample worst case, `worst case eps=.. over
fgsm,pgd,apgd-ce x surrogates own,...`: a sample counts as robust only when it is classified
correctly clean and under every one of those attacks. It is therefore never above any single
figure. A model without a neuron snnbench knows (an ANN) is attacked through its own gradient
only, and the condition lists `surrogates own`. Rate-coded (Poisson) inputs, and models that are
stochastic themselves (two forwards of the same input differ, e.g. a Poisson encoder inside the
submission), get expectation over transformation: each gradient and each attack-time prediction
is averaged over [robustness] eot_draws draws (`eot=N` in the condition). For a stochastic model
the worst case also counts a sample as broken when one of its stochastic evaluations is wrong.

Black-box: Square (scores only) on the first blackbox_samples, and a transfer attack: APGD-CE
on the submission's ANN twin (snnbench.twin: the same network with every spiking neuron replaced
by a ReLU, started from the trained weights and trained for transfer_epochs on the first
transfer_samples items of the TRAINING split inside the sandbox), evaluated on the SNN.

Sanity checks, each a `gradient_masking_suspected` row (1 = the check failed):
- `pgd<=fgsm`: PGD is not weaker than FGSM on the same samples (own surrogate).
- `eps=1 near chance`: PGD accuracy at eps=1 (any image reachable) <= 1/C + 0.1.
- `black-box<=white-box`: a score-based Square-style random search using outputs only is not
  stronger than the white-box worst case on the same samples.
- `transfer<=white-box`: the transfer attack from the ANN twin is not stronger than the
  white-box worst case.
"Weaker" and "stronger" are judged per sample, paired (McNemar): with b the samples only the
supposedly weaker attack breaks and c those only the stronger one breaks, the check fails when
b - c > max(1, 2 sqrt(b + c)), about a one-sided 2-sigma excess. A plain difference of
accuracies with one sample of slack fired by chance on ordinary SNNs (seed-dependent, 4 of 64).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from snnbench.encoding import Direct, Frames, PoissonRate
from snnbench.metrics import MetricRow, mean_and_stderr

PGD_STEPS = 10
APGD_STEPS = 20
DEFAULT_SURROGATES = ("own", "rectangular", "fast_sigmoid", "atan")
CHANCE_MARGIN = 0.1
HUGE_EPS = 1.0


# ---------------------------------------------------------------- oracles


def readout(out: Tensor) -> Tensor:
    """[B, C] logits the prediction is made from: the time mean of [T, B, C], or [B, C] as given."""
    return out.mean(0) if out.dim() == 3 else out


def loss_cotangent(out: Tensor, labels: Tensor) -> Tensor:
    """dLoss/dOutput for loss = summed cross-entropy of the time-mean readout (per-sample
    gradients do not depend on the batch size). Computed here, in the caller's process."""
    leaf = out.detach().to(torch.float32).clone().requires_grad_(True)
    with torch.enable_grad():
        loss = nn.functional.cross_entropy(readout(leaf), labels.long(), reduction="sum")
        (g,) = torch.autograd.grad(loss, leaf)
    return g.detach()


@runtime_checkable
class GradientOracle(Protocol):
    """The model as an attack sees it: outputs, and the loss gradient with respect to the encoded input."""

    def outputs(self, x_enc: Tensor) -> Tensor: ...

    def loss_gradient(self, x_enc: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]: ...


class SandboxOracle:
    """A submission in a snnbench.sandbox.Sandbox after `finish` (probes detached, so attack
    forwards are never counted as activity). Sends only encoded inputs and cotangents."""

    def __init__(self, box) -> None:
        self.box = box

    def outputs(self, x_enc: Tensor) -> Tensor:
        return self.box.call("forward", x_enc.detach().to(torch.float32).contiguous())

    def loss_gradient(self, x_enc: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        out = self.box.call("forward_with_graph", x_enc.detach().to(torch.float32).contiguous())
        grad = self.box.call("input_gradient", loss_cotangent(out, labels))
        return out, grad

    def set_surrogate(self, name: str) -> dict[str, int]:
        return self.box.call("set_surrogate", name)

    def twin(self, inputs: Tensor, labels: Tensor, epochs: int, lr: float, batch: int) -> tuple[object, dict]:
        """Train the ANN twin in the submission's process on TRAINING inputs and labels."""
        x = inputs.detach().to(torch.float32).contiguous()
        info = self.box.call("train_twin", x, labels.long(), epochs, lr, batch)
        if info.get("replaced") == 0:  # no spiking neuron: the model is its own twin
            return None, info
        return _SandboxTwinOracle(self.box), info


class _SandboxTwinOracle:
    """The ANN twin in the sandbox, as a GradientOracle (test labels stay here, as above)."""

    def __init__(self, box) -> None:
        self.box = box

    def outputs(self, x_enc: Tensor) -> Tensor:
        return self.box.call("twin_forward", x_enc.detach().to(torch.float32).contiguous())

    def loss_gradient(self, x_enc: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        out = self.box.call("twin_forward_with_graph", x_enc.detach().to(torch.float32).contiguous())
        grad = self.box.call("input_gradient", loss_cotangent(out, labels))
        return out, grad


class LocalOracle:
    """An in-process module (tests, ANN twins). Puts the model in eval mode; neuron state is
    reset before every forward, as in the sandbox."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()

    def _forward(self, x: Tensor) -> Tensor:
        from snnbench.frameworks import reset_state

        reset_state(self.model)
        return self.model(x)

    def outputs(self, x_enc: Tensor) -> Tensor:
        with torch.no_grad():
            return self._forward(x_enc).detach().to(torch.float32)

    def loss_gradient(self, x_enc: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        x = x_enc.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = self._forward(x)
            (grad,) = torch.autograd.grad(out, x, grad_outputs=loss_cotangent(out, labels).to(out.dtype))
        return out.detach().to(torch.float32), grad.detach()

    def set_surrogate(self, name: str) -> dict[str, int]:
        from snnbench.surrogates import swap_surrogates

        return swap_surrogates(self.model, name)

    def twin(self, inputs: Tensor, labels: Tensor, epochs: int, lr: float, batch: int) -> tuple[object, dict]:
        from snnbench.surrogates import swap_surrogates
        from snnbench.twin import make_twin, train_twin

        if make_twin(self.model)[1] == 0:  # no spiking neuron: the model is its own twin
            return None, {"replaced": 0}
        swap_surrogates(self.model, "own")
        with torch.enable_grad():
            model, info = train_twin(self.model, inputs, labels, epochs, lr, batch, seed=0)
        return LocalOracle(model), info


# ---------------------------------------------------------------- input spaces


@dataclass
class PixelSpace:
    """Maps [0, 1] pixels u <-> the dataset's inputs x <-> encoded input, and pulls gradients back."""

    encoder: object
    timesteps: int
    mean: Tensor | None = None
    std: Tensor | None = None

    def to_pixels(self, x: Tensor) -> Tensor:
        u = x if self.mean is None else x * self.std + self.mean
        return u.clamp(0.0, 1.0)

    def from_pixels(self, u: Tensor) -> Tensor:
        return u if self.mean is None else (u - self.mean) / self.std

    def encode(self, u: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.encoder(self.from_pixels(u), self.timesteps, generator)

    @property
    def differentiable(self) -> bool:
        return isinstance(self.encoder, (Direct, PoissonRate))

    def pixel_gradient(self, g_enc: Tensor) -> Tensor:
        """dLoss/du from dLoss/dx_enc: sum over T (direct: exact; rate: straight-through)."""
        g = g_enc.sum(0)
        if isinstance(self.encoder, PoissonRate):
            g = g * self.encoder.gain
        return g if self.std is None else g / self.std


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _hits(out: Tensor, labels: Tensor) -> Tensor:
    return readout(out).argmax(1) == labels


def _margin(out: Tensor, labels: Tensor) -> Tensor:
    """Logit of the true class minus the best other (time-mean readout): < 0 means misclassified."""
    z = readout(out)
    true = z.gather(1, labels[:, None]).squeeze(1)
    other = z.scatter(1, labels[:, None], float("-inf")).max(1).values
    return true - other


def pixel_gradient(
    oracle: GradientOracle,
    space: PixelSpace,
    u: Tensor,
    labels: Tensor,
    generator: torch.Generator | None,
    draws: int = 1,
) -> tuple[Tensor, Tensor]:
    """(readout logits [B, C], dLoss/du) at pixels u. With draws > 1, expectation over
    transformation (Athalye et al. 2018): the gradient and logits are averaged over `draws`
    independent encodings (fresh Poisson draws), sent as one batch of draws * B."""
    if draws <= 1:
        out, g_enc = oracle.loss_gradient(space.encode(u, generator), labels)
        return readout(out), space.pixel_gradient(g_enc)
    rep = u.repeat(draws, *([1] * (u.dim() - 1)))
    out, g_enc = oracle.loss_gradient(space.encode(rep, generator), labels.repeat(draws))
    grad = space.pixel_gradient(g_enc).reshape(draws, *u.shape).mean(0)
    return readout(out).reshape(draws, len(u), -1).mean(0), grad


def fgsm(
    oracle: GradientOracle,
    space: PixelSpace,
    u: Tensor,
    labels: Tensor,
    eps: float,
    generator: torch.Generator | None = None,
    draws: int = 1,
) -> tuple[Tensor, Tensor]:
    """One signed-gradient step of size eps on pixels u, clamped to [0, 1].
    Returns (adversarial pixels, readout logits at the clean input)."""
    z, grad = pixel_gradient(oracle, space, u, labels, generator, draws)
    adv = (u + eps * grad.sign()).clamp(0.0, 1.0)
    return adv, z


def pgd(
    oracle: GradientOracle,
    space: PixelSpace,
    u: Tensor,
    labels: Tensor,
    eps: float,
    steps: int = PGD_STEPS,
    step: float | None = None,
    generator: torch.Generator | None = None,
    draws: int = 1,
) -> Tensor:
    """L-inf PGD from a uniform random start in the eps-ball (seeded), step eps/4 by default;
    every iterate is projected onto the eps-ball around u and onto [0, 1]."""
    step = eps / 4 if step is None else step
    start = torch.rand(u.shape, generator=generator, dtype=u.dtype) * 2 - 1
    adv = (u + eps * start).clamp(0.0, 1.0)
    for _ in range(steps):
        _, grad = pixel_gradient(oracle, space, adv, labels, generator, draws)
        adv = adv + step * grad.sign()
        adv = torch.minimum(torch.maximum(adv, u - eps), u + eps).clamp(0.0, 1.0)
    return adv


def apgd_checkpoints(steps: int) -> tuple[int, int, int]:
    """(first checkpoint interval, minimum interval, interval decrease) of APGD, as in the
    authors' code: 0.22, 0.06 and 0.03 of the iterations, at least 1 each."""
    return max(int(0.22 * steps), 1), max(int(0.06 * steps), 1), max(int(0.03 * steps), 1)


def apgd(
    oracle: GradientOracle,
    space: PixelSpace,
    u: Tensor,
    labels: Tensor,
    eps: float,
    steps: int,
    generator: torch.Generator | None = None,
    draws: int = 1,
    rho: float = 0.75,
) -> Tensor:
    """APGD-CE, L-inf (Croce & Hein 2020, AutoAttack's step-size-free PGD): step 2 eps halved at
    checkpoints where fewer than rho of the steps since the last one raised the loss, or where
    the step was not halved last time and the best loss did not improve (then the iterate
    restarts from the best point); momentum 0.75. Loss: per-sample cross-entropy of the
    time-mean readout. Starts at u + eps * t / max|t|, t uniform in [-1, 1] (seeded). Returns
    the last iterate found misclassified where one was, else the start (as the reference code
    does for its robust accuracy)."""
    n, view = len(u), (-1, *([1] * (u.dim() - 1)))
    first, least, decrease = apgd_checkpoints(steps)

    def project(v: Tensor) -> Tensor:
        return torch.minimum(torch.maximum(v, u - eps), u + eps).clamp(0.0, 1.0)

    def loss_of(z: Tensor) -> Tensor:
        return nn.functional.cross_entropy(z, labels, reduction="none")

    t = torch.rand(u.shape, generator=generator, dtype=u.dtype) * 2 - 1
    adv = (u + eps * t / t.reshape(n, -1).abs().amax(1).clamp_min(1e-12).view(view)).clamp(0.0, 1.0)
    found = adv.clone()
    z, grad = pixel_gradient(oracle, space, adv, labels, generator, draws)
    best_loss, best, best_grad = loss_of(z), adv.clone(), grad.clone()
    step = torch.full((n,), 2.0 * eps, dtype=u.dtype)
    previous = adv.clone()
    losses = torch.zeros(steps, n, dtype=torch.float64)
    last_best, reduced_last = best_loss.clone(), torch.ones(n, dtype=torch.bool)
    interval, counter = first, 0
    for i in range(steps):
        momentum = adv - previous
        previous = adv.clone()
        a = 0.75 if i > 0 else 1.0
        z1 = project(adv + step.view(view) * grad.sign())
        adv = project(adv + (z1 - adv) * a + momentum * (1 - a))
        z, grad = pixel_gradient(oracle, space, adv, labels, generator, draws)
        loss, wrong = loss_of(z), z.argmax(1) != labels
        found[wrong] = adv[wrong]
        losses[i] = loss.double()
        up = loss > best_loss
        best[up], best_grad[up], best_loss[up] = adv[up], grad[up], loss[up]
        counter += 1
        if counter == interval:
            rises = sum((losses[i - c] > losses[i - c - 1]).double() for c in range(interval))
            halve = (rises <= interval * rho) | (~reduced_last & (last_best >= best_loss))
            reduced_last, last_best = halve.clone(), best_loss.clone()
            if halve.any():
                step[halve] /= 2.0
                adv[halve], grad[halve] = best[halve], best_grad[halve]
            counter, interval = 0, max(interval - decrease, least)
    return found


def square_attack(
    oracle: GradientOracle,
    space: PixelSpace,
    u: Tensor,
    labels: Tensor,
    eps: float,
    queries: int,
    generator: torch.Generator,
    p_init: float = 0.1,
) -> Tensor:
    """Score-based L-inf random search after Square Attack (Andriushchenko et al. 2020), outputs
    only: start from vertical +-eps stripes, then each query re-draws one random square of +-eps
    per channel and keeps it where the margin loss drops. Samples already misclassified stop.
    The square's area is a fraction p of the image, halved at the paper's query milestones."""
    shape = u.shape
    u = u.reshape(shape[0], -1, *shape[-2:]) if u.dim() >= 3 else u.reshape(shape[0], 1, 1, -1)
    n, channels, height, width = u.shape

    def draw(*size: int) -> Tensor:
        return torch.randint(0, 2, size, generator=generator).to(u.dtype) * 2 - 1

    def margin_of(v: Tensor, which: Tensor) -> Tensor:
        return _margin(oracle.outputs(space.encode(v.reshape(-1, *shape[1:]), generator)), labels[which])

    adv = (u + eps * draw(n, channels, 1, width)).clamp(0.0, 1.0)
    best = margin_of(adv, torch.arange(n))
    milestones = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000]
    for i in range(1, queries):
        active = (best > 0).nonzero().flatten()
        if active.numel() == 0:
            break
        p = p_init / 2 ** sum(i > m for m in milestones)
        side = max(1, min(height, width, round(math.sqrt(p * height * width))))
        cand = adv[active].clone()
        ys = torch.randint(0, height - side + 1, (active.numel(),), generator=generator)
        xs = torch.randint(0, width - side + 1, (active.numel(),), generator=generator)
        signs = draw(active.numel(), channels, 1, 1)
        base = u[active]
        for k in range(active.numel()):
            y0, x0 = int(ys[k]), int(xs[k])
            window = base[k, :, y0 : y0 + side, x0 : x0 + side] + eps * signs[k]
            cand[k, :, y0 : y0 + side, x0 : x0 + side] = window.clamp(0.0, 1.0)
        margin = margin_of(cand, active)
        better = margin < best[active]
        adv[active[better]] = cand[better]
        best[active[better]] = margin[better]
    return adv.reshape(shape)


def gaussian_noise(u: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """Pixels plus N(0, sigma^2) noise, clamped to [0, 1]."""
    return (u + sigma * torch.randn(u.shape, generator=generator, dtype=u.dtype)).clamp(0.0, 1.0)


# ---------------------------------------------------------------- event perturbations


def event_drop(frames: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Each event is dropped independently with probability p: every count c becomes
    Binomial(c, 1 - p) (p=0 is the identity, p=1 removes everything)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"event_drop p must be in [0, 1], got {p}")
    counts = frames.round().clamp(min=0).to(torch.float32)
    kept = torch.binomial(counts, torch.full_like(counts, 1.0 - p), generator=generator)
    return kept.to(frames.dtype)


def hot_pixels(frames: Tensor, frac: float, rate: float, generator: torch.Generator) -> Tensor:
    """A sensor defect: max(1, round(frac * sites)) (polarity, y, x) sites of frames [N, T, P, H, W],
    the same for every sample (drawn once, seeded), each adding `rate` events in every time bin."""
    sites = frames.shape[2] * frames.shape[3] * frames.shape[4]
    count = max(1, round(frac * sites))
    chosen = torch.randperm(sites, generator=generator)[:count]
    mask = torch.zeros(sites, dtype=frames.dtype)
    mask[chosen] = rate
    return frames + mask.view(1, 1, *frames.shape[2:])


def event_fgsm(
    oracle: GradientOracle, frames: Tensor, labels: Tensor, budget: float
) -> tuple[Tensor, Tensor]:
    """L0 gradient attack on event counts [N, T, P, H, W]: per sample, change the
    round(budget * events) bins with the largest |gradient| by one event in the gradient's sign
    direction (a removal only where the count is > 0), so counts stay non-negative integers.
    Returns (perturbed frames, outputs at the clean input)."""
    out, g_enc = oracle.loss_gradient(Frames()(frames, frames.shape[1]), labels)
    g = g_enc.transpose(0, 1).reshape(frames.shape[0], -1)
    flat = frames.reshape(frames.shape[0], -1)
    allowed = (g > 0) | ((g < 0) & (flat > 0))
    score = torch.where(allowed, g.abs(), torch.full_like(g, -1.0))
    adv = flat.clone()
    for i in range(flat.shape[0]):
        k = int(round(budget * float(flat[i].sum())))
        if k == 0:
            continue
        top = score[i].topk(min(k, score.shape[1])).indices
        top = top[score[i, top] > 0]
        adv[i, top] += g[i, top].sign()
    return adv.reshape(frames.shape), out


# ---------------------------------------------------------------- rows


def format_eps(eps: float) -> str:
    """Short decimal when exact to 4 digits (0.1, 1), else k/255 when it is one (8/255), else %.4g."""
    if float(f"{eps:.4g}") == eps:
        return f"{eps:g}"
    k = eps * 255
    if abs(k - round(k)) < 1e-6:
        return f"{round(k)}/255"
    return f"{eps:.4g}"


def _acc_row(hits: Tensor, condition: str) -> MetricRow:
    mean, se = mean_and_stderr(hits.double())
    return MetricRow("robust_accuracy", mean, "fraction", n=hits.numel(), stderr=se, condition=condition)


def weaker_than(weak_hits: Tensor, strong_hits: Tensor) -> bool:
    """True when the attack with `weak_hits` (1 = sample still correct) is significantly stronger
    than the one with `strong_hits` on the same samples: a paired McNemar-style 2-sigma excess."""
    weak, strong = weak_hits.bool(), strong_hits.bool()
    b = int((~weak & strong).sum())  # broken only by the supposedly weaker attack
    c = int((weak & ~strong).sum())  # broken only by the supposedly stronger attack
    return b - c > max(1.0, 2.0 * math.sqrt(b + c))


def _flag_row(failed: bool, condition: str, n: int) -> MetricRow:
    return MetricRow("gradient_masking_suspected", float(failed), "flag", n=n, condition=condition)


def _acc(hits: Tensor) -> float:
    return float(hits.double().mean())


def _gen(seed: int, name: str) -> torch.Generator:
    """One generator per attack, so adding an attack never shifts another's random draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


def pgd_condition(eps: float, steps: int = PGD_STEPS) -> str:
    return f"pgd eps={format_eps(eps)} steps={steps} step={format_eps(eps / 4)}"


def robustness_rows(
    oracle: GradientOracle,
    task,
    inputs: Tensor,
    labels: Tensor,
    encoder,
    timesteps: int,
    seed: int,
    *,
    pixel_mean: Tensor | None = None,
    pixel_std: Tensor | None = None,
    train_inputs: Tensor | None = None,
    train_labels: Tensor | None = None,
) -> list[MetricRow]:
    """Every robustness row for `inputs` (pre-encoding test inputs, as the dataset gives them:
    static [N, C, H, W], event frames [N, T, P, H, W]) and their labels, which never leave this
    process. Settings from task.robustness: eps, event_drop, hot_pixels (fractions),
    hot_pixel_rate, blackbox_samples, blackbox_queries, event_budget."""
    if task.kind != "classification":
        raise ValueError(f"task {task.id}: robustness metrics need a classification task, not {task.kind!r}")
    labels = labels.long()
    inputs = inputs.to(torch.float32)
    cfg = task.robustness
    batch = int(task.batch_size)
    if isinstance(encoder, Frames):
        return _event_rows(oracle, cfg, inputs, labels, batch, seed)
    shape = (-1, 1, 1)
    mean = None if pixel_mean is None else torch.as_tensor(pixel_mean, dtype=torch.float32).view(shape)
    std = None if pixel_std is None else torch.as_tensor(pixel_std, dtype=torch.float32).view(shape)
    if (mean is None) != (std is None):
        raise ValueError("pass both pixel_mean and pixel_std (the dataset's normalisation) or neither")
    space = PixelSpace(encoder, timesteps, mean, std)
    train = None if train_inputs is None else (train_inputs.to(torch.float32), train_labels.long())
    return _static_rows(oracle, task, cfg, space, inputs, labels, batch, seed, train)


def _evaluate(oracle, space, u, labels, batch, generator) -> Tensor:
    return torch.cat(
        [_hits(oracle.outputs(space.encode(u[s], generator)), labels[s]) for s in _chunks(len(u), batch)]
    )


def _is_stochastic(oracle, space, u: Tensor) -> bool:
    """True when the model itself draws random numbers (for example a Poisson encoder inside the
    submission): two forwards of the same encoded input differ. Such models get EOT too."""
    x = space.encode(u, torch.Generator().manual_seed(0))
    return not torch.equal(oracle.outputs(x), oracle.outputs(x))


def _surrogate_sweep(oracle, cfg) -> list[str]:
    """The surrogates to attack through: "own" first, then the configured swaps that the model
    has neurons for (none for an ANN or a model whose spiking modules snnbench does not know)."""
    wanted = list(cfg.get("surrogates", DEFAULT_SURROGATES))
    swaps = [name for name in wanted if name != "own"]
    if not swaps or not callable(getattr(oracle, "set_surrogate", None)):
        return ["own"]
    counts = oracle.set_surrogate(swaps[0])
    oracle.set_surrogate("own")
    return ["own", *swaps] if counts else ["own"]


def _with(condition: str, surrogate: str, draws: int) -> str:
    return (
        condition
        + ("" if surrogate == "own" else f" surrogate={surrogate}")
        + (f" eot={draws}" if draws > 1 else "")
    )


def _white_box(oracle, space, u, labels, eps, batch, seed, surrogate, draws, apgd_steps):
    """FGSM, PGD and APGD-CE hits through one surrogate; (clean hits, {condition: hits})."""
    tag = "" if surrogate == "own" else f" {surrogate}"
    gen = _gen(seed, "fgsm" + tag)
    clean, adv = [], []
    for s in _chunks(len(u), batch):  # FGSM's gradient forward is also the clean forward
        a, z = fgsm(oracle, space, u[s], labels[s], eps, gen, draws)
        clean.append(_hits(z, labels[s]))
        adv.append(a)
    hits = {
        _with(f"fgsm eps={format_eps(eps)}", surrogate, draws): _evaluate(
            oracle, space, torch.cat(adv), labels, batch, gen
        )
    }
    name = pgd_condition(eps)
    g = _gen(seed, name + tag)
    adv = torch.cat(
        [pgd(oracle, space, u[s], labels[s], eps, generator=g, draws=draws) for s in _chunks(len(u), batch)]
    )
    hits[_with(name, surrogate, draws)] = _evaluate(oracle, space, adv, labels, batch, g)
    name = apgd_condition(eps, apgd_steps)
    g = _gen(seed, name + tag)
    adv = torch.cat(
        [apgd(oracle, space, u[s], labels[s], eps, apgd_steps, g, draws) for s in _chunks(len(u), batch)]
    )
    hits[_with(name, surrogate, draws)] = _evaluate(oracle, space, adv, labels, batch, g)
    return torch.cat(clean), hits


def apgd_condition(eps: float, steps: int) -> str:
    return f"apgd-ce eps={format_eps(eps)} steps={steps}"


def _transfer(oracle, space, cfg, u, labels, eps, batch, seed, train, apgd_steps):
    """Hits of the SNN on APGD-CE examples crafted on its ANN twin, or None where no twin can be
    trained (no training data, or an oracle that cannot build one)."""
    if train is None or not callable(getattr(oracle, "twin", None)):
        return None, None
    train_u, train_labels = train
    count = min(len(train_u), int(cfg.get("transfer_samples", 2048)))
    epochs = int(cfg.get("transfer_epochs", 3))
    g = _gen(seed, "transfer")
    x_train = space.encode(space.to_pixels(train_u[:count]), g)
    twin, info = oracle.twin(
        x_train, train_labels[:count], epochs, float(cfg.get("transfer_lr", 1e-3)), batch
    )
    if twin is None:  # an ANN submission has no ReLU twin to transfer from
        return None, None
    adv = torch.cat([apgd(twin, space, u[s], labels[s], eps, apgd_steps, g) for s in _chunks(len(u), batch)])
    cond = f"transfer eps={format_eps(eps)} from relu-twin ({epochs} epochs on {count} training samples) apgd-ce steps={apgd_steps}"
    return _evaluate(oracle, space, adv, labels, batch, g), cond


def _static_rows(oracle, task, cfg, space, inputs, labels, batch, seed, train=None) -> list[MetricRow]:
    eps = float(cfg.get("eps", 0.1))
    n = len(inputs)
    u = space.to_pixels(inputs)
    noise = gaussian_noise(u, eps, _gen(seed, "gaussian"))
    noise_hits = _evaluate(oracle, space, noise, labels, batch, _gen(seed, "noise"))
    noise_row = _acc_row(noise_hits, f"gaussian sigma={format_eps(eps)}")
    if not space.differentiable:
        clean = _evaluate(oracle, space, u, labels, batch, _gen(seed, "clean"))
        return [_acc_row(clean, "clean"), noise_row]
    stochastic = isinstance(space.encoder, PoissonRate) or _is_stochastic(oracle, space, u[:batch])
    draws = int(cfg.get("eot_draws", 8)) if stochastic else 1
    apgd_steps = int(cfg.get("apgd_steps", APGD_STEPS))
    sweep = _surrogate_sweep(oracle, cfg)
    white: dict[str, Tensor] = {}
    clean_hits = None
    try:
        for surrogate in sweep:
            if surrogate != "own":
                oracle.set_surrogate(surrogate)
            clean, hits = _white_box(oracle, space, u, labels, eps, batch, seed, surrogate, draws, apgd_steps)
            clean_hits = clean if clean_hits is None else clean_hits
            white.update(hits)
    finally:
        if len(sweep) > 1:
            oracle.set_surrogate("own")
    fgsm_own = white[_with(f"fgsm eps={format_eps(eps)}", "own", draws)]
    pgd_own = white[_with(pgd_condition(eps), "own", draws)]
    worst = clean_hits.clone()
    for hits in white.values():
        worst &= hits
    g = _gen(seed, pgd_condition(HUGE_EPS))
    adv = torch.cat(
        [pgd(oracle, space, u[s], labels[s], HUGE_EPS, generator=g, draws=draws) for s in _chunks(n, batch)]
    )
    huge_hits = _evaluate(oracle, space, adv, labels, batch, g)
    # black-box: a modest query budget on the first samples
    m = min(n, int(cfg.get("blackbox_samples", 64)))
    queries = int(cfg.get("blackbox_queries", 100))
    g = _gen(seed, "square")
    bb = torch.cat(
        [square_attack(oracle, space, u[s], labels[s], eps, queries, g) for s in _chunks(m, batch)]
    )
    bb_hits = _evaluate(oracle, space, bb, labels[:m], batch, g)
    transfer_hits, transfer_cond = _transfer(
        oracle, space, cfg, u, labels, eps, batch, seed, train, apgd_steps
    )
    chance = 1.0 / task.classes
    attacks = ",".join(["fgsm", "pgd", "apgd-ce"])
    headline = f"worst case eps={format_eps(eps)} over {attacks} x surrogates {','.join(sweep)}"
    rows = [_acc_row(clean_hits, "clean"), _acc_row(worst, headline + (f" eot={draws}" if draws > 1 else ""))]
    rows += [_acc_row(hits, cond) for cond, hits in white.items()]
    rows += [
        _acc_row(huge_hits, _with(pgd_condition(HUGE_EPS), "own", draws)),
        noise_row,
        _acc_row(bb_hits, f"square eps={format_eps(eps)} queries={queries}"),
    ]
    if transfer_hits is not None:
        rows.append(_acc_row(transfer_hits, transfer_cond))
    rows += [
        _flag_row(weaker_than(fgsm_own, pgd_own), "pgd<=fgsm", n),
        _flag_row(_acc(huge_hits) > chance + CHANCE_MARGIN, "eps=1 near chance", n),
        _flag_row(weaker_than(bb_hits, worst[:m]), "black-box<=white-box", m),
    ]
    if transfer_hits is not None:
        rows.append(_flag_row(weaker_than(transfer_hits, worst), "transfer<=white-box", n))
    return rows


def _event_rows(oracle, cfg, frames, labels, batch, seed) -> list[MetricRow]:
    if frames.dim() != 5:
        raise ValueError(f"event robustness needs frames [N, T, P, H, W], got shape {list(frames.shape)}")
    n, steps = len(frames), frames.shape[1]
    enc = Frames()

    def hits_of(x: Tensor) -> Tensor:
        return torch.cat([_hits(oracle.outputs(enc(x[s], steps)), labels[s]) for s in _chunks(n, batch)])

    rows: list[MetricRow] = []
    budget = float(cfg.get("event_budget", 0.05))
    clean_hits, adv = [], []
    for s in _chunks(n, batch):
        a, out = event_fgsm(oracle, frames[s], labels[s], budget)
        clean_hits.append(_hits(out, labels[s]))
        adv.append(a)
    rows.append(_acc_row(torch.cat(clean_hits), "clean"))
    rows.append(_acc_row(hits_of(torch.cat(adv)), f"event_fgsm budget={budget:g}"))
    drops = cfg.get("event_drop", 0.2)
    for p in drops if isinstance(drops, (list, tuple)) else [drops]:
        dropped = event_drop(frames, float(p), _gen(seed, f"event_drop {p}"))
        rows.append(_acc_row(hits_of(dropped), f"event_drop p={float(p):g}"))
    rate = float(cfg.get("hot_pixel_rate", 1))
    fracs = cfg.get("hot_pixels", [0.001, 0.01])
    for frac in fracs if isinstance(fracs, (list, tuple)) else [fracs]:
        hot = hot_pixels(frames, float(frac), rate, _gen(seed, f"hot_pixels {frac}"))
        rows.append(_acc_row(hits_of(hot), f"hot_pixels frac={float(frac):g} rate={rate:g}"))
    return rows


# ---------------------------------------------------------------- the subset evaluate.py attacks


def robustness_subset(
    dataset, task, count: int | None = None
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """(inputs, labels, pixel_mean, pixel_std) of the first `count` (default task.robustness
    ["samples"], 256) items; mean/std are the dataset's normalisation when it has one (ImageDataset)."""
    count = int(task.robustness.get("samples", 256)) if count is None else count
    count = min(len(dataset), count)
    items = [dataset[i] for i in range(count)]
    inputs = torch.stack([torch.as_tensor(x, dtype=torch.float32) for x, _ in items])
    labels = torch.as_tensor([int(y) for _, y in items], dtype=torch.long)
    base = dataset
    while not hasattr(base, "mean") and hasattr(base, "dataset"):
        base = base.dataset  # torch Subset (evaluate's --limit)
    mean, std = getattr(base, "mean", None), getattr(base, "std", None)
    if not (isinstance(mean, Tensor) and isinstance(std, Tensor)):
        mean = std = None
    return inputs, labels, mean, std


def collect(box, task, dataset, timesteps: int, seed: int) -> list[MetricRow]:
    """The registry's entry point: section 4 on the first `[robustness] samples` test items, after
    the clean pass (probes detached, so attack forwards are not counted as activity); the labels
    stay in this process and only cotangents cross into the submission's. The ANN twin of the
    transfer attack is trained on the task's training split (read from SNNBENCH_DATA or ~/data,
    as evaluate reads it by default); where that split cannot be read the transfer rows are left out."""
    from snnbench.encoding import encoder_for

    inputs, labels, mean, std = robustness_subset(dataset, task)
    train_inputs = train_labels = None
    if task.kind == "classification" and int(task.robustness.get("transfer_samples", 2048)) > 0:
        train_inputs, train_labels = _training_subset(task, timesteps)
    return robustness_rows(
        SandboxOracle(box),
        task,
        inputs,
        labels,
        encoder_for(task),
        timesteps,
        seed,
        pixel_mean=mean,
        pixel_std=std,
        train_inputs=train_inputs,
        train_labels=train_labels,
    )


def _training_subset(task, timesteps: int) -> tuple[Tensor | None, Tensor | None]:
    """The first `transfer_samples` items of the training split, or (None, None) where it cannot be read."""
    from snnbench.data import load_split

    try:
        train = load_split(task, "train", None, timesteps).dataset
    except Exception:  # noqa: BLE001 - missing data only drops the transfer rows
        return None, None
    count = int(task.robustness.get("transfer_samples", 2048))
    inputs, labels, _, _ = robustness_subset(train, task, count)
    return inputs, labels
