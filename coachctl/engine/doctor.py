"""`doctor`: the store's own checks, plus what only engine rules can tell (steps left
running, correction packs against a replay of the sessions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coachctl.store.base import Finding

if TYPE_CHECKING:
    from coachctl.store.base import Store


def doctor(store: Store, *, repair: bool = False) -> tuple[list[Finding], int]:
    """Findings (problems and notes) and how many sessions were checked. With `repair`,
    what is derived is rebuilt first; what cannot be repaired stays a problem."""
    from coachctl.engine.persist import opened
    from coachctl.errors import CoachctlError

    findings, checked = store.doctor(repair=repair)
    for data in store.iter_sessions():
        running = data.get("running")
        if running and opened(store, data).running_state() == "interrupted":
            findings.append(
                Finding(
                    "interrupted",
                    f"session {data['id']}: step {running.get('step_id')!r} was interrupted "
                    "while running (it may have run); a person decides it",
                    problem=False,
                    session_id=str(data["id"]),
                )
            )
    workflow_ids = sorted(set(store.pack_ids()) | set(store.workflow_ids()))
    for workflow_id in workflow_ids:
        try:
            findings.extend(_check_pack(store, workflow_id, repair))
        except CoachctlError as exc:
            findings.append(Finding("pack", exc.message))
    # Index findings come last in the report, as before the seam.
    findings.sort(key=lambda f: f.kind == "index")
    return findings, checked


def _check_pack(store: Store, workflow_id: str, repair: bool) -> list[Finding]:
    from coachctl.engine import corrections

    diffs = corrections.check(store, workflow_id)
    out: list[Finding] = []
    if diffs and repair:
        corrections.rebuild(store, workflow_id)
        out.append(Finding("repaired", f"rebuilt correction pack {workflow_id}", False))
        diffs = corrections.check(store, workflow_id)
    out.extend(Finding("pack", d) for d in diffs)
    return out
