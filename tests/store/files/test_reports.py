"""What the file store hands a report: session summaries and recent decisions."""

from __future__ import annotations

from pathlib import Path

from coachctl.engine import views
from coachctl.engine.stores import file_store
from tests.conftest import Cli


def test_recent_decisions_are_newest_first_with_who_and_what(cli: Cli, home: Path) -> None:
    one = cli.start("hello")
    two = cli.start("hello")
    assert cli("decide", one, "reject", "--feedback", "too loud").exit_code == 0
    assert cli("decide", two, "skip").exit_code == 0
    assert cli("decide", one, "accept", "--no-exec").exit_code == 0
    store = file_store(home)
    rows = store.recent_decisions("hello", limit=2)
    assert [(r["session_id"], r["decision"]) for r in rows] == [(one, "accept"), (two, "skip")]
    oldest = store.recent_decisions()[-1]
    assert (oldest["decision"], oldest["feedback"], oldest["decided_by"]) == (
        "reject",
        "too loud",
        "tester",
    )
    assert rows[0]["seq"] > rows[1]["seq"] > oldest["seq"]


def test_session_summaries_count_what_each_session_decided(cli: Cli, home: Path) -> None:
    sid = cli.start("hello")
    assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
    (home / "sessions" / "zzzz-bad.json").write_text("{")
    found, bad = file_store(home).list_sessions("hello")
    assert [(s["session_id"], s["accepted"], s["suggestions"], s["done"]) for s in found] == [
        (sid, 1, 1, 1)
    ]
    assert [b.session_id for b in bad] == ["zzzz-bad"]
    rows, messages = views.list_sessions(file_store(home), status="active")
    assert [r["session_id"] for r in rows] == [sid] and "not valid JSON" in messages[0]
