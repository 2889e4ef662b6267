"""The file store's own checks: leftovers, unreadable files, the index against the files,
and the events log against the decisions in the files.

Writers may run meanwhile: `doctor` reads without locks, then takes a second look at each
session that seems to differ *under that session's lock*. A writer updates the index and
appends its events before it lets go of the lock, so what still differs then is damage,
never a decision recorded between two reads.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from coachctl.errors import CoachctlError, ConflictError
from coachctl.store.base import Finding
from coachctl.store.files.fs import TMP_PREFIX, read_nofollow
from coachctl.store.files.full import FullScan
from coachctl.store.files.layout import LOCK_SESSION
from coachctl.store.files.records import read_session_bytes, rows_of

if TYPE_CHECKING:
    from coachctl.store.files.index import Index
    from coachctl.store.files.store import FileStore

TMP_GRACE_SECONDS = 60.0  # a younger temp file may belong to a writer that is still alive


def check(store: FileStore, *, repair: bool = False) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    if not store.sessions_dir.is_dir():
        return findings, 0
    findings.extend(_leftovers(store, repair))
    full = FullScan(store)
    for bad in full.bad:
        findings.append(
            Finding(
                "unreadable",
                f"{bad.reason} (cannot be repaired: fix the file or move it out of sessions/)",
                session_id=bad.session_id,
            )
        )
    findings.extend(_check_events(store, full, repair))
    findings.extend(_check_index(store, full, repair))
    return findings, full.count()


def _leftovers(store: FileStore, repair: bool) -> list[Finding]:
    out: list[Finding] = []
    now = time.time()
    for name in sorted(os.listdir(store.sessions_dir)):
        if not name.startswith(TMP_PREFIX):
            continue
        path = store.sessions_dir / name
        try:
            age = now - path.lstat().st_mtime
        except OSError:
            continue
        if age < TMP_GRACE_SECONDS:
            continue
        if repair:
            try:
                path.unlink()
                out.append(Finding("repaired", f"removed leftover temp file {path}", False))
            except OSError as exc:
                out.append(Finding("leftover", f"cannot remove {path}: {exc.strerror}"))
            continue
        out.append(
            Finding(
                "leftover", f"leftover temp file {path} (a writer was killed; --repair removes it)"
            )
        )
    return out


# -- the index ---------------------------------------------------------------------------


def _expected(full: FullScan) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    srows: dict[str, Any] = {}
    drows: dict[str, list[Any]] = {}
    for found in full.sessions.values():
        for data, derived in found:
            srow, rows = rows_of(data, derived)
            srows[srow[0]] = srow
            if rows:
                drows[srow[0]] = rows
    return srows, drows


def _reread(store: FileStore, sid: str) -> tuple[Any, list[Any]] | None:
    """One session's rows from its file now (None when it is gone or unreadable)."""
    path = store.session_path(sid)
    try:
        data, derived = read_session_bytes(read_nofollow(path), path, store.derive)
    except (OSError, CoachctlError):
        return None
    return rows_of(data, derived)


_SESSION_FIELDS = ("id", "workflow_id", "status", "accepted", "suggestions", "folds", "summary")


def _differences(
    idx: Index, srows: dict[str, Any], drows: dict[str, list[Any]], only: set[str] | None
) -> dict[str, str]:
    have_s = idx.session_rows()
    have_d = idx.decision_rows()
    out: dict[str, str] = {}
    ids = set(srows) | set(have_s) | set(drows) | set(have_d)
    for sid in sorted(ids if only is None else ids & only):
        want, got = srows.get(sid), have_s.get(sid)
        if got is None and want is not None:
            out[sid] = f"index lacks session {sid}"
        elif want is None and got is not None:
            out[sid] = f"index has session {sid}, which no readable file holds"
        elif got is not None and want is not None and want != got:
            name, g, w = next(
                ((n, g, w) for n, g, w in zip(_SESSION_FIELDS, got, want, strict=False) if g != w),
                ("row", got, want),
            )
            out[sid] = f"index differs for session {sid}: {name} {g!r} != {w!r} (file)"
        else:
            want_d, got_d = drows.get(sid, []), have_d.get(sid, [])
            if want_d != got_d:
                first = next(
                    (f"{g} != {w}" for g, w in zip(got_d, want_d, strict=False) if g != w),
                    f"{len(got_d)} rows != {len(want_d)}",
                )
                out[sid] = f"index decisions differ for session {sid}: {first} (file)"
    return out


def _kind_totals(drows: dict[str, list[Any]], srows: dict[str, Any]) -> Counter[tuple[str, str]]:
    c: Counter[tuple[str, str]] = Counter()
    for rows in drows.values():
        for r in rows:
            c[(r[3], r[7])] += 1
    for srow in srows.values():
        c[(srow[1], "")] += 0
    return c


def _check_index(store: FileStore, full: FullScan, repair: bool) -> list[Finding]:
    import sqlite3

    from coachctl.store.files.index import Index
    from coachctl.store.files.index_db import IndexUnavailable

    store.forget_index()
    try:
        idx = Index.open(store)
    except IndexUnavailable as exc:
        return [Finding("index", f"no index ({exc}): metrics are recomputed", False)]
    try:
        return _compare(store, idx, full, repair)
    except sqlite3.DatabaseError as exc:
        if not repair:
            return [Finding("index", f"cannot read the index {idx.path}: {exc} (try --repair)")]
        idx.close()
        idx.discard()
        idx = Index.open(store)
        return _compare(store, idx, full, repair)
    finally:
        idx.close()


def _compare(store: FileStore, idx: Index, full: FullScan, repair: bool) -> list[Finding]:
    out: list[Finding] = []
    if repair:
        idx.rebuild()
        out.append(
            Finding("repaired", f"rebuilt the index from {full.count()} session files", False)
        )
    else:
        idx.refresh()
    srows, drows = _expected(full)
    diffs = _differences(idx, srows, drows, None)
    for sid in list(diffs):
        try:
            with store.lock(LOCK_SESSION, sid):  # no writer in the middle now
                idx.refresh()
                again = _reread(store, sid)
                srows.pop(sid, None)
                drows.pop(sid, None)
                if again is not None:
                    srows[sid] = again[0]
                    if again[1]:
                        drows[sid] = again[1]
                still = _differences(idx, srows, drows, {sid})
        except ConflictError:
            continue  # held all along by a live writer: not ours to judge now
        if still:
            diffs[sid] = still[sid]
        else:
            del diffs[sid]
    for sid, message in diffs.items():
        out.append(Finding("index", message, session_id=sid))
    bad_want = {b.session_id for b in full.bad}
    bad_got = {b.session_id for b in idx.bad_files()}
    for sid in sorted(bad_want ^ bad_got):
        side = "not marked" if sid in bad_want else "marked"
        out.append(Finding("index", f"index has session {sid} {side} unreadable", session_id=sid))
    if diffs:
        want_k = _kind_totals(drows, srows)
        have_k = _kind_totals(idx.decision_rows(), idx.session_rows())
        for wf, kind in sorted(set(want_k) | set(have_k)):
            if kind and want_k[(wf, kind)] != have_k[(wf, kind)]:
                out.append(
                    Finding(
                        "index",
                        f"stats differ at workflows[{wf}].{kind}: index "
                        f"{have_k[(wf, kind)]}, files {want_k[(wf, kind)]}",
                    )
                )
    return out


# -- the events log ------------------------------------------------------------------------


def _event_counts(store: FileStore, only: str | None = None) -> Counter[str]:
    """`decision` events per session id, read as a stream."""
    counts: Counter[str] = Counter()
    for event, _ in store.read_events(""):
        sid = event.get("session_id")
        if event.get("event") == "decision" and isinstance(sid, str) and only in (None, sid):
            counts[sid] += 1
    return counts


def _check_events(store: FileStore, full: FullScan, repair: bool) -> list[Finding]:
    """Every decision the scan saw has its `decision` event (a crash after the session file
    was written, or a lost log, leaves it out); --repair appends the missing ones."""
    counts = _event_counts(store)
    short: list[str] = []
    for found in full.sessions.values():
        for data, _ in found:
            decisions = [d for d in data.get("decisions") or [] if isinstance(d, dict)]
            if len(decisions) > counts.get(str(data["id"]), 0):
                short.append(str(data["id"]))
    out: list[Finding] = []
    for sid in sorted(short):
        try:
            with store.lock(LOCK_SESSION, sid):  # its writer has appended what it wrote
                data = store.load_raw(sid)
                decisions = [d for d in data.get("decisions") or [] if isinstance(d, dict)]
                have = _event_counts(store, sid)[sid]
                missing = len(decisions) - have
                if missing <= 0:
                    continue
                if repair:
                    store.append_events([_restored(data, d) for d in decisions[have:]])
        except (ConflictError, CoachctlError):
            continue
        if repair:
            out.append(
                Finding(
                    "repaired",
                    f"restored {missing} missing decision event(s) of session {sid}",
                    False,
                    session_id=sid,
                )
            )
        else:
            out.append(
                Finding(
                    "events",
                    f"events log lacks {missing} decision event(s) of session {sid} "
                    "(--repair restores them)",
                    session_id=sid,
                )
            )
    return out


def _restored(data: dict[str, Any], d: dict[str, Any]) -> dict[str, Any]:
    event = {
        "ts": d.get("decided_at"),
        "event": "decision",
        "session_id": data["id"],
        "workflow_id": data["workflow_id"],
        "step_id": d.get("step_id"),
        "decision": d.get("decision"),
        "decided_by": d.get("decided_by"),
        "outcome": d.get("outcome"),
        "restored": True,
    }
    if d.get("feedback"):
        event["feedback"] = d["feedback"]
    return event
