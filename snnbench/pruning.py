"""Weight pruning shared by the compression baselines: masks, rewinding, IMP, Early-Bird, counts.

A mask is a bool tensor per synaptic layer (Conv1d/2d/3d, Linear: the layers the activity and
footprint probes count), keyed by the layer's module name. Pruned weights are kept exactly zero,
so a checkpoint needs nothing extra: `model.state_dict()` loaded into a fresh build(task) has the
same zeros, and `weight_sparsity` (footprint) and SynOps (activity: fan-out through non-zero
weights) see the pruned network. Models that want the mask itself in the checkpoint call
`register_mask_buffers` in build() (a `weight_mask` buffer per layer, all ones until pruned).

Zeros survive training through `keep_pruned`: pruned weights get zero gradients (a tensor hook)
and are zeroed again after every optimizer step (a step post-hook), so neither Adam's moments nor
weight decay can bring them back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from snnbench.metrics.activity import SYNAPTIC_TYPES

Masks = dict[str, torch.Tensor]  # layer name -> bool mask shaped like its weight (True = kept)
MASK_BUFFER = "weight_mask"


def synaptic_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Named Conv/Linear layers, each weight once (shared weights under their first name)."""
    out: dict[str, nn.Module] = {}
    seen: set[int] = set()
    for name, m in model.named_modules():
        if not isinstance(m, SYNAPTIC_TYPES):
            continue
        w = m.weight
        if isinstance(w, nn.parameter.UninitializedParameter) or id(w) in seen:
            continue
        seen.add(id(w))
        out[name] = m
    if not out:
        raise ValueError("pruning: the model has no Conv1d/2d/3d or Linear layer to prune")
    return out


def current_masks(model: nn.Module) -> Masks:
    """The masks in effect now: True where a weight is non-zero."""
    return {n: (m.weight.detach() != 0) for n, m in synaptic_layers(model).items()}


def full_masks(model: nn.Module) -> Masks:
    """All-True masks (nothing pruned)."""
    return {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in synaptic_layers(model).items()}


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"pruning: sparsity must be in [0, 1), got {sparsity}; pass a fraction such as 0.9")


def _prune_smallest(scores: torch.Tensor, keep: torch.Tensor, n_zero: int) -> torch.Tensor:
    """A keep-mask with exactly n_zero False: the already pruned first, then the smallest scores."""
    s = scores.detach().abs().flatten().to(torch.float64).clone()
    s[~keep.flatten()] = -1.0  # already pruned stay pruned (below any |w|)
    out = torch.ones_like(s, dtype=torch.bool)
    if n_zero > 0:
        idx = torch.argsort(s, stable=True)[:n_zero]
        out[idx] = False
    return out.view_as(keep)


def magnitude_masks(
    model: nn.Module,
    sparsity: float,
    *,
    scope: str = "global",
    masks: Masks | None = None,
    scores: Masks | None = None,
) -> Masks:
    """Masks that zero the fraction `sparsity` of weights with the smallest |w| (or |scores|).

    scope="global" ranks all layers' weights together (IMP's global pruning); scope="layer" prunes
    each layer to the same sparsity. Weights already pruned in `masks` stay pruned and count
    towards the sparsity, so successive calls with growing sparsity nest (IMP rounds). The count is
    exact: round(sparsity * n) weights are zero (ties broken by position).
    """
    _check_sparsity(sparsity)
    layers = synaptic_layers(model)
    masks = masks if masks is not None else full_masks(model)
    scores = scores if scores is not None else {n: m.weight for n, m in layers.items()}
    missing = set(layers) - set(masks)
    if missing:
        raise KeyError(f"pruning: masks lack layers {sorted(missing)}; build them with full_masks(model)")
    if scope == "layer":
        return {n: _prune_smallest(scores[n], masks[n], round(sparsity * masks[n].numel())) for n in layers}
    if scope != "global":
        raise ValueError(f"pruning: scope must be 'global' or 'layer', got {scope!r}")
    names = list(layers)
    flat_s = torch.cat([scores[n].detach().abs().flatten().to(torch.float64).cpu() for n in names])
    flat_k = torch.cat([masks[n].flatten().cpu() for n in names])
    kept = _prune_smallest(flat_s, flat_k, round(sparsity * flat_k.numel()))
    out, start = {}, 0
    for n in names:
        k = masks[n].numel()
        out[n] = kept[start : start + k].view_as(masks[n]).to(masks[n].device)
        start += k
    return out


def largest_per_layer(model: nn.Module, kept: dict[str, int]) -> Masks:
    """Masks keeping exactly kept[name] weights of largest |w| in each layer (others: all kept).

    E.g. a magnitude control with the same per-layer budget as another method's result."""
    out = full_masks(model)
    for n, m in synaptic_layers(model).items():
        if n in kept:
            k = int(kept[n])
            if not 0 <= k <= m.weight.numel():
                raise ValueError(f"pruning: layer {n} has {m.weight.numel()} weights; cannot keep {k}")
            out[n] = _prune_smallest(m.weight, out[n], m.weight.numel() - k)
    return out


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights (and record the masks in `weight_mask` buffers where present)."""
    for n, m in synaptic_layers(model).items():
        if n not in masks:
            continue
        mask = masks[n].to(m.weight.device)
        m.weight.mul_(mask.to(m.weight.dtype))
        buf = getattr(m, MASK_BUFFER, None)
        if isinstance(buf, torch.Tensor):
            buf.copy_(mask.to(buf.dtype))


def register_mask_buffers(model: nn.Module) -> nn.Module:
    """Give each synaptic layer a `weight_mask` buffer (ones), so the checkpoint carries the ticket.

    Call it in build(); apply_masks fills the buffers. Buffers are not parameters: the footprint's
    params and param_bytes do not change.
    """
    for m in synaptic_layers(model).values():
        if not hasattr(m, MASK_BUFFER):
            m.register_buffer(MASK_BUFFER, torch.ones_like(m.weight.detach()))
    return model


def masks_from_buffers(model: nn.Module) -> Masks:
    """The masks stored by register_mask_buffers/apply_masks (True = kept)."""
    out = {}
    for n, m in synaptic_layers(model).items():
        buf = getattr(m, MASK_BUFFER, None)
        if not isinstance(buf, torch.Tensor):
            raise ValueError(
                f"pruning: layer {n} has no {MASK_BUFFER} buffer; call register_mask_buffers in build()"
            )
        out[n] = buf != 0
    return out


@dataclass
class MaskKeeper:
    """Keeps pruned weights at zero while training; `remove()` when done (see keep_pruned)."""

    handles: list = field(default_factory=list)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def keep_pruned(model: nn.Module, masks: Masks, optimizer: torch.optim.Optimizer | None = None) -> MaskKeeper:
    """Zero the pruned weights now, zero their gradients, and (with an optimizer) re-zero them after
    every step. Without an optimizer, call apply_masks after each update yourself."""
    apply_masks(model, masks)
    keeper = MaskKeeper()
    layers = synaptic_layers(model)
    for n, m in layers.items():
        if n in masks:
            mask = masks[n].to(device=m.weight.device, dtype=m.weight.dtype)
            keeper.handles.append(m.weight.register_hook(lambda g, mask=mask: g * mask))
    if optimizer is not None:
        keeper.handles.append(optimizer.register_step_post_hook(lambda *_: apply_masks(model, masks)))
    return keeper


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the state_dict (the weights to rewind to)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def rewind(model: nn.Module, state: dict[str, torch.Tensor], masks: Masks) -> None:
    """Weight rewinding: restore an earlier snapshot (init or an early epoch), then apply the masks."""
    model.load_state_dict(state)
    apply_masks(model, masks)


def imp_schedule(target: float, rate: float = 0.2, tol: float = 1e-3) -> list[float]:
    """Sparsity after each IMP round: 1 - (1 - rate)^k, the last one clipped to `target`.

    A round that would land within `tol` of the target is the last (25% per round reaches 89.99%
    after 8 rounds: a ninth round pruning 0.01% would be noise)."""
    _check_sparsity(target)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"pruning: rate must be in (0, 1), got {rate}; IMP prunes e.g. 0.2 per round")
    if target == 0.0:
        return []
    rounds = 1
    while 1.0 - (1.0 - rate) ** rounds < target - tol:
        rounds += 1
    return [1.0 - (1.0 - rate) ** k for k in range(1, rounds)] + [target]


def imp(
    model: nn.Module,
    train_round: Callable[[nn.Module, Masks, int], object],
    target: float,
    *,
    rate: float = 0.2,
    scope: str = "global",
    rewind_to: dict[str, torch.Tensor] | None = None,
    masks: Masks | None = None,
) -> tuple[Masks, list[dict]]:
    """Iterative magnitude pruning: train, prune `rate` of the remaining weights, rewind, repeat.

    train_round(model, masks, round) trains the model in place keeping `masks` (keep_pruned); it is
    called once per round, before each pruning. After the last round the model holds the ticket:
    `rewind_to` (default: the weights at the call) with the final masks applied, untrained. The log
    has one dict per round: round, sparsity, and what train_round returned (under "train").
    """
    state = rewind_to if rewind_to is not None else snapshot(model)
    masks = masks if masks is not None else full_masks(model)
    log = []
    for r, sparsity in enumerate(imp_schedule(target, rate)):
        result = train_round(model, masks, r)
        masks = magnitude_masks(model, sparsity, scope=scope, masks=masks)
        rewind(model, state, masks)
        log.append({"round": r + 1, "sparsity": sparsity, "train": result})
    return masks, log


def mask_distance(a: Masks, b: Masks) -> float:
    """Normalised Hamming distance: the fraction of weights whose kept/pruned state differs."""
    if set(a) != set(b):
        raise KeyError(f"pruning: mask_distance needs the same layers, got {sorted(a)} and {sorted(b)}")
    differ = total = 0
    for n in a:
        if a[n].shape != b[n].shape:
            raise ValueError(
                f"pruning: layer {n} masks differ in shape: {tuple(a[n].shape)} vs {tuple(b[n].shape)}"
            )
        differ += int((a[n].bool() != b[n].bool().to(a[n].device)).sum())
        total += a[n].numel()
    return differ / total if total else 0.0


class EarlyBird:
    """Early-Bird ticket detector (You et al. 2020): draw the mask each epoch; the ticket has emerged
    when the largest distance between the newest mask and the previous `window - 1` is below delta."""

    def __init__(self, delta: float = 0.1, window: int = 5) -> None:
        if window < 2:
            raise ValueError(f"EarlyBird: window must be >= 2 masks, got {window}")
        self.delta = delta
        self.window = window
        self.queue: deque = deque(maxlen=window)
        self.distances: list[float] = []

    def update(self, masks: Masks) -> bool:
        """Add this epoch's mask; True once the ticket is stable."""
        self.queue.append({n: m.detach().clone() for n, m in masks.items()})
        if len(self.queue) < self.window:
            self.distances.append(float("nan"))
            return False
        newest = self.queue[-1]
        d = max(mask_distance(newest, old) for old in list(self.queue)[:-1])
        self.distances.append(d)
        return d < self.delta


def connectivity(model: nn.Module) -> dict[str, tuple[int, int]]:
    """Per layer (non-zero weights, all weights); key "total" sums them."""
    counts = {}
    nz_all = n_all = 0
    for n, m in synaptic_layers(model).items():
        nz, k = int((m.weight.detach() != 0).sum()), m.weight.numel()
        counts[n] = (nz, k)
        nz_all += nz
        n_all += k
    counts["total"] = (nz_all, n_all)
    return counts


def connectivity_fraction(model: nn.Module) -> float:
    """Fraction of synaptic weights that are non-zero (1 - weight_sparsity)."""
    nz, n = connectivity(model)["total"]
    return nz / n


def random_masks_like(masks: Masks, generator: torch.Generator | None = None) -> Masks:
    """Masks with each layer's kept count unchanged but positions shuffled (a random-ticket control)."""
    out = {}
    for n, m in masks.items():
        flat = m.flatten().cpu()
        perm = torch.randperm(flat.numel(), generator=generator)
        out[n] = flat[perm].view_as(m).to(m.device)
    return out


def prunable_parameters(model: nn.Module) -> Iterable[nn.Parameter]:
    """The synaptic weights (what a pruning optimizer acts on), each once."""
    return [m.weight for m in synaptic_layers(model).values()]
