"""Swap the backward surrogate of every known spiking neuron, leaving the forward untouched.

Why: a white-box attack on an SNN follows a surrogate gradient, and a single surrogate (usually
the one the network was trained with) is known to overstate robustness: where it is narrow or
vanishes far from threshold the attack stalls although other pseudo-gradients break the model.
So robustness runs its white-box attacks once per surrogate and reports the per-sample worst case
(PROTOCOLS.md section 4, issue 28). This module runs in the submission's process (the sandbox's
`set_surrogate` command); it never changes what the network computes, only its backward.

The swapped derivatives, of x = membrane - threshold, snnbench.neurons' formulas (each
integrates to one; a common scale cannot change a sign-gradient attack):

    rectangular    1[|x| < 1/2]                  (width 1, height 1)
    fast_sigmoid   12.5 / (1 + 25 |x|)^2         (SuperSpike; snnTorch's default slope 25)
    atan           1 / (1 + (pi x)^2)            (arctan, alpha = 2 as in SpikingJelly/snnTorch)

"own" restores the submission's own surrogate. Per framework:

- snnbench BaseNeuron: its `surrogate`/`alpha` attributes, which only the backward reads.
- snnTorch SpikingNeuron: the `spike_grad` callable;
- SpikingJelly BaseNode (and every node with a `surrogate_function`): that submodule;
- Norse (modules whose parameters `p` have `method`/`alpha`): `p.method` is set to a tag that a
  wrapper around Norse's `threshold` (installed in this process on first use) recognises.

For the three peers the replacement computes the spikes with the submission's own spike function
under no_grad and attaches only the new derivative in backward, so the forward is the same bits
by construction (tests/test_robustness_surrogates.py checks it for every installed framework).
"""

from __future__ import annotations

import sys
import weakref

import torch
from torch import nn

from snnbench.frameworks import _has, _mro_names
from snnbench.neurons import BaseNeuron, surrogate_grad

OWN = "own"
# name -> (snnbench surrogate kind, alpha) giving exactly the derivative documented above
SWAPS: dict[str, tuple[str, float]] = {
    "rectangular": ("rectangular", 1.0),
    "fast_sigmoid": ("fast_sigmoid", 25.0),
    "atan": ("atan", 2.0),
}
NAMES = (OWN, *SWAPS)


def derivative(x: torch.Tensor, name: str) -> torch.Tensor:
    """d spike / d x of the swapped surrogate `name` (see the module docstring)."""
    if name not in SWAPS:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {', '.join(SWAPS)}")
    return surrogate_grad(x, *SWAPS[name])


class _Swapped(torch.autograd.Function):
    """Returns the given spikes; backward multiplies by the swapped derivative at x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, spikes: torch.Tensor, name: str) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.name = name
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * derivative(x, ctx.name).to(grad.dtype), None, None


def swapped_spike(fn, x: torch.Tensor, name: str, *args, **kwargs) -> torch.Tensor:
    """fn(x)'s exact forward with `name`'s derivative in backward (fn itself is not differentiated)."""
    if not (torch.is_grad_enabled() and isinstance(x, torch.Tensor) and x.requires_grad):
        return fn(x, *args, **kwargs)
    with torch.no_grad():
        spikes = fn(x.detach(), *args, **kwargs)
    return _Swapped.apply(x, spikes, name)


class _SwapFn:
    """Stands in for a plain-callable surrogate (snnTorch's spike_grad)."""

    def __init__(self, own, name: str) -> None:
        self.own, self.name = own, name

    def __call__(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return swapped_spike(self.own, x, self.name, *args, **kwargs)


class SwappedSurrogate(nn.Module):
    """Stands in for a surrogate that is a module (SpikingJelly's surrogate_function)."""

    def __init__(self, own: nn.Module, name: str) -> None:
        super().__init__()
        object.__setattr__(self, "own", own)  # not a submodule: the state_dict stays the same
        self.name = name

    @property
    def spiking(self) -> bool:  # SpikingJelly reads surrogate_function.spiking
        return bool(getattr(self.own, "spiking", True))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return swapped_spike(self.own, x, self.name, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.name} (forward: {type(self.own).__name__})"


# module -> what it had before the first swap (weak: models are built and dropped per sandbox)
_OWN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NORSE_TAG = "snnbench-swap:"


def _framework(m: nn.Module) -> str | None:
    if isinstance(m, BaseNeuron):
        return "snnbench"
    names = _mro_names(m)
    if _has(names, "snntorch", {"SpikingNeuron"}) and hasattr(m, "spike_grad"):
        return "snntorch"
    sf = getattr(m, "surrogate_function", None)
    if sf is not None and (
        isinstance(sf, nn.Module) or _has(names, "spikingjelly", {"BaseNode", "SimpleBaseNode"})
    ):
        return "spikingjelly"
    p = getattr(m, "p", None)
    if _has(names, "norse", {"SNNCell", "SNN", "SNNRecurrentCell", "SNNRecurrent"}) and hasattr(p, "method"):
        return "norse"
    return None


def swap_surrogates(model: nn.Module, name: str) -> dict[str, int]:
    """Set every known neuron in `model` to surrogate `name` ("own" restores the submission's).
    Returns {framework: neurons swapped}; an empty dict means no known neuron was found."""
    if name not in NAMES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {', '.join(NAMES)}")
    counts: dict[str, int] = {}
    for m in model.modules():
        fw = _framework(m)
        if fw is None:
            continue
        if fw == "snnbench":
            own = _OWN.setdefault(m, (m.surrogate, m.alpha))
            m.surrogate, m.alpha = own if name == OWN else SWAPS[name]
        elif fw == "snntorch":
            own = _OWN.setdefault(m, m.spike_grad)
            _assign(m, "spike_grad", own if name == OWN else _wrap(own, name))
        elif fw == "spikingjelly":
            own = _OWN.setdefault(m, m.surrogate_function)
            _assign(m, "surrogate_function", own if name == OWN else _wrap(own, name))
        else:
            _install_norse_wrapper()
            own = _OWN.setdefault(m, m.p.method)
            method = own if name == OWN else f"{_NORSE_TAG}{name}:{own}"
            m.p = m.p._replace(method=method) if hasattr(m.p, "_replace") else _replace(m.p, method)
        counts[fw] = counts.get(fw, 0) + 1
    return counts


def _wrap(own, name: str):
    return SwappedSurrogate(own, name) if isinstance(own, nn.Module) else _SwapFn(own, name)


def _assign(m: nn.Module, attr: str, value) -> None:
    """Set m.attr even where a module is replaced by a plain callable or the reverse."""
    if attr in m._modules and not isinstance(value, nn.Module):
        del m._modules[attr]
    elif isinstance(value, nn.Module) and attr in m.__dict__:
        del m.__dict__[attr]
    setattr(m, attr, value)


def _replace(p, method: str):
    import dataclasses

    return dataclasses.replace(p, method=method)


def _install_norse_wrapper() -> None:
    """Wrap norse.torch.functional.threshold in every loaded Norse functional module, once: a
    tagged method "snnbench-swap:<name>:<own method>" fires with the own method and
    differentiates with `name`; any other method is passed through unchanged."""
    import norse.torch.functional.threshold as th

    own = getattr(th, "_snnbench_own_threshold", th.threshold)
    if getattr(th.threshold, "_snnbench_swap", False):
        return

    def threshold(x: torch.Tensor, method: str, alpha):
        if isinstance(method, str) and method.startswith(_NORSE_TAG):
            name, own_method = method[len(_NORSE_TAG) :].split(":", 1)
            return swapped_spike(lambda t: own(t, own_method, alpha), x, name)
        return own(x, method, alpha)

    threshold._snnbench_swap = True
    th._snnbench_own_threshold = own
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("norse.") and getattr(mod, "threshold", None) is own:
            mod.threshold = threshold
    th.threshold = threshold
