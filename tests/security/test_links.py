"""Issue 8, defect 1: nothing is written outside the home through a link under sessions/.

A cloned repository can carry symlinks where coachctl keeps derived state; every such path
is refused (the write fails or becomes a warning, naming it) or replaced, never followed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability._helpers import run

WF = "id: w\nsteps:\n  - id: one\n    run: echo one\n  - id: two\n    run: echo two\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "w.yaml").write_text(WF)
    (home / "sessions").mkdir(mode=0o700)
    return home


def start(home: Path) -> str:
    res = run(home, "coach", "w", "--no-input", "--format", "json")
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["session_id"])


def untouched(outside: Path) -> bool:
    return (
        outside.read_bytes() == b"precious\n" if outside.is_file() else not any(outside.iterdir())
    )


@pytest.mark.parametrize("name", ["events.jsonl"])
def test_a_linked_events_log_is_refused_not_appended_to(
    home: Path, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious\n")
    (home / "sessions" / name).symlink_to(outside)
    res = run(home, "coach", "w", "--no-input", "--format", "json")
    assert res.returncode == 0, res.stderr  # the session is saved: the log is derived
    assert "a symlink (refused)" in res.stderr and name in res.stderr
    sid = json.loads(res.stdout)["session_id"]
    assert run(home, "decide", sid, "skip").returncode == 0
    assert untouched(outside)


@pytest.mark.parametrize("name", ["packs", ".index", ".locks", "choices"])
def test_a_linked_folder_of_derived_state_is_never_written_through(
    home: Path, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "sessions" / name).symlink_to(outside, target_is_directory=True)
    for _ in range(2):
        sid = run(home, "coach", "w", "--no-input", "--format", "json")
        if name == ".locks":  # no lock, no write: one line naming the link
            assert sid.returncode == 1
            assert sid.stderr == f"coachctl: cannot write into {home}/sessions/.locks: " + (
                "a symlink (refused)\n"
            )
        if sid.returncode == 0:
            run(
                home,
                "decide",
                json.loads(sid.stdout)["session_id"],
                "correct",
                "--correction",
                "echo fixed",
                "--no-exec",
            )
    run(home, "corrections", "adopt", "w", "two", "--command", "echo mine")
    run(home, "stats")
    run(home, "doctor", "--repair")
    assert list(outside.iterdir()) == []


def test_a_linked_session_file_is_not_read_into_stats(home: Path, tmp_path: Path) -> None:
    sid = start(home)
    assert run(home, "decide", sid, "accept", "--no-exec").returncode == 0
    secret = tmp_path / "secret.json"
    data = json.loads((home / "sessions" / f"{sid}.json").read_text())
    data["id"] = "zzzz-link"
    secret.write_text(json.dumps(data))
    os.symlink(secret, home / "sessions" / "zzzz-link.json")
    stats = run(home, "stats", "w", "--format", "json")
    assert json.loads(stats.stdout)["workflows"][0]["sessions"] == 1
