"""Numbered SQL migrations shipped in the package, applied by `coachctl store upgrade`.

`migrations/NNNN_name.sql` files run in number order, each in its own transaction that
also records its number in `coachctl_schema`; `upgrade` holds an advisory lock meanwhile,
so two upgrades at once apply each migration once. Every other command checks the version
once per connection and refuses a database that is older or newer than this coachctl.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from coachctl.errors import UsageError

MIGRATIONS = Path(__file__).with_name("migrations")
_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql\Z")
#: pg_advisory_lock(LOCK_SPACE, n): the two-int form, apart from the leases' bigint keys.
LOCK_SPACE = 0x636F6163  # "coac"
UPGRADE_LOCK = 1
EVENTS_LOCK = 2


def migrations() -> list[tuple[int, Path]]:
    """(number, file) of every shipped migration, in order."""
    found = []
    for path in MIGRATIONS.iterdir():
        m = _NAME.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def latest() -> int:
    """The schema version this coachctl speaks."""
    return migrations()[-1][0]


def version(conn: Any) -> int:
    """The database's schema version; 0 when coachctl never created its schema there."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('coachctl_schema') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("SELECT coalesce(max(version), 0) FROM coachctl_schema")
        return int(cur.fetchone()[0])


def check(found: int, store: str) -> None:
    """Refuse a database whose schema this coachctl does not match, naming the fix."""
    want = latest()
    if found < want:
        what = "has no coachctl schema" if found == 0 else f"has schema version {found}"
        raise UsageError(
            f"{store} {what}; this coachctl needs {want}: run `coachctl store upgrade`"
        )
    if found > want:
        raise UsageError(
            f"{store} has schema version {found}, newer than this coachctl knows ({want}): "
            "upgrade coachctl"
        )


def upgrade(conn: Any, store: str) -> tuple[int, int]:
    """Apply the missing migrations under the upgrade lock; returns (before, after)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_SPACE, UPGRADE_LOCK))
        try:
            before = version(conn)
            if before > latest():
                check(before, store)
            for number, path in migrations():
                if number <= before:
                    continue
                cur.execute("BEGIN")
                try:
                    cur.execute(path.read_text())
                    cur.execute("INSERT INTO coachctl_schema (version) VALUES (%s)", (number,))
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            return before, version(conn)
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, UPGRADE_LOCK))
