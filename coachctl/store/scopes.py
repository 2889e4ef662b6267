"""What a window on a trust scope counts: the one query rule every store implements.

A decision row carries the scope key its session recorded at start (`engine/scope.py`), ""
when it recorded no trust_scope. Such a session counts toward the values in its variables
over the workflow's trust_scope *now* (`scope.counts_toward`), and a trust_scope can be added
to a workflow after its rows were written, so the store cannot bake that key in: it matches
at query time. A window on key K counts rows of scope K, plus rows of scope "" whose
session's `values` (kept in its summary) hold K's values, where a null in K means the
session has no such variable. A window on "" counts rows of scope "" only, as it always did.
Typing and json only: `decide` imports it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


def legacy_terms(key: str) -> tuple[dict[str, str], list[str]] | None:
    """What an unscoped session's values must hold to count toward scope `key`: (the values
    it must have, the names it must not have); None for "" (no matching: scope "" rows only)."""
    if not key:
        return None
    data = json.loads(key)
    want = {str(k): str(v) for k, v in data.items() if v is not None}
    absent = sorted(str(k) for k, v in data.items() if v is None)
    return want, absent


def counts_in(row_scope: str, values: Mapping[str, str], key: str) -> bool:
    """Does a row of scope `row_scope`, from a session with these `values`, count in a
    window on `key`? (The stores' SQL says the same; the full recomputation uses this.)"""
    if row_scope == key:
        return True
    terms = None if row_scope else legacy_terms(key)
    if terms is None:
        return False
    want, absent = terms
    return all(values.get(k) == v for k, v in want.items()) and not any(n in values for n in absent)
