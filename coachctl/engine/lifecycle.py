"""A session's life outside its steps: pause, resume, cancel (and a pause on the way out).

Each is one transaction around one state-machine move of coachctl/engine/session.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coachctl.engine import session as sm
from coachctl.engine.persist import commit, event, opened, transaction
from coachctl.engine.session import Session
from coachctl.errors import ConflictError, StorageError, UsageError

if TYPE_CHECKING:
    from coachctl.store.base import Store


def pause(store: Store, ref: str, reason: str | None = None) -> Session:
    sid = store.resolve(ref)
    with transaction(store, sid) as txn:
        session = opened(store, txn.session)
        sm.pause(session, reason)
        commit(store, txn, session, [event("session_paused", session, reason=reason)])
    return session


def pause_quietly(store: Store, session_id: str, reason: str) -> Session | None:
    """Pause on Ctrl-C; never raise, since we are already leaving."""
    try:
        with transaction(store, session_id) as txn:
            session = opened(store, txn.session)
            if session.status != "active":
                return session
            sm.pause(session, reason)
            commit(store, txn, session, [event("session_paused", session, reason=reason)])
        return session
    except (StorageError, ConflictError, UsageError, OSError):
        return None


def resume(store: Store, ref: str) -> Session:
    sid = store.resolve(ref)
    with transaction(store, sid) as txn:
        session = opened(store, txn.session)
        if session.status == "active":
            return session
        sm.resume(session)
        commit(store, txn, session, [event("session_resumed", session)])
    return session


def cancel(store: Store, ref: str) -> Session:
    sid = store.resolve(ref)
    with transaction(store, sid) as txn:
        session = opened(store, txn.session)
        sm.cancel(session)
        commit(store, txn, session, [event("session_cancelled", session)])
    return session
