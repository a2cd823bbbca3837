"""snnbench: one evaluation protocol for spiking neural networks.

The harness is split by job: tasks (what is evaluated), data (where inputs come from), submission
(the contract a user's model meets), sandbox (running it isolated), evaluate (the one loop),
metrics (what is counted), store (where numbers land) and leaderboard (what readers see).

The public Python API (snnbench.api), imported on first use so `import snnbench` stays cheap:

    snnbench.evaluate(task=..., model=..., checkpoint=None, seed=0, limit=None, metrics=(), store=None)
    snnbench.train(task=..., model=..., epochs=None, out=None)
    snnbench.load_task("digits"), snnbench.Store(path), snnbench.Outcome, snnbench.TrainResult
"""

import importlib
import sys
import types

__version__ = "0.2.0"

# Bump when a counting convention of PROTOCOLS.md section 3 changes: numbers stored under
# different metrics versions are not comparable and the leaderboard keeps them apart.
METRICS_VERSION = "1"

# public name -> module that defines it
_API = {
    "evaluate": "snnbench.api",
    "train": "snnbench.api",
    "load_task": "snnbench.api",
    "InputError": "snnbench.api",
    "Outcome": "snnbench.evaluate",
    "TrainResult": "snnbench.training",
    "Store": "snnbench.store",
}
__all__ = ["METRICS_VERSION", "__version__", *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


class _Package(types.ModuleType):
    """`snnbench.evaluate` is the API function, though a submodule snnbench/evaluate.py (the
    evaluation loop) has the same name: importing that submodule would bind it over the function,
    so the binding is skipped (the submodule stays importable: `from snnbench.evaluate import ...`)."""

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
