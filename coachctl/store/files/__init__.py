"""The file store (the embedded default): see `store.FileStore`."""

from __future__ import annotations

from coachctl.store.files.store import FileStore

__all__ = ["FileStore"]
