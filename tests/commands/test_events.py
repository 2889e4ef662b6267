"""`coachctl events`: formats, filters, bad input, and `--follow` as a real process."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from coachctl.engine.events import EventFilter, parse_since, parse_time
from coachctl.engine.stores import file_store
from coachctl.errors import UsageError
from tests.conftest import Cli, coachctl_cmd, write_workflow


def events_path(home: Path) -> Path:
    return home / "sessions" / "events.jsonl"


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def two_sessions(cli: Cli) -> tuple[str, str]:
    """A hello session with accept + reject, and an incident-triage session just started."""
    a = cli.start("hello")
    assert cli("decide", a, "accept").exit_code == 0
    assert cli("decide", a, "reject", "--feedback", "not now").exit_code == 0
    b = cli.start("incident-triage")
    return a, b


# -- printing -----------------------------------------------------------------------------


def test_json_is_one_object_per_line_in_log_order(cli: Cli, two_sessions: tuple[str, str]) -> None:
    a, b = two_sessions
    result = cli("events", "--format", "json")
    assert result.exit_code == 0, result.stderr
    got = [(e["event"], e["session_id"], e.get("step_id")) for e in json_lines(result.stdout)]
    assert got == [
        ("session_started", a, None),
        ("decision", a, "greet"),
        ("step_executed", a, "greet"),
        ("decision", a, "clock"),
        ("session_started", b, None),
    ]
    assert all("\n" not in line for line in result.stdout.splitlines())


def test_text_is_one_readable_line_per_event(cli: Cli, two_sessions: tuple[str, str]) -> None:
    a, _ = two_sessions
    result = cli("events")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    ts, name, sid, wf, *rest = lines[2].split()
    assert (name, sid, wf) == ("step_executed", a, "hello")
    assert parse_time(ts) is not None
    assert "command=\"echo 'hello from coachctl'\"" in lines[2]
    assert "exit_code=0" in rest and "step_id=greet" in rest
    assert lines[3].split()[1:4] == ["decision", a, "hello"]
    assert "decision=reject" in lines[3].split()


def test_empty_home_prints_nothing(cli: Cli) -> None:
    result = cli("events")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_session_filter_takes_a_prefix(cli: Cli, two_sessions: tuple[str, str], fmt: str) -> None:
    a, b = two_sessions
    result = cli("events", "--session", b[:9], "--format", fmt)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert b in lines[0] and a not in lines[0]


@pytest.mark.parametrize("ref", ["hello", "workflows/hello.yaml"])
def test_workflow_filter_by_id_or_path(
    cli: Cli, home: Path, two_sessions: tuple[str, str], ref: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(home)
    rows = json_lines(cli("events", "--workflow", ref, "--format", "json").stdout)
    assert [r["workflow_id"] for r in rows] == ["hello"] * 4


def test_since_filters_by_time(cli: Cli, home: Path, two_sessions: tuple[str, str]) -> None:
    rows = json_lines(cli("events", "--format", "json").stdout)
    cut = rows[3]["ts"]
    after = json_lines(cli("events", "--format", "json", "--since", str(cut)).stdout)
    assert after == rows[3:]
    assert cli("events", "--since", "2999-01-01").stdout == ""
    assert len(cli("events", "--since", "1h").stdout.splitlines()) == 5
    assert len(cli("events", "--since", "2000-01-01T00:00:00+02:00").stdout.splitlines()) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "yesterday"],
            "coachctl: invalid --since: 'yesterday' (expected an ISO-8601 time like "
            "2024-05-01T12:00:00Z, or an age like 15m, 2h, 7d)",
        ),
        (["--session", "zzzzzz"], "coachctl: unknown session: zzzzzz in file store {sessions}"),
        (
            ["--session", "../etc"],
            "coachctl: invalid session reference: '../etc' "
            "(expected letters, digits, '.', '_', '-')",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(cli: Cli, home: Path, args: list[str], message: str) -> None:
    result = cli("events", *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message.format(sessions=home / "sessions")]
    assert result.stdout == ""


def test_bad_format_is_exit_2(cli: Cli) -> None:
    result = cli("events", "--format", "xml")
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr


def test_unparsable_lines_in_the_log_are_skipped(cli: Cli, home: Path) -> None:
    sid = cli.start("hello")
    with open(events_path(home), "ab") as fh:
        fh.write(b"not json at all\n[1, 2]\n")
    assert cli("decide", sid, "skip").exit_code == 0
    rows = json_lines(cli("events", "--format", "json").stdout)
    assert [r["event"] for r in rows] == ["session_started", "decision"]


# -- the pure helpers ---------------------------------------------------------------------


def test_parse_since_ages_and_times() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_since("15m", now) == datetime(2024, 5, 1, 11, 45, tzinfo=timezone.utc)
    assert parse_since("2d", now) == datetime(2024, 4, 29, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T14:00:00+02:00") == now
    with pytest.raises(UsageError):
        parse_since("-5m")


def test_filter_without_a_timestamp_is_left_out_only_by_since() -> None:
    e = {"event": "decision", "session_id": "s1", "workflow_id": "w"}
    assert EventFilter().matches(e)
    assert EventFilter(session_id="s1", workflow_id="w").matches(e)
    assert not EventFilter(since=datetime(2000, 1, 1, tzinfo=timezone.utc)).matches(e)


# -- --follow, as real processes ----------------------------------------------------------


class Follower:
    """`coachctl events --follow --format json` as a real process, its lines in a queue."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "COACHCTL_HOME": str(home)}
        self.proc = subprocess.Popen(
            [*coachctl_cmd(), "events", "--follow", "--format", "json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[dict[str, object]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(json.loads(raw))

    def next(self, timeout: float) -> dict[str, object]:
        return self.lines.get(timeout=timeout)

    def ready(self, home: Path, session_id: str | None = None) -> None:
        """--follow starts at the end: append probe events until it prints one, so what a
        test does next surely happens after the follower began."""
        from coachctl.engine.session import utcnow

        store = file_store(home)
        for _ in range(100):
            store.append_events([{"event": "probe", "session_id": session_id, "ts": utcnow()}])
            try:
                got = self.next(0.2)
            except queue.Empty:
                continue
            assert got["event"] == "probe"
            while not self.lines.empty():
                assert self.next(0)["event"] == "probe"
            return
        raise AssertionError("the follower never printed a probe")

    def stop(self) -> tuple[int, bytes]:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()


def run_decide(home: Path, *args: str) -> None:
    env = {**os.environ, "COACHCTL_HOME": str(home)}
    done = subprocess.run(
        [*coachctl_cmd(), "decide", *args], capture_output=True, env=env, timeout=20
    )
    assert done.returncode == 0, done.stderr


def test_follow_sees_another_process_decide_within_a_second(cli: Cli, home: Path) -> None:
    sid = cli.start("hello")
    follower = Follower(home)
    try:
        follower.ready(home)  # the history (session_started) is not repeated
        run_decide(home, sid, "skip")
        t0 = time.monotonic()
        got = follower.next(1.0)
        assert time.monotonic() - t0 < 1.0
        assert (got["event"], got["session_id"], got["decision"]) == ("decision", sid, "skip")

        # A writer died mid-line: half an event and no newline.
        with open(events_path(home), "ab") as fh:
            fh.write(b'{"event":"decision","session_id":"half-writ')
        time.sleep(0.5)  # the follower polls the torn line a few times
        assert follower.proc.poll() is None
        run_decide(home, sid, "reject", "--feedback", "later")
        got = follower.next(1.0)
        assert (got["event"], got["decision"]) == ("decision", "reject")
        assert follower.lines.empty()

        follower.proc.send_signal(signal.SIGINT)
        assert follower.proc.wait(5) == 0
    finally:
        code, err = follower.stop()
    assert code == 0
    assert err == b""


def test_follow_applies_filters_to_new_events(cli: Cli, home: Path) -> None:
    write_workflow(home, "other", "steps:\n  - id: one\n    run: 'true'\n")
    mine = cli.start("hello")
    follower = Follower(home, "--session", mine, "--since", "1h")
    try:
        follower.ready(home, mine)
        theirs = cli.start("other")
        run_decide(home, theirs, "skip")
        run_decide(home, mine, "skip")
        got = follower.next(2.0)
        assert (got["session_id"], got["step_id"]) == (mine, "greet")
        follower.proc.send_signal(signal.SIGINT)
        assert follower.proc.wait(5) == 0
    finally:
        follower.stop()
    assert follower.lines.empty()


def test_follow_rereads_a_log_that_shrank(tmp_path: Path) -> None:
    from coachctl.engine import events as ev

    store = file_store(tmp_path / "home")
    store.append_events([{"event": "a", "n": i} for i in range(3)])
    *_, (_, cursor) = store.read_events("")
    store.events_path.write_bytes(b'{"event":"rewritten"}\n')
    gen = ev.follow(store, cursor, interval=0)
    assert next(gen) == [{"event": "rewritten"}]
