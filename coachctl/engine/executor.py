"""Runs one step's command: streams its output, keeps a bounded tail, honours a timeout.

The command runs in its own session and process group, so everything it starts can be
stopped together, and coachctl decides what reaches it:

- The deadline is on the process, not on the pipe: a command that closes its output and
  keeps running is still stopped at `timeout`, and a command whose shell exited is done even
  if a background child keeps the pipe open (a short drain, then coachctl stops reading).
- A timeout sends TERM to the whole group, then KILL after `KILL_GRACE` seconds.
- Ctrl-C (SIGINT) is passed on to the group each time, so a command's own Ctrl-C handling
  works (a first graceful stop, a second forced one); the third one KILLs the group.
- SIGTERM and SIGHUP (docker stop, systemd, a CI cancel, a closed terminal) are passed on,
  then KILL after the grace period; a second one KILLs at once.
- Once a stopped command's shell has exited, nothing of its group is left running.

Any of those signals makes the result `interrupted` (with the signal), so the caller records
the outcome and pauses the session. With `terminal=True` (the panel) the command gets a
pseudo-terminal bridged to ours: it can prompt (ssh, sudo), and the person's Ctrl-C is seen
here as a key before it becomes the command's signal. Otherwise stdin is /dev/null: a step
must not swallow a calling script's input.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

TAIL_BYTES = 4096
KILL_GRACE = 3.0  # seconds between TERM and KILL
DRAIN = 0.3  # seconds to read what is left once the shell has exited
POLL = 0.02  # exit polling interval where no pidfd is available
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CTRL_C_KILLS_AT = 3  # the third Ctrl-C KILLs the group


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    duration: float
    output_tail: str
    timed_out: bool = False
    interrupted: bool = False
    error: str | None = None
    signal: int | None = None  # the stop signal coachctl received (SIGINT for a Ctrl-C key)

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.interrupted
            and self.error is None
        )


class _Run:
    """The state of one running command, shared with the signal handlers."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.first_signal: int | None = None
        self.ctrl_c = 0
        self.terms = 0
        self.kill_at: float | None = None
        self.stopping = False  # timeout or a signal: leave nothing of the group behind
        self.pending: list[int] = []

    def group(self, sig: int) -> None:
        """Send `sig` to the command's process group (its pid: it leads its own session)."""
        if self.proc is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, sig)

    def stop(self, sig: int, *, key: bool = False) -> None:
        """A stop signal for coachctl (or the Ctrl-C key in a terminal): pass it on."""
        if self.first_signal is None:
            self.first_signal = sig
        self.stopping = True
        if self.proc is None:
            self.pending.append(sig)
            return
        if sig == signal.SIGINT:
            self.ctrl_c += 1
            if self.ctrl_c >= CTRL_C_KILLS_AT:
                self.group(signal.SIGKILL)
            elif not key:  # a key press reaches the group through its terminal
                self.group(signal.SIGINT)
            return
        self.terms += 1
        if self.terms > 1:
            self.group(signal.SIGKILL)
            return
        self.group(sig)
        self.kill_at = time.monotonic() + KILL_GRACE

    def timeout(self) -> None:
        self.stopping = True
        self.group(signal.SIGTERM)
        self.kill_at = time.monotonic() + KILL_GRACE


def run_command(
    command: str,
    *,
    timeout: float | None = None,
    stream: Callable[[bytes], None] | None = None,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    terminal: bool = False,
) -> ExecResult:
    """Run `command` with the shell; return its exit code, duration and output tail."""
    start = time.monotonic()
    run = _Run()
    in_main = threading.current_thread() is threading.main_thread()
    term: Any = None
    if terminal:
        from coachctl.engine import terminal as term_mod

        term = term_mod.Bridge.open()
    previous: dict[int, Any] = {}
    if in_main:
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # e.g. `nohup`: the command inherits the same indifference
            previous[sig] = signal.signal(sig, lambda signum, frame: run.stop(signum))
        if term is not None:
            previous[signal.SIGWINCH] = signal.signal(
                signal.SIGWINCH, lambda signum, frame: term.resize()
            )
    try:
        try:
            run.proc = _spawn(command, cwd, env, term)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            return ExecResult(
                None, time.monotonic() - start, "", error=f"cannot start: {_why(exc)}"
            )
        pending, run.pending = run.pending, []
        for signum in pending:  # a signal that came while the command was being started
            run.stop(signum)
        tail, timed_out = _wait(run, start, timeout, stream, term)
    finally:
        if term is not None:
            term.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    proc = run.proc
    text = bytes(tail).replace(b"\r\n", b"\n") if term is not None else bytes(tail)
    return ExecResult(
        exit_code=proc.returncode,
        duration=time.monotonic() - start,
        output_tail=text.decode("utf-8", "replace"),
        timed_out=timed_out,
        interrupted=run.first_signal is not None,
        signal=run.first_signal,
    )


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP while the outcome of a command that ran is recorded:
    they are delivered right after, so the record is never lost to a second signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _why(exc: BaseException) -> str:
    """`Argument list too long` rather than `[Errno 7] Argument list too long: '/bin/sh'`."""
    if isinstance(exc, OSError) and exc.strerror:
        name = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{name}"
    return str(exc)


def _spawn(
    command: str, cwd: str | None, env: dict[str, str] | None, term: Any
) -> subprocess.Popen[bytes]:
    """The shell in a new session (so a new process group that coachctl can signal), its
    output through a pipe, or on the panel's terminal `term`."""
    stdio: dict[str, Any] = (
        {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
        if term is None
        else {
            "stdin": term.slave,
            "stdout": term.slave,
            "stderr": term.slave,
            "preexec_fn": term.child_setup,
        }
    )
    try:
        return subprocess.Popen(
            command, shell=True, cwd=cwd, env=env, start_new_session=True, **stdio
        )
    finally:
        if term is not None:
            term.close_slave()


def _wait(
    run: _Run,
    start: float,
    timeout: float | None,
    stream: Callable[[bytes], None] | None,
    term: Any,
) -> tuple[bytearray, bool]:
    """Stream output until the shell has exited (and its output drained, or DRAIN passed)."""
    proc = run.proc
    assert proc is not None
    tail = bytearray()
    timed_out = False
    deadline = None if timeout is None else start + timeout
    if term is not None:
        out_fd = term.master
    else:
        assert proc.stdout is not None
        out_fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(out_fd, selectors.EVENT_READ, "out")
    if term is not None and term.stdin is not None:
        sel.register(term.stdin, selectors.EVENT_READ, "in")
    pidfd = _pidfd(proc.pid)
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ, "exit")
    eof = False
    drain_until: float | None = None
    try:
        while True:
            now = time.monotonic()
            if drain_until is None and proc.poll() is not None:
                drain_until = now + DRAIN
                with contextlib.suppress(KeyError, ValueError):
                    sel.unregister(pidfd if pidfd is not None else -1)
                if term is not None and term.stdin is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        sel.unregister(term.stdin)
            if drain_until is not None and (eof or now >= drain_until):
                if run.stopping and _group_alive(proc.pid):
                    # A stopped step leaves nothing running: wait out the grace, then KILL.
                    if run.kill_at is None:
                        run.group(signal.SIGTERM)
                        run.kill_at = now + KILL_GRACE
                    if now >= run.kill_at:
                        run.group(signal.SIGKILL)
                        run.kill_at = None
                        break
                else:
                    break
            if deadline is not None and not timed_out and now >= deadline and proc.poll() is None:
                timed_out = True
                run.timeout()
            if run.kill_at is not None and now >= run.kill_at and drain_until is None:
                run.group(signal.SIGKILL)
                run.kill_at = None
            wakes = [t for t in (deadline, run.kill_at, drain_until) if t is not None]
            wait = min([t - now for t in wakes] + [0.5 if pidfd is not None else POLL])
            if drain_until is not None and eof:
                wait = min(wait, 0.05)
            for key, _ in sel.select(timeout=max(0.0, wait)):
                if key.data == "out":
                    chunk = _read(out_fd)
                    if not chunk:
                        eof = True
                        sel.unregister(out_fd)
                        continue
                    tail += chunk
                    if len(tail) > TAIL_BYTES:
                        del tail[: len(tail) - TAIL_BYTES]
                    if stream is not None:
                        stream(chunk)
                elif key.data == "in" and not term.forward_input(run):
                    sel.unregister(term.stdin)
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.poll() is None:  # only on an exception here: never leave the step behind
            run.group(signal.SIGKILL)
            proc.wait()
    return tail, timed_out


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError as exc:
        if exc.errno == errno.EIO:  # a pty whose every slave is closed: end of output
            return b""
        raise


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _group_alive(pgid: int) -> bool:
    """Is anything of the group still running? (Zombies waiting for a slow init do not count.)"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: the group exists, so something may still run
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] not in (b"Z", b"X"):
            return True
    return False
