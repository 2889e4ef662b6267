"""Opening a store with what the engine gives it (its `derive` function)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coachctl.store.files.store import FileStore


def resolve_home(option: str | None) -> Path:
    """`--home`, else `$COACHCTL_HOME`, else the current directory (CONTRACT §1)."""
    raw = option or os.environ.get("COACHCTL_HOME") or os.getcwd()
    return Path(raw).expanduser().absolute()


def file_store(home: Path, lock_timeout: float = 10.0, *, use_index: bool = True) -> FileStore:
    """The home's `sessions/` folder as a store (`use_index=False`: answer every question
    by reading the session files, as `doctor` and the tests compare against)."""
    from coachctl.engine.records import checked_derive
    from coachctl.store.files.store import FileStore

    return FileStore(home, lock_timeout, derive=checked_derive, use_index=use_index)
