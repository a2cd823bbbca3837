"""The one list of metric families: what each measures, where it runs, and who collects it.

evaluate, the sandbox, the task loader and the CLI read this table; adding a family is one
module (its collector) plus one `Family(...)` line below. Two places a collector can run:

- "child": a probe class beside the model in the submission's process (sees inputs, modules and
  outputs, never labels), constructed with no arguments and attached after build();
- "parent": a function in the harness process called after the clean pass as
  `collect(box, task, dataset, timesteps, seed) -> list[MetricRow]`; it talks to the model only
  through the sandbox `box` (outputs, and vector-Jacobian products for cotangents it computes from
  the labels it holds), so labels never cross into the submission.

Families whose `collector` is empty are computed by the core loop itself (accuracy from the
clean pass, energy from the activity rows, episode returns for RL tasks).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    summary: str
    where: str  # "child", "parent" or "core"
    kinds: tuple[str, ...] = ("classification",)
    collector: str = ""  # "module:attribute", imported lazily where the family runs
    built: bool = True
    requires: tuple[str, ...] = ()  # families that must run with this one


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("accuracy", "top-1/top-5, anytime accuracy, decision timestep", "core", ("classification",)),
        Family(
            "activity",
            "spikes, firing rates, SynOps, MACs, dense ops, neuron updates per layer",
            "child",
            ("classification", "rl"),
            "snnbench.metrics.activity:ActivityProbe",
        ),
        Family(
            "energy",
            "activity priced by each energy card",
            "core",
            ("classification", "rl"),
            requires=("activity",),
        ),
        Family("latency", "T, wall-clock ms per sample, throughput", "core", ("classification", "rl")),
        Family(
            "footprint",
            "parameters, parameter bytes, weight sparsity",
            "child",
            ("classification", "rl"),
            "snnbench.metrics.footprint:FootprintProbe",
        ),
        Family(
            "robustness",
            "FGSM/PGD/APGD-CE through several surrogates with the worst case, EOT, noise, Square, "
            "ReLU-twin transfer, event attacks, gradient-masking checks (PROTOCOLS.md section 4)",
            "parent",
            ("classification",),
            "snnbench.metrics.robustness:collect",
        ),
        Family("rl", "episode returns and human-normalized score (PROTOCOLS.md section 5)", "core", ("rl",)),
        Family(
            "fisher_information",
            "trace of the empirical Fisher information of the weights per timestep (PROTOCOLS.md section 3)",
            "parent",
            ("classification",),
            "snnbench.metrics.fisher:collect",
        ),
        Family(
            "privacy",
            "membership inference and class leakage (PROTOCOLS.md section 4)",
            "parent",
            ("classification",),
            "snnbench.metrics.privacy:collect",
        ),
    )
}


class FamilyError(ValueError):
    """An unknown, unbuilt or inapplicable metric family; str() is one line with the fix."""


def check(names: Iterable[str], kind: str | None = None, source: str = "--metrics") -> tuple[str, ...]:
    """The names as a tuple if every one is a built family applicable to `kind`, else FamilyError."""
    names = tuple(names)
    for name in names:
        family = FAMILIES.get(name)
        if family is None:
            close = difflib.get_close_matches(name, list(FAMILIES), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise FamilyError(
                f"{source}: unknown metric family {name!r}; {hint}choose from {', '.join(FAMILIES)}"
            )
        if not family.built:
            built = ", ".join(n for n, f in FAMILIES.items() if f.built)
            raise FamilyError(
                f"{source}: the {name!r} family is not built yet in this version of snnbench "
                f"(see README, Status); built families: {built}"
            )
        if kind is not None and kind not in family.kinds:
            raise FamilyError(
                f"{source}: the {name!r} family does not apply to {kind} tasks; it applies to "
                f"{', '.join(family.kinds)} tasks"
            )
    return names


def resolve(task_families: Iterable[str], extra: Iterable[str], kind: str) -> tuple[str, ...]:
    """The families one run measures: the task's, the extras asked for, and what they require,
    kept only where they apply to the task's kind; sorted, so the result id does not depend on
    the order they were asked in."""
    chosen = {f for f in task_families if f in FAMILIES and kind in FAMILIES[f].kinds}
    chosen |= set(check(extra, kind))
    for name in list(chosen):
        chosen |= set(FAMILIES[name].requires)
    return tuple(sorted(chosen))


def load(family: str):
    """The collector object of a family (a probe class or a parent-side function)."""
    module, _, attribute = FAMILIES[family].collector.partition(":")
    return getattr(importlib.import_module(module), attribute)


def child_families(families: Iterable[str]) -> list[str]:
    return [f for f in families if FAMILIES[f].where == "child"]


def parent_families(families: Iterable[str]) -> list[str]:
    return [f for f in families if FAMILIES[f].where == "parent"]
