"""Which store a command uses (CONTRACT §7): `--store URL`, else `COACHCTL_STORE`, else a
`store:` line in `HOME/coachctl.yaml`, else the home's `sessions/` folder.

Kept free of heavy imports (no yaml, no driver): every command runs this. coachctl.yaml is
a file a team commits beside `workflows/`; only its top-level `store:` line is read here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from coachctl.errors import UsageError

CONFIG_FILE = "coachctl.yaml"
_STORE_LINE = re.compile(r"store\s*:\s*(?P<value>.*?)\s*(?:#.*)?\Z")


def _is_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def _masked(value: str) -> str:
    from coachctl.store.postgres.connect import mask

    return mask(value)


def store_url(option: str | None, home: Path) -> str | None:
    """The PostgreSQL URL to use, or None for the file store. `option` is `--store` (click
    already falls back on COACHCTL_STORE); a value that is not a libpq URL is exit 2."""
    if option is None:
        option = os.environ.get("COACHCTL_STORE") or None
    if option is not None:
        if not _is_url(option):
            raise UsageError(
                f"--store/COACHCTL_STORE: expected a postgresql:// URL, got {_masked(option)!r}"
            )
        return option
    return config_store(home)


def config_store(home: Path) -> str | None:
    """The `store:` value of HOME/coachctl.yaml, or None (no file, no such line)."""
    path = home / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        m = _STORE_LINE.match(line)
        if not m:
            continue
        value = m.group("value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if not _is_url(value):
            raise UsageError(
                f"{path}:{number}: store: expected a postgresql:// URL, got {_masked(value)!r}"
            )
        return value
    return None
