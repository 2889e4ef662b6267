"""One error hierarchy: every expected failure carries the contract's exit code.

The engine raises these; only the root CLI (`coachctl.cli`) turns them into one line on
stderr and an exit status, so no command ever prints a traceback for bad input.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """Messages echo user input: never let it break the line or drive the terminal.

    Errors and warnings both go through this, so a file name or a value that holds an
    escape sequence is shown as `\\x1b`, never obeyed.
    """
    return "".join(
        " " if ch in "\n\r\t" else (f"\\x{ord(ch):02x}" if _is_control(ch) else ch) for ch in text
    )


def _is_control(ch: str) -> bool:
    """C0, DEL and C1 (`\\x9b` is a terminal's CSI, as `\\x1b[` is)."""
    code = ord(ch)
    return code < 32 or 127 <= code < 160


class CoachctlError(Exception):
    """Base of every error a user may meet; `exit_code` is what the process exits with."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(CoachctlError):
    """Bad arguments or invalid input (exit 2)."""

    exit_code = 2


class WorkflowError(UsageError):
    """An invalid workflow file; the message is `PATH:LINE: message` (exit 2)."""


class SessionNotFound(UsageError):
    """Unknown or ambiguous session reference (exit 2)."""


class StateError(UsageError):
    """A decision the session's status does not allow, or an unreadable state file (exit 2)."""


class ConflictError(CoachctlError):
    """The lock was not had in time, the step moved on, or it runs elsewhere (exit 3)."""

    exit_code = 3


class StepFailed(CoachctlError):
    """A step's command exited non-zero (exit 1)."""

    exit_code = 1


class NotReady(CoachctlError):
    """A workflow is not ready for AUTO (exit 1)."""

    exit_code = 1


class StorageError(CoachctlError):
    """The home could not be written (read-only, disk full): nothing was changed (exit 1)."""

    exit_code = 1


class OutcomeNotSaved(StorageError):
    """A step's command ran but its outcome could not be saved: check before deciding (exit 1)."""


class Interrupted(CoachctlError):
    """Ctrl-C: the session was paused, nothing lost (exit 130)."""

    exit_code = 130


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (docker stop, systemd, a CI cancel, a closed terminal), handled
    exactly like Ctrl-C: every path that pauses on Ctrl-C pauses on these; exit 128+N."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_status(exc: BaseException) -> int:
    """The exit status for a KeyboardInterrupt: 130 for Ctrl-C, 128+N for signal N."""
    return 128 + int(getattr(exc, "signum", 2))
