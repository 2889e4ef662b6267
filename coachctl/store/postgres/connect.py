"""Connecting to the team store: the driver, timeouts, masked URLs, the schema check.

Every error a user meets here is one line naming the store by its *masked* URL: a password
that is in the URL is never printed, logged or kept in an exception message.
"""

from __future__ import annotations

import os
import re
from typing import Any

from coachctl.errors import ConflictError, StorageError, UsageError

INSTALL_HINT = "pip install 'coachctl[postgres]'"
CONNECT_TIMEOUT = 5  # seconds, unless the URL or PGCONNECT_TIMEOUT says otherwise
IDLE_IN_TRANSACTION_MS = 60_000  # a frozen laptop cannot hold a row lock longer than this
LOCK_NOT_AVAILABLE = "55P03"
UNDEFINED_TABLE = "42P01"

_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/?#]*):(?P<pw>[^@/?#]*)@"
)
_PW_PARAM = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^&\s]*)", re.I)


def is_url(value: str) -> bool:
    """A libpq URL (postgresql:// or postgres://) names the team store."""
    return value.startswith(("postgresql://", "postgres://"))


def mask(text: str, url: str | None = None) -> str:
    """`text` with every password shown as ***: in URL userinfo, in `password=` parameters,
    and anywhere the literal password of `url` appears (a driver message may echo it)."""
    secrets: list[str] = []
    for source in (text, url or ""):
        secrets += [m.group("pw") for m in _USERINFO.finditer(source)]
        secrets += [m.group("pw").strip("'") for m in _PW_PARAM.finditer(source)]
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
    text = _PW_PARAM.sub(lambda m: f"{m.group('key')}***", text)
    for secret in secrets:
        if len(secret) >= 3 and secret != "***":
            text = text.replace(secret, "***")
    return text


class Unreachable(UsageError):
    """The database could not be reached (exit 2); a follower waits for it instead."""


def driver() -> Any:
    """psycopg2, imported here and only here; missing → one exit-2 line saying how."""
    try:
        import psycopg2
        import psycopg2.extensions
    except ImportError:
        raise UsageError(
            f"the PostgreSQL store needs its driver, which is not installed: {INSTALL_HINT}"
        ) from None
    return psycopg2


def connect(url: str, lock_timeout: float, *, application: str = "coachctl") -> Any:
    """An autocommit connection (transactions are sent as explicit BEGIN … COMMIT, which
    saves a round trip per transaction), with a connect timeout, TCP keepalives,
    `lock_timeout` from --lock-timeout and `idle_in_transaction_session_timeout`, all set
    in the startup packet (no extra round trip). Unreachable → UsageError (exit 2)."""
    psycopg2 = driver()
    options = (
        f"-c lock_timeout={max(1, int(lock_timeout * 1000))} "
        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    )
    params: dict[str, Any] = {
        "options": options,
        "application_name": application,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    if "connect_timeout" not in url and not os.environ.get("PGCONNECT_TIMEOUT"):
        params["connect_timeout"] = CONNECT_TIMEOUT
    try:
        conn = psycopg2.connect(url, **params)
    except psycopg2.Error as exc:
        raise Unreachable(
            f"cannot reach the postgres store {mask(url)}: {reason(exc, url)}"
        ) from None
    conn.autocommit = True
    return conn


def reason(exc: BaseException, url: str | None = None) -> str:
    """A driver error as one masked line (its first line: the rest is context)."""
    text = str(getattr(exc, "pgerror", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return mask(line.removeprefix("ERROR:").strip(), url)


def translate(exc: BaseException, store: str, url: str | None = None) -> Exception:
    """A driver error → the contract's: a lock not had in time is a conflict (exit 3); a
    connection lost is a storage error (exit 1, nothing was committed)."""
    code = getattr(exc, "pgcode", None)
    if code == LOCK_NOT_AVAILABLE:
        return ConflictError(f"{store} is busy: the session's row lock was not had in time")
    if code == UNDEFINED_TABLE:
        return UsageError(f"{store} has no coachctl schema: run `coachctl store upgrade`")
    return StorageError(f"{store}: {reason(exc, url)}")
