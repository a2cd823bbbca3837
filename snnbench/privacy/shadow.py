"""The harness-controlled member set and the models trained on it (target and reference models).

Pool: 2 * M samples of the task's training split (M = [privacy] members), drawn with the run seed.
The target trains on a random half of the pool (the members); the other half are the non-members.
Reference models come in complementary pairs: model 2j trains on a random half of the pool and
model 2j+1 on the other half, so every sample is OUT for exactly K/2 of them (offline attacks use
those; K odd: the last one is unpaired). The rest of the training split, which no model sees, is the
RMIA population.

Every model is trained in a sandboxed child (sandbox command `train_on`: the submission's train()
or the default recipe under the task's [train] budget) and scored there from outputs alone; the
parent computes each sample's probability of its true label. Reference models are cached under
<cache_root>/privacy/ by task version, submission hash, seed, member count and index, with their
checkpoint and outputs, since training them is the whole cost of the attack.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnbench.encoding import encoder_for

DEFAULT_REFERENCE_MODELS = 4
POPULATION = 500  # RMIA z samples, at most
TRAIN_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class MemberSplit:
    """Indices into the training split: pool (members + non-members), members mask, population."""

    pool: np.ndarray  # [2M] dataset indices
    member: np.ndarray  # [2M] bool: the target trained on it
    population: np.ndarray  # dataset indices no model trains on
    ref_in: np.ndarray  # [K, 2M] bool: reference model k trained on it


def member_split(n_train: int, members: int | None, references: int, seed: int) -> MemberSplit:
    """The split for one run; a function of the sizes and the seed only."""
    m = members if members is not None else n_train // 4
    if m < 1 or 2 * m > n_train:
        raise ValueError(
            f"[privacy] members = {m} needs 2 x {m} training samples, the split has {n_train}; "
            "lower [privacy] members in the task file"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E17]))
    order = rng.permutation(n_train)
    pool, rest = order[: 2 * m], order[2 * m :]
    member = np.zeros(2 * m, dtype=bool)
    member[rng.permutation(2 * m)[:m]] = True
    ref_in = np.zeros((references, 2 * m), dtype=bool)
    for k in range(0, references, 2):  # complementary pairs: every sample is OUT for K/2 models
        half = rng.permutation(2 * m)[:m]
        ref_in[k, half] = True
        if k + 1 < references:
            ref_in[k + 1] = ~ref_in[k]
    return MemberSplit(pool, member, np.sort(rest[:POPULATION]), ref_in)


def privacy_cache_dir() -> Path:
    """<SNNBENCH_CACHE or ~/.cache/snnbench>/privacy; SNNBENCH_PRIVACY_CACHE overrides it."""
    override = os.environ.get("SNNBENCH_PRIVACY_CACHE")
    if override:
        return Path(override).expanduser()
    from snnbench.data.base import cache_root

    return cache_root() / "privacy"


def _stack(dataset, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(dataset[int(i)] for i in indices)) if len(indices) else ((), ())
    return torch.stack([torch.as_tensor(x).float() for x in xs]), torch.as_tensor(ys, dtype=torch.long)


def true_label_probability(outputs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """softmax(time-mean readout)[label] per sample, in float64 (computed here, in the parent)."""
    logits = outputs.mean(0) if outputs.dim() == 3 else outputs
    logp = torch.log_softmax(logits.double(), dim=-1)
    return logp.gather(1, labels.view(-1, 1)).squeeze(1).exp().numpy()


def train_and_score(
    ref, task, timesteps: int, seed: int, train_x, train_y, score_x: torch.Tensor, device: str = "cpu"
) -> tuple[bytes, torch.Tensor]:
    """Train a fresh model in a sandboxed child on (train_x, train_y); return its checkpoint bytes
    and its outputs on `score_x` (inputs only cross, never the scored samples' labels)."""
    from snnbench.sandbox import Sandbox

    budget = budget_of(task)
    budget.update(seed=seed, device=device)
    encoder = encoder_for(task)
    generator = torch.Generator().manual_seed(seed)
    with Sandbox(ref, task, seed, timesteps, timeout=TRAIN_TIMEOUT_S, device=device, families=()) as box:
        payload = box.call("train_on", train_x, train_y, budget)
        outs = []
        for start in range(0, len(score_x), task.batch_size):
            x = score_x[start : start + task.batch_size]
            outs.append(box.call("forward", encoder(x, timesteps, generator)))
    dim = 1 if outs[0].dim() == 3 else 0
    return payload, torch.cat(outs, dim=dim)


def _key(task, ref, timesteps: int, seed: int, split: MemberSplit, index: int) -> str:
    h = hashlib.sha256()
    for part in (
        task.id,
        task.version,
        task.spec_hash(),
        ref.sha256,
        timesteps,
        seed,
        split.pool.tobytes(),
        split.ref_in[index].tobytes(),
        split.population.tobytes(),
    ):
        h.update(str(part).encode() if not isinstance(part, bytes) else part)
        h.update(b"\0")
    return h.hexdigest()[:20]


def reference_outputs(
    ref, task, timesteps: int, seed: int, split: MemberSplit, dataset, score_x, progress: bool | None = True
) -> list[torch.Tensor]:
    """Outputs of each reference model on `score_x`, training (and caching) the missing ones."""
    folder = privacy_cache_dir() / task.id
    outputs = []
    bar = None
    if progress is not False:  # None: only on a terminal
        from tqdm import tqdm

        bar = tqdm(
            total=len(split.ref_in),
            desc=f"privacy reference models {task.id}",
            file=sys.stderr,
            disable=None if progress is None else False,
        )
    for k in range(len(split.ref_in)):
        path = folder / f"ref-{ref.method}-{_key(task, ref, timesteps, seed, split, k)}.pt"
        cached = _load(path)
        if cached is None:
            idx = split.pool[split.ref_in[k]]
            x, y = _stack(dataset, idx)
            payload, out = train_and_score(ref, task, timesteps, _ref_seed(seed, k), x, y, score_x)
            blob = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
            _save(path, {"checkpoint": blob, "outputs": out, "index": torch.tensor(k)})
            cached = {"outputs": out}
        outputs.append(cached["outputs"])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return outputs


def _ref_seed(seed: int, k: int) -> int:
    return int(np.random.SeedSequence([seed, 0xEF, k]).generate_state(1)[0] % (2**31))


def _load(path: Path) -> dict | None:
    """A cache entry (tensors only, read with weights_only), or None when missing or damaged."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a missing or damaged cache entry is recomputed, never fatal
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("outputs"), torch.Tensor) else None


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def budget_of(task) -> dict:
    """The task's [train] budget as Budget keyword arguments."""
    return {f.name: getattr(task.train, f.name) for f in dataclasses.fields(task.train)}
