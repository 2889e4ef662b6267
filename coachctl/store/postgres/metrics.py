"""Metrics in SQL: every window, session count and trend of one question, one round trip.

A step's window is the latest N decision rows on exactly its suggestion and scope, in
order of record (`seq`, then session id and position, as the file store's index orders
them). Each window is an index-backed top-N (`LATERAL … ORDER BY seq DESC FETCH FIRST n ROWS
WITH TIES` on `coachctl_decisions_window`, then the exact order and LIMIT n), which reads N
rows per step however long the history: a
window function (`row_number() OVER (PARTITION BY step ORDER BY seq DESC)`) gives the
same rows but reads every decision of the step first. A window on a trust scope is two such
top-Ns merged (store/scopes.py): the rows recorded with it, and the rows of sessions that
recorded no scope whose kept `values` match it (walked newest first, each session looked up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coachctl.store.base import MetricsAnswer, MetricsQuery, WindowKey

_KEYS = (
    "SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[],"
    " %s::text[], %s::text[]) AS k(i, wf, step, sugg, scope, n, want, absent)"
)
# Two index-backed top-Ns merged: the rows recorded with the scope, and (on a scope only) the
# unscoped rows whose session's kept `values` hold it (store/scopes.py; `want` is null for "").
# Each branch orders by `seq` alone, as the index does, taking the ties at the n-th row too
# (WITH TIES), and the merge orders exactly: no sort below the LIMIT, so a branch stops after
# n rows whatever the planner's statistics say (with a sort it may read the whole step). The
# session is a correlated subquery, not a join, for the same reason: the planner walks the
# window index newest first and looks each session up by key (a join may scan them all).
_WINDOW = (
    " CROSS JOIN LATERAL (SELECT array_agg(t.kind ORDER BY t.seq, t.session_id, t.pos) AS kinds"
    " FROM (SELECT u.kind, u.seq, u.session_id, u.pos FROM ("
    "(SELECT d.kind, d.seq, d.session_id, d.pos FROM coachctl_decisions d"
    " WHERE d.workflow_id = k.wf AND d.step_id = k.step AND d.suggestion = k.sugg"
    " AND d.scope = k.scope ORDER BY d.seq DESC FETCH FIRST (k.n) ROWS WITH TIES)"
    " UNION ALL (SELECT d.kind, d.seq, d.session_id, d.pos FROM coachctl_decisions d"
    " WHERE k.want IS NOT NULL AND d.workflow_id = k.wf AND d.step_id = k.step"
    " AND d.suggestion = k.sugg AND d.scope = ''"
    " AND (SELECT s.summary->'values' @> k.want::jsonb AND NOT (s.summary->'values'"
    " ?| ARRAY(SELECT jsonb_array_elements_text(k.absent::jsonb)))"
    " FROM coachctl_sessions s WHERE s.id = d.session_id)"
    " ORDER BY d.seq DESC FETCH FIRST (k.n) ROWS WITH TIES)) u"
    " ORDER BY u.seq DESC, u.session_id DESC, u.pos DESC LIMIT k.n) t) w"
)


def _key_params(keys: Sequence[WindowKey]) -> list[list[Any]]:
    import json

    from coachctl.store.scopes import legacy_terms

    cols: list[list[Any]] = [[], [], [], [], [], [], [], []]
    for i, (wf, step, sugg, scope, n) in enumerate(keys):
        terms = legacy_terms(scope)
        want = None if terms is None else json.dumps(terms[0])
        absent = json.dumps([] if terms is None else terms[1])
        row = (i, wf, step, sugg, scope, max(int(n), 0), want, absent)
        for col, value in zip(cols, row, strict=True):
            col.append(value)
    return cols


def windows_query(cur: Any, keys: Sequence[WindowKey]) -> bytes:
    """(i, kinds oldest first) for each key, `i` its index in `keys`."""
    return bytes(cur.mogrify(f"SELECT k.i, w.kinds FROM ({_KEYS}) k{_WINDOW}", _key_params(keys)))


def metrics_query(cur: Any, query: MetricsQuery) -> bytes:
    """One row, one JSON object: {"w": [[i, kinds]…], "c": {wf: n}, "t": {wf: [[a, s]…]}}."""
    keys = query["windows"]
    return bytes(
        cur.mogrify(
            "SELECT json_build_object("
            f" 'w', (SELECT coalesce(json_agg(json_build_array(k.i, w.kinds)), '[]')"
            f"  FROM ({_KEYS}) k{_WINDOW}),"
            " 'c', (SELECT coalesce(json_object_agg(workflow_id, sessions), '{}')"
            "  FROM coachctl_workflows WHERE workflow_id = ANY(%s::text[])),"
            " 't', (SELECT coalesce(json_object_agg(f.wf, f.rates), '{}') FROM"
            "  (SELECT u.wf, (SELECT coalesce(json_agg(json_build_array(x.accepted,"
            "    x.suggestions) ORDER BY x.id), '[]') FROM (SELECT s.id, s.accepted,"
            "    s.suggestions FROM coachctl_sessions s WHERE s.workflow_id = u.wf"
            "    ORDER BY s.id DESC LIMIT %s) x) AS rates"
            "   FROM unnest(%s::text[]) AS u(wf)) f))",
            [*_key_params(keys), query["workflows"], query["trend"], query["workflows"]],
        )
    )


def answer(query: MetricsQuery, obj: dict[str, Any]) -> MetricsAnswer:
    keys = query["windows"]
    found = {int(i): kinds or [] for i, kinds in obj["w"]}
    counts = obj["c"]
    trends = obj["t"]
    return {
        "windows": {key: list(found.get(i, [])) for i, key in enumerate(keys)},
        "session_counts": {wf: int(counts.get(wf, 0)) for wf in query["workflows"]},
        "trends": {
            wf: [a / s if s else None for a, s in trends.get(wf, [])] for wf in query["workflows"]
        },
        "bad": [],
    }
