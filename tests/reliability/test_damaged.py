"""Damaged or unwritable homes: one clear line, the contract's exit code, nothing else lost.

Tests run as root in CI containers, where chmod does not stop a write: a read-only folder and
a full disk are simulated by making the OS calls fail the way the kernel would (EROFS, EACCES,
ENOSPC). The real-chmod variant runs as well when the tests are not root.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, write_workflow

WF = "id: dmg\nsteps:\n  - id: one\n    run: echo one\n  - id: two\n    run: echo two\n"


@pytest.fixture
def two(cli: Cli, home: Path) -> tuple[str, str]:
    """Two sessions of workflow `dmg`; the first has one decision."""
    write_workflow(home, "dmg", WF)
    a = cli.start("dmg")
    b = cli.start("dmg")
    assert cli("decide", a, "accept", "--no-exec").exit_code == 0
    return a, b


def one_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert "Traceback" not in text
    return text.strip()


def session_file(home: Path, sid: str) -> Path:
    return home / "sessions" / f"{sid}.json"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b"\x00\xff\xfe garbage \x80", id="garbage"),
        pytest.param(lambda b: b"[1, 2, 3]", id="not-an-object"),
        pytest.param(lambda b: b'{"id": "x", "mode": 7}', id="wrong-fields"),
    ],
)
def test_a_damaged_session_file_is_one_line_and_exit_2(
    cli: Cli, home: Path, two: tuple[str, str], damage: Callable[[bytes], bytes]
) -> None:
    a, b = two
    path = session_file(home, a)
    path.write_bytes(damage(path.read_bytes()))
    for args in (("show", a), ("decide", a, "skip"), ("pause", a), ("cancel", a)):
        res = cli(*args)
        assert res.exit_code == 2, (args, res.stderr)
        assert res.stdout == ""
        line = one_line(res.stderr)
        assert line.startswith("coachctl: ") and a in line, line
    # The other session is untouched and still works.
    assert cli("decide", b, "skip").exit_code == 0
    listing = cli("sessions", "--format", "json")
    assert listing.exit_code == 0
    assert [r["session_id"] for r in json.loads(listing.stdout)] == [b]
    assert one_line(listing.stderr).startswith("coachctl: warning: skipped")
    stats = cli("stats", "--format", "json")
    assert stats.exit_code == 0, stats.stderr
    assert a in one_line(stats.stderr)


def test_readiness_fails_closed_on_an_unreadable_session(
    cli: Cli, home: Path, two: tuple[str, str]
) -> None:
    a, _ = two
    session_file(home, a).write_bytes(b'{"id": "' + a.encode() + b'", "decisions": [')
    res = cli("readiness", "dmg")
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert a in res.stderr
    assert "Traceback" not in res.stderr


def test_garbage_lines_in_the_events_log_are_skipped(
    cli: Cli, home: Path, two: tuple[str, str]
) -> None:
    a, _ = two
    events = home / "sessions" / "events.jsonl"
    with open(events, "ab") as fh:
        fh.write(b'garbage\n\x00\x01\x02\n{"half": \n')
    assert cli("decide", a, "skip").exit_code == 0
    res = cli("events", "--format", "json")
    assert res.exit_code == 0, res.stderr
    names = [json.loads(line)["event"] for line in res.stdout.splitlines()]
    assert names.count("session_started") == 2
    assert names[-1] == "session_completed"


@pytest.mark.parametrize("damage", ["missing", "garbage", "empty"])
def test_a_missing_or_corrupt_index_changes_nothing(
    cli: Cli, home: Path, two: tuple[str, str], damage: str
) -> None:
    """Real processes: each command opens the index afresh, as users' commands do."""
    from tests.reliability._helpers import run

    _, b = two
    before = run(home, "stats", "--format", "json")
    assert before.returncode == 0, before.stderr
    derived = [
        p
        for p in (home / "sessions").rglob("*")
        if p.is_file() and p.parent.name != ".locks" and p.suffix not in (".json", ".jsonl")
    ]
    assert derived, "expected a derived index under sessions/"
    for p in derived:
        if damage == "missing":
            p.unlink()
        else:
            p.write_bytes(b"" if damage == "empty" else b"\x00garbage\xff" * 100)
    after = run(home, "stats", "--format", "json")
    assert (after.returncode, after.stderr) == (0, "")
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert run(home, "decide", b, "skip").returncode == 0
    doctor = run(home, "doctor", "--repair")
    assert doctor.returncode == 0, doctor.stderr
    assert run(home, "doctor").returncode == 0


# -- unwritable homes ----------------------------------------------------------------------


def _fail_replace(err: int) -> Callable[..., Any]:
    def replace(*args: Any, **kwargs: Any) -> None:
        raise OSError(err, os.strerror(err))

    return replace


@pytest.mark.parametrize(
    ("err", "reason"),
    [
        (errno.ENOSPC, "no space left on device"),
        (errno.EROFS, "permission denied (read-only?)"),
        (errno.EACCES, "permission denied (read-only?)"),
    ],
)
@pytest.mark.parametrize("how", ["write", "replace"])
def test_a_failing_write_is_one_line_exit_1_and_the_file_is_intact(
    cli: Cli,
    home: Path,
    two: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    err: int,
    reason: str,
    how: str,
) -> None:
    a, _ = two
    path = session_file(home, a)
    before = path.read_bytes()
    names = sorted(os.listdir(home / "sessions"))
    monkeypatch.setattr(os, how, _fail_replace(err))
    res = cli("decide", a, "skip")
    monkeypatch.undo()
    assert res.exit_code == 1, res.stderr
    line = one_line(res.stderr)
    assert line == f"coachctl: cannot write {path}: {reason}", line
    assert path.read_bytes() == before
    assert sorted(os.listdir(home / "sessions")) == names, "a temp file was left behind"
    # Once the disk has room again, the same decision goes through.
    ok = cli("decide", a, "skip", "--step", "two", "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "completed"


def test_a_read_only_lock_folder_is_one_line_exit_1(
    cli: Cli, home: Path, two: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only home fails already when creating the lock file (EROFS from open)."""
    a, _ = two
    path = session_file(home, a)
    before = path.read_bytes()
    real_open = os.open

    def ro_open(p: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(p))
        return real_open(p, flags, *args, **kwargs)

    for lock in (home / "sessions" / ".locks").rglob("*.lock"):
        lock.unlink()
    monkeypatch.setattr(os, "open", ro_open)
    res = cli("decide", a, "skip")
    monkeypatch.undo()
    assert res.exit_code == 1, res.stderr
    line = one_line(res.stderr)
    assert line.startswith("coachctl: cannot lock ") and "read-only" in line, line
    assert path.read_bytes() == before


def test_a_failing_events_append_after_the_decision_is_a_warning(
    cli: Cli, home: Path, two: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session file is the commit point: once it is written, the decision is made.

    A derived write that fails after it (events log, disk full) must not report "nothing
    changed" with exit 1, or a script retries and decides the next step too.
    """
    a, _ = two
    events = home / "sessions" / "events.jsonl"
    real_open = os.open

    def full_events(p: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(p) == str(events):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(p))
        return real_open(p, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", full_events)
    res = cli("decide", a, "skip", "--format", "json")
    monkeypatch.undo()
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "completed"
    line = one_line(res.stderr)
    assert line.startswith("coachctl: warning: ") and "no space left on device" in line, line
    data = json.loads(session_file(home, a).read_bytes())
    assert [d["step_id"] for d in data["decisions"]] == ["one", "two"]


def test_a_really_read_only_sessions_folder(cli: Cli, home: Path, two: tuple[str, str]) -> None:
    """A real read-only sessions/ folder (no simulation): one line, exit 1, file intact.

    Root writes through chmod; as root, the decide runs in a real process whose capabilities
    to override file permissions are dropped (`setpriv`), so the folder's mode applies.
    """
    import shutil
    import subprocess

    from tests.reliability._helpers import coachctl, env

    a, _ = two
    folder = home / "sessions"
    path = session_file(home, a)
    before = path.read_bytes()
    as_root = os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    if as_root and setpriv is None:  # pragma: no cover - util-linux is on every Debian
        pytest.skip("root without setpriv cannot be refused a write")
    os.chmod(folder, 0o500)
    try:
        if as_root:
            drop = "-dac_override,-dac_read_search"
            prefix = [str(setpriv), f"--bounding-set={drop}", f"--inh-caps={drop}"]
            res = subprocess.run(
                [*prefix, *coachctl(home, "decide", a, "skip")],
                capture_output=True,
                text=True,
                timeout=60,
                env=env(),
            )
            code, err = res.returncode, res.stderr
        else:
            out = cli("decide", a, "skip")
            code, err = out.exit_code, out.stderr
    finally:
        os.chmod(folder, 0o700)
    assert code == 1, err
    assert "permission denied" in one_line(err)
    assert len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


# -- schema ----------------------------------------------------------------------------------


def test_a_newer_schema_version_is_refused_not_misread(
    cli: Cli, home: Path, two: tuple[str, str]
) -> None:
    a, b = two
    path = session_file(home, a)
    data = json.loads(path.read_bytes())
    data["schema_version"] = 2
    data["decisions"] = {"format": "something new"}
    path.write_text(json.dumps(data))
    for args in (("show", a), ("decide", a, "skip")):
        res = cli(*args)
        assert res.exit_code == 2
        line = one_line(res.stderr)
        assert "schema_version 2" in line and "newer coachctl" in line, line
    assert json.loads(path.read_bytes()) == data
    assert cli("decide", b, "skip").exit_code == 0


def test_a_session_without_optional_fields_loads(cli: Cli, home: Path) -> None:
    write_workflow(home, "dmg", WF)
    (home / "sessions").mkdir(mode=0o700, exist_ok=True)
    minimal = {
        "id": "minimal-0001",
        "workflow_id": "dmg",
        "mode": "coaching",
        "status": "active",
        "cursor": 0,
        "steps": [{"id": "one", "command": "echo one", "suggestion": "echo one"}],
        "decisions": [],
    }
    session_file(home, "minimal-0001").write_text(json.dumps(minimal))
    state = cli.json("show", "minimal-0001")
    assert state["step"]["id"] == "one"
    done = cli.json("decide", "mini", "accept", "--no-exec")
    assert done["status"] == "completed"
    stats = cli("stats", "--format", "json")
    assert stats.exit_code == 0, stats.stderr


def test_a_session_file_holding_another_id_is_refused(
    cli: Cli, home: Path, two: tuple[str, str]
) -> None:
    """a.json holding session b (a bad copy) must not make a decision on `a` rewrite b.json."""
    a, b = two
    b_before = session_file(home, b).read_bytes()
    session_file(home, a).write_bytes(b_before)
    res = cli("decide", a, "skip")
    assert res.exit_code == 2
    assert one_line(res.stderr) == (
        f"coachctl: unreadable session file {session_file(home, a)}: it holds session {b!r}, "
        f"not {a!r}"
    )
    assert session_file(home, b).read_bytes() == b_before
