"""What the panel says, in words: trust, the session's counts, the workflow's way to AUTO,
and the one-line announcements. Pure functions of the metrics and events they are given."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def step_trust_text(m: Mapping[str, Any]) -> str:
    """`9/10 accepted on this command · AUTO after 4 more accepts` (window counts); with a
    trust scope, `9/10 accepted for env=prod on this command`."""
    from coachctl.engine.scope import label

    n = int(m["suggestions"])
    where = f" for {label(m['scope'])}" if m.get("scope") else ""
    said = (
        f"{m['accepted']}/{n} accepted{where} on this command"
        if n
        else f"no decisions{where} on this command yet"
    )
    return f"{said} · {auto_text(m)}"


def auto_text(m: Mapping[str, Any]) -> str:
    if m.get("ready"):
        return "ready for AUTO"
    needed = m.get("accepts_needed")
    if needed is not None:
        return f"AUTO after {needed} more accept{'s' if needed != 1 else ''} in a row"
    return f"never AUTO: {m.get('reason')}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _conf(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def session_stats_text(stats: Mapping[str, Any], alone: int = 0) -> str:
    """The session's counts that are not zero (`session: 2 accepted, 1 rejected (67%)`),
    and the steps that ran on their own, in words: never a row of zeros."""
    words = (
        ("accepted", "accepted"), ("rejected", "rejected"), ("corrected", "corrected"),
        ("manual", "manual"), ("skipped", "skipped"), ("failed", "failed"),
    )  # fmt: skip
    said = [f"{stats[k]} {w}" for k, w in words if stats.get(k)]
    if alone:
        said.append(f"{alone} step{'s' if alone != 1 else ''} ran on their own")
    if not said:
        return "session: nothing decided yet"
    rate = stats.get("acceptance_rate")
    return "session: " + ", ".join(said) + (f" ({_pct(rate)} accepted)" if rate is not None else "")


def workflow_stats_text(wf: Mapping[str, Any]) -> str:
    """Rate, confidence, level, and what AUTO still needs for the whole workflow (in the
    session's trust scope, which it names)."""
    from coachctl.engine.scope import label

    where = f" for {label(wf['scope'])}" if wf.get("scope") else ""
    head = (
        f"workflow {wf['workflow_id']}: {wf['accepted']}/{wf['suggestions']} accepted{where} "
        f"({_pct(wf['acceptance_rate'])}), confidence {_conf(wf['confidence'])}, "
        f"level {wf['level']}"
    )
    if wf["ready"]:
        return f"{head}, ready for AUTO"
    blocked = [s for s in wf["steps"] if not s["ready"]]
    never = [s["step_id"] for s in blocked if s.get("accepts_needed") is None]
    if never:
        return f"{head}, AUTO blocked by {', '.join(never)} (see coachctl readiness)"
    most = max(int(s["accepts_needed"]) for s in blocked)
    return f"{head}, AUTO after {most} more fully accepted run{'s' if most != 1 else ''}"


def announcement(event: Mapping[str, Any]) -> str | None:
    """The panel's one line for an event that changes what coachctl will do, else None."""
    kind = event.get("event")
    step = event.get("step_id")
    if kind == "suggestion_adopted":
        from coachctl.engine.scope import label

        command = event.get("command")
        where = f" for {label(event['scope'])}" if event.get("scope") else ""
        if event.get("source") == "observed":
            return (
                f"{step} learned a command{where} from what people ran: {command} "
                "(it starts at zero trust)"
            )
        return f"{step} now suggests your correction{where}: {command} (it starts at zero trust)"
    if kind == "level_changed":
        before, after = event.get("from"), event.get("to")
        rank = ("OBSERVATION", "COACHING", "AUTO")
        down = before in rank and after in rank and rank.index(after) < rank.index(before)
        what = f"step {step}" if step else f"workflow {event.get('workflow_id')}"
        if down:
            return f"fell back: {what} is {after} again (was {before})"
        if after == "AUTO":
            tail = (
                "it runs on its own in mixed runs"
                if step
                else "every step is ready: `run --mode auto` may run it unattended"
            )
            return f"{what} reached AUTO: {tail}"
        return f"{what} is now {after} (was {before})"
    return None


def levels_of(wf: Mapping[str, Any] | None) -> dict[str, str] | None:
    """{step_id: level, "": the workflow's level} from `history.workflow_metrics`."""
    if wf is None:
        return None
    levels = {str(s["step_id"]): str(s["level"]) for s in wf.get("steps") or []}
    levels[""] = str(wf["level"])
    return levels


def level_changes(
    workflow_id: str, before: Mapping[str, str], after: Mapping[str, str]
) -> list[dict[str, Any]]:
    """`level_changed`-shaped records for what moved: steps first, then the workflow."""
    out = [
        {"event": "level_changed", "workflow_id": workflow_id, "step_id": k or None,
         "from": before[k], "to": level}
        for k, level in after.items()
        if k in before and before[k] != level
    ]  # fmt: skip
    return sorted(out, key=lambda e: e["step_id"] is None)
