"""How a step's command ended, in words, for every place a person reads it (`decide`, `show`,
the panel, auto runs, and the "outcome not recorded" error): never a negative exit code,
never "exit None"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def seconds(value: float) -> str:
    return f"{value:g} s" if value == int(value) else f"{value:.1f} s"


def outcome_text(record: Mapping[str, Any], timeout: float | None = None) -> str:
    """What happened to a command, in words: never a negative exit code.

    `exit 3`, `timed out after 3 s`, `stopped by Ctrl-C`, `killed by SIGKILL`; "" when the
    decision ran nothing.
    """
    if not record.get("executed"):
        return ""
    code = record.get("exit_code")
    if record.get("timed_out"):
        return f"timed out after {seconds(float(timeout))}" if timeout else "timed out"
    if record.get("outcome") == "interrupted":
        by = record.get("stopped_by")
        return f"stopped by {by}" if by and by != "SIGINT" else "stopped by Ctrl-C"
    if isinstance(code, int) and code < 0:
        import signal

        if -code == signal.SIGINT:
            return "stopped by Ctrl-C"
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code is None:
        error = record.get("error")
        return f"did not start: {error}" if error else "no exit code"
    return f"exit {code}"
