"""`doctor`: finds a tampered index and unreadable files; `--repair` fixes the index."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

OLD = time.time_ns() - 3600 * 10**9  # an hour ago


def age(home: Path) -> None:
    """Move every mtime out of the racy second, as if the writes happened a while ago."""
    for p in (home / "sessions").glob("*.json"):
        os.utime(p, ns=(OLD, OLD))
    os.utime(home / "sessions", ns=(OLD, OLD))


def warm(cli: Cli, home: Path) -> None:
    sid = cli.start("hello")
    for _ in range(3):
        assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
    age(home)
    assert cli("stats").exit_code == 0  # the index now trusts these files


def db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(home / "sessions" / ".index" / "index.sqlite"))


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_healthy_home(cli: Cli, home: Path, fmt: str) -> None:
    warm(cli, home)
    r = cli("doctor", "--format", fmt)
    assert r.exit_code == 0, r.stdout
    if fmt == "json":
        out = json.loads(r.stdout)
        assert (out["ok"], out["problems"], out["sessions_checked"]) == (True, 0, 1)
    else:
        assert r.stdout.splitlines() == ["doctor: ok (1 session files checked)"]


def test_tampered_index_is_found_and_repaired(cli: Cli, home: Path) -> None:
    warm(cli, home)
    with db(home) as conn:
        conn.execute("UPDATE decisions SET kind='rejected' WHERE pos=0")
    before = cli.json("stats")["workflows"][0]
    assert before["rejected"] == 1  # the index is trusted... and wrong
    r = cli("doctor")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith("problem: index decisions differ for session ")
    assert "problem: stats differ at workflows[hello].rejected: index 1, files 0" in lines
    assert lines[-1].endswith("(try --repair)")
    r = cli("doctor", "--repair")
    assert r.exit_code == 0, r.stdout
    assert "note: rebuilt the index from 1 session files" in r.stdout.splitlines()
    assert cli("doctor").exit_code == 0
    assert cli.json("stats")["workflows"][0]["rejected"] == 0


def test_missing_rows_are_found(cli: Cli, home: Path) -> None:
    warm(cli, home)
    with db(home) as conn:
        conn.execute("DELETE FROM sessions")
    r = cli("doctor")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0].startswith("problem: index lacks session ")


def test_unreadable_file_cannot_be_repaired(cli: Cli, home: Path) -> None:
    warm(cli, home)
    bad = home / "sessions" / "zzzz-bad.json"
    bad.write_text("[1, 2")
    for args in ((), ("--repair",)):
        r = cli("doctor", *args)
        assert r.exit_code == 1
        problems = [line for line in r.stdout.splitlines() if line.startswith("problem:")]
        assert problems == [
            f"problem: unreadable session file {bad}: not valid JSON "
            "(cannot be repaired: fix the file or move it out of sessions/)"
        ]
    bad.unlink()
    assert cli("doctor").exit_code == 0


def test_leftover_temp_files_are_removed_by_repair(cli: Cli, home: Path) -> None:
    warm(cli, home)
    tmp = home / "sessions" / ".tmp-x.json.1234"
    tmp.write_text("{")
    fresh = home / "sessions" / ".tmp-y.json.5678"
    fresh.write_text("{")  # young: may belong to a live writer
    os.utime(tmp, ns=(OLD, OLD))
    r = cli("doctor")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0] == (
        f"problem: leftover temp file {tmp} (a writer was killed; --repair removes it)"
    )
    assert cli("doctor", "--repair").exit_code == 0
    assert not tmp.exists() and fresh.exists()


def test_interrupted_step_is_a_note_and_stays(cli: Cli, home: Path) -> None:
    warm(cli, home)
    sid = cli.start("hello")
    path = home / "sessions" / f"{sid}.json"
    data = json.loads(path.read_text())
    data["running"] = {"step_id": "greet", "cursor": 0, "pid": 2**22 + 7, "token": "t"}
    path.write_text(json.dumps(data))
    r = cli("doctor", "--repair")
    assert r.exit_code == 0, r.stdout
    assert f"note: session {sid}: step 'greet' was interrupted while running" in r.stdout
    assert json.loads(path.read_text())["running"]["pid"] == 2**22 + 7


def test_bad_format_is_exit_2(cli: Cli, home: Path) -> None:
    r = cli("doctor", "--format", "csv")
    assert r.exit_code == 2


def test_doctor_checks_and_rebuilds_correction_packs(cli: Cli, home: Path) -> None:
    """Packs are derived state: a lost pack is a problem doctor names and --repair rebuilds."""
    for _ in range(2):
        sid = cli.start()
        assert cli("decide", sid, "correct", "--correction", "echo hi").exit_code == 0
    pack = home / "sessions" / "packs" / "hello.json"
    assert pack.is_file()
    assert cli("doctor").exit_code == 0
    pack.unlink()
    found = cli("doctor")
    assert found.exit_code == 1
    assert "correction pack hello: step greet" in found.stdout + found.stderr
    fixed = cli("doctor", "--repair")
    assert fixed.exit_code == 0, fixed.output
    assert "rebuilt correction pack hello" in fixed.stdout
    assert pack.is_file()
    assert cli("doctor").exit_code == 0
    listed = cli.json("corrections", "list", "hello")
    assert any(r["correction"] == "echo hi" and r["adopted"] for r in listed["corrections"])
