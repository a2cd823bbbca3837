"""adcless_imc: ADC-less in-memory computing, 1-bit partial sums, hardware-aware training.

Apolinario, Kosta, Saxena & Roy 2022: every synaptic layer is mapped onto crossbars of R rows; a
layer of fan-in N needs ceil(N / R) crossbars per output column, and each crossbar's analog
partial sum is read by a sense amplifier, a 1-bit ADC (1 if > 0), instead of a high-precision ADC.
The bits are added digitally, each with a per-crossbar scale. Training is hardware-aware (the sense
amplifier's step passes gradients by a straight-through estimator) and the awareness is raised
progressively, layer by layer. Here:
- Crossbar layers (CrossbarConv2d / CrossbarLinear) are snnbench.quantization Quant layers
  (WEIGHT_BITS-bit weights, fake-quantized in training, frozen at the end: `param_bytes` counts
  them at that width). When `aware` (a buffer, so evaluation reads it from the checkpoint) a layer
  returns sum_k alpha_k * (2 [p_k > 0] - 1) + bias over its crossbar tiles k (the flattened fan-in
  cut in consecutive R-row blocks; the adder reads the bit as +-1: reconstruction), else the exact
  sum (an ideal high-precision ADC). p_k > 0 is decided as p_k > half a weight step (partial sums
  of integer inputs are whole steps), so float round-off never flips an exact zero.
- alpha_k (a parameter per tile) is set when a layer turns aware to mean |p_k| on one batch (the
  least-squares scale; reconstruction), then learned. STE: slope 1/alpha_k inside |p_k| <=
  alpha_k (hardtanh; reconstruction).
- train(): FLOAT_FRACTION of the epochs with exact partial sums, then the rest split into one phase
  per layer, phase i making layers 1..i aware (first to last: reconstruction); SCHEDULE="all"
  turns every layer aware at once instead.
- Network (digits-dvs, T=10): 2x2 sum pooling of the event counts, conv 2->8 (fan-in 18: one
  crossbar), BN, LIF, max pool, conv 8->16 (fan-in 72: two), BN, LIF, max pool, linear 256->10
  (four), mean over time. The energy/latency model is the
  harness's crossbar cards (snnbench.metrics.energy.CROSSBAR_MODELS: imc-adcless-r64 vs
  imc-adc6-r64), priced from the stored counts of the evaluation run.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from snnbench.neurons import LIF, MultiStep
from snnbench.quantization import QuantConv2d, QuantLinear, freeze_, max_scale
from snnbench.training import TrainingData, readout

CITATION = """@article{apolinario2022adcless,
  author  = {Apolinario, Marco Paul E. and Kosta, Adarsh Kumar and Saxena, Utkarsh and Roy, Kaushik},
  title   = {Hardware/Software co-design with {ADC}-Less In-memory Computing Hardware for Spiking
             Neural Networks},
  journal = {arXiv preprint arXiv:2211.02167},
  year    = {2022}
}"""

TASKS = ("digits-dvs",)
# The paper's own figures (METHODS.md; not re-checked): energy and latency ratios of ADC-less IMC
# against high-precision-ADC IMC, lower and upper ends of the reported ranges.
REPORTED = {
    "energy reduction vs HP-ADC IMC, min (x)": 2.0,
    "energy reduction vs HP-ADC IMC, max (x)": 7.0,
    "latency reduction vs HP-ADC IMC, min (x)": 8.9,
    "latency reduction vs HP-ADC IMC, max (x)": 24.6,
}

ROWS = 64  # R: crossbar rows (the paper: 64 or 128)
WEIGHT_BITS = 4  # reconstruction
TAU = 2.0
C1, C2 = 8, 16  # channels of the two conv layers (sized for one CPU core)
FLOAT_FRACTION = 0.4
STE_WINDOW = 1.0  # the straight-through window, in units of alpha_k (reconstruction)
SCHEDULE = "progressive"  # or "all"


class _SenseAmp(torch.autograd.Function):
    """The sense amplifier's bit b = [p > 0], read by the digital adder as 2b - 1 (+-1); backward
    1/a inside |p| <= a (the derivative of hardtanh(p / a): a straight-through window)."""

    @staticmethod
    def forward(ctx, p: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(p, a)
        return 2 * (p > 0).to(p.dtype) - 1

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        p, a = ctx.saved_tensors
        a = a.abs().clamp_min(1e-6)
        return grad * (p.abs() <= a).to(grad.dtype) / a, None


def sense_amp(p: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    return _SenseAmp.apply(p, STE_WINDOW * window.detach())


class _Crossbar:
    """Tiling of the flattened fan-in into R-row crossbars, and the 1-bit read of each tile."""

    rows: int

    def _init_crossbar(self, fan_in: int, rows: int) -> None:
        self.rows = int(rows)
        self.tiles = math.ceil(fan_in / self.rows)
        self.xbar_scale = nn.Parameter(torch.ones(self.tiles))
        self.register_buffer("aware", torch.tensor(False))

    def half_step(self) -> torch.Tensor | float:
        """Half the weight grid step: a partial sum of integer inputs is a whole number of steps, so
        p > step/2 is p > 0 without float round-off deciding exact zeros."""
        bits = int(self.weight_bits)
        if bits == 0:
            return 0.0
        frozen = float(self.weight_scale) > 0
        return 0.5 * (self.weight_scale if frozen else max_scale(self.weight, bits)).detach()

    def combine(self, partials: torch.Tensor, dim: int) -> torch.Tensor:
        """partials: the tile axis at `dim`; 1-bit reads weighted by alpha_k, summed over tiles."""
        shape = [1] * partials.dim()
        shape[dim] = self.tiles
        alpha = self.xbar_scale.view(shape)
        return (sense_amp(partials - self.half_step(), alpha) * alpha).sum(dim)

    @torch.no_grad()
    def calibrate_(self, partials: torch.Tensor, dim: int) -> None:
        """alpha_k = mean |p_k| of tile k: the least-squares scale of alpha * sign(p) for p
        (1 where every partial sum is 0)."""
        m = partials.transpose(0, dim).reshape(self.tiles, -1).abs().mean(1)
        self.xbar_scale.copy_(torch.where(m > 0, m, torch.ones_like(m)))


class CrossbarLinear(_Crossbar, QuantLinear):
    def __init__(
        self, in_features: int, out_features: int, rows: int = ROWS, bits: int = WEIGHT_BITS
    ) -> None:
        QuantLinear.__init__(self, in_features, out_features, bias=True, bits=bits)
        self._init_crossbar(in_features, rows)

    def partials(self, x: torch.Tensor) -> torch.Tensor:
        """[..., tiles, out] partial sums."""
        w = self.quantized_weight()
        pad = self.tiles * self.rows - self.in_features
        xw = nn.functional.pad(x, (0, pad)).unflatten(-1, (self.tiles, self.rows))
        ww = nn.functional.pad(w, (0, pad)).unflatten(-1, (self.tiles, self.rows))
        return torch.einsum("...kr,okr->...ko", xw, ww)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.aware):
            return nn.functional.linear(x, self.quantized_weight(), self.bias)
        return self.combine(self.partials(x), -2) + self.bias


class CrossbarConv2d(_Crossbar, QuantConv2d):
    def __init__(self, cin: int, cout: int, k: int, rows: int = ROWS, bits: int = WEIGHT_BITS, **kw) -> None:
        QuantConv2d.__init__(self, cin, cout, k, bits=bits, **kw)
        self._init_crossbar(cin // self.groups * k * k, rows)

    def tile_masks(self) -> torch.Tensor:
        """[tiles, fan_in] 0/1: tile k holds flattened fan-in entries [kR, (k+1)R)."""
        idx = torch.arange(self.weight[0].numel(), device=self.weight.device)
        return (idx.unsqueeze(0) // self.rows == torch.arange(self.tiles, device=idx.device).unsqueeze(1)).to(
            self.weight.dtype
        )

    def partials(self, x: torch.Tensor) -> torch.Tensor:
        """[B, tiles, C_out, H, W] partial sums (no bias)."""
        w = self.quantized_weight()
        flat = w.flatten(1)
        out = [self._conv_forward(x, (flat * m).view_as(w), None) for m in self.tile_masks()]
        return torch.stack(out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.aware):
            return self._conv_forward(x, self.quantized_weight(), self.bias)
        out = self.combine(self.partials(x), 1)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


class SumPool2d(nn.Module):
    """k x k sum of event counts (stays integer: the first crossbar still receives spikes)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = nn.functional.avg_pool2d(x.flatten(0, 1), self.k, divisor_override=1)
        return y.unflatten(0, (t, b))


class ImcSNN(nn.Module):
    def __init__(self, channels: int, height: int, width: int, classes: int, rows: int = ROWS) -> None:
        super().__init__()
        self.pool_in = SumPool2d(2)
        conv1 = CrossbarConv2d(channels, C1, 3, rows=rows, padding=1, bias=False)
        conv2 = CrossbarConv2d(C1, C2, 3, rows=rows, padding=1, bias=False)
        self.block1 = nn.Sequential(MultiStep(conv1), MultiStep(nn.BatchNorm2d(C1)), LIF(tau=TAU))
        self.block2 = nn.Sequential(MultiStep(conv2), MultiStep(nn.BatchNorm2d(C2)), LIF(tau=TAU))
        self.pool = MultiStep(nn.MaxPool2d(2))
        self.fc = CrossbarLinear(C2 * (height // 8) * (width // 8), classes, rows=rows)

    def crossbars(self) -> list[_Crossbar]:
        return [self.block1[0].module, self.block2[0].module, self.fc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.block1(self.pool_in(x)))
        x = self.pool(self.block2(x))
        return self.fc(x.flatten(2))  # [T, B, C]


def build(task) -> nn.Module:
    channels, height, width = task.input_shape
    return ImcSNN(channels, height, width, task.outputs)


# ---------------------------------------------------------------- training


@torch.no_grad()
def make_aware_(model: ImcSNN, layers: list[_Crossbar], x: torch.Tensor) -> None:
    """Turn the given crossbar layers aware, each calibrated on the batch x as its input arrives."""
    handles = []

    def hook(module, args):
        if module in layers and not bool(module.aware):
            inp = args[0]
            dim = -2 if isinstance(module, CrossbarLinear) else 1
            module.calibrate_(module.partials(inp), dim)
            module.aware.fill_(True)

    for m in model.crossbars():
        handles.append(m.register_forward_pre_hook(hook))
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)


def phases(epochs: int, n_layers: int, schedule: str = SCHEDULE) -> list[int]:
    """Per epoch, how many crossbar layers (first to last) are aware: 0 during the float part."""
    n_float = max(1, round(epochs * FLOAT_FRACTION)) if epochs > 1 else 0
    rest = epochs - n_float
    if schedule == "all":
        return [0] * n_float + [n_layers] * rest
    if schedule != "progressive":
        raise ValueError(f"unknown schedule {schedule!r}; choose 'progressive' or 'all'")
    out = [0] * n_float
    for i in range(rest):
        out.append(min(n_layers, 1 + i * n_layers // max(rest, 1)))
    return out


def run_epochs(
    model, data: TrainingData, plan: list[int], lr: float, batch: int, log: list, deadline=None
) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, len(plan)))
    loss_fn = nn.CrossEntropyLoss()
    for aware in plan:
        xbars = model.crossbars()
        todo = [m for m in xbars[:aware] if not bool(m.aware)]
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(batch):
            if todo:
                make_aware_(model, todo, x)
                todo = []
            logits = readout(model(x))
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        sched.step()
        log.append({"epoch": len([h for h in log if "epoch" in h]) + 1, "aware_layers": aware,
                    "loss": total / seen, "train_accuracy": correct / seen})  # fmt: skip
        if deadline is not None and time.monotonic() > deadline:
            break


def train(model: nn.Module, task, data: TrainingData, budget) -> nn.Module:
    deadline = time.monotonic() + float(budget.wall_time_s) if budget.wall_time_s else None
    plan = phases(budget.epochs, len(model.crossbars()))
    run_epochs(model, data, plan, budget.lr, budget.batch_size, data.history, deadline)
    if not all(bool(m.aware) for m in model.crossbars()):  # cut by the clock: deploy as the hardware reads
        x, _ = next(iter(data.loader(budget.batch_size)))
        make_aware_(model, [m for m in model.crossbars() if not bool(m.aware)], x)
    freeze_(model)
    model.eval()
    return model
