"""The submission contract: find a submission, load it, and check what its model returns.

A submission is a .py file or a package folder with __init__.py that defines

    build(task) -> torch.nn.Module                         # required
    train(model, task, data, budget) -> torch.nn.Module    # optional: the method's own recipe
    CITATION = "@inproceedings{...}"                       # optional, for `snnbench cite`

This module also fixes how a model comes to be (PROTOCOLS.md section 7): seed, import,
build(task), load the checkpoint, restore torch's global settings, seed again (build_seeded).
Evaluation does that inside the child process (snnbench.sandbox), training in-process
(snnbench.training); the evaluating harness itself only reads a submission's bytes (for its hash)
and never executes it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from snnbench.literals import static_constant


class SubmissionError(RuntimeError):
    """The submission broke the contract; str(err) is the one-line reason stored in the run row."""


@dataclass(frozen=True)
class SubmissionRef:
    """A submission on disk: where it is, what to call it, and the hash of its code."""

    path: Path
    method: str
    sha256: str
    is_package: bool

    @property
    def entry_file(self) -> Path:
        return self.path / "__init__.py" if self.is_package else self.path


def resolve(path: str | Path) -> SubmissionRef:
    """Check that `path` is a loadable submission; raise ValueError (one line, with the fix) if not."""
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise ValueError(f"submission {path}: no such file or folder; pass a .py file or a package folder")
    if p.is_dir():
        if not (p / "__init__.py").is_file():
            raise ValueError(
                f"submission {path}: folder has no __init__.py; add one that defines build(task)"
            )
        return SubmissionRef(p, p.name, _hash_folder(p), True)
    if p.suffix != ".py":
        raise ValueError(
            f"submission {path}: expected a .py file or a package folder, got {p.suffix or 'no suffix'}"
        )
    method = p.parent.name if p.stem == "submission" else p.stem
    return SubmissionRef(p, method, hashlib.sha256(p.read_bytes()).hexdigest(), False)


def declares_no_training(ref: SubmissionRef) -> bool:
    """True when the submission says `NEEDS_TRAINING = False` (e.g. a random-policy reference, or
    weights shipped beside the code): its runs without --checkpoint stay reportable."""
    return static_constant(ref.path, "NEEDS_TRAINING") is False


def declared_timesteps(ref: SubmissionRef) -> int | None:
    """`TIMESTEPS = N` in a submission: the T its method is defined at (e.g. a proxy-trained IF
    network at 16 steps), used by train and evaluate when --timesteps is not given."""
    value = static_constant(ref.path, "TIMESTEPS")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _hash_folder(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.py")):
        if "__pycache__" in f.parts:
            continue
        h.update(str(f.relative_to(folder)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def file_sha256(path: str | Path | None) -> str | None:
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_module(ref: SubmissionRef) -> ModuleType:
    """Import the submission under a private module name (its folder goes on sys.path for siblings)."""
    name = f"snnbench_submission_{ref.sha256[:12]}"
    folder = str(ref.path if ref.is_package else ref.path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    kwargs = {"submodule_search_locations": [str(ref.path)]} if ref.is_package else {}
    spec = importlib.util.spec_from_file_location(name, ref.entry_file, **kwargs)
    if spec is None or spec.loader is None:
        raise SubmissionError(f"cannot import {ref.entry_file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise SubmissionError(f"importing the submission raised {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(module, "build", None)):
        raise SubmissionError(
            f"{ref.entry_file.name} defines no build(task); add `def build(task) -> torch.nn.Module`"
        )
    return module


def build_model(module: ModuleType, task) -> torch.nn.Module:
    try:
        model = module.build(task)
    except Exception as exc:
        raise SubmissionError(f"build(task) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise SubmissionError(
            f"build(task) returned {type(model).__name__}; it must return a torch.nn.Module"
        )
    return model


def describe(obj: object) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a {obj.dtype} tensor shaped {list(obj.shape)}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__module__}.{type(obj).__name__}"


def check_output(out: object, timesteps: int, batch: int, width: int) -> torch.Tensor:
    """The model's output if it honours the contract, else a SubmissionError saying what came back."""
    expected = f"expected one floating torch.Tensor shaped [T={timesteps}, B={batch}, C={width}] or [B={batch}, C={width}]"
    if isinstance(out, (tuple, list)):
        raise SubmissionError(
            f"model returned {describe(out)}; {expected} (for snnTorch-style (spikes, membrane) outputs, return one of them)"
        )
    if not isinstance(out, torch.Tensor):
        raise SubmissionError(f"model returned {describe(out)}; {expected}")
    if not out.is_floating_point():
        raise SubmissionError(f"model returned {describe(out)}; {expected}")
    if tuple(out.shape) not in ((timesteps, batch, width), (batch, width)):
        raise SubmissionError(f"model returned {describe(out)}; {expected}")
    bad = ~torch.isfinite(out)
    if bool(bad.any()):
        n_nan = int(torch.isnan(out).sum())
        raise SubmissionError(
            f"model output has {n_nan} NaN and {int(bad.sum()) - n_nan} infinite entries of {out.numel()}; {expected} with finite values"
        )
    return out


# ---------------------------------------------------------------- seeding and building


@dataclass(frozen=True)
class GlobalTorchState:
    """Process-wide torch settings a submission could change to sway numbers."""

    default_dtype: torch.dtype
    num_threads: int
    grad_enabled: bool
    deterministic: bool

    @classmethod
    def capture(cls) -> GlobalTorchState:
        return cls(
            torch.get_default_dtype(),
            torch.get_num_threads(),
            torch.is_grad_enabled(),
            torch.are_deterministic_algorithms_enabled(),
        )

    def restore(self) -> None:
        torch.set_default_dtype(self.default_dtype)
        torch.set_num_threads(self.num_threads)
        torch.set_grad_enabled(self.grad_enabled)
        torch.use_deterministic_algorithms(self.deterministic)


def seed_everything(seed: int) -> None:
    """Seed Python's random, numpy and torch (the three generators submissions draw from)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_seeded(
    ref: SubmissionRef,
    task,
    seed: int,
    state: GlobalTorchState,
    checkpoint: bytes | str | None = None,
    device: str = "cpu",
) -> tuple[ModuleType, torch.nn.Module]:
    """(module, model) in the order PROTOCOLS.md section 7 fixes: seed, import and build(task), load
    the checkpoint, then restore torch's global settings (`state`, captured before the submission
    was imported) and seed again, so whatever the submission changed cannot sway the numbers.

    `checkpoint` is the checkpoint's bytes (what the parent hashed is exactly what is loaded) or a
    path."""
    seed_everything(seed)
    module = load_module(ref)
    model = build_model(module, task)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    model.to(device)
    state.restore()
    seed_everything(seed)
    return module, model


def load_checkpoint(model: torch.nn.Module, checkpoint: bytes | str) -> None:
    """Load a state_dict; a mismatch is one line naming the first missing, unexpected or misshapen entry."""
    source = io.BytesIO(checkpoint) if isinstance(checkpoint, (bytes, bytearray)) else checkpoint
    name = "the checkpoint" if isinstance(source, io.BytesIO) else f"checkpoint {Path(checkpoint).name}"
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SubmissionError(
            f"{name} is not a readable state_dict ({type(exc).__name__}); pass the .pt file `snnbench train` wrote"
        ) from exc
    if not isinstance(state, dict):
        raise SubmissionError(f"{name} holds a {type(state).__name__}, not a state_dict")
    problem = state_dict_mismatch(model.state_dict(), state)
    if problem:
        raise SubmissionError(
            f"{name} does not fit build(task)'s model: {problem}; was it trained from another build() or task?"
        )
    model.load_state_dict(state)


def state_dict_mismatch(expected: dict, found: dict) -> str | None:
    """The first difference between the model's state_dict and a checkpoint's, in words, or None."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    counts = (
        f" ({len(missing)} missing, {len(unexpected)} unexpected in all)" if missing and unexpected else ""
    )
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return f"missing key {missing[0]!r}{more}{counts}"
    if unexpected:
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        return f"unexpected key {unexpected[0]!r}{more}"
    for key, value in expected.items():
        other = found[key]
        if isinstance(value, torch.Tensor) and isinstance(other, torch.Tensor) and value.shape != other.shape:
            return f"{key!r} has shape {list(other.shape)} in the checkpoint but {list(value.shape)} in the model"
    return None
