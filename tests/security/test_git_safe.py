"""Issue 8, defect 7: everything coachctl creates under sessions/ is owner-only, derived
state stays out of git, and a read-only command leaves a committed home untouched."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from tests.reliability._helpers import run

WF = "id: w\nsteps:\n" + "".join(f"  - id: s{i}\n    run: echo {i}\n" for i in range(3))


def git(home: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(home), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


def busy_home(tmp_path: Path) -> tuple[Path, str]:
    home = tmp_path / "home"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "w.yaml").write_text(WF)
    old = os.umask(0o022)  # the usual umask: sqlite would make its files 0644
    try:
        started = run(home, "coach", "w", "--no-input", "--format", "json")
        sid = json.loads(started.stdout)["session_id"]
        for _ in range(2):
            assert run(home, "decide", sid, "correct", "--correction", "echo x").returncode == 0
        assert run(home, "stats").returncode == 0
    finally:
        os.umask(old)
    return home, sid


def test_everything_under_sessions_is_owner_only(tmp_path: Path) -> None:
    home, _ = busy_home(tmp_path)
    assert (home / "sessions" / ".index" / "index.sqlite").is_file()
    for p in [home / "sessions", *(home / "sessions").rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"


def test_derived_state_is_ignored_and_read_only_commands_keep_git_clean(tmp_path: Path) -> None:
    home, sid = busy_home(tmp_path)
    git(home, "init", "-q")
    git(home, "add", "-A")
    git(home, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "home")
    tracked = git(home, "ls-files", "sessions").split()
    assert sorted(tracked) == sorted(["sessions/.gitignore", f"sessions/{sid}.json"])
    for args in (["stats"], ["readiness", "w"], ["sessions"], ["show", sid], ["workflows"]):
        run(home, *args)
        assert git(home, "status", "--porcelain") == "", args
    assert run(home, "decide", sid, "skip").returncode == 0
    assert git(home, "status", "--porcelain").split() == ["M", f"sessions/{sid}.json"]
