"""A cache of ANN teachers in several sizes per task, trained on demand, never downloaded.

Five KD baselines distil from the same teachers; each teacher is trained once per machine and
reused. A teacher is a small ReLU CNN (MLP for flat inputs) whose width is set by its size name.
It takes the student's encoded input [T, B, *input_shape] and folds time into the channels
([B, T*C, H, W]; [B, T*features] for flat inputs), so teacher and student see the same batch and an
event-camera teacher sees the order of the frames (a mean frame lost it: on digits-dvs the "large"
teacher reached 0.920 on the mean frame).

Cache key: task id, task version, T, size (and its width), seed, epochs, batch size, lr, the
number of training samples and RECIPE_VERSION. Location: $SNNBENCH_TEACHERS, else
$SNNBENCH_CACHE/teachers, else $XDG_CACHE_HOME/snnbench/teachers, else ~/.cache/snnbench/teachers.
Files are written atomically (temporary + fsync + rename), so concurrent trainers never leave a
partial file; the last writer wins with identical weights.

The recipe is Adam at a constant learning rate (no schedule) on cross-entropy: the checkpoint
after e epochs of a longer run is the same as an e-epoch run, so `keep_epochs` stores the
intermediate teachers that kd_teacher_sweetspot scores without training them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "RECIPE_VERSION",
    "SIZES",
    "TeacherNet",
    "build_teacher",
    "cache_dir",
    "get_teacher",
    "teacher_key",
    "teacher_path",
]

RECIPE_VERSION = 2  # 2: time folded into channels (1 averaged it)
# size name -> base width (channels of the first conv layer; hidden units = 4x base for MLPs)
SIZES: dict[str, int] = {"tiny": 2, "small": 4, "medium": 8, "large": 16, "xlarge": 32}
DEFAULT_LR = 1e-3


class TeacherNet(nn.Module):
    """ReLU ANN: conv(w)-BN-ReLU-pool, conv(2w)-BN-ReLU-pool, fc(4w)-ReLU, fc(classes) for [C,H,W]
    inputs (pooling adapts so 8x8 and 64x64 inputs both work); 2-layer MLP of 4w units for flat ones.
    """

    def __init__(self, input_shape: tuple[int, ...], classes: int, width: int, timesteps: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.timesteps = int(timesteps)
        if len(self.input_shape) == 3:
            c, h, w = self.input_shape
            c = c * self.timesteps
            pooled = (max(1, min(h // 4, 4)), max(1, min(w // 4, 4)))
            self.body = nn.Sequential(
                nn.Conv2d(c, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
                nn.BatchNorm2d(2 * width),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(pooled),
                nn.Flatten(),
                nn.Linear(2 * width * pooled[0] * pooled[1], 4 * width),
                nn.ReLU(),
            )
        else:
            features = self.timesteps
            for s in self.input_shape:
                features *= s
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Linear(features, 4 * width),
                nn.ReLU(),
                nn.Linear(4 * width, 4 * width),
                nn.ReLU(),
            )
        self.head = nn.Linear(4 * width, classes)

    def static_input(self, x: torch.Tensor) -> torch.Tensor:
        """[T, B, C, ...] -> [B, T*C, ...]: the T steps side by side as channels."""
        if x.dim() != len(self.input_shape) + 2 or x.shape[0] != self.timesteps:
            raise ValueError(
                f"teacher expects [T={self.timesteps}, B, *{self.input_shape}], got {tuple(x.shape)}; "
                "get a teacher for the T the student trains at"
            )
        return x.movedim(0, 1).flatten(1, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate representation [B, 4w] (for hint and Gram losses)."""
        return self.body(self.static_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_teacher(task, size: str, timesteps: int) -> TeacherNet:
    if size not in SIZES:
        raise ValueError(f"unknown teacher size {size!r}; choose one of {', '.join(SIZES)}")
    return TeacherNet(tuple(task.input_shape), int(task.outputs), SIZES[size], timesteps)


def cache_dir() -> Path:
    """$SNNBENCH_TEACHERS, else $SNNBENCH_CACHE/teachers, else $XDG_CACHE_HOME/snnbench/teachers."""
    if os.environ.get("SNNBENCH_TEACHERS"):
        return Path(os.environ["SNNBENCH_TEACHERS"]).expanduser()
    if os.environ.get("SNNBENCH_CACHE"):
        return Path(os.environ["SNNBENCH_CACHE"]).expanduser() / "teachers"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "snnbench" / "teachers"


def teacher_key(
    task,
    size: str,
    seed: int,
    timesteps: int,
    epochs: int,
    batch_size: int,
    lr: float,
    n_train: int,
    tag: str = "",
) -> str:
    """16 hex digits of sha256 over everything that changes the teacher's weights."""
    if size not in SIZES:
        raise ValueError(f"unknown teacher size {size!r}; choose one of {', '.join(SIZES)}")
    fields = {
        "task": task.id,
        "version": task.version,
        "input_shape": list(task.input_shape),
        "outputs": int(task.outputs),
        "timesteps": int(timesteps),
        "size": size,
        "width": SIZES[size],
        "seed": int(seed),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "n_train": int(n_train),
        "recipe": RECIPE_VERSION,
    }
    if tag:  # names a training subset (e.g. a split held out for scoring); "" keeps older keys
        fields["tag"] = str(tag)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def teacher_path(
    task,
    size: str,
    seed: int,
    timesteps: int,
    epochs: int,
    batch_size: int,
    lr: float,
    n_train: int,
    tag: str = "",
) -> Path:
    key = teacher_key(task, size, seed, timesteps, epochs, batch_size, lr, n_train, tag)
    return cache_dir() / f"{task.id}-v{task.version}-{size}-seed{seed}-e{epochs}-b{batch_size}-{key}.pt"


def _write_atomic(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, task, size: str, timesteps: int) -> TeacherNet | None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # a cache hit leaves the global RNG as a miss does
            model = build_teacher(task, size, timesteps)
        model.load_state_dict(state["state_dict"])
    except Exception:  # unreadable or stale entry: retrain and replace it
        return None
    return _frozen(model)


def _frozen(model: TeacherNet) -> TeacherNet:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _fit(model: TeacherNet, loader_factory, epochs: int, lr: float, on_epoch=None) -> None:
    """Adam at a constant lr on cross-entropy; on_epoch(epoch, model) after every epoch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in loader_factory():
            loss = F.cross_entropy(model(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        if on_epoch is not None:
            on_epoch(epoch, model)


def get_teacher(
    task,
    data,
    size: str = "large",
    seed: int = 0,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float = DEFAULT_LR,
    keep_epochs: Iterable[int] = (),
    tag: str = "",
    progress: bool = True,
) -> TeacherNet:
    """The cached teacher for (task, size, seed, recipe), trained on `data` first if absent.

    `data` is the TrainingData a submission's train() receives (its dataset and T are used; its
    loader's shuffle counter is left untouched, so a cache hit and a miss give the student the same
    batches). `epochs` / `batch_size` default to the task's [train] budget. The teacher comes back
    in eval mode with frozen parameters. `tag` must name the subset when `data.dataset` is not the
    whole training split (it goes into the key with the subset's size). Training is seeded and runs in a forked RNG, so the
    global random state is the same after a hit or a miss.
    """
    from snnbench.recipes.bptt import TrainingData

    epochs = int(epochs if epochs is not None else task.train.get("epochs", 30))
    batch_size = int(batch_size if batch_size is not None else task.train.get("batch_size", 64))
    n_train = len(data.dataset)
    args = (task, size, seed, data.timesteps)

    def path_for(e: int) -> Path:
        return teacher_path(*args, e, batch_size, lr, n_train, tag)

    target = path_for(epochs)
    keep = sorted({int(e) for e in keep_epochs if 0 < int(e) < epochs})
    if target.exists() and all(path_for(e).exists() for e in keep):
        model = _load(target, task, size, data.timesteps)
        if model is not None:
            if progress:
                print(f"teacher {task.id} {size} seed {seed}: cached {target}", file=sys.stderr, flush=True)
            return model
    started = time.monotonic()
    if progress:
        print(
            f"teacher {task.id} {size} seed {seed}: training {epochs} epochs once -> {target}",
            file=sys.stderr,
            flush=True,
        )
    own = TrainingData(task, data.dataset, data.timesteps, seed)  # its own shuffle counter

    def save(epoch: int, model: TeacherNet) -> None:
        if epoch == epochs or epoch in keep:
            meta = {"task": task.id, "version": task.version, "size": size, "seed": seed, "epochs": epoch}
            _write_atomic(path_for(epoch), {"state_dict": model.state_dict(), "meta": meta})

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_teacher(task, size, data.timesteps)
        _fit(model, lambda: own.loader(batch_size), epochs, lr, save)
    if progress:
        print(
            f"teacher {task.id} {size} seed {seed}: trained in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return _frozen(model)


def load_cached(
    task, data, size: str, seed: int, epochs: int, batch_size: int, lr: float = DEFAULT_LR, tag: str = ""
) -> TeacherNet | None:
    """A cached teacher if present (e.g. an intermediate epoch kept by keep_epochs), else None."""
    path = teacher_path(task, size, seed, data.timesteps, epochs, batch_size, lr, len(data.dataset), tag)
    return _load(path, task, size, data.timesteps) if path.exists() else None
