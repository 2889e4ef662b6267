"""`derive` in one tight pass for a plainly well-formed session: the file store's cold build.

Why: a cold build derives every session of a fresh clone, and the general path
(`Session.from_dict`, `derive`'s row dicts, then the store's tuples) cost as much CPU as
parsing the JSON. `fast_derive` takes the shape coachctl itself writes and returns None for
anything else, which then goes the full way (`records.checked_derive`): so it rejects nothing
on its own, every error message stays the full path's, and a session it accepts is one the
full path accepts too, with the same numbers and rows (as tuples, `store.base.RowTuple`). It
copies the rules of `records.derive` (scope key and kept values), `metrics.classify` and
`learning._kind`; tests/engine/test_records_fast.py compares it with them on generated and
mutated sessions, so a rule changed there and not here fails. The engine hands it to the
file store beside `derive` (engine/stores.py): the store never imports engine rules.
"""

from __future__ import annotations

from typing import Any

from coachctl.engine.records import seq_of
from coachctl.engine.scope import scope_key, values_of
from coachctl.engine.session import MODES, STATUSES
from coachctl.store.base import SCHEMA_VERSION, Derived, RowTuple

# metrics.classify for a person's decision that did not fail
_KINDS = {
    "accept": "accepted",
    "correct": "corrected",
    "reject": "rejected",
    "manual": "manual",
    "skip": "skipped",
}


def fast_derive(obj: Any) -> tuple[Derived, list[RowTuple]] | None:
    """`derive(obj)` with its rows as tuples, for a session file's parsed object, or None
    when it is not plainly well-formed (the caller then takes the full path, which decides)."""
    if type(obj) is not dict:
        return None
    get = obj.get
    sid, wf, version = get("id"), get("workflow_id"), get("schema_version", 1)
    if type(sid) is not str or type(wf) is not str:
        return None
    if type(version) is not int or version > SCHEMA_VERSION:
        return None
    status, cursor, steps = get("status"), get("cursor"), get("steps")
    if get("mode") not in MODES or status not in STATUSES:
        return None
    if type(cursor) is not int or type(steps) is not list:
        return None
    decisions = get("decisions", [])
    if type(decisions) is not list:
        return None
    for step in steps:
        if type(step) is not dict or type(step.get("id")) is not str:
            return None
    coaching = get("coaching")
    scope = scope_key(obj) if type(coaching) is dict and coaching.get("trust_scope") else ""
    rows: list[RowTuple] = []
    accepted = suggestions = 0
    teaches = False
    for pos, d in enumerate(decisions):
        if type(d) is not dict:
            return None
        dget = d.get
        outcome, by, decision, step_id = (
            dget("outcome"),
            dget("decided_by"),
            dget("decision"),
            dget("step_id"),
        )
        if not teaches and type(step_id) is str:  # learning._kind: does it teach?
            command = dget("command")
            if type(command) is str and command.strip():
                teaches = (decision == "manual" and dget("suggestion") is None) or (
                    decision == "correct"
                    and outcome not in ("failed", "interrupted")
                    and by != "auto"
                )
        if dget("mode") == "observation" or outcome == "interrupted":
            continue  # metrics.classify: counts nothing
        if by == "auto":
            if outcome != "failed":
                continue
            kind = "failed"
        elif type(decision) is not str or decision not in _KINDS:
            continue
        elif decision == "accept" and outcome == "failed":
            kind = "failed"
        else:
            kind = _KINDS[decision]
        if kind != "skipped":
            suggestions += 1
            accepted += kind == "accepted"
        if type(step_id) is not str:
            continue
        seq = dget("seq")
        if type(seq) is not int or seq < 0:
            seq = seq_of(d)
        suggestion = dget("suggestion")
        rows.append(
            (
                sid,
                pos,
                seq,
                wf,
                step_id,
                suggestion if type(suggestion) is str else None,
                scope,
                kind,
                str(dget("decided_at", "")),
            )
        )
    derived: Derived = {
        "rows": [],
        "accepted": accepted,
        "suggestions": suggestions,
        "folds": len(decisions) if teaches else 0,
        "scope": scope,
        "values": {} if scope else values_of(obj),  # as derive: what an unscoped one had
    }
    return derived, rows
