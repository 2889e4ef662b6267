"""The panel's plumbing to the terminal and the store: a readline prompt that starts with
text, the live output stream of a command, and where the events log ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coachctl.store.base import Store


class LineTracker:
    """The live output stream of a command; makes sure the panel starts on a fresh line."""

    def __init__(self) -> None:
        from coachctl.commands._common import stream_to

        self.write = stream_to("text")
        self.last = b"\n"

    def __call__(self, chunk: bytes) -> None:
        if chunk:
            self.write(chunk)
            self.last = chunk[-1:]

    def close(self) -> None:
        if self.last != b"\n":
            self.write(b"\n")
            self.last = b"\n"


def _forget_last(readline: Any) -> None:
    """Keep commands and feedback typed in the panel out of readline's history list."""
    try:
        n = readline.get_current_history_length()
        if n:
            readline.remove_history_item(n - 1)
    except (AttributeError, ValueError):
        pass


def events_mark(store: Store) -> str:
    """Where the events log ends now (the store's cursor), so the panel can read what a
    decision added."""
    from coachctl.errors import CoachctlError

    try:
        return store.events_end()
    except (CoachctlError, OSError):
        return ""


def events_since(store: Store, mark: str) -> tuple[list[dict[str, Any]], str]:
    """The events appended after `mark`, and the new mark; never fails the panel."""
    from coachctl.errors import CoachctlError

    found: list[dict[str, Any]] = []
    end = mark
    try:
        for event, after in store.read_events(mark):
            found.append(event)
            end = after
    except (CoachctlError, OSError):
        pass
    return found, end


def readline_input(prompt: str, prefill: str) -> str | None:
    """`input()` with readline, the line starting as `prefill`; None without readline.

    readline writes the prompt to stdout (the terminal). Its bracketed-paste escapes are
    turned off: with NO_COLOR the panel writes no escape codes.
    """
    try:
        import readline
    except ImportError:
        return None
    readline.parse_and_bind("set enable-bracketed-paste off")
    readline.set_startup_hook(lambda: readline.insert_text(prefill))
    try:
        return input(prompt)
    except EOFError:
        raise KeyboardInterrupt from None
    finally:
        readline.set_startup_hook(None)
        _forget_last(readline)
