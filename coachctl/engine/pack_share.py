"""Correction packs as people see and share them: `corrections list` rows, export, import,
and the checks behind `corrections adopt` (pure: the store work is in `corrections.py`).

Every row and exported step names its trust scope (`scope`: {"env": "prod"}, null without
one): in a workflow with a trust_scope, learning, adoption and import are per (step, scope)
(see `learning.py`). An export's steps carry `scope` only when they have one, so an unscoped
workflow's export is what it always was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coachctl.engine import scope
from coachctl.engine.learning import (
    PACK_VERSION,
    effective,
    entry_of,
    fallback_of,
    part,
    parts,
    step_entry,
    times,
)
from coachctl.errors import CoachctlError, UsageError

if TYPE_CHECKING:
    from coachctl.engine.workflow import Step, Workflow


# -- `corrections list` ----------------------------------------------------------------------


def rows(pack: Mapping[str, Any], workflow: Workflow | None) -> list[dict[str, Any]]:
    """One row per correction, observed command and adopted suggestion (`corrections list`),
    each naming its trust scope (null: none, or a hand choice for every scope)."""
    out: list[dict[str, Any]] = []
    for key, piece in parts(pack):
        out.extend(_part_rows(pack, key, piece, workflow))
    return out


def _part_rows(
    pack: Mapping[str, Any], key: str, piece: Mapping[str, Any], workflow: Workflow | None
) -> list[dict[str, Any]]:
    steps = {s.id: s for s in workflow.steps} if workflow else {}
    out: list[dict[str, Any]] = []
    for step_id, entry in sorted((piece.get("steps") or {}).items()):
        step = steps.get(step_id)
        run = step.run if step else None
        current, _ = effective(entry, run, fallback_of(pack, key, step_id))
        adopted = entry.get("adopted") or {}
        live = bool(adopted) and step is not None and adopted.get("base") == run
        found: list[dict[str, Any]] = []
        for r in entry.get("corrections") or []:
            found.append(
                {
                    "base": r["base"],
                    "correction": r["correction"],
                    "times": times(r),
                    "source": "corrected" if r.get("times") else "imported",
                    "stale": step is None or r["base"] not in {run, current},
                    "last_at": r.get("last_at"),
                }
            )
        observed = Counter(o["command"] for o in entry.get("observations") or [])
        last = {o["command"]: o.get("at") for o in entry.get("observations") or []}
        for command, n in sorted(observed.items(), key=lambda kv: (-kv[1], kv[0])):
            found.append(
                {
                    "base": None,
                    "correction": command,
                    "times": n,
                    "source": "observed",
                    "stale": step is None or run is not None,
                    "last_at": last.get(command),
                }
            )
        seen = False
        for item in found:
            same = bool(adopted) and adopted.get("command") == item["correction"]
            seen = seen or same
            item["adopted"] = live and same
            if item["adopted"]:
                item["source"] = adopted.get("source", item["source"])
        if adopted and not seen:
            found.append(
                {
                    "base": adopted.get("from"),
                    "correction": adopted.get("command"),
                    "times": 0,
                    "adopted": live,
                    "source": adopted.get("source"),
                    "stale": not live,
                    "last_at": adopted.get("at"),
                }
            )
        for item in found:
            out.append(
                {
                    "workflow_id": str(pack["workflow_id"]),
                    "step_id": step_id,
                    "scope": scope.parse_key(key),
                    **{k: item[k] for k in ROW_KEYS[2:]},
                }
            )
    return out


ROW_KEYS = (
    "workflow_id",
    "step_id",
    "base",
    "correction",
    "times",
    "adopted",
    "source",
    "stale",
    "last_at",
)


def hand_event(
    name: str,
    workflow_id: str,
    step_id: str,
    adopted: Mapping[str, Any],
    key: str = "",
) -> dict[str, Any]:
    """An event for what a person did with `corrections` (no session involved)."""
    from coachctl.engine.session import current_user, utcnow

    return {
        "ts": utcnow(),
        "event": name,
        "session_id": None,
        "workflow_id": workflow_id,
        "step_id": step_id,
        "command": adopted.get("command"),
        "source": adopted.get("source"),
        "base": adopted.get("base"),
        "from": adopted.get("from"),
        "scope": scope.parse_key(key),
        "by": current_user(),
    }


def find_step(workflow: Workflow, step_id: str) -> Step:
    for step in workflow.steps:
        if step.id == step_id:
            return step
    ids = ", ".join(s.id for s in workflow.steps)
    raise UsageError(f"unknown step {step_id!r} in workflow {workflow.id} (steps: {ids})")


def check_command(workflow: Workflow, command: str) -> str:
    """A suggestion given by hand must be a usable `run` template for this workflow."""
    from coachctl.engine.templates import template_variables

    command = command.strip()
    if not command:
        raise UsageError("the command is empty")
    unknown = [v for v in template_variables(command) if v not in workflow.variables]
    if unknown:
        raise UsageError(f"undefined variable in command: {unknown[0]}")
    from coachctl.engine.templates import render_run

    try:
        render_run(command, {v: "x" for v in workflow.variables})
    except CoachctlError as exc:
        raise UsageError(f"unusable command: {exc.message}") from None
    return command


def most_frequent(
    entry: Mapping[str, Any], step: Step, current: str | None
) -> tuple[str, str, str | None]:
    tally: Counter[str] = Counter()
    sources: dict[str, str] = {}
    for r in entry["corrections"]:
        if current is not None and r["base"] == current:
            tally[r["correction"]] += times(r)
            sources[r["correction"]] = "corrected"
    if step.run is None:
        for o in entry["observations"]:
            tally[o["command"]] += 1
            sources.setdefault(o["command"], "observed")
    tally.pop(current or "", None)
    ranked = tally.most_common(2)
    if not ranked:
        raise UsageError(
            f"nothing to adopt for step {step.id}: no corrections or observations "
            "(use --command CMD)"
        )
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        raise UsageError(
            f"no single most frequent command for step {step.id} ({ranked[0][0]!r} and "
            f"{ranked[1][0]!r} tie): choose one with --command"
        )
    chosen = ranked[0][0]
    return chosen, sources[chosen], current


# -- export / import -----------------------------------------------------------------------


def export(pack: Mapping[str, Any]) -> dict[str, Any]:
    """A pack as people share it: suggestions and corrections, no per-session bookkeeping;
    a scope's steps carry their `scope`."""
    steps = []
    for key, found in parts(pack):
        for step_id, entry in sorted((found.get("steps") or {}).items()):
            item = _export_entry(step_id, entry)
            if len(item) > 1:
                if key:
                    item = {"step": step_id, "scope": scope.parse_key(key), **item}
                steps.append(item)
    return {"workflow": pack["workflow_id"], "version": PACK_VERSION, "steps": steps}


def _export_entry(step_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"step": step_id}
    adopted = entry.get("adopted")
    if adopted:
        item["suggestion"] = {
            "command": adopted["command"],
            "base": adopted.get("base"),
            "source": adopted.get("source"),
        }
    if entry.get("corrections"):
        item["corrections"] = [
            {"base": r["base"], "correction": r["correction"], "times": times(r)}
            for r in entry["corrections"]
        ]
    observed = Counter(o["command"] for o in entry.get("observations") or [])
    if observed:
        item["observations"] = [{"command": c, "times": n} for c, n in observed.most_common()]
    return item


def parse_export(doc: Any, where: str) -> dict[str, Any]:
    """Validate an exported pack (as loaded from YAML); UsageError naming what is wrong."""

    def bad(msg: str) -> UsageError:
        return UsageError(f"{where}: invalid correction pack: {msg}")

    if not isinstance(doc, dict):
        raise bad("expected a mapping with 'workflow' and 'steps'")
    unknown = set(doc) - {"workflow", "version", "steps"}
    if unknown:
        raise bad(f"unknown key {sorted(unknown)[0]!r}")
    if not isinstance(doc.get("workflow"), str):
        raise bad("'workflow' must be a workflow id")
    if not isinstance(doc.get("steps"), list):
        raise bad("'steps' must be a list")
    for i, item in enumerate(doc["steps"]):
        at = f"steps[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("step"), str):
            raise bad(f"{at}: expected a mapping with 'step'")
        extra = set(item) - {"step", "scope", "suggestion", "corrections", "observations"}
        if extra:
            raise bad(f"{at}: unknown key {sorted(extra)[0]!r}")
        scoped = item.get("scope")
        if scoped is not None and (
            not isinstance(scoped, dict)
            or not scoped
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in scoped.items())
        ):
            raise bad(f"{at}.scope: expected a mapping of trust_scope variables to values")
        sug = item.get("suggestion")
        if sug is not None and (
            not isinstance(sug, dict)
            or not isinstance(sug.get("command"), str)
            or not sug["command"].strip()
            or not isinstance(sug.get("base"), (str, type(None)))
        ):
            raise bad(f"{at}.suggestion: expected 'command' (text) and 'base' (text or null)")
        for j, r in enumerate(item.get("corrections") or []):
            if (
                not isinstance(r, dict)
                or not isinstance(r.get("correction"), str)
                or not isinstance(r.get("base"), (str, type(None)))
                or isinstance(r.get("times"), bool)
                or not isinstance(r.get("times"), int)
                or r["times"] < 0
            ):
                raise bad(f"{at}.corrections[{j}]: expected base, correction and times (>= 0)")
        if not isinstance(item.get("corrections") or [], list) or not isinstance(
            item.get("observations") or [], list
        ):
            raise bad(f"{at}: corrections and observations must be lists")
    return doc


def import_key(
    item: Mapping[str, Any], workflow: Workflow, default: Mapping[str, str | None] | None
) -> str:
    """The scope an imported step goes to: its own `scope` (over exactly the workflow's
    trust_scope), else `default` (what `--var` and the defaults name)."""
    names = tuple(workflow.coaching.trust_scope)
    where = item.get("scope")
    if where is None:
        return scope.key_of(default) if names else ""
    if not names:
        raise UsageError(
            f"step {item['step']} is for {scope.label(where)} but {workflow.id} has no "
            "trust_scope: it cannot be imported here"
        )
    if set(where) != set(names):
        raise UsageError(
            f"step {item['step']} is for {scope.label(where)} but {workflow.id}'s trust_scope "
            f"is [{', '.join(names)}]: it cannot be imported here"
        )
    return scope.key_of({name: where[name] for name in names})


def plan_import(
    pack: Mapping[str, Any],
    doc: Mapping[str, Any],
    workflow: Workflow,
    default: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """The changes importing `doc` would make to `pack`, one dict each (nothing is written).
    `default`: the scope of the steps that name none (for a workflow with a trust_scope)."""
    changes: list[dict[str, Any]] = []
    for item in doc["steps"]:
        step = find_step(workflow, item["step"])
        key = import_key(item, workflow, default)
        entry = entry_of(pack, key, step.id) or {}
        sug = item.get("suggestion")
        if sug:
            command = check_command(workflow, sug["command"])
            have = (entry.get("adopted") or {}).get("command")
            if have != command or (entry.get("adopted") or {}).get("base") != sug.get("base"):
                stale = sug.get("base") != step.run
                changes.append(
                    {
                        "step_id": step.id,
                        "key": key,
                        "what": "suggestion",
                        "old": have,
                        "new": command,
                        "base": sug.get("base"),
                        "stale": stale,
                    }
                )
        for r in item.get("corrections") or []:
            mine = next(
                (
                    x
                    for x in entry.get("corrections") or []
                    if x["base"] == r["base"] and x["correction"] == r["correction"]
                ),
                None,
            )
            old = times(mine) if mine else 0
            if r["times"] > old:
                changes.append(
                    {
                        "step_id": step.id,
                        "key": key,
                        "what": "correction",
                        "base": r["base"],
                        "new": r["correction"],
                        "old_times": old,
                        "times": r["times"],
                    }
                )
    return changes


def apply_import(
    pack: dict[str, Any],
    doc: Mapping[str, Any],
    workflow: Workflow,
    default: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """Apply an exported pack to `pack`: its suggestions become `imported` adoptions (over
    the base they were made for), each in its scope; correction counts rise to the imported
    ones."""
    from coachctl.engine.session import utcnow

    changes = plan_import(pack, doc, workflow, default)
    for c in changes:
        entry = step_entry(part(pack, c["key"]), c["step_id"])
        if c["what"] == "suggestion":
            entry["adopted"] = {
                "command": c["new"],
                "source": "imported",
                "base": c["base"],
                "from": None,
                "at": utcnow(),
            }
            entry["dropped"] = [x for x in entry["dropped"] if x != c["new"]]
        else:
            mine = next(
                (
                    x
                    for x in entry["corrections"]
                    if x["base"] == c["base"] and x["correction"] == c["new"]
                ),
                None,
            )
            if mine is None:
                mine = {"base": c["base"], "correction": c["new"], "times": 0}
                entry["corrections"].append(mine)
            mine["imported"] = c["times"]
    return changes
