"""Runs one step's command: streams its output, keeps a bounded tail, honours a timeout.

The command runs in coachctl's own process group, so Ctrl-C in a terminal reaches it
directly. coachctl itself does not die on that Ctrl-C: it waits for the command to finish
(a second Ctrl-C reaches the command too) and then reports `interrupted`, so the caller can
record the outcome and pause the session — nothing is lost.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

TAIL_BYTES = 4096
KILL_GRACE = 2.0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    duration: float
    output_tail: str
    timed_out: bool = False
    interrupted: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.error is None


def run_command(
    command: str,
    *,
    timeout: float | None = None,
    stream: Callable[[bytes], None] | None = None,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> ExecResult:
    """Run `command` with the shell; return its exit code, duration and output tail."""
    start = time.monotonic()
    interrupted = False
    previous = None
    in_main = threading.current_thread() is threading.main_thread()
    forward = not (sys.stdin and sys.stdin.isatty())
    holder: list[subprocess.Popen[bytes]] = []

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True
        # Without a terminal the signal came from `kill`, not the tty: pass it on.
        if forward and holder and holder[0].poll() is None:
            with contextlib.suppress(OSError):
                holder[0].send_signal(signal.SIGINT)

    if in_main:
        previous = signal.signal(signal.SIGINT, on_sigint)
        # A Ctrl-C between fork and exec would be eaten by the child's copy of our handler
        # and the command would run on. Keep SIGINT blocked over the fork; the child puts
        # the default action back before unblocking, so a pending Ctrl-C ends it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=_child_signals if in_main else None,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        if in_main:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)
        return ExecResult(None, time.monotonic() - start, "", error=f"cannot start: {exc}")
    holder.append(proc)
    if in_main:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    tail = bytearray()
    timed_out = False
    deadline = None if timeout is None else start + timeout
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if wait is not None and wait == 0.0:
                timed_out = True
                _terminate(proc)
                break
            ready = sel.select(timeout=min(wait, 0.5) if wait is not None else 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                break
            tail += chunk
            if len(tail) > TAIL_BYTES:
                del tail[: len(tail) - TAIL_BYTES]
            if stream is not None:
                stream(chunk)
        while True:
            try:
                proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - only without our handler
                interrupted = True
    finally:
        sel.close()
        proc.stdout.close()
        if in_main:
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)
    return ExecResult(
        exit_code=proc.returncode,
        duration=time.monotonic() - start,
        output_tail=tail.decode("utf-8", "replace"),
        timed_out=timed_out,
        interrupted=interrupted,
    )


def _child_signals() -> None:  # pragma: no cover - runs in the forked child
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period: a timeout must end the command."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
