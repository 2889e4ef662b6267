"""Which folder is the home, and whether coachctl may use it (CONTRACT §1).

Checked before any command touches the home, so a mistake in choosing it is one clear line
and exit 2, not a new home created by accident or a traceback further down:

- `--home ''` and `COACHCTL_HOME=''` are refused: an empty value is almost always a script's
  unset variable, and silently meaning "the current folder" would read or write the wrong home;
- a home that does not exist is refused, not created: a mistyped `--home` given with a
  workflow path would otherwise start a new, empty trust history beside the real one
  (`mkdir` it first; `git -C`, `make -C` and `kubectl --kubeconfig` refuse the same way);
- a home that is a regular file, or a folder coachctl cannot read, is refused as such.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from coachctl.errors import UsageError

ENV = "COACHCTL_HOME"


def resolve_home(option: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """`--home`, else `$COACHCTL_HOME`, else the current directory; a usable folder or exit 2."""
    env = os.environ if environ is None else environ
    if option is not None:
        raw, source = option, "--home"
    elif ENV in env:
        raw, source = env[ENV], ENV
    else:
        try:
            raw, source = os.getcwd(), "the current folder"
        except OSError as exc:  # it was removed under us
            raise UsageError(f"cannot use the current folder as home: {_reason(exc)}") from None
    if not raw.strip():
        if source == ENV:
            raise UsageError(f"{ENV} is set but empty (unset it to use the current folder)")
        raise UsageError("--home is empty (leave it out to use the current folder)")
    path = Path(raw).expanduser().absolute()
    check_home(path, source)
    return path


def check_home(path: Path, source: str) -> None:
    """Refuse a home that is missing, not a folder, or not readable (UsageError, exit 2)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(
            f"no such home: {path} (from {source}; create it with `mkdir -p {path}` "
            "if it is meant to be a new home)"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot use home {path} (from {source}): {_reason(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"home {path} (from {source}) is not a folder")
    try:
        # Opening it needs read permission; stat-ing a name inside needs search permission.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        os.close(fd)
        os.stat(path / "workflows")
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot read home {path} (from {source}): {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)
