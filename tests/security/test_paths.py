"""Nothing outside the home is read or written through a session reference or a symlink."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import Cli, write_workflow

WF = "id: p\nsteps:\n  - id: one\n    run: echo one\n  - id: two\n    run: echo two\n"

BAD_REFS = [
    "..",
    "../x",
    "/etc/passwd",
    "a/b",
    "./abcd",
    "sessions/../../x",
    ".hidden",
    "-rf",
    "x\0y",
]


@pytest.mark.parametrize("ref", BAD_REFS)
@pytest.mark.parametrize("command", ["show", "decide", "pause", "resume", "cancel"])
def test_a_session_reference_that_is_a_path_is_refused(
    cli: Cli, home: Path, ref: str, command: str
) -> None:
    write_workflow(home, "p", WF)
    cli.start("p")
    args = [command, "--", ref] + (["skip"] if command == "decide" else [])
    res = cli(*args)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("coachctl: invalid session reference"), res.stderr


@pytest.mark.parametrize("ref", ["../p", "..", "/p", "p/../p", "workflows/../p"])
def test_a_workflow_id_never_leaves_the_workflows_folder(
    cli: Cli, home: Path, tmp_path: Path, ref: str
) -> None:
    write_workflow(home, "p", WF)
    assert cli("validate", ref).exit_code == 2
    res = cli("run", ref, "--no-input")
    assert res.exit_code == 2
    assert res.stderr.startswith(f"coachctl: unknown workflow: {ref} ")
    assert res.stderr.count("\n") == 1


def test_a_session_file_that_is_a_symlink_is_refused(cli: Cli, home: Path, tmp_path: Path) -> None:
    """A symlink in sessions/ could make coachctl read (and show) a file outside the home."""
    write_workflow(home, "p", WF)
    sid = cli.start("p")
    real = home / "sessions" / f"{sid}.json"
    outside = tmp_path / "outside.json"
    outside.write_bytes(real.read_bytes())
    real.unlink()
    real.symlink_to(outside)
    before = outside.read_bytes()
    for args in (("show", sid), ("decide", sid, "skip")):
        res = cli(*args)
        assert res.exit_code == 2, (args, res.stdout)
        assert res.stderr == f"coachctl: unreadable session file {real}: a symlink (refused)\n"
    listing = cli("sessions", "--format", "json")
    assert json.loads(listing.stdout) == []
    assert "a symlink (refused)" in listing.stderr
    assert outside.read_bytes() == before


def test_a_workflow_symlink_pointing_out_of_the_home_is_refused(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(WF.replace("id: p", "id: evil"))
    (home / "workflows").mkdir(exist_ok=True)
    (home / "workflows" / "evil.yaml").symlink_to(outside)
    res = cli("run", "evil", "--no-input")
    assert res.exit_code == 2
    assert "symlink" in res.stderr and res.stderr.count("\n") == 1


def test_sessions_folder_is_0700_and_session_files_0600(cli: Cli, home: Path) -> None:
    write_workflow(home, "p", WF)
    sid = cli.start("p")
    assert cli("decide", sid, "accept").exit_code == 0
    folder = home / "sessions"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / f"{sid}.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder / "events.jsonl").st_mode) == 0o600
    for p in folder.rglob("*"):
        if p.is_dir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o700, p


def test_permissions_hold_under_a_permissive_umask(cli: Cli, home: Path) -> None:
    write_workflow(home, "p", WF)
    old = os.umask(0)
    try:
        sid = cli.start("p")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(home / "sessions").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "sessions" / f"{sid}.json").st_mode) == 0o600
