"""The types every reader shares, with no import of any reader: DataError and DataMissing, Split,
DataStatus, and where data and derived arrays live (data_root, cache_root).

Every module of snnbench.data imports these from here, never from the package, so importing any one
of them never runs snnbench/data/__init__.py's registry first (no import circle).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

STATUS_WORDS = ("present", "partial", "missing", "corrupt", "embedded")


class DataError(RuntimeError):
    """Data missing or damaged. str(err) is one line that names the file or layout and the fix."""


class DataMissing(DataError):
    """The dataset (its folder or its layout) is not there at all: check() says `missing`, not
    `corrupt`. str(err) names the folder, the expected layout and the --data-root / SNNBENCH_DATA fix."""


@dataclass
class Split:
    """A loaded split. `reportable` is False for partial data: its runs are marked not citable."""

    dataset: Dataset
    status: str = "present"
    reportable: bool = True
    note: str = ""


@dataclass(frozen=True)
class DataStatus:
    """What `snnbench data check` prints for one task: a status word, where it looked, details.

    For `partial`, `detail` starts with the "n of N <unit>" count before any ';' (`summary`)."""

    word: str
    folder: str
    detail: str = ""
    layout: str = ""

    @property
    def summary(self) -> str:
        """`partial (n of N <unit>)` for partial data, else the status word (`snnbench tasks`)."""
        if self.word == "partial" and self.detail:
            return f"partial ({self.detail.split(';')[0].split(',')[0].strip()})"
        return self.word


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """--data-root wins over SNNBENCH_DATA, which wins over ~/data."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SNNBENCH_DATA")
    return Path(env).expanduser() if env else Path.home() / "data"


def cache_root() -> Path:
    """Where derived arrays (emulated events, binned frames) are cached: SNNBENCH_CACHE or ~/.cache/snnbench."""
    env = os.environ.get("SNNBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snnbench"
