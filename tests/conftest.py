"""Shared fixtures: an isolated store and cache per test, and submission files written on the fly."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EVENTS_DATA = REPO / "tests" / "data" / "events"  # real recordings, see its README.md


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads or writes the user's store or data; the emulated-event cache is shared per run."""
    monkeypatch.setenv("SNNBENCH_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("SNNBENCH_DATA", str(tmp_path / "data"))
    cache = os.environ.get("SNNBENCH_TEST_CACHE") or str(REPO / ".cache" / "test-cache")
    monkeypatch.setenv("SNNBENCH_CACHE", cache)


@pytest.fixture
def write_submission(tmp_path):
    """write_submission(body, name) -> path of a .py submission whose text is `body` (dedented)."""

    def write(body: str, name: str = "sub.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


# A correct plain-torch submission (no snnbench import): per-step linear readout of the pixels.
PLAIN_TORCH = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.fc = nn.Linear(features, classes)

    def forward(self, x):
        t, b = x.shape[:2]
        return self.fc(x.reshape(t * b, -1)).reshape(t, b, -1)

def build(task):
    features = 1
    for s in task.input_shape:
        features *= s
    return Net(features, task.outputs)
"""


@pytest.fixture
def private_cache(_isolated_env, tmp_path, monkeypatch):
    """A cache of the test's own (instead of the run-wide one), for tests of caching itself."""
    monkeypatch.setenv("SNNBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
