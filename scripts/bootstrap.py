#!/usr/bin/env python3
"""Create .venv and install snnbench with its test tools, if not done already. Needs only python3.

SpikingJelly, Norse, nirtorch and NeuroBench declare torchvision/torchaudio (or a newer torch) as
dependencies although the parts we use do not need them; installed normally they would pull a
multi-GB CUDA build of torch. So they go in with --no-deps, and torch is pinned to 2.13.0 (CPU).
Re-running is cheap: a stamp records the hash of what was installed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
PEERS_NO_DEPS = ["spikingjelly==2.0.0", "norse==1.1.0", "nirtorch", "neurobench==2.3.0"]
PEER_DEPS = ["loguru", "nir"]


def pip(*args: str) -> None:
    cmd = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    print("+", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    stamp = VENV / ".snnbench-installed"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + Path(__file__).read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want and PY.exists():
        print(f"environment up to date: {VENV}")
        return 0
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    pip("torch==2.13.0")
    pip("-e", ".[test]")
    pip("--no-deps", *PEERS_NO_DEPS)
    pip(*PEER_DEPS)
    subprocess.run(
        [str(PY), "-c", "import snnbench, torch, tonic, snntorch, spikingjelly, norse, neurobench"],
        check=True,
    )
    stamp.write_text(want)
    print(f"environment ready: {VENV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
