"""Module-level literals of a submission file, read with ast and never executed.

The harness and the leaderboard read a submission's CITATION, REPORTED, TASKS, TIMESTEPS and
NEEDS_TRAINING this way, so citing or listing a method never runs its code. Torch-free, so
`snnbench cite` and the leaderboard stay cheap to import.
"""

from __future__ import annotations

import ast
from pathlib import Path


def static_constant(path: str | Path, name: str) -> object | None:
    """A module-level literal `NAME = ...` of a submission file, parsed with ast, never executed
    (None when absent, not a literal, or unreadable): how the harness reads CITATION, REPORTED
    and NEEDS_TRAINING without running a user's code in its own process."""
    path = Path(path)
    if path.is_dir():
        path = path / "__init__.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    found = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                found = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                found = None
    return found
