"""Session ids and references: the same rules on every store (CONTRACT §1)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable

from coachctl.errors import SessionNotFound, UsageError

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
MIN_PREFIX = 4
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out)).rjust(width, "0")


def new_session_id(now: float | None = None) -> str:
    """Short, time-sortable ids: 8 base-36 chars of milliseconds, then 4 random ones.

    Sorting ids sorts sessions by start time, which is what `sessions` lists by.
    """
    ms = int((time.time() if now is None else now) * 1000)
    return _base36(ms, 8) + "-" + _base36(int.from_bytes(os.urandom(4), "big") % 36**4, 4)


def check_id(value: str, what: str) -> str:
    """Ids are plain names: never a path, never `..` (CONTRACT §1)."""
    if not ID_RE.match(value) or value in (".", ".."):
        raise UsageError(f"invalid {what}: {value!r} (expected letters, digits, '.', '_', '-')")
    return value


def resolve_among(ref: str, ids: Iterable[str], where: str) -> str:
    """A reference among known ids: the id itself, a unique prefix (>= MIN_PREFIX), or the
    unique random part after an id's last '-'. `where` (the store's `describe()`) is named
    in every refusal, so a user who searched the wrong store sees it."""
    check_id(ref, "session reference")
    matches: list[str] = []
    for sid in ids:
        if sid == ref:
            return sid
        if (len(ref) >= MIN_PREFIX and sid.startswith(ref)) or sid.rpartition("-")[2] == ref:
            matches.append(sid)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        matches.sort()
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        raise SessionNotFound(f"ambiguous session reference {ref} in {where}: {shown}")
    hint = (
        f" (a prefix needs at least {MIN_PREFIX} characters)"
        if len(ref) < MIN_PREFIX and "-" not in ref
        else ""
    )
    raise SessionNotFound(f"unknown session: {ref} in {where}{hint}")
