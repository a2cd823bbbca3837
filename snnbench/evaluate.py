"""The uniform evaluator: one loop over the test split, collectors attached, one row in the store.

Labels and scoring stay in this process; the model runs in a child (snnbench.sandbox) that only
sees encoded inputs. Every outcome, including a broken submission, ends as a run row in the store
with its status, and the traceback goes to the store's logs/, never only to the terminal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

import snnbench
from snnbench import provenance
from snnbench.data import Split, load_split
from snnbench.encoding import encoder_for
from snnbench.metrics import MetricRow, registry
from snnbench.metrics.accuracy import accuracy_rows, stack_outputs
from snnbench.metrics.latency import latency_rows
from snnbench.metrics.training_energy import training_energy_rows
from snnbench.sandbox import ChildFailure, Sandbox, SubmissionTimeout
from snnbench.store import Store, result_id
from snnbench.submission import SubmissionError, SubmissionRef, declared_timesteps, declares_no_training
from snnbench.training import read_record

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3


@dataclass
class Outcome:
    """What one evaluation produced: the run row as stored and its metric rows."""

    run: dict
    rows: list[MetricRow] = field(default_factory=list)
    log_path: Path | None = None

    @property
    def exit_code(self) -> int:
        return {"ok": EXIT_OK, "timeout": EXIT_TIMEOUT}.get(self.run["status"], EXIT_FAILED)


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", file=sys.stderr, leave=False)


def evaluate(
    task,
    ref: SubmissionRef,
    store: Store,
    *,
    checkpoint: str | None = None,
    seed: int = 0,
    timesteps: int | None = None,
    limit: int | None = None,
    timeout: float = 600.0,
    data_root: str | None = None,
    progress: bool = True,
    extra_metrics: tuple[str, ...] = (),
    device: str = "cpu",
) -> Outcome:
    """Evaluate `ref` on `task` and write the run to `store`.

    DataError (missing data) and FamilyError (an unknown or unbuilt --metrics family) propagate
    before anything runs or is stored. The checkpoint's bytes are read once: the hash in the run
    row is the hash of exactly what the child loads.
    """
    started = time.monotonic()
    steps = task.resolve_timesteps(timesteps, declared_timesteps(ref))
    spec_hash = task.spec_hash()  # of the task file as written, before T is resolved into it
    task = dataclasses.replace(task, timesteps=steps)  # build(task) sees the T it will be run at
    families = registry.resolve(task.metrics, extra_metrics, task.kind)
    if task.kind == "rl":  # the environment is the data; --limit caps the number of episodes
        split, dataset = Split(dataset=None, status="embedded"), None
    else:  # a missing dataset is the user's to fix: no row is stored
        split = load_split(task, "test", data_root, steps)
        dataset = (
            split.dataset if limit is None else Subset(split.dataset, range(min(limit, len(split.dataset))))
        )
    checkpoint_bytes = Path(checkpoint).read_bytes() if checkpoint else None
    checkpoint_sha = hashlib.sha256(checkpoint_bytes).hexdigest() if checkpoint_bytes is not None else None
    record = read_record(checkpoint, checkpoint_sha) if checkpoint else None
    untrained = checkpoint is None and not declares_no_training(ref)
    rid = result_id(
        task=task.id,
        task_version=task.version,
        submission_sha256=ref.sha256,
        checkpoint_sha256=checkpoint_sha,
        seed=seed,
        timesteps=steps,
        snnbench_version=snnbench.__version__,
        limit=limit,
        metrics_version=snnbench.METRICS_VERSION,
        families=families,
    )
    run = {
        "result_id": rid,
        "task": task.id,
        "task_version": task.version,
        "method": ref.method,
        "submission_path": _display_path(ref.path),
        "submission_sha256": ref.sha256,
        "checkpoint_sha256": checkpoint_sha,
        "seed": seed,
        "timesteps": steps,
        "reportable": split.reportable and limit is None and not untrained,
        "device": provenance.device_name(device),
        "torch_version": torch.__version__,
        "snnbench_version": snnbench.__version__,
        "metrics_version": snnbench.METRICS_VERSION,
        "git_commit": provenance.git_commit(),
        "created_at": dt.datetime.now(dt.timezone.utc),
        "wall_time_s": 0.0,
        "status": "ok",
        "error": None,
        "uncounted": [],
        "limit": limit,
        "data_status": split.status,
        "metrics": list(families),
        "spec_hash": spec_hash,
        "untrained": untrained,
        "train_recipe": record.get("recipe") if record else None,
        "train_wall_time_s": _float_or_none(record.get("train_wall_time_s")) if record else None,
        "train_budget_complete": bool(record["budget_complete"])
        if record and "budget_complete" in record
        else None,
    }
    for part in store.unreadable_parts():
        warnings.warn(
            f"{part} is not readable Parquet; `snnbench leaderboard` will stop on it until it is removed",
            stacklevel=2,
        )
    before = store.snapshot()
    rows: list[MetricRow] = []
    trace = None
    try:
        rows, uncounted = _run(
            task, ref, dataset, steps, seed, checkpoint_bytes, timeout, progress, families, limit, device
        )
        run["uncounted"] = uncounted
        if "energy" in families:  # the cost of getting the model, from its training record
            rows += training_energy_rows(record)
    except SubmissionTimeout as exc:
        run["status"], run["error"] = "timeout", str(exc)
    except ChildFailure as exc:
        run["status"], run["error"], trace = "failed", str(exc), exc.trace
    except SubmissionError as exc:
        run["status"], run["error"], trace = "failed", str(exc), traceback.format_exc()
    tampered = _touched(before, store.snapshot())
    if tampered:
        run["status"] = "failed"
        run["error"] = (
            f"files of the result store changed during the run: {', '.join(tampered[:3])}; a submission must not touch the store"
        )
    if run["status"] != "ok":
        rows = []
    run["wall_time_s"] = time.monotonic() - started
    log = None
    if trace:
        store.write_log(rid, trace)
        log = store.log_path(rid)
    store.write(run, rows)
    return Outcome(run, rows, log)


def _run(task, ref, dataset, steps, seed, checkpoint, timeout, progress, families, limit, device):
    """One sandbox for the whole run: score the clean pass, collect the probes' rows, then run the
    parent-side families of the registry (attacks, ...) with the probes detached."""
    with Sandbox(
        ref, task, seed, steps, checkpoint=checkpoint, timeout=timeout, device=device, families=families
    ) as box:
        box.call("build", True)
        if task.kind == "rl":  # the environment steps here; --limit caps the episodes
            from snnbench.rl import episode_rows

            rows = episode_rows(
                lambda x: box.call("forward", x),
                task,
                seed,
                episodes=limit,
                progress=progress,
                timesteps=steps,
            )
        else:  # --limit was applied to the dataset already (a Subset)
            rows = _classify(box, task, ref, dataset, steps, seed, progress)
        collected = box.call("finish")
        for family in registry.parent_families(families):
            rows += registry.load(family)(box, task, dataset, steps, seed)
    rows += [MetricRow(**r) for r in collected["rows"]]
    lat = collected["latency"] or {}
    rows += latency_rows(steps, lat.get("seconds"), lat.get("batch"))
    return rows, collected["uncounted"]


def _classify(box, task, ref, dataset, steps, seed, progress) -> list[MetricRow]:
    """The clean pass over the test split: inputs go to the child, labels stay here for scoring."""
    encoder = encoder_for(task)
    generator = torch.Generator().manual_seed(seed)
    workers = getattr(getattr(dataset, "dataset", dataset), "recommended_num_workers", 0)
    loader = DataLoader(dataset, batch_size=task.batch_size, shuffle=False, num_workers=workers)
    outputs, labels = [], []
    for x, y in _progress(loader, len(loader), f"{task.id} {ref.method}", progress):
        outputs.append(box.call("forward", encoder(x.float(), steps, generator)))
        labels.append(y)
    return accuracy_rows(stack_outputs(outputs), torch.cat(labels))


def _touched(before: dict, after: dict) -> list[str]:
    """Files of the store that existed before the run and were changed or removed (new files are
    other writers' runs; dot files are their temporaries)."""
    return sorted(p for p, sig in before.items() if not Path(p).name.startswith(".") and after.get(p) != sig)


def _float_or_none(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def headline(outcome: Outcome) -> list[tuple[str, str]]:
    """The few numbers a user wants to see after `snnbench evaluate`."""
    want = {
        ("accuracy", None, None): "accuracy",
        ("accuracy_top5", None, None): "top-5 accuracy",
        ("episode_return_mean", None, None): "episode return (mean)",
        ("episode_return_median", None, None): "episode return (median)",
        ("human_normalized_score", None, None): "human-normalized score",
        ("spikes_per_sample", None, None): "spikes / sample",
        ("synops_per_sample", None, None): "SynOps / sample",
        ("macs_per_sample", None, None): "MACs / sample",
        ("energy_uj_per_sample", None, "horowitz45nm-fp32"): "energy µJ / sample (compute)",
        ("energy_uj_per_sample", None, "horowitz45nm-fp32-mem"): "energy µJ / sample (+memory)",
        ("training_energy_j", None, "sata-bptt/horowitz45nm-fp32"): "training energy J (SATA model)",
        ("training_energy_j", None, "sata-bptt+stdp/horowitz45nm-fp32"): "training energy J (SATA + STDP)",
        ("decision_timestep", None, None): "decision timestep",
        ("latency_ms_per_sample", None, None): "latency ms / sample",
        ("params", None, None): "parameters",
    }
    found = {}
    for r in outcome.rows:
        key = (r.metric, r.layer, r.condition) if r.timestep is None else None
        if key in want:
            se = f" ± {r.stderr:.4g}" if r.stderr else ""
            found[want[key]] = f"{r.value:.4g}{se}"
    return [(label, found[label]) for label in want.values() if label in found]
