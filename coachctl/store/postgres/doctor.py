"""`doctor` on PostgreSQL: the derived rows (decision rows, counts, summaries) against a
recomputation from each session's JSON; `--repair` rewrites the ones that differ."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coachctl.store.base import Finding

if TYPE_CHECKING:
    from coachctl.store.postgres.store import PostgresStore


def _stored_rows(store: PostgresStore, session_id: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in store._all(
            "SELECT session_id, pos, seq, workflow_id, step_id, suggestion, scope, kind,"
            " decided_at FROM coachctl_decisions WHERE session_id = %s ORDER BY pos",
            (session_id,),
        )
    ]


def check(store: PostgresStore, *, repair: bool = False) -> tuple[list[Finding], int]:
    from coachctl.store.postgres.txn import session_writes
    from coachctl.store.summary import summary_of

    findings: list[Finding] = []
    checked = 0
    counts = {
        sid: (a, s, summ)
        for sid, a, s, summ in store._all(
            "SELECT id, accepted, suggestions, summary FROM coachctl_sessions"
        )
    }
    for session in store.iter_sessions():
        checked += 1
        sid = str(session["id"])
        derived = store.derive(session)
        want = [
            (r["session_id"], r["pos"], r["seq"], r["workflow_id"], r["step_id"],
             r["suggestion"], r["scope"], r["kind"], r["decided_at"])
            for r in sorted(derived["rows"], key=lambda r: r["pos"])
        ]  # fmt: skip
        rows_same = _stored_rows(store, sid) == want and counts.get(sid, ())[:2] == (
            derived["accepted"],
            derived["suggestions"],
        )
        # The summary too: its `values` decide which scoped windows count the session.
        summary_same = counts.get(sid, ())[2:] == (summary_of(session, derived),)
        if rows_same and summary_same:
            continue
        what = "decision rows differ" if not rows_same else "summary differs"
        message = f"session {sid}: {what} from its record"
        if not repair:
            findings.append(Finding("index", message, True, sid))
        else:
            store.check_writable()
            with store._errors(), store.conn().cursor() as cur:
                sql = session_writes(cur, session, derived, insert=False)
                cur.execute(b";".join([b"BEGIN", *sql, b"COMMIT"]))
            findings.append(Finding("repaired", f"{message}: rebuilt", False, sid))
    findings += _workflow_counts(store, repair)
    return findings, checked


def _workflow_counts(store: PostgresStore, repair: bool) -> list[Finding]:
    """`coachctl_workflows` (the session count per workflow) against a count of the rows."""
    rows = store._all(
        "SELECT coalesce(c.workflow_id, w.workflow_id), coalesce(c.n, 0), w.sessions"
        " FROM (SELECT workflow_id, count(*) AS n FROM coachctl_sessions GROUP BY 1) c"
        " FULL JOIN coachctl_workflows w ON w.workflow_id = c.workflow_id"
        " WHERE coalesce(c.n, 0) IS DISTINCT FROM w.sessions"
    )
    found = [
        Finding(
            "index", f"workflow {wf}: its session count says {kept}, {n} are stored", not repair
        )
        for wf, n, kept in rows
    ]
    if rows and repair:
        store.check_writable()
        store._all(
            "INSERT INTO coachctl_workflows (workflow_id, sessions)"
            " SELECT workflow_id, count(*) FROM coachctl_sessions GROUP BY 1"
            " ON CONFLICT (workflow_id) DO UPDATE SET sessions = excluded.sessions"
            " RETURNING workflow_id"
        )
        found.append(Finding("repaired", "session counts per workflow recounted", False))
    return found
