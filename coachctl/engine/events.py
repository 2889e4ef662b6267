"""Reading the events log: filters and a `tail -f` style follower.

The log (`sessions/events.jsonl`) is written by every coachctl process through
`Store.append_events`; this module only reads it, so a follower never blocks a writer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from coachctl.engine.store import Store
from coachctl.errors import UsageError

POLL_SECONDS = 0.2
_AGO_RE = re.compile(r"(\d+)([smhdw])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; naive means UTC. None if it is not one."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO-8601 time (`2024-05-01T12:00:00Z`) or an age (`15m`, `2h`, `7d`)."""
    match = _AGO_RE.match(text.strip())
    if match:
        now = now or datetime.now(timezone.utc)
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
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
    store: Store,
    offset: int,
    *,
    interval: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[dict[str, Any]]]:
    """Yield each batch of events appended after byte `offset`, forever (poll every `interval`).

    A torn last line is left for the next poll (`Store.read_events`); a log that shrank
    (rewritten by a repair) is read again from its start rather than missed.
    """
    while True:
        try:
            size = store.events_path.stat().st_size
        except OSError:
            size = 0
        if size < offset:
            offset = 0
        if size > offset:
            events, offset = store.read_events(offset)
            if events:
                yield events
        sleep(interval)
