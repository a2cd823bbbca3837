"""Multi-step spiking neurons: input [T, B, ...] currents, output [T, B, ...] spikes.

Semantics follow SpikingJelly's activation_based neurons (charge, fire, reset), so weights move
between the two without changing a spike:

    charge   LIF  decay_input:  h = v + (x - (v - v_reset)) / tau
             LIF  otherwise:    h = v - (v - v_reset) / tau + x
             IF                 h = v + x
             PLIF               LIF with 1/tau = sigmoid(w), w trainable
    fire     s = Heaviside(h - v_threshold)   (surrogate gradient in backward)
    reset    hard: v = h * (1 - s) + v_reset * s      soft (v_reset=None): v = h - s * v_threshold

(for the soft reset the leak pulls towards 0.) Neurons keep no state between calls: every call
starts from v = v_reset (0 for soft reset), so there is nothing to reset between batches.
Every spiking module subclasses BaseNeuron, which is how the activity probes recognise them.

Speed: forward() runs a fused loop (a custom autograd Function) that writes every step in place
into preallocated outputs and saves one tensor for backward, the charged membrane h; backward
rebuilds the surrogate derivative and the reset from h and runs the reverse-time recurrence with
one fused op per step. Spikes and gradients equal reference_forward's (bitwise for spikes, to
float rounding for gradients). Set `neuron.fused = False` to run reference_forward instead, e.g.
for double backward or forward-mode AD, which the fused Function does not support. MultiStep
has a fast path too (channels_last 2-D layers on CPU, max pooling that keeps only its argmax,
chunked conv+pool blocks); `MultiStep.fast = False` turns it off. benchmarks/neurons.py measures
both against the peers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- surrogate gradients


class _Spike(torch.autograd.Function):
    """Heaviside forward; backward multiplies by the surrogate derivative at x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind, ctx.alpha = kind, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, ctx.kind, ctx.alpha), None, None


SURROGATES: dict[str, float] = {
    # name -> default alpha (sharpness); the derivative formulas are in surrogate_grad().
    "atan": 2.0,
    "sigmoid": 4.0,
    "rectangular": 1.0,
    "triangle": 1.0,
    "ste": 1.0,
    "fast_sigmoid": 25.0,  # SuperSpike (Zenke & Ganguli 2018); alpha = snnTorch's default slope
}


def surrogate_grad(x: torch.Tensor, kind: str, alpha: float) -> torch.Tensor:
    """d spike / d x used in backward, for x = h - v_threshold."""
    if kind == "atan":
        return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)
    if kind == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1 - s)
    if kind == "rectangular":
        # width alpha, height 1/alpha: integrates to one.
        return (x.abs() < alpha / 2).to(x.dtype) / alpha
    if kind == "triangle":
        return torch.clamp(alpha - x.abs(), min=0) / (alpha * alpha)
    if kind == "ste":
        return torch.ones_like(x)
    if kind == "fast_sigmoid":
        return (alpha / 2) / (1 + alpha * x.abs()) ** 2
    raise ValueError(f"unknown surrogate {kind!r}; choose one of {', '.join(SURROGATES)}")


def spike(x: torch.Tensor, surrogate: str = "atan", alpha: float | None = None) -> torch.Tensor:
    """Heaviside(x) with the named surrogate gradient."""
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
    return _Spike.apply(x, surrogate, SURROGATES[surrogate] if alpha is None else alpha)


# ---------------------------------------------------------------- fused multi-step loop


_CHUNK = 1 << 18  # elements of surrogate work per backward chunk (1 MiB in float32, about one core's L2)


class _Config(NamedTuple):
    kind: str  # "if" or "lif"
    k: float | torch.Tensor  # 1/tau (a 0-dim tensor for PLIF); unused for IF
    decay_input: bool
    v_threshold: float
    v_reset: float | None
    surrogate: str
    alpha: float
    detach_reset: bool


def _plain_input(x: torch.Tensor) -> bool:
    """True where the fused Function is safe: a plain floating tensor, no functorch or forward AD."""
    return (
        type(x) in (torch.Tensor, nn.Parameter)
        and x.dim() >= 2
        and x.shape[0] > 0
        and x.is_floating_point()
        and not torch._C._are_functorch_transforms_active()
        and torch.autograd.forward_ad._current_level < 0
    )


def _charge_(h: torch.Tensor, v: torch.Tensor, x: torch.Tensor, tmp: torch.Tensor, cfg: _Config) -> None:
    """h = charge(v, x), written in place with the same operations, in the same order, as charge()."""
    if cfg.kind == "if":
        torch.add(v, x, out=h)
        return
    rest = cfg.v_reset if cfg.v_reset is not None else 0.0
    if cfg.decay_input:  # v + (x - (v - rest)) * k; v - 0.0 is v exactly
        torch.sub(x, torch.sub(v, rest, out=tmp) if rest != 0.0 else v, out=tmp)
        tmp.mul_(cfg.k)
        torch.add(v, tmp, out=h)
    else:  # v - (v - rest) * k + x
        if rest != 0.0:
            torch.sub(v, rest, out=tmp).mul_(cfg.k)
        else:
            torch.mul(v, cfg.k, out=tmp)
        torch.sub(v, tmp, out=h).add_(x)


def _reset_(v: torch.Tensor, h: torch.Tensor, s: torch.Tensor, cfg: _Config) -> None:
    """v = reset(h, s) in place; exact for s in {0, 1}, so it equals the reference's formula bitwise."""
    if cfg.v_reset is None:  # h - s * v_threshold
        torch.sub(h, s, alpha=cfg.v_threshold, out=v)
    elif cfg.v_reset == 0.0:  # h * (1 - s): h - h * s
        torch.addcmul(h, h, s, value=-1.0, out=v)
    else:  # h * (1 - s) + v_reset * s
        v.copy_(h).masked_fill_(s.bool(), cfg.v_reset)


def _fused_forward(x: torch.Tensor, cfg: _Config, keep_h: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Spikes [T, ...] (x's dtype and memory layout) and, if keep_h, the charged membrane h [T, ...]."""
    spikes = torch.empty_like(x)
    hs = torch.empty_like(x) if keep_h else None
    v = torch.full_like(x[0], cfg.v_reset if cfg.v_reset is not None else 0.0)
    tmp = torch.empty_like(v)
    h = torch.empty_like(v)
    for t in range(x.shape[0]):
        if hs is not None:
            h = hs[t]
        _charge_(h, v, x[t], tmp, cfg)
        s = spikes[t]
        torch.ge(h, cfg.v_threshold, out=s)  # Heaviside(h - v_threshold): h - v_th >= 0 iff h >= v_th
        _reset_(v, h, s, cfg)
    return spikes, hs


def _surrogate_grad_(y: torch.Tensor, kind: str, alpha: float, scale: float = 1.0) -> torch.Tensor:
    """scale * surrogate_grad(y), computed in place in y in as few passes as possible."""
    if kind == "atan":  # (alpha / 2) / (1 + (pi / 2 * alpha * y) ** 2)
        one = torch.ones((), dtype=y.dtype, device=y.device)
        torch.addcmul(one, y, y, value=(math.pi / 2 * alpha) ** 2, out=y)
        return torch.div(one.fill_(alpha / 2 * scale), y, out=y)
    if kind == "sigmoid":  # alpha * s * (1 - s), s = sigmoid(alpha * y)
        y.mul_(alpha).sigmoid_()
        return y.addcmul_(y, y, value=-1.0).mul_(alpha * scale)
    if kind == "rectangular":  # (|y| < alpha / 2) / alpha
        return torch.lt(y.abs_(), alpha / 2, out=y).mul_(scale / alpha)
    if kind == "triangle":  # max(alpha - |y|, 0) / alpha**2
        return y.abs_().sub_(alpha).clamp_(max=0.0).mul_(-scale / (alpha * alpha))
    if kind == "ste":
        return y.fill_(scale)
    if kind == "fast_sigmoid":  # (alpha / 2) / (1 + alpha * |y|) ** 2
        y.abs_().mul_(alpha).add_(1.0)
        return y.mul_(y).reciprocal_().mul_(alpha / 2 * scale)
    raise ValueError(f"unknown surrogate {kind!r}; choose one of {', '.join(SURROGATES)}")


class _FusedNeuron(torch.autograd.Function):
    """The whole T-step recurrence as one autograd node; saves only h = charge(v[t-1], x[t])."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: torch.Tensor | None, cfg: _Config) -> torch.Tensor:
        spikes, hs = _fused_forward(x, cfg, keep_h=True)
        ctx.cfg = cfg
        # PLIF's d h / d k needs x itself when the input decays (x - (v - rest)); keep x only then.
        keep_x = k is not None and ctx.needs_input_grad[1] and cfg.decay_input
        ctx.save_for_backward(hs, x if keep_x else None)
        return spikes

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_s: torch.Tensor):
        hs, x = ctx.saved_tensors
        cfg: _Config = ctx.cfg
        th, rest = cfg.v_threshold, cfg.v_reset
        # gh[t] = grad_s[t] * sg[t] + leak * m[t] * gh[t+1], with m[t] = d v[t] / d h[t] and
        # leak = d h[t+1] / d v[t]; grad_x = b * gh with b = d h / d x. The loop runs on b * gh
        # (b folded into the surrogate, sg' = b * sg), so grad_x needs no extra pass. One
        # full-size allocation; sg' and m are computed for a few steps at a time (about _CHUNK
        # elements, so they stay in cache and small layers need few calls), then the recurrence
        # runs one fused op per step.
        k = float(cfg.k)
        leak = 1.0 if cfg.kind == "if" else 1.0 - k
        b = k if cfg.kind == "lif" and cfg.decay_input and k != 0.0 else 1.0
        steps = hs.shape[0]
        width = max(1, min(steps, _CHUNK // max(1, hs[0].numel())))
        gh = torch.empty_like(hs)
        sg_buf = torch.empty_like(hs[:width])
        m_buf = None if rest is None and cfg.detach_reset else torch.empty_like(sg_buf)
        for end in range(steps, 0, -width):
            start = max(0, end - width)
            h, sg = hs[start:end], sg_buf[: end - start]
            _surrogate_grad_(torch.sub(h, th, out=sg), cfg.surrogate, cfg.alpha, b)
            torch.mul(grad_s[start:end], sg, out=gh[start:end])
            if m_buf is None:  # soft, detached: d v / d h = 1
                m = None
            elif rest is None:  # soft: d v / d h = 1 - th * sg
                m = torch.mul(sg, -th / b, out=m_buf[: end - start]).add_(1.0)
            else:  # hard: d v / d h = (1 - s) + (rest - h) * sg  ((1 - s) if detached)
                m = torch.lt(h, th, out=m_buf[: end - start])
                if not cfg.detach_reset:
                    if rest != 0.0:
                        m.add_(sg, alpha=rest / b)
                    m.addcmul_(sg, h, value=-1.0 / b)
            for t in range(min(end, steps - 1) - 1, start - 1, -1):
                if m is None:
                    gh[t].add_(gh[t + 1], alpha=leak)
                else:
                    gh[t].addcmul_(m[t - start], gh[t + 1], value=leak)
        grad_k = _grad_k(gh, hs, x, cfg) / b if ctx.needs_input_grad[1] else None
        if cfg.kind == "lif" and cfg.decay_input and k == 0.0:  # sigmoid(w) underflowed: nothing folded
            gh.zero_()
        return gh if ctx.needs_input_grad[0] else None, grad_k, None


def _grad_k(gh: torch.Tensor, hs: torch.Tensor, x: torch.Tensor | None, cfg: _Config) -> torch.Tensor:
    """d loss / d k = sum_t gh[t] * d h[t] / d k, with d h / d k = x - (v - rest) or -(v - rest)."""
    rest = cfg.v_reset if cfg.v_reset is not None else 0.0
    v_prev = torch.empty_like(hs)  # v[t-1], rebuilt exactly from h[t-1] and its spike
    v_prev[0].fill_(rest)
    if hs.shape[0] > 1:
        h_before = hs[:-1]
        _reset_(v_prev[1:], h_before, (h_before >= cfg.v_threshold).to(hs.dtype), cfg)
    d = v_prev.sub_(rest)
    d = torch.sub(x, d, out=d) if cfg.decay_input else d.neg_()
    return (gh * d).sum().to(cfg.k.dtype).reshape(cfg.k.shape)


# ---------------------------------------------------------------- neurons


class BaseNeuron(nn.Module):
    """A multi-step spiking layer. Subclasses define how the membrane charges."""

    #: run the fused loop when the neuron is a plain IF/LIF/PLIF; False forces reference_forward.
    fused: bool = True

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        surrogate: str = "atan",
        alpha: float | None = None,
        detach_reset: bool = False,
    ) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)}")
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.surrogate = surrogate
        self.alpha = SURROGATES[surrogate] if alpha is None else float(alpha)
        self.detach_reset = detach_reset

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self._fused_config(x)
        if cfg is None:
            return self.reference_forward(x)
        k = cfg.k if isinstance(cfg.k, torch.Tensor) else None
        if torch.is_grad_enabled() and (x.requires_grad or (k is not None and k.requires_grad)):
            return _FusedNeuron.apply(x, k, cfg)
        return _fused_forward(x, cfg, keep_h=False)[0]

    def _fused_config(self, x: torch.Tensor) -> _Config | None:
        """The fused loop's settings, or None where only reference_forward is right."""
        if not self.fused or not _plain_input(x):
            return None
        charge = type(self).charge
        if charge is IF.charge:
            kind, k, decay_input = "if", 1.0, False
        elif charge is LIF.charge:
            kind, k, decay_input = "lif", self._decay(), self.decay_input
            if isinstance(k, torch.Tensor) and (
                k.dim() != 0 or not k.is_floating_point() or k.device != x.device
            ):
                return None
        else:
            return None
        return _Config(
            kind,
            k,
            decay_input,
            self.v_threshold,
            self.v_reset,
            self.surrogate,
            self.alpha,
            self.detach_reset,
        )

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The plain step-by-step loop that defines the neuron; fast paths must match it."""
        if x.dim() < 2:
            raise ValueError(f"{type(self).__name__} expects [T, B, ...] input, got shape {tuple(x.shape)}")
        v = torch.full_like(x[0], self.v_reset if self.v_reset is not None else 0.0)
        out = []
        for t in range(x.shape[0]):
            h = self.charge(v, x[t])
            s = spike(h - self.v_threshold, self.surrogate, self.alpha)
            sr = s.detach() if self.detach_reset else s
            if self.v_reset is None:
                v = h - sr * self.v_threshold
            else:
                v = h * (1 - sr) + self.v_reset * sr
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"hard v_reset={self.v_reset}"
        return f"v_threshold={self.v_threshold}, {reset}, surrogate={self.surrogate}(alpha={self.alpha})"


class IF(BaseNeuron):
    """Integrate-and-fire: no leak."""

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return v + x


class LIF(BaseNeuron):
    """Leaky integrate-and-fire with time constant tau (> 1, in steps)."""

    def __init__(self, tau: float = 2.0, decay_input: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if tau <= 1:
            raise ValueError(f"LIF tau must be > 1 step, got {tau}")
        self.tau = float(tau)
        self.decay_input = decay_input

    def _decay(self) -> torch.Tensor | float:
        return 1.0 / self.tau

    def charge(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        k = self._decay()
        rest = self.v_reset if self.v_reset is not None else 0.0
        if self.decay_input:
            return v + (x - (v - rest)) * k
        return v - (v - rest) * k + x

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(LIF):
    """Parametric LIF: 1/tau = sigmoid(w) is learned (Fang et al. 2021)."""

    def __init__(self, init_tau: float = 2.0, **kwargs) -> None:
        super().__init__(tau=init_tau, **kwargs)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    def _decay(self) -> torch.Tensor:
        return torch.sigmoid(self.w)


class Integrator(nn.Module):
    """Non-spiking leaky readout: returns the membrane [T, B, ...] (mean-membrane readout)."""

    def __init__(self, tau: float = 2.0) -> None:
        super().__init__()
        self.tau = float(tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            v = v + (x[t] - v) / self.tau
            out.append(v)
        return torch.stack(out)


# 2-D layers that MultiStep runs in channels_last on CPU, where oneDNN and the pooling kernels are
# several times faster than in NCHW (max pooling 4-7x on [T*B, C, H, W]); later layers keep the layout.
_CHANNELS_LAST = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d)


class _LeanMaxPool2d(torch.autograd.Function):
    """nn.MaxPool2d that keeps only its argmax indices for backward, not its input.

    Same kernels as nn.MaxPool2d (max_pool2d_with_indices and its backward), so outputs and
    gradients are identical; the pooled layer's input (the largest activation in a conv-pool
    block) is freed right after the forward instead of living until backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, pool: nn.MaxPool2d) -> torch.Tensor:
        stride = pool.stride if pool.stride is not None else pool.kernel_size
        args = (pool.kernel_size, stride, pool.padding, pool.dilation, pool.ceil_mode)
        y, idx = torch.ops.aten.max_pool2d_with_indices(x, *args)
        ctx.save_for_backward(idx)
        ctx.args, ctx.like = args, (x.shape, x.stride(), x.dtype, x.device)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (idx,) = ctx.saved_tensors
        shape, stride, dtype, device = ctx.like
        # The backward kernel reads only the input's shape and layout, so an unwritten buffer stands
        # in for it; on CPU the same buffer also receives the gradient (one allocation, not two).
        buf = torch.empty_strided(shape, stride, dtype=dtype, device=device)
        if device.type == "cpu":
            gx = torch.ops.aten.max_pool2d_with_indices_backward.grad_input(
                grad, buf, *ctx.args, idx, grad_input=buf
            )
        else:
            gx = torch.ops.aten.max_pool2d_with_indices_backward(grad, buf, *ctx.args, idx)
        return gx, None


_CONV_CHUNK = 1 << 18  # conv-output elements per chunk of a conv+pool block (1 MiB in float32)


def _conv_pool(m: nn.Module) -> tuple[nn.Conv2d, nn.MaxPool2d] | None:
    """(conv, pool) if m is exactly nn.Sequential(nn.Conv2d, nn.MaxPool2d) that the chunked path handles."""
    if type(m) is not nn.Sequential or len(m) != 2:
        return None
    conv, pool = m[0], m[1]
    if type(conv) is not nn.Conv2d or type(pool) is not nn.MaxPool2d:
        return None
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or pool.return_indices:
        return None
    return (conv, pool) if all(_hookless(k) for k in (m, conv, pool)) else None


def _pool_args(pool: nn.MaxPool2d) -> tuple:
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    return (pool.kernel_size, stride, pool.padding, pool.dilation, pool.ceil_mode)


def _chunk_rows(x: torch.Tensor, conv: nn.Conv2d) -> int:
    """Samples per chunk so that one chunk's conv output has about _CONV_CHUNK elements."""
    size = []
    for i in range(2):
        k = (conv.kernel_size[i] - 1) * conv.dilation[i] + 1
        size.append((x.shape[2 + i] + 2 * conv.padding[i] - k) // conv.stride[i] + 1)
    return max(1, _CONV_CHUNK // max(1, conv.out_channels * size[0] * size[1]))


def _conv_pool_forward(x: torch.Tensor, conv: nn.Conv2d, pool: nn.MaxPool2d, weight, bias, keep_idx: bool):
    """pool(conv(x)) chunk by chunk: the full-size conv output never exists, each chunk stays in cache."""
    n, rows = x.shape[0], _chunk_rows(x, conv)
    args = _pool_args(pool)
    out = idx = None
    for start in range(0, n, rows):
        y = F.conv2d(
            x[start : start + rows], weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups
        )
        if out is None:
            shape = (n, *torch.ops.aten.max_pool2d_with_indices(y[:1], *args)[0].shape[1:])
            out = torch.empty(shape, dtype=y.dtype, device=y.device, memory_format=torch.channels_last)
            idx = torch.empty_like(out, dtype=torch.long) if keep_idx else None
        end = start + y.shape[0]
        if keep_idx:
            torch.ops.aten.max_pool2d_with_indices.out(y, *args, out=out[start:end], indices=idx[start:end])
        else:
            out[start:end] = F.max_pool2d(y, *args)
    return out, (idx if keep_idx else None), rows, y.shape[1:]


class _ConvPool2d(torch.autograd.Function):
    """nn.Sequential(nn.Conv2d, nn.MaxPool2d) over [N, C, H, W], in chunks of samples.

    Forward keeps the pooled output and the argmax, never the full conv output; backward walks
    the same chunks: max-pool backward into one chunk-sized buffer, then the conv's backward for
    that chunk (weight and bias gradients summed over chunks). Same kernels as the two modules,
    so outputs are identical and gradients equal to float rounding (the chunk sums' order)."""

    @staticmethod
    def forward(ctx, x, weight, bias, conv: nn.Conv2d, pool: nn.MaxPool2d):
        out, idx, rows, conv_shape = _conv_pool_forward(x, conv, pool, weight, bias, keep_idx=True)
        ctx.save_for_backward(x, weight, idx)
        ctx.conv, ctx.pool_args, ctx.rows, ctx.conv_shape = conv, _pool_args(pool), rows, conv_shape
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight, idx = ctx.saved_tensors
        conv, rows = ctx.conv, ctx.rows
        need_x, need_w, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        need_b = need_b and ctx.has_bias
        gx = torch.empty_like(x) if need_x else None
        gw = torch.zeros_like(weight) if need_w else None
        gb = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device) if need_b else None
        buf = torch.empty(
            (min(rows, x.shape[0]), *ctx.conv_shape),
            dtype=grad.dtype,
            device=grad.device,
            memory_format=torch.channels_last,
        )
        bias_sizes = [weight.shape[0]] if ctx.has_bias else None
        for start in range(0, x.shape[0], rows):
            end = min(start + rows, x.shape[0])
            b = buf[: end - start]  # stands in for the conv output (shape only) and receives its grad
            gy = torch.ops.aten.max_pool2d_with_indices_backward.grad_input(
                grad[start:end], b, *ctx.pool_args, idx[start:end], grad_input=b
            )
            gxc, gwc, gbc = torch.ops.aten.convolution_backward(
                gy,
                x[start:end],
                weight,
                bias_sizes,
                conv.stride,
                conv.padding,
                conv.dilation,
                False,
                [0, 0],
                conv.groups,
                [need_x, need_w, need_b],
            )
            if need_x:
                gx[start:end] = gxc
            if need_w:
                gw += gwc
            if need_b:
                gb += gbc
        return gx, gw, gb, None, None


def _hookless(m: nn.Module) -> bool:
    """No hook would miss a call that bypasses m.__call__ (the lean pooling and the conv+pool block
    call the kernels directly; with hooks, e.g. an activity probe's, the modules run as is)."""
    from torch.nn.modules import module as mod

    return not (
        m._forward_hooks
        or m._forward_pre_hooks
        or m._backward_hooks
        or m._backward_pre_hooks
        or mod._global_forward_hooks
        or mod._global_forward_pre_hooks
        or mod._global_backward_hooks
        or mod._global_backward_pre_hooks
    )


class MultiStep(nn.Module):
    """Apply a stateless layer (Conv, Linear, BN, pooling) to [T, B, ...] by folding T into B.

    Values equal `module(x.reshape(T*B, ...)).reshape(T, B, ...)` up to the rounding of the
    convolution algorithm. For speed (set `fast = False` to run exactly that):
    - on CPU, 2-D conv, pooling and batch norm run in channels_last, so their outputs (and the
      spikes of a neuron after them) carry channels_last strides: use reshape, not view;
    - a plain nn.MaxPool2d in training saves its argmax but not its input;
    - `MultiStep(nn.Sequential(nn.Conv2d(...), nn.MaxPool2d(...)))` runs as one block on CPU, in
      chunks of samples: the full conv output is never stored, in forward or backward, which is
      both faster (each chunk stays in cache) and leaner than the two layers one after the other.
    """

    #: channels_last on CPU, lean max pooling, chunked conv+pool blocks; False runs the module as is.
    fast: bool = True

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        x = x.reshape(t * b, *x.shape[2:])
        m = self.module
        if self.fast and x.dim() == 4 and x.device.type == "cpu" and x.is_floating_point() and len(x):
            pair = _conv_pool(m)
            if pair is not None:
                conv, pool = pair
                x = x.contiguous(memory_format=torch.channels_last)
                w, bias = conv.weight, conv.bias
                if torch.is_grad_enabled() and any(p is not None and p.requires_grad for p in (x, w, bias)):
                    y = _ConvPool2d.apply(x, w, bias, conv, pool)
                else:
                    y = _conv_pool_forward(x, conv, pool, w, bias, keep_idx=False)[0]
                return y.reshape(t, b, *y.shape[1:])
        if self.fast and x.dim() == 4 and isinstance(m, _CHANNELS_LAST):
            if x.device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            if (
                type(m) is nn.MaxPool2d
                and not m.return_indices
                and torch.is_grad_enabled()
                and x.requires_grad
                and _hookless(m)
            ):
                y = _LeanMaxPool2d.apply(x, m)
                return y.reshape(t, b, *y.shape[1:])
        y = m(x)
        return y.reshape(t, b, *y.shape[1:])
