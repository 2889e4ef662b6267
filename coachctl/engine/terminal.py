"""A pseudo-terminal between the person's terminal and a step's command (the panel).

The command gets a terminal of its own, so it can prompt (ssh, sudo) and it can be stopped as
a group; coachctl relays keys and output. Our terminal is raw while the command runs, so the
person's Ctrl-C arrives here as a key: coachctl knows the person stopped the command (outcome
`interrupted`) before the pty turns the key into the command's SIGINT.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import termios
from typing import Any

_ISIG = termios.ISIG
_VINTR = termios.VINTR


class Bridge:
    """One pty pair; `stdin` is our terminal's descriptor when we relay keys, else None."""

    def __init__(self, master: int, slave: int, stdin: int | None, saved: Any) -> None:
        self.master = master
        self.slave = slave
        self.stdin = stdin
        self.saved = saved

    @classmethod
    def open(cls) -> Bridge:
        master, slave = os.openpty()
        stdin = _tty_fd(sys.stdin)
        saved = None
        if stdin is not None:
            with contextlib.suppress(termios.error):
                # The command's terminal starts with the person's settings and size.
                termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(stdin))
            saved = termios.tcgetattr(stdin)
            raw = termios.tcgetattr(stdin)
            raw[0] &= ~(
                termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON
            )
            raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
            raw[6][termios.VMIN] = 1
            raw[6][termios.VTIME] = 0
            termios.tcsetattr(stdin, termios.TCSADRAIN, raw)
        bridge = cls(master, slave, stdin, saved)
        bridge.resize()
        return bridge

    def resize(self) -> None:
        """Give the command our window size (at start and on SIGWINCH)."""
        for fd in (self.stdin, _tty_fd(sys.stdout)):
            if fd is None:
                continue
            with contextlib.suppress(OSError):
                size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
                return

    def child_setup(self) -> None:  # pragma: no cover - runs in the forked child
        """After setsid: make the pty (already our stdin) the controlling terminal."""
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def close_slave(self) -> None:
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1

    def forward_input(self, run: Any) -> bool:
        """Relay the person's keys; a Ctrl-C key stops the command. False at end of input."""
        assert self.stdin is not None
        try:
            data = os.read(self.stdin, 1024)
        except OSError:
            return False
        if not data:
            return False
        try:
            attrs = termios.tcgetattr(self.master)
            intr = attrs[6][_VINTR]
            intr_byte = intr if isinstance(intr, bytes) else bytes([intr])
            signals = bool(attrs[3] & _ISIG)
        except termios.error:
            intr_byte, signals = b"\x03", True
        if signals:
            import signal

            for _ in range(data.count(intr_byte)):
                run.stop(signal.SIGINT, key=True)
        with contextlib.suppress(OSError):
            os.write(self.master, data)
        return True

    def close(self) -> None:
        """Give the person their terminal back, whatever happened."""
        self.close_slave()
        if self.stdin is not None and self.saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.stdin, termios.TCSADRAIN, self.saved)
            self.saved = None
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def _tty_fd(stream: Any) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    return fd if os.isatty(fd) else None
