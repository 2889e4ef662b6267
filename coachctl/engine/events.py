"""Reading the events log: filters and a `tail -f` style follower.

Every coachctl process appends events through its store; this module only reads them
from a cursor (`Store.read_events`), so a follower never blocks a writer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from coachctl.errors import UsageError

if TYPE_CHECKING:
    from coachctl.store.base import Store

POLL_SECONDS = 0.2
BATCH = 1000
_AGO_RE = re.compile(r"([0-9]+)([smhdw])\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest `--since` age: 100 years. Events are never older; a longer age is a typo, and
#: an unbounded one overflows the date arithmetic.
MAX_AGE_DAYS = 36525


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; naive means UTC. None if it is not one."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # e.g. 9999-12-31T23:59:59-01:00 is after year 9999
        return None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO-8601 time (`2024-05-01T12:00:00Z`) or an age (`15m`, `2h`, `7d`)."""
    match = _AGO_RE.match(text.strip())
    if match:
        digits, unit = match.groups()
        seconds = int(digits) * _UNIT_SECONDS[unit] if len(digits) <= 12 else None
        if seconds is None or seconds > MAX_AGE_DAYS * 86400:
            raise UsageError(
                f"invalid --since: {text!r} (an age is at most 100 years: {MAX_AGE_DAYS}d)"
            )
        now = now or datetime.now(timezone.utc)
        return now - timedelta(seconds=seconds)
    value = parse_time(text)
    if value is None:
        raise UsageError(
            f"invalid --since: {text!r} (expected an ISO-8601 time like 2024-05-01T12:00:00Z, "
            "or an age like 15m, 2h, 7d)"
        )
    return value


@dataclass(frozen=True)
class EventFilter:
    """Which events to keep; every field left None keeps everything."""

    session_id: str | None = None
    workflow_id: str | None = None
    since: datetime | None = None

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.session_id is not None and event.get("session_id") != self.session_id:
            return False
        if self.workflow_id is not None and event.get("workflow_id") != self.workflow_id:
            return False
        if self.since is not None:
            ts = event.get("ts")
            when = parse_time(ts) if isinstance(ts, str) else None
            if when is None or when < self.since:
                return False
        return True

    def apply(self, events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        return [e for e in events if self.matches(e)]


def follow(
    store: Store, cursor: str, *, interval: float = POLL_SECONDS
) -> Iterator[list[dict[str, Any]]]:
    """Yield each batch of events appended after `cursor`, forever.

    The store says when to look again (`wait_events`: polling on the file store, a
    notification on a database); a batch is what was appended since the last look, read
    as a stream, so a burst never has to fit in memory at once.
    """
    while True:
        batch: list[dict[str, Any]] = []
        for found, after in store.read_events(cursor):
            batch.append(found)
            cursor = after
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
        store.wait_events(cursor, interval)
