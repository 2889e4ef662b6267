"""Reading a session and writing a change to it: the one way every service module does both.

Every change to a session goes through one `store.transaction` and `commit`, which stages
the session with everything derived from it (decision rows, level changes, lessons,
events), so no caller can save a session and forget what follows from it. A running mark
is judged by the store's lease on the way in (`opened`). Nothing here prints except `warn`,
the engine's one warning channel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coachctl.engine import session as sm
from coachctl.engine.session import Session

if TYPE_CHECKING:
    from coachctl.store.base import SessionTxn, Store


def load(store: Store, ref: str) -> Session:
    sid = store.resolve(ref)
    return opened(store, store.load(sid))


def opened(store: Store, data: Mapping[str, Any]) -> Session:
    """A loaded session whose running mark (if any) is judged by the store's lease first:
    a lease another machine holds is running, a lease whose holder is gone is interrupted,
    and only where the store cannot tell is the mark's host and pid checked (CONTRACT §3)."""
    session = Session.from_dict(data)
    token = (session.running or {}).get("token")
    if isinstance(token, str):
        session.lease = store.lease_alive(session.id, token)
    return session


@contextlib.contextmanager
def transaction(store: Store, session_id: str) -> Iterator[SessionTxn]:
    """`store.transaction`, plus the warnings of derived writes that failed after its
    commit point: the decision stands, so they are warnings, never an error exit that
    would make a script decide again."""
    with store.transaction(session_id) as txn:
        yield txn
    for message in txn.warnings:
        warn(message)


def commit(
    store: Store,
    txn: SessionTxn,
    session: Session,
    events: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Stage the session with everything derived from it: its decision rows, level
    changes (level_changed events), its pack's new lessons, and `events`. The transaction
    writes it all when its block ends."""
    from coachctl.engine import corrections, history
    from coachctl.engine.records import derive

    data = session.to_dict()
    txn.save(data, derive(data))
    extra = history.level_changes(txn, data)
    extra += corrections.fold_into(store, txn, data)
    txn.append_events([*events, *extra])


def record_seq(txn: SessionTxn, record: dict[str, Any]) -> dict[str, Any]:
    """Give a decision just recorded its order of record (see `SessionTxn.next_seq`)."""
    record["seq"] = txn.next_seq()
    return record


def warn(message: str) -> None:
    """The engine's one warning channel: the `coachctl` logger, else one line on stderr.

    A program embedding the engine can take these by configuring that logger; the CLI does
    not, so the line goes to stderr as every coachctl error does.
    """
    import logging

    log = logging.getLogger("coachctl")
    if log.handlers:
        log.warning("%s", message)
        return
    import sys

    from coachctl.errors import one_line

    sys.stderr.write(one_line(message) + "\n")
    sys.stderr.flush()


def event(name: str, session: Session, **fields: Any) -> dict[str, Any]:
    return {
        "ts": sm.utcnow(),
        "event": name,
        "session_id": session.id,
        "workflow_id": session.workflow_id,
        **fields,
    }
