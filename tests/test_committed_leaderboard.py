"""The committed leaderboard is what `snnbench leaderboard --committed` makes from the committed
store: a stale page (rows added without rebuilding, or edited by hand) fails here."""

from __future__ import annotations

from snnbench import leaderboard
from snnbench.store import COMMITTED_STORE
from tests.conftest import REPO


def test_committed_leaderboard_is_rebuilt_from_the_committed_store(tmp_path):
    written = leaderboard.build(COMMITTED_STORE, tmp_path, submissions_root=REPO)
    for path in written:
        committed = REPO / "leaderboard" / path.relative_to(tmp_path)
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed.relative_to(REPO)} is stale: run `snnbench leaderboard --committed`"
        )


def test_committed_rows_are_all_reportable_ok_runs_from_clean_commits():
    runs = leaderboard.read_views([(COMMITTED_STORE, "baseline")]).runs
    assert len(runs), "the committed store holds no runs"
    assert (runs["status"] == "ok").all() and runs["reportable"].all()
    assert not runs["git_commit"].str.endswith("+dirty").any(), "a committed row came from a dirty tree"
