"""tinysnn: quantize weights and neuron parameters, keep the smallest model within tolerance.

tinySNN (Putra & Shafique 2022): (1) cut operations, (2) improve learning, (3) quantize weights
and neuron parameters (threshold, potential, leak), searching post-training (PTQ) against
in-training quantization (QAT) over bit widths and roundings, (4) keep the smallest model whose
accuracy stays within a tolerance of the full-precision one. Here:
- network: flatten -> QuantLinear(in, HIDDEN) -> QuantLIF -> QuantLinear(HIDDEN, C), no biases,
  mean of the output layer over time (snnbench.quantization's layers and neuron);
- train(): hold out VAL_FRACTION of the training split for the selection; train in full
  precision (the budget's epochs less a fifth); then for each of BITS quantize weights and
  membrane potential (threshold and leak on their fixed-point grids) post-training with nearest
  rounding, and fine-tune the smallest width in training for the last fifth of the epochs (QAT,
  STE, QAT_ROUNDING), starting from the full-precision weights; the selector
  keeps the candidate with the fewest parameter bytes among those within TOLERANCE of the
  full-precision validation accuracy (ties: the more accurate). The chosen bit widths are buffers
  (weight_bits, potential_bits), so the checkpoint carries them and `param_bytes` reports them.
- Step (1) is not searched: the network size is fixed by build(task), and T is the task's.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn
from torch.utils.data import Subset

from snnbench.quantization import QuantLIF, QuantLinear, freeze_, quant_bytes, set_bits_
from snnbench.training import TrainingData, readout

CITATION = """@article{putra2022tinysnn,
  author  = {Putra, Rachmad Vidya Wicaksana and Shafique, Muhammad},
  title   = {tinySNN: Towards Memory- and Energy-Efficient Spiking Neural Networks},
  journal = {arXiv preprint arXiv:2206.08656},
  year    = {2022}
}"""

TASKS = ("digits", "digits-dvs")
# The paper reports memory and energy savings without an accuracy loss, and no single figure.
REPORTED = {}

HIDDEN = 128
TAU = 2.0
BITS = (16, 8, 6, 4)  # candidate widths for weights and membrane potential
LEAK_BITS = 8  # fraction bits of the leak 1/tau
TOLERANCE = 0.01  # accuracy points (as a fraction) the selected model may lose against FP32
QAT_ROUNDING = "stochastic"
VAL_FRACTION = 0.1


class TinySNN(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.fc1 = QuantLinear(n_in, hidden, bias=False, bits=0)
        self.lif = QuantLIF(potential_bits=0, tau=TAU, leak_bits=LEAK_BITS, v_reset=0.0, decay_input=False)
        self.fc2 = QuantLinear(hidden, n_out, bias=False, bits=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.lif(self.fc1(x.flatten(2))))  # [T, B, C]


def build(task) -> nn.Module:
    n_in = 1
    for d in task.input_shape:
        n_in *= int(d)
    return TinySNN(n_in, task.outputs)


@torch.no_grad()
def accuracy(model: nn.Module, data: TrainingData) -> float:
    model.eval()
    correct = seen = 0
    for x, y in data.loader(256, shuffle=False):
        correct += int((readout(model(x)).argmax(1) == y).sum())
        seen += y.numel()
    return correct / max(seen, 1)


def fit(
    model: nn.Module,
    data: TrainingData,
    epochs: int,
    lr: float,
    batch: int,
    log: list,
    deadline: float | None,
):
    """Adam + cross-entropy on the time-mean output; one history row per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        seen = correct = 0
        total = 0.0
        for x, y in data.loader(batch):
            logits = readout(model(x))
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += y.numel()
            correct += int((logits.argmax(1) == y).sum())
            total += loss.item() * y.numel()
        sched.step()
        log.append({"epoch": len(log) + 1, "loss": total / seen, "train_accuracy": correct / seen})
        if deadline is not None and time.monotonic() > deadline:
            return False
    return True


def quantized_copy(model: nn.Module, bits: int, rounding: str = "nearest") -> nn.Module:
    """PTQ: weights and potentials at `bits` (0 = full precision), weights snapped to the grid."""
    m = copy.deepcopy(model)
    set_bits_(m, bits, rounding)
    return freeze_(m) if bits else m


def select(candidates: list[dict], tolerance: float = TOLERANCE) -> dict:
    """The smallest candidate (bytes) within `tolerance` of the full-precision accuracy; ties go
    to the more accurate. The full-precision candidate (bits 0) is always eligible."""
    ref = next(c for c in candidates if c["bits"] == 0)["val_accuracy"]
    ok = [c for c in candidates if c["val_accuracy"] >= ref - tolerance - 1e-12]
    return min(ok, key=lambda c: (c["bytes"], -c["val_accuracy"]))


def split(data: TrainingData) -> tuple[TrainingData, TrainingData]:
    n = len(data.dataset)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(data.seed)).tolist()
    n_val = max(1, int(n * VAL_FRACTION))
    make = lambda idx: TrainingData(data.task, Subset(data.dataset, idx), data.timesteps, data.seed)  # noqa: E731
    return make(perm[n_val:]), make(perm[:n_val])


def train(model: nn.Module, task, data: TrainingData, budget) -> nn.Module:
    started = time.monotonic()
    deadline = started + float(budget.wall_time_s) if budget.wall_time_s else None
    train_part, val_part = split(data)
    qat_epochs = max(1, budget.epochs // 5)
    fp_epochs = max(1, budget.epochs - qat_epochs)
    log = data.history
    fit(model, train_part, fp_epochs, budget.lr, budget.batch_size, log, deadline)
    candidates = []
    states = {}
    for bits in (0, *BITS):
        m = quantized_copy(model, bits)
        candidates.append({"bits": bits, "scheme": "ptq" if bits else "fp32", "rounding": "nearest",
                           "val_accuracy": accuracy(m, val_part), "bytes": quant_bytes(m)})  # fmt: skip
        states[(bits, "ptq")] = m.state_dict()
    smallest = min(BITS)
    if deadline is None or time.monotonic() < deadline:
        m = copy.deepcopy(model)
        set_bits_(m, smallest, QAT_ROUNDING)
        fit(m, train_part, qat_epochs, budget.lr / 2, budget.batch_size, log, deadline)
        freeze_(m)
        candidates.append({"bits": smallest, "scheme": "qat", "rounding": QAT_ROUNDING,
                           "val_accuracy": accuracy(m, val_part), "bytes": quant_bytes(m)})  # fmt: skip
        states[(smallest, "qat")] = m.state_dict()
    chosen = select(candidates)
    key = (chosen["bits"], "qat" if chosen["scheme"] == "qat" else "ptq")
    model.load_state_dict(states[key])
    log.append({"selection": candidates, "chosen": chosen})
    model.eval()
    return model
