"""Session files as bytes: how they are written, parsed and turned into index rows."""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coachctl.errors import StateError
from coachctl.store.base import SCHEMA_VERSION, Derive, Derived, RowTuple
from coachctl.store.files.layout import SESSION_SUFFIX
from coachctl.store.ids import ID_RE
from coachctl.store.summary import summary_of

# (session_id, pos, seq, workflow_id, step_id, suggestion, scope, kind, decided_at)
DecisionRow = RowTuple
# (id, workflow_id, status, accepted, suggestions, folds, summary JSON)
SessionRow = tuple[str, str, "str | None", int, int, int, str]


def dump_session(session: Mapping[str, Any]) -> bytes:
    """One top-level key per line, each value compact.

    `indent=` would switch json to its pure-Python encoder, 3x slower on a long session, and
    the encode happens under the session's lock; this stays greppable and diffable by key.
    """
    enc = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    lines = ",\n".join(f"{enc.encode(k)}: {enc.encode(session[k])}" for k in sorted(session))
    return ("{\n" + lines + "\n}\n").encode("utf-8")


def parse_session_bytes(data: bytes, path: Path | str) -> dict[str, Any]:
    """Parse a session file and refuse what this version cannot read correctly."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise StateError(f"unreadable session file {path}: not valid JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise StateError(f"unreadable session file {path}: not a coachctl session")
    version = obj.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise StateError(
            f"session file {path} has schema_version {version!r}, written by a newer "
            f"coachctl (this one reads up to {SCHEMA_VERSION}): upgrade coachctl"
        )
    return obj


def read_session_bytes(
    data: bytes, path: Path | str, derive: Derive
) -> tuple[dict[str, Any], Derived]:
    """Parse one session file and derive its rows; StateError (with the reason) when
    unreadable. The index and the full recomputation both read through here, so they agree
    on which files count."""
    obj = parse_session_bytes(data, path)
    if not isinstance(obj.get("workflow_id"), str):
        raise StateError(f"unreadable session file {path}: no workflow_id")
    try:
        derived = derive(obj)
    except StateError as exc:
        raise StateError(f"unreadable session file {path}: {exc.message}") from None
    return obj, derived


def guess_workflow(data: bytes) -> str | None:
    """The workflow an unreadable file claims, when it says so (for failing closed)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    wf = obj.get("workflow_id") if isinstance(obj, dict) else None
    return wf if isinstance(wf, str) else None


def session_id_of(name: str) -> str | None:
    """`<id>.json` → id, for the names `FileStore.list_ids` also accepts; else None."""
    if not name.endswith(SESSION_SUFFIX) or name.startswith("."):
        return None
    sid = name[: -len(SESSION_SUFFIX)]
    return sid if ID_RE.match(sid) else None


# A C-level getter: a cold build turns a million row dicts into tuples.
_DECISION_ROW = operator.itemgetter(
    "session_id",
    "pos",
    "seq",
    "workflow_id",
    "step_id",
    "suggestion",
    "scope",
    "kind",
    "decided_at",
)


_SUMMARY = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def rows_of(data: Mapping[str, Any], derived: Derived) -> tuple[SessionRow, list[DecisionRow]]:
    """The index rows of a session: its trend numbers, its `list_sessions` summary (JSON,
    so `sessions` and `report` read no session file) and its counted decisions."""
    return session_row(data, derived), list(map(_DECISION_ROW, derived["rows"]))


def session_row(data: Mapping[str, Any], derived: Derived) -> SessionRow:
    """A session's row of the index (`rows_of` without its decisions)."""
    status = data.get("status")
    accepted, suggestions = derived["accepted"], derived["suggestions"]
    return (
        str(data["id"]),
        str(data["workflow_id"]),
        status if isinstance(status, str) else None,
        accepted,
        suggestions,
        derived["folds"],
        _SUMMARY.encode(summary_of(data, derived)),
    )
