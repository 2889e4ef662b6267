"""The rules of learning (pure): which suggestion a step has, and how decisions teach it.

A correction pack is derived state per workflow (kept by the store, rebuilt from the
sessions whenever it is missing or stale):
per step, the commands people reported on a step without a suggestion (observations), the
corrections they made to a suggestion, and the suggestion learned or adopted from them.

- A step without `run` learns the command reported `min_observations` times when it is the
  single most frequent of its last `window` observations (a tie teaches nothing yet).
- A correction made `adopt_after` times on the same suggestion becomes the suggestion.
- An adoption remembers its *base*: the step's `run` when it was adopted. When the YAML's
  `run` changes, the adoption is stale and the step proposes its new `run` again.

Trust is keyed by the exact suggestion template, so a learned or adopted command starts at
zero. Corrections and observations are recorded with variables already filled in, so what is
learned is the literal command (documented limitation: no template is recovered from it).

What people chose by hand (adopt, drop, import) is not derived: the store keeps it apart
(`hand_part` is what of a pack is theirs) and `replay` carries it into every rebuild.
`fold` counts only a session's *new* decisions (the pack records, per session, how many it
has folded), so saving a session twice never counts a decision twice. Storage and the
services over it are in `engine/corrections.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from coachctl.engine.coaching import setting
from coachctl.errors import CoachctlError, UsageError

if TYPE_CHECKING:
    from coachctl.engine.workflow import Step, Workflow

PACK_VERSION = 1
#: Observations kept per step (at least the workflow's `window`): the rule reads the last `window`.
KEEP_OBSERVATIONS = 200
#: Where a pack's suggestion came from → the `source` current_suggestion reports.
SOURCES = {
    "observed": "learned",
    "corrected": "adopted",
    "manual": "adopted",
    "imported": "imported",
}


# -- the pack --------------------------------------------------------------------------------


def new_pack(workflow_id: str) -> dict[str, Any]:
    return {"version": PACK_VERSION, "workflow_id": workflow_id, "folded": {}, "steps": {}}


def times(row: Mapping[str, Any]) -> int:
    """A correction's count: from this home's sessions, or the imported one when higher."""
    return max(int(row.get("times") or 0), int(row.get("imported") or 0))


def step_entry(pack: dict[str, Any], step_id: str) -> dict[str, Any]:
    entry = pack["steps"].setdefault(step_id, {})
    entry.setdefault("observations", [])
    entry.setdefault("corrections", [])
    entry.setdefault("adopted", None)
    entry.setdefault("dropped", [])
    return entry  # type: ignore[no-any-return]


# -- what a step proposes ------------------------------------------------------------------


def effective(entry: Mapping[str, Any] | None, run: str | None) -> tuple[str | None, str | None]:
    """(template, source) from a step's pack entry and its current `run`: adopted > run > learned.

    An adoption applies only while the step's `run` is still the one it was adopted over.
    """
    adopted = (entry or {}).get("adopted")
    if isinstance(adopted, dict) and adopted.get("base") == run and adopted.get("command"):
        return str(adopted["command"]), SOURCES.get(str(adopted.get("source")), "adopted")
    if run:
        return run, "run"
    return None, None


# -- folding decisions in ------------------------------------------------------------------


def _kind(d: Mapping[str, Any]) -> str | None:
    """'observed', 'corrected' or None: does this decision teach anything?"""
    command = d.get("command")
    if not isinstance(command, str) or not command.strip() or not isinstance(d.get("step_id"), str):
        return None
    if d.get("decision") == "manual" and d.get("suggestion") is None:
        return "observed"
    if (
        d.get("decision") == "correct"
        and d.get("outcome") not in ("failed", "interrupted")
        and d.get("decided_by") != "auto"
    ):
        return "corrected"
    return None


def teaches(session: Mapping[str, Any]) -> bool:
    decisions = session.get("decisions")
    return isinstance(decisions, list) and any(isinstance(d, dict) and _kind(d) for d in decisions)


def _renders(command: str, variables: Mapping[str, Any]) -> bool:
    """A learned command must be usable as a template (a literal `{{ x }}` in it might not be)."""
    from coachctl.engine.templates import render_run

    try:
        render_run(command, {str(k): str(v) for k, v in variables.items()})
    except CoachctlError:
        return False
    return True


def fold(pack: dict[str, Any], session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Fold a session's decisions not yet counted into the pack; return new adoptions."""
    sid = str(session.get("id"))
    decisions = [d for d in session.get("decisions") or [] if isinstance(d, dict)]
    start = int(pack["folded"].get(sid, 0))
    if start >= len(decisions):
        return []
    steps = {s["id"]: s for s in session.get("steps") or [] if isinstance(s, dict) and "id" in s}
    coaching = session.get("coaching") or {}
    window = int(setting(coaching, "window"))
    touched: dict[str, str] = {}
    for d in decisions[start:]:
        kind = _kind(d)
        step = steps.get(d["step_id"]) if kind else None
        if kind is None or step is None:
            continue
        command = str(d["command"]).strip()
        at = str(d.get("decided_at") or "")
        entry = step_entry(pack, str(step["id"]))
        if kind == "observed":
            entry["observations"].append({"command": command, "at": at, "session_id": sid})
            del entry["observations"][: -max(KEEP_OBSERVATIONS, window)]
        else:
            if command == (step.get("command") or "").strip():
                continue  # "corrected" to the very same command: nothing to learn
            base = d.get("suggestion")
            row = next(
                (
                    r
                    for r in entry["corrections"]
                    if r["base"] == base and r["correction"] == command
                ),
                None,
            )
            if row is None:
                row = {"base": base, "correction": command, "times": 0, "first_at": at}
                entry["corrections"].append(row)
            row["times"] += 1
            row["last_at"] = at
        touched[str(step["id"])] = at
    pack["folded"][sid] = len(decisions)
    adoptions = []
    for step_id, at in touched.items():
        adopted = learn(
            pack["steps"][step_id], steps[step_id], coaching, session.get("variables") or {}, at
        )
        if adopted is not None:
            adoptions.append({"step_id": step_id, **adopted})
    return adoptions


def learn(
    entry: dict[str, Any],
    step: Mapping[str, Any],
    coaching: Mapping[str, Any],
    variables: Mapping[str, Any],
    at: str,
) -> dict[str, Any] | None:
    """Apply CONTRACT §5's two rules to one step's entry; the new adoption, if any."""
    run = step.get("run")
    current, _ = effective(entry, run)
    dropped = set(entry.get("dropped") or [])
    adopt_after = int(setting(coaching, "adopt_after"))
    rows = [
        r
        for r in entry["corrections"]
        if current is not None
        and r["base"] == current
        and times(r) >= adopt_after
        and r["correction"] not in dropped
        and r["correction"] != current
    ]
    if rows:
        best = max(rows, key=lambda r: (times(r), str(r.get("last_at", ""))))
        if _renders(best["correction"], variables):
            entry["adopted"] = {
                "command": best["correction"],
                "source": "corrected",
                "base": run,
                "from": current,
                "at": at,
            }
            return dict(entry["adopted"])
    if current is None and run is None:
        window = int(setting(coaching, "window"))
        ranked = Counter(o["command"] for o in entry["observations"][-window:]).most_common(2)
        if ranked:
            top, count = ranked[0]
            unique = len(ranked) == 1 or ranked[1][1] < count
            if (
                unique
                and count >= int(setting(coaching, "min_observations"))
                and top not in dropped
                and _renders(top, variables)
            ):
                entry["adopted"] = {
                    "command": top,
                    "source": "observed",
                    "base": None,
                    "from": None,
                    "at": at,
                }
                return dict(entry["adopted"])
    return None


def adopted_events(
    session: Mapping[str, Any], adoptions: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    from coachctl.engine.session import utcnow

    return [
        {
            "ts": utcnow(),
            "event": "suggestion_adopted",
            "session_id": session.get("id"),
            "workflow_id": session.get("workflow_id"),
            "step_id": a["step_id"],
            "command": a["command"],
            "source": a["source"],
            "base": a.get("base"),
            "from": a.get("from"),
        }
        for a in adoptions
    ]


# -- full recomputation ---------------------------------------------------------------------


def by_hand(adopted: Any) -> bool:
    """Was this adoption a person's choice (`corrections adopt` or `import`)?"""
    return isinstance(adopted, dict) and (
        bool(adopted.get("hand")) or adopted.get("source") in ("imported", "manual")
    )


def hand_part(pack: Mapping[str, Any]) -> dict[str, Any]:
    """What of a pack people chose by hand (adopt --command, drop, import): the truth that
    survives every rebuild. {} when they chose nothing."""
    steps: dict[str, Any] = {}
    for step_id, entry in sorted((pack.get("steps") or {}).items()):
        hand = entry.get("adopted")
        mine: dict[str, Any] = {}
        if by_hand(hand):
            mine["adopted"] = dict(hand)
        if entry.get("dropped"):
            mine["dropped"] = list(entry["dropped"])
        imported = [
            {
                "base": r["base"],
                "correction": r["correction"],
                "times": 0,
                "imported": r["imported"],
            }
            for r in entry.get("corrections") or []
            if r.get("imported")
        ]
        if imported:
            mine["corrections"] = imported
        if mine:
            steps[str(step_id)] = mine
    return {"steps": steps} if steps else {}


def replay(
    workflow_id: str, sessions: Iterable[Mapping[str, Any]], keep: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The pack a full replay of the workflow's sessions gives, oldest first, starting from
    the hand choices `keep` (see `hand_part`)."""
    pack = new_pack(workflow_id)
    for entry_id, entry in ((keep or {}).get("steps") or {}).items():
        hand = entry.get("adopted")
        mine = step_entry(pack, entry_id)
        mine["dropped"] = list(entry.get("dropped") or [])
        mine["corrections"] = [
            {
                "base": r["base"],
                "correction": r["correction"],
                "times": 0,
                "imported": r["imported"],
            }
            for r in entry.get("corrections") or []
            if r.get("imported")
        ]
        if by_hand(hand):
            mine["adopted"] = dict(hand)
    ordered = sorted(
        (s for s in sessions if s.get("workflow_id") == workflow_id and teaches(s)),
        key=lambda s: (str(s.get("created_at", "")), str(s.get("id"))),
    )
    for data in ordered:
        fold(pack, data)
    return pack


def summary(pack: Mapping[str, Any]) -> dict[str, Any]:
    """What must agree between a pack and its recomputation (order of observations aside)."""
    out: dict[str, Any] = {}
    for step_id, entry in sorted((pack.get("steps") or {}).items()):
        adopted = entry.get("adopted") or {}
        out[step_id] = {
            "observations": sorted(
                Counter(o["command"] for o in entry.get("observations") or []).items()
            ),
            "corrections": sorted(
                (str(r["base"]), r["correction"], times(r)) for r in entry.get("corrections") or []
            ),
            "adopted": adopted.get("command"),
        }
    return out


# -- what people do by hand (`coachctl corrections`) ---------------------------------------


def rows(pack: Mapping[str, Any], workflow: Workflow | None) -> list[dict[str, Any]]:
    """One row per correction, observed command and adopted suggestion (`corrections list`)."""
    steps = {s.id: s for s in workflow.steps} if workflow else {}
    out: list[dict[str, Any]] = []
    for step_id, entry in sorted((pack.get("steps") or {}).items()):
        step = steps.get(step_id)
        run = step.run if step else None
        current, _ = effective(entry, run)
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
    name: str, workflow_id: str, step_id: str, adopted: Mapping[str, Any]
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
    """A pack as people share it: suggestions and corrections, no per-session bookkeeping."""
    steps = []
    for step_id, entry in sorted((pack.get("steps") or {}).items()):
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
        if len(item) > 1:
            steps.append(item)
    return {"workflow": pack["workflow_id"], "version": PACK_VERSION, "steps": steps}


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
        extra = set(item) - {"step", "suggestion", "corrections", "observations"}
        if extra:
            raise bad(f"{at}: unknown key {sorted(extra)[0]!r}")
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


def plan_import(
    pack: Mapping[str, Any], doc: Mapping[str, Any], workflow: Workflow
) -> list[dict[str, Any]]:
    """The changes importing `doc` would make to `pack`, one dict each (nothing is written)."""
    changes: list[dict[str, Any]] = []
    for item in doc["steps"]:
        step = find_step(workflow, item["step"])
        entry = (pack.get("steps") or {}).get(step.id) or {}
        sug = item.get("suggestion")
        if sug:
            command = check_command(workflow, sug["command"])
            have = (entry.get("adopted") or {}).get("command")
            if have != command or (entry.get("adopted") or {}).get("base") != sug.get("base"):
                stale = sug.get("base") != step.run
                changes.append(
                    {
                        "step_id": step.id,
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
                        "what": "correction",
                        "base": r["base"],
                        "new": r["correction"],
                        "old_times": old,
                        "times": r["times"],
                    }
                )
    return changes


def apply_import(
    pack: dict[str, Any], doc: Mapping[str, Any], workflow: Workflow
) -> list[dict[str, Any]]:
    """Apply an exported pack to `pack`: its suggestions become `imported` adoptions (over
    the base they were made for); correction counts rise to the imported ones."""
    from coachctl.engine.session import utcnow

    changes = plan_import(pack, doc, workflow)
    for c in changes:
        entry = step_entry(pack, c["step_id"])
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
