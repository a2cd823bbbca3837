"""Where a number came from: device, versions and the harness's git commit."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch


@functools.lru_cache(maxsize=8)
def device_name(device: str = "cpu") -> str:
    """The device a run's model ran on, as stored in the run row: the GPU's name for CUDA devices,
    else the CPU model and torch's thread count (latency depends on both)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda: {torch.cuda.get_device_name(index)}"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {model} ({torch.get_num_threads()} threads)"


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The harness checkout's commit, with '+dirty' when tracked files differ from it; None outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None
