"""The Store interface: what every store promises, whatever it keeps things in.

Arrows point down: commands → engine → store. A store persists what the engine computed
(decision kinds, sequences, scope keys, pack contents, level changes) and never calls back
into engine rules; when a store must rebuild derived state it is handed a `Derive` function
by whoever opened it (see `Derive`). Every method may raise:

- `SessionNotFound` (exit 2) for an unknown or ambiguous reference, naming `describe()`;
- `StateError` (exit 2) for a record it cannot read (naming the file or row), and when the
  store was moved (`moved_to`): every write is then refused, naming the new store;
- `ConflictError` (exit 3) when a lock was not had within `lock_timeout`;
- `StorageError` (exit 1) when nothing could be written (read-only, disk full, gone away).

Kept cheap to import (`decide` imports it): typing only, no dataclasses, no driver.
Session and event payloads are plain JSON-able dicts; `Session.from_dict` / `to_dict`
(engine/session.py) turn them into the engine's object.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypedDict

#: The newest session record layout this coachctl reads and writes (both stores).
SCHEMA_VERSION = 1

#: Which store answered; the JSON `source` of metrics never depends on it.
STORE_KINDS = ("file", "postgres")

#: An opaque position in the events log: "" is its very start. Only the store that handed
#: one out can read it (file store: a byte offset; postgres: an event id).
EventCursor = str

#: (workflow_id, step_id, suggestion, scope, window): one step window to count.
#: `suggestion` is the exact template; `scope` is "" when the workflow has no trust_scope,
#: else the canonical JSON the engine's `scope_key(session)` computes. `window` >= 1.
#: A window on a scope also counts the rows of sessions that recorded none and whose values
#: match it (store/scopes.py: old sessions count toward the values they had).
WindowKey = tuple[str, str, str, str, int]


class SessionSummary(TypedDict):
    """One session as `sessions`, `show`/`resume` without a reference, and `report` list it."""

    session_id: str
    workflow_id: str
    mode: str
    status: str
    step: str | None  # the current step's id; None when completed/cancelled or at the end
    done: int
    total: int
    decisions: int
    started_by: str | None
    created_at: str
    updated_at: str
    accepted: int  # counted decisions (metrics.classify) of the whole session
    suggestions: int
    scope: str  # the trust-scope key it recorded ("" when it recorded no trust_scope)
    values: dict[str, str]  # with scope "": its variable values (store/scopes.py), else {}


class DecisionRow(TypedDict):
    """One counted decision as the metrics see it; computed by the engine (`Derive`).

    `seq` is the decision's *order of record*: a number the engine takes from
    `SessionTxn.next_seq()` when it records the decision and stores in the decision itself
    (so it survives rebuilds of derived state and clock jumps). Windows order by it, never
    by `decided_at`. `pos` is the decision's index in the session's `decisions` list.
    """

    session_id: str
    pos: int
    seq: int
    workflow_id: str
    step_id: str
    suggestion: str | None
    scope: str
    kind: str  # metrics.classify: accepted, rejected, corrected, manual, failed, skipped
    decided_at: str


class Derived(TypedDict):
    """What a session contributes to derived state (the engine's `Derive(session)`).

    `folds` is how many of its decisions the workflow's correction pack has folded in once
    it is up to date (0 when the session teaches nothing): a store compares it with a pack's
    `folded` record to tell a stale pack from a current one without engine rules.
    """

    rows: list[DecisionRow]
    accepted: int
    suggestions: int
    folds: int
    scope: str  # the session's trust-scope key (`engine/scope.py`), "" without one
    values: dict[str, str]  # with scope "": the values a scoped window matches (scopes.py)


#: The engine's pure function from a session dict to its rows. A store that keeps derived
#: rows beside its truth (the file store's index) is given it when opened, so it can rebuild
#: them from session files without importing engine rules.
Derive = Callable[[Mapping[str, Any]], Derived]

#: A `DecisionRow` as a tuple, its fields in that order (what bulk loads insert).
RowTuple = tuple[str, int, int, str, str, "str | None", str, str, str]

#: The engine's one-pass `derive` for a plainly well-formed parsed session: the same Derived
#: (its rows left empty) with the rows as tuples, or None to take `Derive`. Optional: a
#: store that bulk-builds derived rows (the file store's cold build) may be given it.
FastDerive = Callable[[Any], "tuple[Derived, list[RowTuple]] | None"]


class LevelChange(TypedDict):
    """A step's (or, with step_id "", the workflow's) level moved; the engine decides it."""

    workflow_id: str
    step_id: str  # "" for the workflow as a whole
    scope: str
    level: str


class MetricsQuery(TypedDict):
    """ONE batched question for `stats`, `readiness`, `workflows` and the panel."""

    windows: list[WindowKey]
    workflows: list[str]  # session counts and trends for these workflow ids
    trend: int  # how many of each workflow's latest sessions the trend covers


class MetricsAnswer(TypedDict):
    windows: dict[WindowKey, list[str]]  # kinds, oldest first, in order of record (`seq`)
    session_counts: dict[str, int]
    trends: dict[str, list[float | None]]  # per session accepted/suggestions, oldest first
    bad: list[BadFile]  # unreadable sessions: metrics of their workflows fail closed


class BadFile:
    """A session record the store cannot read: left out of every metric, named to the user.

    `where` is a path (file store) or a table and id (postgres). A plain class, not a
    NamedTuple: creating one costs about a millisecond of every `decide`.
    """

    __slots__ = ("path", "reason", "session_id", "workflow_id")

    def __init__(
        self, session_id: str, path: str, reason: str, workflow_id: str | None = None
    ) -> None:
        self.session_id = session_id
        self.path = path
        self.reason = reason
        self.workflow_id = workflow_id

    def _key(self) -> tuple[str, str, str, str | None]:
        return (self.session_id, self.path, self.reason, self.workflow_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BadFile) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "BadFile({!r}, {!r}, {!r}, {!r})".format(*self._key())


class Finding:
    """One line of `doctor`'s report (the store's own checks and the engine's)."""

    def __init__(
        self, kind: str, message: str, problem: bool = True, session_id: str | None = None
    ) -> None:
        self.kind = kind  # unreadable, leftover, index, events, pack, interrupted, repaired
        self.message = message
        self.problem = problem
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"Finding({self.kind!r}, {self.message!r}, problem={self.problem!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "problem": self.problem,
            "session_id": self.session_id,
            "message": self.message,
        }


class SessionTxn(Protocol):
    """One session, locked, loaded; everything written through it commits together.

    The engine reads `session`, changes it, and hands back what it computed: nothing is
    visible to others until the `with` block ends without an exception; an exception
    writes nothing. On the file store the session file is the commit point and the rest
    (index rows, levels, pack, events) is derived, rebuilt when missing; on PostgreSQL it is
    one database transaction.
    """

    #: The session as stored (a fresh dict the engine may keep and change).
    session: dict[str, Any]
    #: Filled on exit by a store whose derived writes failed *after* the commit point (the
    #: file store: index, pack or events log); the decision stands, the engine warns.
    warnings: list[str]

    def next_seq(self) -> int:
        """A sequence number for a decision being recorded now: greater than every `seq`
        this store has handed out or recorded that it can see, whatever the wall clock
        says (a clock a day behind must not put a decision before older ones)."""
        ...

    def save(self, session: Mapping[str, Any], derived: Derived) -> None:
        """Stage the whole session and what the engine derived from it: *all* its counted
        decision rows (replacing the old ones) and its counts."""
        ...

    def windows(self, keys: Sequence[WindowKey]) -> dict[WindowKey, list[str]]:
        """The batched window query, seeing this transaction's staged rows."""
        ...

    def levels(self, workflow_id: str, scope: str) -> dict[str, str]:
        """The last recorded level per step id ("" = the workflow), seeing staged changes."""
        ...

    def set_levels(self, changes: Sequence[LevelChange]) -> None:
        """Stage level changes (the engine emits `level_changed` events for them)."""
        ...

    def pack(self, workflow_id: str) -> dict[str, Any] | None:
        """The workflow's derived correction pack, seeing a staged one; None when missing,
        damaged or stale (the engine then rebuilds it: `Store.iter_sessions` + fold)."""
        ...

    def put_pack(self, workflow_id: str, pack: Mapping[str, Any]) -> None:
        """Stage the workflow's derived pack."""
        ...

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Stage events; they are appended in this order, after everything written before."""
        ...


class HandTxn(Protocol):
    """A workflow's hand choices (adopt / drop / import), locked: truth, not derived.

    A damaged hand-choice record raises StateError naming it (readiness exits 2, run
    refuses); it is never silently replaced.
    """

    choices: dict[str, Any]  # the current record ({} when none was ever made)

    def put(self, choices: Mapping[str, Any]) -> None:
        """Stage the new record (written first: it is the commit point)."""
        ...

    def pack(self) -> dict[str, Any] | None:
        """The workflow's derived pack (as `Store.pack`), to update along with the choice."""
        ...

    def put_pack(self, pack: Mapping[str, Any]) -> None: ...

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None: ...


class Store(Protocol):
    """What coachctl keeps about sessions; both stores keep every promise below."""

    kind: str  # "file" or "postgres"
    home: Path  # the home whose workflows/ its sessions run (workflows stay YAML files there)
    lock_timeout: float  # seconds a lock (or a row lock) is waited for before exit 3

    def describe(self) -> str:
        """For messages: "file store /home/x/sessions", "postgres store postgresql://h/db"
        (a URL never shows a password)."""
        ...

    # -- sessions ----------------------------------------------------------------------

    def list_sessions(
        self, workflow_id: str | None = None
    ) -> tuple[list[SessionSummary], list[BadFile]]:
        """Readable sessions (of one workflow), oldest first (id order = start order), and
        the records that could not be read."""
        ...

    def list_ids(self) -> list[str]:
        """Every session id, sorted (= by start time), without reading any session: cheap
        enough for shell completion on every Tab."""
        ...

    def resolve(self, ref: str) -> str:
        """A reference → a full id: the id itself, a unique prefix (>= 4 characters), or the
        unique random part after the id's last '-'. Refuses what is not an id (a '/', '..')
        with UsageError; unknown or ambiguous → SessionNotFound naming `describe()`."""
        ...

    def load(self, session_id: str) -> dict[str, Any]:
        """One session, unlocked (readers never see a half-written one)."""
        ...

    def create(self, session: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store a new session (no decisions yet) and its events; ConflictError if the id
        exists. Returns warnings as `SessionTxn.warnings` does."""
        ...

    def transaction(self, session_id: str) -> AbstractContextManager[SessionTxn]:
        """Lock one session (flock; `SELECT … FOR UPDATE`), load it, commit on exit.
        Not held while a step's command runs (see `lease`)."""
        ...

    def iter_sessions(
        self, workflow_id: str | None = None, *, teaching: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every readable session (of one workflow), oldest first: for rebuilds of derived
        state, doctor and migrate. Unreadable ones are left out (see `bad_sessions`).
        `teaching`: only those whose derived `folds` > 0 (what a pack rebuild replays)."""
        ...

    def bad_sessions(self) -> list[BadFile]:
        """Session records that cannot be read."""
        ...

    # -- the runner lease --------------------------------------------------------------

    def lease(self, session_id: str, token: str) -> AbstractContextManager[None]:
        """Held by the process that runs a step's command, for the command's duration
        (`token` is the running mark's). Taken *before* the transaction that writes the
        running mark commits, so no one ever sees a mark without its lease; released when
        the holder leaves the block, exits or dies."""
        ...

    def lease_alive(self, session_id: str, token: str) -> bool | None:
        """Is that lease held? True: the command runs (somewhere); False: its holder is gone
        (→ interrupted); None: cannot tell here (→ the engine falls back on the running
        mark in the session)."""
        ...

    # -- metrics -----------------------------------------------------------------------

    def metrics(self, query: MetricsQuery) -> MetricsAnswer:
        """Every window, count and trend asked for, in one call (one round trip on a
        network store). A window lists the step's last `window` kinds on exactly that
        suggestion and scope, oldest first in order of record."""
        ...

    def workflow_ids(self) -> list[str]:
        """Every workflow id some readable session belongs to."""
        ...

    def latest_session(self, workflow_id: str) -> dict[str, Any] | None:
        """The workflow's most recent readable session (its steps snapshot a workflow whose
        file is gone)."""
        ...

    # -- events ------------------------------------------------------------------------

    def append_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Append events that belong to no session transaction."""
        ...

    def read_events(
        self, cursor: EventCursor = "", kinds: Collection[str] | None = None
    ) -> Iterator[tuple[dict[str, Any], EventCursor]]:
        """Events after `cursor`, in order of append, each with the cursor just past it.
        A stream: bounded memory however long the log; stops at the current end.
        With `kinds`, only the events whose "event" is one of them (the store skips the
        others cheaply: the report wants 1 line in 1,000 of a long log)."""
        ...

    def events_end(self) -> EventCursor:
        """The cursor of the current end (`events --follow` starts there)."""
        ...

    def wait_events(self, cursor: EventCursor, timeout: float) -> None:
        """Return when events may have been appended after `cursor`, or after `timeout`
        (polling on the file store; LISTEN/NOTIFY on postgres)."""
        ...

    # -- packs and hand choices ----------------------------------------------------------

    def pack(self, workflow_id: str) -> dict[str, Any] | None:
        """The derived correction pack; None when missing, damaged or stale."""
        ...

    def put_pack(self, workflow_id: str, pack: Mapping[str, Any]) -> None:
        """Replace a derived pack outright (a rebuild, under the workflow's pack lock)."""
        ...

    def pack_ids(self) -> list[str]:
        """Workflow ids that have a pack or hand choices."""
        ...

    def hand_choices(self, workflow_id: str) -> dict[str, Any]:
        """The workflow's hand choices ({} when none); StateError naming a damaged record."""
        ...

    def hand_transaction(self, workflow_id: str) -> AbstractContextManager[HandTxn]:
        """Lock and change a workflow's hand choices; commits with its events."""
        ...

    # -- reports -------------------------------------------------------------------------

    def recent_decisions(
        self, workflow_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The latest decisions (newest first) with session_id, workflow_id, step_id,
        decision, decided_by, decided_at, outcome, feedback, seq."""
        ...

    # -- upkeep ----------------------------------------------------------------------------

    def doctor(self, *, repair: bool = False) -> tuple[list[Finding], int]:
        """The store's own checks (unreadable records, leftovers, derived rows against the
        truth, events log against decisions); with `repair`, rebuild what is derived and
        restore missing decision events. Returns findings and the sessions checked."""
        ...

    def moved_to(self) -> str | None:
        """Where `store migrate` moved this store (writes are then refused), else None."""
        ...

    def mark_moved(self, target: str) -> None:
        """Mark the store as moved to `target` (`describe()` of the new store)."""
        ...
