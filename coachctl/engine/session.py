"""The session record and its state machine: pure, no files, no terminal.

A session is a snapshot of a workflow's steps plus the decisions people (or AUTO) made on
them. Everything here is a function of the record and its arguments, so the same rules apply
whether the decision comes from the panel, `decide` in a script, or an AUTO run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from coachctl.errors import ConflictError, StateError, UsageError

DECISIONS = ("accept", "reject", "correct", "manual", "skip")
MODES = ("auto", "coaching", "observation", "mixed")
STATUSES = ("active", "paused", "completed", "cancelled", "failed")
EXECUTING = ("accept", "correct")
OUTPUT_TAIL_BYTES = 4096


def utcnow() -> str:
    """UTC ISO-8601 with microseconds, so decisions in one second still sort.

    (time, not datetime: `decide` runs thousands of times and datetime costs an import.)
    """
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def current_user() -> str:
    """`$COACHCTL_USER`, else the login name (CONTRACT §3 `decided_by`)."""
    user = os.environ.get("COACHCTL_USER")
    if user:
        return user
    for var in ("LOGNAME", "USER", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return "unknown"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, so a reused pid is not mistaken for ours."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after its ')'.
    rest = stat[stat.rfind(")") + 2 :].split()
    return rest[19] if len(rest) > 19 else None


def pid_alive(pid: int, start: str | None) -> bool:
    """Is the process that marked a step running still there (and the same process)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    if start is not None:
        now = process_start_time(pid)
        if now is not None and now != start:
            return False
    return True


_HERE: dict[str, Any] | None = None


def here() -> dict[str, Any]:
    """Who this process is, in the terms a running mark records (read once per process).

    `boot_id` names this kernel's boot, `pid_ns` the pid namespace (a container has its own):
    with both equal, a pid in the mark means the same process table as ours. `machine_id`
    and `host` are for people reading the mark. A field is None where it cannot be read
    (no /proc: macOS, BSD); such a mark cannot be checked anywhere.
    """
    global _HERE
    if _HERE is None:
        try:
            pid_ns: int | None = os.stat("/proc/self/ns/pid").st_ino
        except OSError:
            pid_ns = None
        _HERE = {
            "host": _hostname(),
            "machine_id": _first_line("/etc/machine-id", "/var/lib/dbus/machine-id"),
            "boot_id": _first_line("/proc/sys/kernel/random/boot_id"),
            "pid_ns": pid_ns,
        }
    return dict(_HERE)


def _hostname() -> str:
    try:
        return os.uname().nodename
    except (AttributeError, OSError):  # pragma: no cover - every POSIX system has uname
        return "unknown"


def _first_line(*paths: str) -> str | None:
    for path in paths:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                line = fh.readline().strip()
        except OSError:
            continue
        if line:
            return line
    return None


def mark_state(
    mark: Mapping[str, Any],
    where: Mapping[str, Any] | None = None,
    alive: Any = pid_alive,
) -> str:
    """'running' or 'interrupted': what a running mark means to the process at `where`.

    'running' only when this machine can check the mark and its process is the one that
    wrote it: same boot of the same kernel (`boot_id`), same pid namespace, the pid alive
    with the recorded start time. Anything else (another host or container, a mark written
    without /proc, an older mark without those fields) is 'interrupted': it may have run,
    a person decides, nothing runs it again by itself. A store that can tell better (a lease
    held by the runner) answers before this fallback.
    """
    where = here() if where is None else where
    pid = mark.get("pid")
    start = mark.get("pid_start")
    if not isinstance(pid, int) or not isinstance(start, str):
        return "interrupted"
    checkable = (
        mark.get("boot_id") is not None
        and mark.get("pid_ns") is not None
        and mark.get("boot_id") == where.get("boot_id")
        and mark.get("pid_ns") == where.get("pid_ns")
    )
    if not checkable:
        return "interrupted"
    return "running" if alive(pid, start) and process_start_time(pid) == start else "interrupted"


class Session:
    """One run of a workflow; `to_dict` is exactly the JSON file (CONTRACT §3).

    A plain class rather than a dataclass: `decide` is run thousands of times by scripts
    and `dataclasses` would cost it the `inspect` import.
    """

    def __init__(
        self,
        id: str,
        workflow_id: str,
        mode: str,
        status: str,
        cursor: int,
        steps: list[dict[str, Any]],
        decisions: list[dict[str, Any]] | None = None,
        workflow_name: str = "",
        workflow_path: str = "",
        variables: dict[str, str] | None = None,
        coaching: dict[str, Any] | None = None,
        running: dict[str, Any] | None = None,
        created_at: str = "",
        updated_at: str = "",
        started_by: str = "",
        pause_reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.id = id
        self.workflow_id = workflow_id
        self.mode = mode
        self.status = status
        self.cursor = cursor
        self.steps = steps
        self.decisions = [] if decisions is None else decisions
        self.workflow_name = workflow_name
        self.workflow_path = workflow_path
        self.variables = {} if variables is None else variables
        self.coaching = {} if coaching is None else coaching
        self.running = running
        self.created_at = created_at
        self.updated_at = updated_at
        self.started_by = started_by
        self.pause_reason = pause_reason
        self.extra = {} if extra is None else extra
        #: What the store says of the runner's lease on `running` (`Store.lease_alive`):
        #: True held, False gone, None cannot tell (then the mark itself is checked).
        #: Not part of the record: it is asked afresh each time a session is loaded.
        self.lease: bool | None = None

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, workflow_id={self.workflow_id!r}, status={self.status!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    _FIELDS = (
        "id",
        "workflow_id",
        "mode",
        "status",
        "cursor",
        "steps",
        "decisions",
        "workflow_name",
        "workflow_path",
        "variables",
        "coaching",
        "running",
        "created_at",
        "updated_at",
        "started_by",
        "pause_reason",
    )

    _REQUIRED = ("id", "workflow_id", "mode", "status", "cursor", "steps")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        """Load a session file's object; optional fields may be missing (older writers)."""
        missing = [k for k in cls._REQUIRED if k not in data]
        if missing:
            raise StateError(f"session {data.get('id')!r} is damaged: no {', '.join(missing)}")
        try:
            kwargs = {k: data[k] for k in cls._FIELDS if k in data}
            extra = {k: v for k, v in data.items() if k not in cls._FIELDS}
            extra.pop("schema_version", None)
            session = cls(extra=extra, **kwargs)
        except TypeError as exc:
            raise StateError(f"session {data.get('id')!r} is missing a field: {exc}") from None
        if (
            session.mode not in MODES
            or session.status not in STATUSES
            or not isinstance(session.cursor, int)
            or not isinstance(session.steps, list)
            or not isinstance(session.decisions, list)
            or not all(isinstance(s, dict) and isinstance(s.get("id"), str) for s in session.steps)
            or not all(isinstance(d, dict) for d in session.decisions)
        ):
            raise StateError(f"session {session.id!r} is damaged: invalid fields")
        return session

    def to_dict(self) -> dict[str, Any]:
        from coachctl.store.base import SCHEMA_VERSION

        out: dict[str, Any] = dict(self.extra)
        out.update({k: getattr(self, k) for k in self._FIELDS})
        out["schema_version"] = SCHEMA_VERSION
        return out

    # -- reading ------------------------------------------------------------------------

    @property
    def current_step(self) -> dict[str, Any] | None:
        if 0 <= self.cursor < len(self.steps):
            return self.steps[self.cursor]
        return None

    def step_decisions(self, step_id: str) -> list[dict[str, Any]]:
        return [d for d in self.decisions if d.get("step_id") == step_id]

    def last_attempt_failed(self) -> bool:
        """Did the last decision on the current step fail (so the cursor stayed)?"""
        step = self.current_step
        if step is None:
            return False
        for d in reversed(self.decisions):
            if d.get("cursor") == self.cursor and d.get("step_id") == step["id"]:
                return bool(d.get("outcome") == "failed")
            if d.get("step_id") != step["id"]:
                break
        return False

    def running_state(self) -> str | None:
        """'running' (a live process has it), 'interrupted' (its process died), or None."""
        if not self.running:
            return None
        if self.lease is not None:
            return "running" if self.lease else "interrupted"
        return mark_state(self.running)

    def last_outcome(self) -> str | None:
        """The outcome of the last attempt at the current step (`failed`, `interrupted`…)."""
        step = self.current_step
        if step is None:
            return None
        for d in reversed(self.decisions):
            if d.get("cursor") == self.cursor and d.get("step_id") == step["id"]:
                outcome = d.get("outcome")
                return outcome if isinstance(outcome, str) else None
            if d.get("step_id") != step["id"]:
                break
        return None

    def step_interrupted(self) -> bool:
        """Was the current step interrupted (a dead runner's mark, or a stopped command)?"""
        if self.running is not None and self.running.get("cursor") == self.cursor:
            if self.running_state() == "interrupted":
                return True
            return bool(self.running.get("after_interrupted"))  # our run of such a step
        return self.last_outcome() == "interrupted"


# -- transitions ------------------------------------------------------------------------


def new_session(
    session_id: str,
    *,
    workflow_id: str,
    workflow_name: str,
    workflow_path: str,
    mode: str,
    steps: list[dict[str, Any]],
    variables: dict[str, str],
    coaching: dict[str, Any],
    start_at: int = 0,
) -> Session:
    if mode not in MODES:
        raise UsageError(f"invalid mode: {mode} (expected one of {', '.join(MODES)})")
    now = utcnow()
    return Session(
        id=session_id,
        workflow_id=workflow_id,
        workflow_name=workflow_name,
        workflow_path=workflow_path,
        mode=mode,
        status="active" if start_at < len(steps) else "completed",
        cursor=start_at,
        steps=steps,
        variables=variables,
        coaching=coaching,
        created_at=now,
        updated_at=now,
        started_by=current_user(),
    )


def check_decidable(
    session: Session, decision: str, *, step_guard: str | None, by_auto: bool = False
) -> dict[str, Any]:
    """Refuse a decision the session cannot take now; return the step it applies to."""
    if decision not in DECISIONS:
        raise UsageError(f"invalid decision: {decision} (expected one of {', '.join(DECISIONS)})")
    if session.status != "active":
        hint = {
            "paused": f" (coachctl resume {session.id} first)",
            "failed": f" (coachctl resume {session.id} to decide the failed step)",
        }.get(session.status, "")
        raise StateError(f"session {session.id} is {session.status}{hint}")
    step = session.current_step
    if step is None:
        raise StateError(f"session {session.id} has no step left to decide")
    if step_guard is not None and step_guard != step["id"]:
        raise ConflictError(
            f"session {session.id} is at step {step['id']!r}, not {step_guard!r}: nothing changed"
        )
    state = session.running_state()
    if state == "running" and session.running is not None:
        raise ConflictError(
            f"step {session.running.get('step_id')!r} of session {session.id} is running "
            f"(pid {session.running.get('pid')}): wait for it to finish"
        )
    if by_auto and session.step_interrupted():
        raise StateError(
            f"step {step['id']!r} was interrupted while running (it may have run): "
            "a person must decide it"
        )
    if session.mode == "observation" and decision not in ("manual", "skip"):
        raise UsageError(
            f"session {session.id} is in observation mode: report the step with "
            "'manual --command CMD' or 'skip'"
        )
    if decision == "accept" and not step.get("suggestion"):
        raise UsageError(
            f"step {step['id']!r} has no suggestion yet: do it yourself and report it "
            "with 'manual --command CMD'"
        )
    return step


def mark_running(session: Session, step: dict[str, Any], decision: str, command: str) -> str:
    """Mark the step running by this process; the token proves it is ours on return."""
    token = os.urandom(8).hex()
    after_interrupted = session.step_interrupted()
    session.running = {
        "step_id": step["id"],
        "cursor": session.cursor,
        "decision": decision,
        "command": command,
        **here(),
        "pid": os.getpid(),
        "pid_start": process_start_time(os.getpid()),
        "started_at": utcnow(),
        "token": token,
    }
    if after_interrupted:
        session.running["after_interrupted"] = True
    session.updated_at = utcnow()
    return token


def record_decision(
    session: Session,
    step: dict[str, Any],
    decision: str,
    *,
    command: str | None,
    feedback: str | None,
    decided_by: str,
    exit_code: int | None = None,
    outcome: str | None = None,
    duration: float | None = None,
    output_tail: str | None = None,
    executed: bool = False,
    timed_out: bool = False,
    error: str | None = None,
    stopped_by: str | None = None,
) -> dict[str, Any]:
    """Append the decision and move the cursor as CONTRACT §3's table says.

    A failed or `interrupted` outcome keeps the cursor at the step; a decision taken on a
    step that was interrupted (it may have run) says so with `after_interrupted`.
    """
    interrupted = session.step_interrupted()
    record: dict[str, Any] = {
        "step_id": step["id"],
        "cursor": session.cursor,
        "decision": decision,
        "suggestion": step.get("suggestion"),
        "mode": session.mode,
        "command": command,
        "exit_code": exit_code,
        "outcome": outcome,
        "executed": executed,
        "feedback": feedback,
        "decided_by": decided_by,
        "decided_at": utcnow(),
    }
    if duration is not None:
        record["duration"] = round(duration, 3)
    if output_tail is not None:
        record["output_tail"] = output_tail
    if timed_out:
        record["timed_out"] = True
    if error is not None:
        record["error"] = error
    if stopped_by is not None:
        record["stopped_by"] = stopped_by
    if interrupted:
        record["after_interrupted"] = True
    session.decisions.append(record)
    session.running = None
    if outcome not in ("failed", "interrupted"):
        session.cursor += 1
        if session.cursor >= len(session.steps):
            session.status = "completed"
    session.updated_at = record["decided_at"]
    return record


def clear_running(session: Session, token: str) -> bool:
    """Drop our running mark (used when the command could not even start)."""
    if session.running and session.running.get("token") == token:
        session.running = None
        return True
    return False


def pause(session: Session, reason: str | None) -> None:
    if session.status != "active":
        raise StateError(f"session {session.id} is {session.status}: only an active one pauses")
    session.status = "paused"
    session.pause_reason = reason
    session.updated_at = utcnow()


def resume(session: Session) -> None:
    if session.status not in ("paused", "failed", "active"):
        raise StateError(f"session {session.id} is {session.status}: it cannot be resumed")
    session.status = "active"
    session.pause_reason = None
    session.updated_at = utcnow()


def cancel(session: Session) -> None:
    if session.status in ("completed", "cancelled"):
        raise StateError(f"session {session.id} is already {session.status}")
    if session.running_state() == "running":
        raise ConflictError(f"a step of session {session.id} is running: wait for it to finish")
    session.status = "cancelled"
    session.running = None
    session.updated_at = utcnow()


def fail(session: Session) -> None:
    session.status = "failed"
    session.updated_at = utcnow()
