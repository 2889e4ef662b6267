"""Trust scope (CONTRACT §5): which values of a workflow's scope variables a decision counts for.

With `coaching: trust_scope: [env]`, 25 accepts with env=staging make a step AUTO for staging
and say nothing about prod. A *scope* is a mapping {variable: value} over the workflow's
`trust_scope` names; its *key* is "" without a trust_scope, else canonical JSON, so a key can
be stored, compared and grouped by as a plain string on any store.

Decided where the contract is silent:
- A session counts toward `counts_toward(session, names_now)`: the scope it recorded at start
  (the `trust_scope` in its `coaching` snapshot, values from its `scope`, else its
  `variables`); a session that recorded none (it started before its workflow had a
  `trust_scope`) counts toward the values in its `variables` over the workflow's trust_scope
  *now*. Its rows are stored with scope "" and its values in its summary, and a window on a
  scope matches them at query time (store/scopes.py), so adding `trust_scope: [env]` later
  splits the old history by the env each session had, and changing the list re-splits it
  (a session that recorded a trust_scope keeps the one it recorded).
- Such a session, still open when the trust_scope is added, keeps its snapshot (no
  trust_scope: `show` and its level events judge it on the unscoped window of sessions like
  it), but a mixed run takes a step unasked only when it is also AUTO in the scope its values
  count toward now (`history.may_run_alone`, which reads the workflow file once per run:
  `decide` never does). Its decisions count toward that scope for everyone else.
- A session that never had a value for a scope variable has `null` there: it counts toward
  no scope that a run can ask for.
- A session's scope is fixed at start: `resume` and `decide` take no `--var`, so nothing can
  change it later (click refuses the option, exit 2).
Pure engine code: no click, no printing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from coachctl.errors import UsageError

Scope = dict[str, "str | None"]


def names_of(coaching: Any) -> tuple[str, ...]:
    """The trust_scope names in a recorded `coaching` mapping (tolerant of hand edits)."""
    if not isinstance(coaching, Mapping):
        return ()
    raw = coaching.get("trust_scope")
    if not isinstance(raw, (list, tuple)):
        return ()
    return tuple(dict.fromkeys(str(n) for n in raw if isinstance(n, str)))


def values_of(session: Mapping[str, Any]) -> dict[str, str]:
    """The variable values a session ran with: its recorded `scope` over its `variables`."""
    out: dict[str, str] = {}
    for field in ("variables", "scope"):
        raw = session.get(field)
        if isinstance(raw, Mapping):
            out.update({str(k): v for k, v in raw.items() if isinstance(v, str)})
    return out


def scope_of(session: Mapping[str, Any], names: Sequence[str] | None = None) -> Scope:
    """The session's scope over `names` (default: the trust_scope it recorded)."""
    if names is None:
        names = names_of(session.get("coaching"))
    values = values_of(session)
    return {name: values.get(name) for name in names}


def key_of(scope: Mapping[str, str | None] | None) -> str:
    """ "" for no scope, else compact JSON with sorted keys: one string per scope, any store."""
    if not scope:
        return ""
    return json.dumps(dict(scope), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def scope_key(session: Mapping[str, Any], names: Sequence[str] | None = None) -> str:
    """The key a session's decisions count toward (see `scope_of`)."""
    return key_of(scope_of(session, names))


def counts_toward(session: Mapping[str, Any], names_now: Sequence[str]) -> str:
    """The key a session's decisions count toward in a workflow whose trust_scope is now
    `names_now`: the scope it recorded at start; a session that recorded none (it started
    before the workflow had a trust_scope) counts toward the values in its `variables`."""
    recorded = names_of(session.get("coaching"))
    if recorded:
        return scope_key(session, recorded)
    return key_of(scope_of(session, names_now)) if names_now else ""


def summary_key(row: Mapping[str, Any], names_now: Sequence[str]) -> str:
    """`counts_toward` from a session's kept summary (its recorded key, else its `values`):
    what `stats` groups the scopes seen by without re-reading a session."""
    key = row.get("scope")
    if isinstance(key, str) and key:
        return key
    values = row.get("values")
    return counts_toward({"variables": values if isinstance(values, Mapping) else {}}, names_now)


def summary_keys(rows: Iterable[Mapping[str, Any]], names_now: Sequence[str]) -> Iterator[str]:
    """`summary_key` of each row; each distinct set of values is keyed once (10,000 old
    sessions share a handful of scopes, and `stats` walks them all)."""
    names = tuple(names_now)
    cache: dict[tuple[str | None, ...], str] = {}
    for row in rows:
        key = row.get("scope")
        if isinstance(key, str) and key:
            yield key
            continue
        raw = row.get("values")
        values = raw if isinstance(raw, Mapping) else {}
        found = tuple(v if isinstance(v := values.get(n), str) else None for n in names)
        if found not in cache:
            cache[found] = summary_key(row, names)
        yield cache[found]


def parse_key(key: str) -> Scope | None:
    """Inverse of `key_of`: None for "" (no scope)."""
    if not key:
        return None
    data = json.loads(key)
    return {str(k): (None if v is None else str(v)) for k, v in data.items()}


def label(scope: Mapping[str, str | None] | None) -> str:
    """`env=prod, region=eu` for messages; "" for no scope."""
    if not scope:
        return ""
    return ", ".join(f"{k}={'(none)' if v is None else v}" for k, v in scope.items())


def matches(values: Mapping[str, str], scope: Mapping[str, str | None]) -> bool:
    """Does a session with these values count toward `scope`?"""
    return all(values.get(name) == value for name, value in scope.items())


def scopes_seen(sessions: Iterable[Mapping[str, Any]], names: Sequence[str]) -> list[Scope]:
    """Every distinct scope these sessions had, sorted by key (stable output)."""
    found = {scope_key(s, names): scope_of(s, names) for s in sessions}
    return [found[k] for k in sorted(found)]


def resolve(
    workflow_id: str,
    names: Sequence[str],
    defaults: Mapping[str, str | None],
    given: Mapping[str, str],
) -> Scope | None:
    """The one scope `readiness` or `run` is about: `--var` values, else the defaults.

    None without a trust_scope. A scope variable with neither is a UsageError (exit 2):
    "name the scope", never a guess.
    """
    if not names:
        return None
    scope: Scope = {name: given.get(name, defaults.get(name)) for name in names}
    missing = [name for name, value in scope.items() if value is None]
    if missing:
        raise UsageError(name_the_scope(workflow_id, missing))
    return scope


def name_the_scope(workflow_id: str, missing: Sequence[str]) -> str:
    """The one line for a scope variable with neither a default nor `--var`."""
    hint = " ".join(f"--var {name}=…" for name in missing)
    what = "a trust_scope variable" if len(missing) == 1 else "trust_scope variables"
    return f"{workflow_id}: name the scope: {hint} ({what} without a default)"


def selection(names: Sequence[str], given: Mapping[str, str]) -> dict[str, str]:
    """What `stats --var` keeps: the given values of scope variables (others are ignored)."""
    return {name: given[name] for name in names if name in given}
