"""Correction packs (derived) and hand choices (truth), as files of the file store.

- `sessions/packs/<workflow>.json` is derived: rebuilt from the session files whenever it
  is missing, damaged or stale. Stale means it has not folded exactly the decisions the
  index says the workflow's teaching sessions hold (`folds`), or it was built on other hand
  choices than the current ones.
- `sessions/choices/<workflow>.json` is what people chose by hand (adopt, drop, import):
  never derived, never silently replaced. A damaged one is an error naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coachctl.errors import StateError
from coachctl.store.files.fs import os_reason, read_nofollow, write_atomic
from coachctl.store.files.layout import CHOICES_DIR, PACKS_DIR
from coachctl.store.ids import check_id

if TYPE_CHECKING:
    from coachctl.store.files.store import FileStore

CHOICES_VERSION = 1


def pack_path(store: FileStore, workflow_id: str) -> Path:
    check_id(workflow_id, "workflow id")
    return store.sessions_dir / PACKS_DIR / f"{workflow_id}.json"


def choices_path(store: FileStore, workflow_id: str) -> Path:
    check_id(workflow_id, "workflow id")
    return store.sessions_dir / CHOICES_DIR / f"{workflow_id}.json"


def digest(choices: Mapping[str, Any]) -> str:
    """Which hand choices a derived pack was built on."""
    import hashlib

    raw = json.dumps(choices, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _dumps(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _read_pack_file(store: FileStore, workflow_id: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(read_nofollow(pack_path(store, workflow_id)))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("steps"), dict)
        or not isinstance(obj.get("folded"), dict)
        or not all(isinstance(s, dict) for s in obj["steps"].values())
        or not isinstance(obj.get("version"), int)
    ):
        return None
    return obj


def read_derived(
    store: FileStore, workflow_id: str, *, fresh: bool = True
) -> dict[str, Any] | None:
    """The derived pack when it is current; None when missing, damaged or stale.

    `fresh=False` (inside a session transaction) trusts the index as coachctl's own writes
    keep it, without a refresh: `decide` never scans the sessions folder."""
    pack = _read_pack_file(store, workflow_id)
    if pack is None:
        return None
    try:
        hand = digest(read_choices(store, workflow_id))
    except StateError:
        return None
    if "hand" in pack and pack["hand"] != hand:
        return None  # built on other hand choices (a pack from before them has no "hand")
    idx = store.index(fresh=fresh)
    if idx is not None:
        try:
            want = idx.folds(workflow_id)
        except Exception:
            return pack
        have = {str(k): v for k, v in pack["folded"].items()}
        if have != want:
            return None
    return pack


def write_derived(store: FileStore, workflow_id: str, pack: Mapping[str, Any]) -> None:
    """Replace the derived pack (the caller holds the workflow's pack lock); it records the
    hand choices it was built on."""
    path = pack_path(store, workflow_id)
    store.make_dir(path.parent)
    out = dict(pack)
    out["hand"] = digest(read_choices(store, workflow_id))
    write_atomic(path, _dumps(out) + b"\n")


def read_choices(store: FileStore, workflow_id: str) -> dict[str, Any]:
    """The workflow's hand choices ({} when none); StateError naming a damaged file."""
    path = choices_path(store, workflow_id)
    try:
        data = read_nofollow(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StateError(f"cannot read hand choices {path}: {os_reason(exc, True)}") from exc
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise StateError(f"damaged hand choices {path}: not valid JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("steps", {}), dict):
        raise StateError(f"damaged hand choices {path}: not a coachctl record")
    version = obj.get("version", CHOICES_VERSION)
    if not isinstance(version, int) or version > CHOICES_VERSION:
        raise StateError(f"hand choices {path} were written by a newer coachctl: upgrade")
    steps = obj.get("steps", {})
    scopes = obj.get("scopes", {})  # per trust scope: {KEY: {"steps": …}}
    if (
        not all(isinstance(v, dict) for v in steps.values())
        or not isinstance(scopes, dict)
        or not all(
            isinstance(p, dict)
            and isinstance(p.get("steps"), dict)
            and all(isinstance(v, dict) for v in p["steps"].values())
            for p in scopes.values()
        )
    ):
        raise StateError(f"damaged hand choices {path}: not a coachctl record")
    out: dict[str, Any] = {"steps": steps} if steps else {}
    if scopes:
        out["scopes"] = scopes
    return out


def write_choices(store: FileStore, workflow_id: str, choices: Mapping[str, Any]) -> None:
    path = choices_path(store, workflow_id)
    store.make_dir(path.parent)
    record = {"version": CHOICES_VERSION, "workflow_id": workflow_id, **choices}
    write_atomic(path, _dumps(record) + b"\n")


def ids(store: FileStore) -> list[str]:
    """Workflow ids that have a pack or hand choices."""
    found: set[str] = set()
    for folder in (PACKS_DIR, CHOICES_DIR):
        try:
            names = os.listdir(store.sessions_dir / folder)
        except OSError:
            continue
        found.update(n[:-5] for n in names if n.endswith(".json") and not n.startswith("."))
    return sorted(found)
