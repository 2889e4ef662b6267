"""The PostgreSQL store against the Store interface, on a real server (no mocks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from coachctl.errors import ConflictError, SessionNotFound, StateError, UsageError
from coachctl.store.base import Derived
from coachctl.store.postgres.store import PostgresStore

COUNTED = {"accepted", "rejected", "corrected", "manual", "failed"}


def derive(session: Mapping[str, Any]) -> Derived:
    """A stand-in for the engine's rule: each decision carries its kind and seq."""
    rows = [
        {
            "session_id": session["id"],
            "pos": pos,
            "seq": d["seq"],
            "workflow_id": session["workflow_id"],
            "step_id": d["step_id"],
            "suggestion": d.get("suggestion"),
            "scope": "",
            "kind": d["kind"],
            "decided_at": d.get("decided_at", ""),
        }
        for pos, d in enumerate(session.get("decisions", []))
    ]
    return {
        "rows": rows,  # type: ignore[typeddict-item]
        "accepted": sum(r["kind"] == "accepted" for r in rows),
        "suggestions": sum(r["kind"] in COUNTED for r in rows),
        "folds": 0,
        "scope": "",
        "values": {},
    }


def new_session(sid: str, wf: str = "wf") -> dict[str, Any]:
    return {
        "id": sid,
        "workflow_id": wf,
        "mode": "coaching",
        "status": "active",
        "cursor": 0,
        "steps": [{"id": "a"}, {"id": "b"}],
        "decisions": [],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


@pytest.fixture
def stores(pg_url: str, tmp_path: Path) -> Iterator[Any]:
    opened: list[PostgresStore] = []

    def make(lock_timeout: float = 5.0) -> PostgresStore:
        s = PostgresStore(pg_url, tmp_path, lock_timeout, derive=derive)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def decide(store: PostgresStore, sid: str, kind: str, step: str = "a", sugg: str = "echo") -> None:
    with store.transaction(sid) as txn:
        session = txn.session
        session["decisions"].append(
            {"step_id": step, "suggestion": sugg, "kind": kind, "seq": txn.next_seq()}
        )
        txn.save(session, derive(session))
        txn.append_events([{"event": "decision", "session_id": sid, "workflow_id": "wf"}])


def test_create_load_resolve(stores: Any) -> None:
    store = stores()
    store.create(new_session("0000abcd-x1y2"), [{"event": "session_started"}])
    store.create(new_session("0000abce-zz_9"), [])
    assert store.load("0000abcd-x1y2")["steps"] == [{"id": "a"}, {"id": "b"}]
    assert store.resolve("0000abcd") == "0000abcd-x1y2"
    assert store.resolve("x1y2") == "0000abcd-x1y2"
    assert store.resolve("zz_9") == "0000abce-zz_9"
    with pytest.raises(SessionNotFound, match=r"ambiguous.*postgres store"):
        store.resolve("0000")
    with pytest.raises(SessionNotFound, match=r"unknown session: z_9 in postgres store"):
        store.resolve("z_9")  # '_' is no LIKE wildcard here
    with pytest.raises(UsageError):
        store.resolve("../etc")
    with pytest.raises(ConflictError, match="already exists"):
        store.create(new_session("0000abcd-x1y2"), [])
    summary = store.list_sessions("wf")[0][0]
    assert (summary["session_id"], summary["step"], summary["total"]) == ("0000abcd-x1y2", "a", 2)


def test_a_transaction_commits_everything_together_or_nothing(stores: Any) -> None:
    store, other = stores(), stores()
    store.create(new_session("s1"), [])
    decide(store, "s1", "accepted")
    with pytest.raises(RuntimeError), store.transaction("s1") as txn:
        txn.session["status"] = "cancelled"
        txn.save(txn.session, derive(txn.session))
        txn.set_levels([{"workflow_id": "wf", "step_id": "a", "scope": "", "level": "AUTO"}])
        txn.put_pack("wf", {"steps": {}})
        txn.append_events([{"event": "session_cancelled"}])
        raise RuntimeError("engine failed half-way")
    assert other.load("s1")["status"] == "active"
    assert other.pack("wf") is None
    assert [e["event"] for e, _ in other.read_events()] == ["decision"]
    with store.transaction("s1") as txn:
        assert txn.levels("wf", "") == {}


def test_windows_see_staged_rows_and_metrics_answer_in_one_query(stores: Any) -> None:
    store = stores()
    for sid in ("s1", "s2"):
        store.create(new_session(sid), [])
    for kind in ("accepted", "rejected", "accepted"):
        decide(store, "s1", kind)
    decide(store, "s2", "failed")
    decide(store, "s2", "accepted", sugg="other")
    key = ("wf", "a", "echo", "", 3)
    with store.transaction("s2") as txn:
        s = txn.session
        s["decisions"].append(
            {"step_id": "a", "suggestion": "echo", "kind": "manual", "seq": txn.next_seq()}
        )
        txn.save(s, derive(s))
        assert txn.windows([key]) == {key: ["accepted", "failed", "manual"]}
        txn.set_levels([{"workflow_id": "wf", "step_id": "a", "scope": "", "level": "AUTO"}])
        assert txn.levels("wf", "") == {"a": "AUTO"}
    answer = store.metrics(
        {"windows": [key, ("wf", "b", "x", "", 5)], "workflows": ["wf", "none"], "trend": 20}
    )
    assert answer["windows"] == {key: ["accepted", "failed", "manual"], ("wf", "b", "x", "", 5): []}
    assert answer["session_counts"] == {"wf": 2, "none": 0}
    assert answer["trends"] == {"wf": [2 / 3, 1 / 3], "none": []}
    with store.transaction("s1") as txn:
        assert txn.levels("wf", "") == {"a": "AUTO"}


def test_a_held_row_lock_is_a_conflict_after_lock_timeout(stores: Any) -> None:
    holder, waiter = stores(), stores(lock_timeout=0.3)
    holder.create(new_session("s1"), [])
    with holder.transaction("s1"):
        began = time.monotonic()
        with (
            pytest.raises(ConflictError, match="row lock was not had in time"),
            waiter.transaction("s1"),
        ):
            pass
        assert time.monotonic() - began < 2
    decide(waiter, "s1", "accepted")  # the waiter's connection is usable again


def test_events_are_streamed_from_a_cursor_and_followers_wake_on_notify(stores: Any) -> None:
    store, follower = stores(), stores()
    store.create(new_session("s1"), [{"event": "session_started", "session_id": "s1"}])
    end = follower.events_end()
    woke: list[float] = []

    def follow() -> None:
        began = time.monotonic()
        follower.wait_events(end, 10.0)
        woke.append(time.monotonic() - began)

    thread = threading.Thread(target=follow)
    thread.start()
    time.sleep(0.3)
    decide(store, "s1", "accepted")
    thread.join(10)
    assert woke and woke[0] < 1.5
    got = list(follower.read_events(end))
    assert [e["event"] for e, _ in got] == ["decision"]
    assert list(follower.read_events(got[-1][1])) == []
    assert [e["event"] for e, _ in store.read_events()] == ["session_started", "decision"]


def test_a_lease_is_held_by_its_connection_and_dies_with_it(stores: Any) -> None:
    runner, other = stores(), stores()
    runner.create(new_session("s1"), [])
    with runner.lease("s1", "tok"):
        assert other.lease_alive("s1", "tok") is True
        assert runner.lease_alive("s1", "tok") is True
        with pytest.raises(ConflictError, match="has a step running"), other.lease("s1", "tok"):
            pass
        runner.close()  # the runner's process dies: its connection goes
        deadline = time.monotonic() + 5
        while other.lease_alive("s1", "tok") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.lease_alive("s1", "tok") is False
    assert other.lease_alive("s1", "tok") is False  # trying it left nothing held


def test_a_moved_store_refuses_writes_naming_the_new_one(stores: Any) -> None:
    store = stores()
    store.create(new_session("s1"), [])
    store.mark_moved("file store /srv/team/sessions")
    later = stores()
    assert later.load("s1")["id"] == "s1"
    with pytest.raises(StateError, match="moved to file store /srv/team/sessions"):
        decide(later, "s1", "accepted")


def test_schema_older_or_newer_is_refused_naming_the_fix(pg_empty: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no coachctl schema.*coachctl store upgrade"):
        PostgresStore(pg_empty, tmp_path, derive=derive).list_sessions()
    import psycopg2

    from coachctl.store.postgres import schema
    from coachctl.store.postgres.connect import connect

    conn = connect(pg_empty, 5)
    schema.upgrade(conn, "x")
    conn.close()
    with psycopg2.connect(pg_empty) as c, c.cursor() as cur:
        cur.execute("INSERT INTO coachctl_schema (version) VALUES (99)")
    with pytest.raises(UsageError, match=r"newer than this coachctl.*upgrade coachctl"):
        PostgresStore(pg_empty, tmp_path, derive=derive).list_sessions()


def test_hand_choices_and_packs(stores: Any) -> None:
    store = stores()
    assert store.hand_choices("wf") == {}
    with store.hand_transaction("wf") as txn:
        assert txn.choices == {}
        txn.put({"adopted": {"a": "echo hi"}})
        txn.append_events([{"event": "adopted"}])
    assert store.hand_choices("wf") == {"adopted": {"a": "echo hi"}}
    store.put_pack("other", {"steps": {}})
    assert store.pack_ids() == ["other", "wf"]


def test_next_seq_stays_above_imported_sequences(stores: Any) -> None:
    store = stores()
    imported = new_session("old")
    imported["decisions"] = [
        {"step_id": "a", "suggestion": "echo", "kind": "accepted", "seq": 5000}
    ]
    store.create(imported, [])
    store.create(new_session("s1"), [])
    with store.transaction("s1") as txn:
        assert txn.next_seq() > 5000


def test_a_follower_reading_past_its_cursor_never_skips_a_late_commit(stores: Any) -> None:
    """Eight writers append events at once while a follower reads `id > last` in a loop:
    appends are serialised to commit order, so the follower sees every event."""
    writers = [stores() for _ in range(8)]
    follower = stores()
    writers[0].create(new_session("s1"), [])
    seen: list[int] = []
    done = threading.Event()
    start = follower.events_end()

    def follow() -> None:
        cursor = start
        while True:
            finished = done.is_set()
            for event, after in list(follower.read_events(cursor)):
                seen.append(event["n"])
                cursor = after
            if finished:
                return
            follower.wait_events(cursor, 0.05)

    def write(i: int) -> None:
        for j in range(25):
            writers[i].append_events([{"event": "note", "n": i * 100 + j}])

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    reader.join(60)
    assert sorted(seen) == sorted(i * 100 + j for i in range(8) for j in range(25))
    assert len(seen) == len(set(seen))


def test_a_follower_whose_connection_is_cut_reconnects_from_its_cursor(
    stores: Any, pg_url: str
) -> None:
    import psycopg2

    store, follower = stores(), stores()
    store.create(new_session("s1"), [])
    cursor = follower.events_end()
    follower.wait_events(cursor, 0.01)  # LISTENing now
    pid = follower.conn().get_backend_pid()
    with psycopg2.connect(pg_url) as admin, admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    decide(store, "s1", "accepted")
    deadline = time.monotonic() + 5
    seen: list[str] = []
    while not seen and time.monotonic() < deadline:
        follower.wait_events(cursor, 0.5)  # notices the cut, reopens
        seen = [e["event"] for e, _ in follower.read_events(cursor)]
    assert seen == ["decision"]
    assert follower.conn().get_backend_pid() != pid


def test_the_connection_carries_its_timeouts_and_keepalives(stores: Any) -> None:
    store = stores(lock_timeout=2.5)
    with store.conn().cursor() as cur:
        cur.execute(
            "SELECT current_setting('lock_timeout'),"
            " current_setting('idle_in_transaction_session_timeout'),"
            " current_setting('application_name')"
        )
        assert cur.fetchone() == ("2500ms", "1min", "coachctl")
    params = store.conn().get_dsn_parameters()
    assert params["keepalives"] == "1" and params["connect_timeout"] == "5"


def test_a_session_written_by_a_newer_coachctl_is_refused(stores: Any) -> None:
    store = stores()
    newer = new_session("s1")
    newer["schema_version"] = 99
    store.create(newer, [])
    with pytest.raises(StateError, match=r"schema_version 99.*upgrade coachctl"):
        store.load("s1")
    with pytest.raises(StateError, match=r"upgrade coachctl"), store.transaction("s1"):
        pass


def test_a_follower_waits_out_an_outage_and_reads_on_from_its_cursor(
    stores: Any, pg_url: str, tmp_path: Path
) -> None:
    """The network to the database goes away for a while (a proxy that is cut, then comes
    back on the same port): the follower neither fails nor skips what was written meanwhile."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from delayproxy import DelayProxy

    host, port = pg_url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = DelayProxy((host, int(port)), one_way=0.0).__enter__()
    via = pg_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    writer = stores()
    follower = PostgresStore(via, tmp_path, 5.0, derive=derive)
    writer.create(new_session("s1"), [])
    cursor = follower.events_end()
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def follow() -> None:
        nonlocal cursor
        try:
            while not stop.is_set():
                follower.wait_events(cursor, 0.2)
                for event, after in list(follower.read_events(cursor)):
                    seen.append(event["event"])
                    cursor = after
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        decide(writer, "s1", "accepted")
        deadline = time.monotonic() + 5
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["decision"]
        proxy.close()  # the outage
        decide(writer, "s1", "rejected")
        time.sleep(1.5)
        assert seen == ["decision"] and not errors
        proxy = DelayProxy((host, int(port)), one_way=0.0, port=proxy.port).__enter__()
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["decision", "decision"], errors
    finally:
        stop.set()
        thread.join(15)
        proxy.close()
        follower.close()
    assert not errors


def test_inside_a_teaching_decision_the_pack_is_current_not_rebuilt(stores: Any) -> None:
    """A pack that folded every committed decision is current, even after this
    transaction staged (and flushed, for a window query) the session's new state: else
    every teaching decision would rebuild the pack from all teaching sessions."""

    def teaching(session: Mapping[str, Any]) -> Derived:
        out = derive(session)
        out["folds"] = len(session["decisions"])
        return out

    store = stores()
    store.derive = teaching
    store.create(new_session("s1"), [])
    with store.transaction("s1") as txn:
        s = txn.session
        s["decisions"].append({"step_id": "a", "suggestion": "x", "kind": "corrected", "seq": 1})
        txn.save(s, teaching(s))
    pack = {"version": 1, "workflow_id": "wf", "steps": {}, "folded": {"s1": 1}}
    store.put_pack("wf", pack)
    assert store.pack("wf") == pack
    with store.transaction("s1") as txn:
        s = txn.session
        s["decisions"].append({"step_id": "a", "suggestion": "x", "kind": "corrected", "seq": 2})
        txn.save(s, teaching(s))
        txn.windows([("wf", "a", "x", "", 5)])  # flushes the staged rows
        assert txn.pack("wf") == pack
        txn.put_pack("wf", {**pack, "folded": {"s1": 2}})
    assert store.pack("wf") == {**pack, "folded": {"s1": 2}}
