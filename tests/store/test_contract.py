"""CONTRACT §3-§5 on BOTH stores: the same tests, the file store and PostgreSQL (§7).

The `store` fixture (tests/store/conftest.py) points every coachctl of a test, in-process
or a real process, at one store through COACHCTL_STORE (PostgreSQL) or at the home's
sessions/ folder (file).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, write_workflow
from tests.store.conftest import StoreUnderTest, proc, run


def show(cli: Cli, sid: str) -> Any:
    return cli.json("show", sid)


def test_the_decision_table(cli: Cli, store: StoreUnderTest, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write_workflow(
        cli.home,
        "table",
        "id: table\nsteps:\n"
        + "".join(f"  - id: s{i}\n    run: echo s{i} >> {marker}\n" for i in range(5)),
    )
    sid = cli.start("table")
    assert cli("decide", sid, "accept").exit_code == 0
    res = cli("decide", sid, "correct", "--correction", f"echo fixed >> {marker}")
    assert res.exit_code == 0, res.stderr
    assert cli("decide", sid, "reject", "--feedback", "no").exit_code == 0
    assert cli("decide", sid, "manual", "--command", "did it").exit_code == 0
    state = cli.json("decide", sid, "skip")
    assert state["status"] == "completed" and state["step"] is None
    assert marker.read_text() == "s0\nfixed\n"
    data = show(cli, sid)
    assert [
        (d["step_id"], d["decision"], d["command"], d["exit_code"]) for d in data["decisions"]
    ] == [
        ("s0", "accept", f"echo s0 >> {marker}", 0),
        ("s1", "correct", f"echo fixed >> {marker}", 0),
        ("s2", "reject", None, None),
        ("s3", "manual", "did it", None),
        ("s4", "skip", None, None),
    ]
    assert data["decisions"][2]["feedback"] == "no"
    assert all(d["decided_by"] == "tester" for d in data["decisions"])
    assert cli("decide", sid, "skip").exit_code == 2  # completed: nothing to decide


def test_a_failed_command_keeps_the_step_and_allows_a_retry(
    cli: Cli, store: StoreUnderTest
) -> None:
    write_workflow(
        cli.home,
        "fails",
        "id: fails\nsteps:\n  - id: f\n    run: exit 7\n  - id: g\n    run: 'true'\n",
    )
    sid = cli.start("fails")
    res = cli("decide", sid, "accept")
    assert res.exit_code == 1 and "exit 7" in res.stderr
    state = show(cli, sid)
    assert (state["status"], state["step"]["id"]) == ("active", "f")
    assert state["stats"]["failed"] == 1
    assert cli("decide", sid, "correct", "--correction", "true").exit_code == 0
    assert show(cli, sid)["step"]["id"] == "g"


def test_step_guard_mismatch_changes_nothing(cli: Cli, store: StoreUnderTest) -> None:
    sid = cli.start("hello")
    res = cli("decide", sid, "skip", "--step", "clock")
    assert res.exit_code == 3 and "not 'clock'" in res.stderr
    assert show(cli, sid)["decisions"] == []
    assert cli("decide", sid, "skip", "--step", "greet").exit_code == 0


def test_a_held_session_lock_is_exit_3_after_lock_timeout(cli: Cli, store: StoreUnderTest) -> None:
    sid = cli.start("hello")
    holder = store.open(cli.home)
    with holder.transaction(sid):
        began = time.monotonic()
        done = run(cli.home, "--lock-timeout", "0.5", "decide", sid, "skip")
        took = time.monotonic() - began
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("coachctl: ")
    assert took < 8
    assert show(cli, sid)["decisions"] == []


def test_pause_and_resume(cli: Cli, store: StoreUnderTest) -> None:
    sid = cli.start("hello")
    assert cli.json("pause", sid, "--reason", "lunch")["status"] == "paused"
    refused = cli("decide", sid, "skip")
    assert refused.exit_code == 2 and "paused" in refused.stderr
    assert cli.json("resume", sid, "--no-input")["status"] == "active"
    assert cli("decide", sid, "skip").exit_code == 0
    assert cli.json("cancel", sid)["status"] == "cancelled"


def test_session_references_and_the_id_listing(
    cli: Cli, store: StoreUnderTest, tmp_path: Path
) -> None:
    """An id, a unique prefix, the random part after '-'; `list_ids` (shell completion's
    listing) holds every session, oldest first; an unknown reference names the store."""
    sids = [cli.start("hello") for _ in range(3)]
    opened = store.open(tmp_path / "home")
    assert opened.list_ids() == sorted(sids)
    for sid in sids:
        assert cli.json("show", sid.split("-")[1])["session_id"] == sid
        assert cli.json("show", sid[:11])["session_id"] == sid
    unknown = cli("show", "zzzz")
    assert unknown.exit_code == 2
    assert opened.describe() in unknown.stderr


def test_learning_a_reported_command_and_adopting_a_correction(
    cli: Cli, store: StoreUnderTest
) -> None:
    write_workflow(
        cli.home,
        "learn",
        "id: learn\ncoaching: {min_observations: 3, adopt_after: 2}\nsteps:\n"
        "  - id: look\n    instructions: look around\n  - id: greet\n    run: echo hi\n",
    )
    for _ in range(3):
        sid = cli.start("learn")
        assert cli("decide", sid, "manual", "--command", "ls -la").exit_code == 0
        assert cli("decide", sid, "correct", "--correction", "echo hello").exit_code == 0
    sid = cli.start("learn")
    step = show(cli, sid)["step"]
    assert (step["id"], step["suggestion"]) == ("look", "ls -la")
    cli("decide", sid, "accept", "--no-exec")
    assert show(cli, sid)["step"]["suggestion"] == "echo hello"
    listed = cli("corrections", "list", "--format", "json")
    assert listed.exit_code == 0 and "ls -la" in listed.stdout and "echo hello" in listed.stdout


SCRIPT = [("accept", 12), ("reject", 2), ("skip", 1), ("manual", 1)]


def _script(cli: Cli) -> Any:
    """The same decisions, in the same order, on whatever store `cli` uses."""
    for decision, times in SCRIPT:
        for _ in range(times):
            sid = cli.start("hello")
            args = ["--no-exec"] if decision == "accept" else []
            assert cli("decide", sid, decision, *args).exit_code == 0
            assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
    out = cli("stats", "--format", "json", "--by", "step")
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)


def test_stats_equal_the_file_store_for_the_same_decisions(
    store: StoreUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from tests.conftest import EXAMPLES

    homes = []
    for name in ("a", "b"):
        h = tmp_path / name
        shutil.copytree(EXAMPLES, h / "workflows")
        homes.append(h)
    on_store = _script(Cli(homes[0]))
    monkeypatch.delenv("COACHCTL_STORE", raising=False)
    on_files = _script(Cli(homes[1]))
    assert on_store == on_files
    hello = next(w for w in on_store["workflows"] if w["workflow_id"] == "hello")
    assert (hello["sessions"], hello["accepted"]) == (16, 28)


def test_readiness_with_no_history_fails_closed(cli: Cli, store: StoreUnderTest) -> None:
    res = cli("readiness", "hello")
    assert res.exit_code == 1


def test_eight_processes_on_eight_sessions(cli: Cli, store: StoreUnderTest) -> None:
    write_workflow(
        cli.home,
        "eight",
        "id: eight\nsteps:\n" + "".join(f"  - id: s{i}\n    run: 'true'\n" for i in range(4)),
    )
    sids = [cli.start("eight") for _ in range(8)]
    for step in ("s0", "s1", "s2", "s3"):
        procs = [
            proc(
                cli.home,
                "--lock-timeout",
                "30",
                "decide",
                sid,
                "accept",
                "--no-exec",
                "--step",
                step,
            )
            for sid in sids
        ]
        results = [(p.wait(90), p.stderr.read() if p.stderr else "") for p in procs]
        assert [rc for rc, _ in results] == [0] * 8, results
    for sid in sids:
        data = show(cli, sid)
        assert data["status"] == "completed"
        assert [d["step_id"] for d in data["decisions"]] == ["s0", "s1", "s2", "s3"]


def test_four_racing_one_step_run_its_command_once(
    cli: Cli, store: StoreUnderTest, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    write_workflow(
        cli.home,
        "once",
        f"id: once\nsteps:\n  - id: slow\n    run: echo x >> {marker}; sleep 0.5\n"
        "  - id: after\n    run: 'true'\n",
    )
    sid = cli.start("once")
    procs = [
        proc(cli.home, "--lock-timeout", "30", "decide", sid, "accept", "--step", "slow")
        for _ in range(4)
    ]
    results = [(p.wait(90), p.stderr.read() if p.stderr else "") for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 3, 3, 3], results
    assert marker.read_text() == "x\n"
    assert [d["step_id"] for d in show(cli, sid)["decisions"]] == ["slow"]


def test_doctor_finds_nothing_wrong_after_a_history(cli: Cli, store: StoreUnderTest) -> None:
    for _ in range(3):
        sid = cli.start("hello")
        assert cli("decide", sid, "correct", "--correction", "echo hi").exit_code == 0
        assert cli("decide", sid, "reject").exit_code == 0
    res = cli("doctor")
    assert res.exit_code == 0, (res.stdout, res.stderr)


def test_doctor_on_postgres_finds_and_repairs_damaged_derived_rows(
    cli: Cli, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    monkeypatch.setenv("COACHCTL_STORE", pg_url)
    sid = cli.start("hello")
    assert cli("decide", sid, "accept", "--no-exec").exit_code == 0
    before = cli("stats", "--format", "json").stdout
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM coachctl_decisions")
        cur.execute("UPDATE coachctl_workflows SET sessions = 7")
    assert cli("stats", "--format", "json").stdout != before
    found = cli("doctor")
    assert found.exit_code == 1
    assert f"session {sid}: decision rows differ" in found.stdout + found.stderr
    assert "its session count says 7, 1 are stored" in found.stdout + found.stderr
    repaired = cli("doctor", "--repair")
    assert repaired.exit_code == 0, repaired.stdout
    assert "rebuilt" in repaired.stdout
    assert cli("doctor").exit_code == 0
    assert cli("stats", "--format", "json").stdout == before


def test_reading_only_some_kinds_of_events(cli: Cli, store: StoreUnderTest) -> None:
    """`read_events(cursor, kinds)` yields exactly the unfiltered stream's events of those
    kinds, with the same cursors; an "event" that is no string matches nothing."""
    sid = cli.start("hello")
    assert cli("decide", sid, "skip").exit_code == 0
    opened = store.open(cli.home)
    opened.append_events(
        [
            {"event": "level_changed", "workflow_id": "hello", "to": "coaching"},
            {"event": "note", "text": 'mentions "event":"level_changed" in a string'},
            {"event": ["level_changed"]},
            {"event": 7},
            {"event": "level_changed_twice", "text": "a longer kind with the same start"},
            {"event": "lev\u00e9l", "text": "not ASCII"},
            {"event": "level_changed", "text": 'quote " and backslash \\'},
        ]
    )
    every = list(opened.read_events(""))
    for kinds in [("level_changed",), ("decision", "lev\u00e9l"), ("none-such",), ()]:
        want = [(e, c) for e, c in every if isinstance(e.get("event"), str) and e["event"] in kinds]
        assert list(opened.read_events("", kinds)) == want
        middle = every[len(every) // 2][1]
        after = [(e, c) for e, c in want if (e, c) in every[len(every) // 2 + 1 :]]
        assert list(opened.read_events(middle, set(kinds))) == after
    assert [e.get("text") for e, _ in opened.read_events("", ["level_changed"])] == [
        None,
        'quote " and backslash \\',
    ]
