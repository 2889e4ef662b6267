"""`store status` and `store upgrade` on a PostgreSQL store: one connection each."""

from __future__ import annotations

from typing import Any

from coachctl.store.postgres import connect as pgc
from coachctl.store.postgres import schema

COUNTED = (
    ("sessions", "coachctl_sessions"),
    ("decisions", "coachctl_decisions"),
    ("events", "coachctl_events"),
    ("packs", "coachctl_packs"),
)


def describe(url: str) -> str:
    return f"postgres store {pgc.mask(url)}"


def status(url: str, lock_timeout: float) -> dict[str, Any]:
    """What `store status` prints; works whatever the schema version (it tells it)."""
    conn = pgc.connect(url, lock_timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database()")
            user, _db = cur.fetchone()
            found = schema.version(conn)
            counts: dict[str, int] = {}
            if found >= 1:
                cur.execute(" UNION ALL ".join(f"SELECT count(*) FROM {t}" for _, t in COUNTED))
                counts = {
                    name: int(row[0])
                    for (name, _), row in zip(COUNTED, cur.fetchall(), strict=True)
                }
                cur.execute("SELECT value FROM coachctl_meta WHERE key = 'moved_to'")
                row = cur.fetchone()
                moved = row[0] if row else None
            else:
                moved = None
    except pgc.driver().Error as exc:
        raise pgc.translate(exc, describe(url), url) from None
    finally:
        conn.close()
    want = schema.latest()
    fix = None
    if found < want:
        fix = "run `coachctl store upgrade`"
    elif found > want:
        fix = "upgrade coachctl"
    return {
        "kind": "postgres",
        "location": pgc.mask(url),
        "schema_version": found,
        "schema_expected": want,
        "schema_ok": found == want,
        "fix": fix,
        "counts": counts,
        "user": user,
        "moved_to": moved,
    }


def create_if_missing(url: str, lock_timeout: float) -> None:
    """Give a database with no coachctl schema at all its schema (`store migrate` into a
    new database); one with an older or newer schema is left for `store upgrade` to say."""
    where = describe(url)
    conn = pgc.connect(url, lock_timeout)
    try:
        if schema.version(conn) == 0:
            schema.upgrade(conn, where)
    except pgc.driver().Error as exc:
        raise pgc.translate(exc, where, url) from None
    finally:
        conn.close()


def upgrade(url: str, lock_timeout: float) -> tuple[int, int, str]:
    """Apply missing migrations under the advisory lock; (before, after, store name)."""
    where = describe(url)
    conn = pgc.connect(url, lock_timeout)
    try:
        before, after = schema.upgrade(conn, where)
    except pgc.driver().Error as exc:
        raise pgc.translate(exc, where, url) from None
    finally:
        conn.close()
    return before, after, where
