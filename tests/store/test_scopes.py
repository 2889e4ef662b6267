"""store/scopes.py, the query rule every store implements, against the engine's rule
(`scope.counts_toward`): a window on key K counts a session's rows exactly when the session
counts toward K under the workflow's trust_scope now."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from coachctl.engine import scope
from coachctl.store.scopes import counts_in, legacy_terms

NAMES = ["env", "region", "zone"]
VALUES = st.sampled_from(["prod", "staging", "", "é x", None, 3])


@given(
    variables=st.dictionaries(st.sampled_from(NAMES), VALUES),
    recorded=st.one_of(st.none(), st.lists(st.sampled_from(NAMES), min_size=1, unique=True)),
    names_now=st.lists(st.sampled_from(NAMES), unique=True),
    asked=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["prod", "staging", None])),
)
def test_the_store_rule_is_the_engines_rule(
    variables: dict[str, Any],
    recorded: list[str] | None,
    names_now: list[str],
    asked: dict[str, str | None],
) -> None:
    session: dict[str, Any] = {"variables": variables, "coaching": {}}
    if recorded is not None:
        session["coaching"]["trust_scope"] = recorded
        session["scope"] = {n: variables.get(n) for n in recorded}
    row_scope = scope.scope_key(session)  # what derive stores on its rows
    values = {} if row_scope else scope.values_of(session)  # what its summary keeps
    for key in {scope.key_of(asked), scope.counts_toward(session, names_now)}:
        if set(scope.parse_key(key) or {}) != set(names_now):
            continue  # stats and readiness ask on the workflow's names now
        want = scope.counts_toward(session, names_now) == key
        assert counts_in(row_scope, values, key) is want, (session, names_now, key)


def test_legacy_terms() -> None:
    assert legacy_terms("") is None
    assert legacy_terms('{"env":"prod","zone":null}') == ({"env": "prod"}, ["zone"])
