"""Opening a store with what the engine gives it (its `derive` function)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coachctl.store.base import FastDerive, Store
    from coachctl.store.files.store import FileStore
    from coachctl.store.postgres.store import PostgresStore


def file_store(home: Path, lock_timeout: float = 10.0, *, use_index: bool = True) -> FileStore:
    """The home's `sessions/` folder as a store (`use_index=False`: answer every question
    by reading the session files, as `doctor` and the tests compare against)."""
    from coachctl.engine.records import checked_derive
    from coachctl.store.files.store import FileStore

    return FileStore(
        home, lock_timeout, derive=checked_derive, fast_derive=_fast_derive, use_index=use_index
    )


def _fast_derive() -> FastDerive:
    """The one-pass derive, imported only by a cold index build (not by every command)."""
    from coachctl.engine.records_fast import fast_derive

    return fast_derive


def postgres_store(url: str, home: Path, lock_timeout: float = 10.0) -> PostgresStore:
    """A PostgreSQL database as the store (CONTRACT §7); its driver is imported only now."""
    from coachctl.engine.records import checked_derive
    from coachctl.store.postgres.store import PostgresStore

    return PostgresStore(url, home, lock_timeout, derive=checked_derive)


def open_store(
    url: str | None, home: Path, lock_timeout: float = 10.0, *, create: bool = False
) -> Store:
    """The store `store_url` chose: PostgreSQL for a URL, else the home's sessions/.
    `create`: first create the schema of a database that has none (`store migrate`)."""
    if url is None:
        return file_store(home, lock_timeout)
    if create:
        from coachctl.store.postgres.admin import create_if_missing

        create_if_missing(url, lock_timeout)
    return postgres_store(url, home, lock_timeout)
