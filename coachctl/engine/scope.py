"""Trust scope keys: which slice of a step's history a session's decisions count in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def scope_key(session: Mapping[str, Any]) -> str:
    """ "" when the workflow has no `trust_scope`, else the canonical JSON of the scope
    variables' values in this session (one key per scope, on every store)."""
    coaching = session.get("coaching")
    names = coaching.get("trust_scope") if isinstance(coaching, Mapping) else None
    if not names or not isinstance(names, list):
        return ""
    variables = session.get("variables")
    values = variables if isinstance(variables, Mapping) else {}
    return json.dumps(
        {str(n): values.get(n) for n in names},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
