#!/usr/bin/env python3
"""Create .venv and install snnbench with its test tools, if not done already. Needs only python3.

SpikingJelly, Norse, nirtorch, NeuroBench and torchattacks (the tests' independent reference for
FGSM/PGD/APGD) declare torchvision/torchaudio (or a newer torch) as dependencies although the parts
we use do not need them; installed normally they would pull a
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
PEERS_NO_DEPS = [
    "spikingjelly==2.0.0",
    "norse==1.1.0",
    "nirtorch",
    "neurobench==2.3.0",
    "torchattacks==3.5.1",
]
PEER_DEPS = ["loguru", "nir"]


# pip's resolver complains about the peers' undeclared-on-purpose dependencies after every later
# install ("ERROR: pip's dependency resolver ... spikingjelly 2.0.0 requires torchvision, which is
# not installed"). Those lines are expected, not failures: they are replaced by one note.
_PEER_NAMES = ("spikingjelly", "norse", "nirtorch", "neurobench", "torchattacks")


def _expected_complaint(line: str) -> bool:
    text = line.strip().lower()
    if "dependency resolver does not currently take into account" in text:
        return True
    return any(text.startswith(p + " ") for p in _PEER_NAMES) and " requires " in text


def pip(*args: str) -> None:
    cmd = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    print("+", " ".join(cmd[2:]), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    hidden = 0
    for stream, out in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
        for line in stream.splitlines():
            if _expected_complaint(line):
                hidden += 1
            else:
                print(line, file=out)
    if hidden:
        print(
            "note: pip reports that SpikingJelly/Norse/NeuroBench declare torchvision or a newer torch; they "
            "are installed with --no-deps on purpose (the parts snnbench uses need neither), so this is expected",
            flush=True,
        )
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)


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
    pip("-e", ".[test,ray]")  # ray: the sweep's Ray test (about 80 MB, no torch of its own)
    pip("--no-deps", *PEERS_NO_DEPS)
    pip(*PEER_DEPS)
    subprocess.run(
        [
            str(PY),
            "-c",
            "import snnbench, torch, tonic, snntorch, spikingjelly, norse, neurobench, torchattacks",
        ],
        check=True,
    )
    stamp.write_text(want)
    print(f"environment ready: {VENV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
