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

Trust scope (CONTRACT §5): in a workflow with `trust_scope: [env]`, everything above is
per (step, scope). The pack records the names it was built for (`trust_scope`; absent: none)
and keeps each scope's entries in a *part* `scopes[KEY]` ({"steps": …}, KEY as
`scope.key_of`); the pack itself is the part of key "" (so an unscoped pack keeps its old
shape). A session teaches the scope `scope.counts_toward` gives. A pack built for other names
than the workflow's current trust_scope is stale (`built_for`) and rebuilt from the sessions.
The "" part of a scoped pack holds only hand choices made before the workflow had a
trust_scope: they stay the suggestion of every scope that has none of its own (`effective`'s
fallback), so adding a trust_scope never loses a person's choice.

What people chose by hand (adopt, drop, import) is not derived: the store keeps it apart
(`hand_part` is what of a pack is theirs) and `replay` carries it into every rebuild.
`fold` counts only a session's *new* decisions (the pack records, per session, how many it
has folded), so saving a session twice never counts a decision twice. Storage and the
services over it are in `engine/corrections.py`; listing, export and import in
`engine/pack_share.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from coachctl.engine import scope
from coachctl.engine.coaching import setting
from coachctl.errors import CoachctlError

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


def new_pack(workflow_id: str, names: Sequence[str] = ()) -> dict[str, Any]:
    pack: dict[str, Any] = {
        "version": PACK_VERSION,
        "workflow_id": workflow_id,
        "folded": {},
        "steps": {},
    }
    if names:
        pack["trust_scope"] = list(names)
        pack["scopes"] = {}
    return pack


def names_of(pack: Mapping[str, Any]) -> tuple[str, ...]:
    """The trust_scope names a pack was built for (() for a pack from before scopes)."""
    return scope.names_of({"trust_scope": pack.get("trust_scope") or []})


def built_for(pack: Mapping[str, Any], names: Sequence[str]) -> bool:
    """Was this pack built for this trust_scope? Else it is stale: rebuild it."""
    return names_of(pack) == tuple(names)


def part(pack: dict[str, Any], key: str) -> dict[str, Any]:
    """The part of a pack that holds scope `key`'s entries (created when missing)."""
    if not key:
        return pack
    return pack.setdefault("scopes", {}).setdefault(key, {"steps": {}})  # type: ignore[no-any-return]


def parts(pack: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """("", the pack) then (key, part) of every scope, in key order."""
    yield "", pack
    scopes = pack.get("scopes")
    if isinstance(scopes, Mapping):
        for key, found in sorted(scopes.items()):
            if isinstance(found, Mapping) and isinstance(found.get("steps"), Mapping):
                yield str(key), found


def entry_of(pack: Mapping[str, Any], key: str, step_id: str) -> Mapping[str, Any] | None:
    """A step's entry in scope `key` (read only; None when it has none)."""
    for k, found in parts(pack):
        if k == key:
            entry: Mapping[str, Any] | None = (found.get("steps") or {}).get(step_id)
            return entry
    return None


def fallback_of(pack: Mapping[str, Any], key: str, step_id: str) -> Mapping[str, Any] | None:
    """For a scope: the step's unscoped entry, whose hand choices apply where the scope has
    none of its own (see the module doc). None for the unscoped part itself."""
    return (pack.get("steps") or {}).get(step_id) if key else None


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


def effective(
    entry: Mapping[str, Any] | None,
    run: str | None,
    fallback: Mapping[str, Any] | None = None,
) -> tuple[str | None, str | None]:
    """(template, source) from a step's pack entry and its current `run`: adopted > run > learned.

    An adoption applies only while the step's `run` is still the one it was adopted over.
    `fallback` (a scope's unscoped entry) lends its hand-made adoption to a scope that has
    no adoption of its own and has not dropped that command.
    """
    adopted = (entry or {}).get("adopted")
    if isinstance(adopted, dict) and _applies(adopted, run):
        return str(adopted["command"]), SOURCES.get(str(adopted.get("source")), "adopted")
    lent = lent_adoption(entry, run, fallback)
    if lent is not None:
        return str(lent["command"]), SOURCES.get(str(lent.get("source")), "adopted")
    if run:
        return run, "run"
    return None, None


def _applies(adopted: Any, run: str | None) -> bool:
    return isinstance(adopted, dict) and adopted.get("base") == run and bool(adopted.get("command"))


def lent_adoption(
    entry: Mapping[str, Any] | None, run: str | None, fallback: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The unscoped hand adoption a scope proposes, when it has none of its own."""
    if fallback is None or (entry or {}).get("adopted"):
        return None
    lent = fallback.get("adopted")
    if not isinstance(lent, dict) or not by_hand(lent) or not _applies(lent, run):
        return None
    if lent["command"] in ((entry or {}).get("dropped") or []):
        return None
    return dict(lent)


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
    """Fold a session's decisions not yet counted into the pack, in the scope it teaches
    (`scope.counts_toward` the names the pack was built for); return new adoptions."""
    sid = str(session.get("id"))
    decisions = [d for d in session.get("decisions") or [] if isinstance(d, dict)]
    start = int(pack["folded"].get(sid, 0))
    if start >= len(decisions):
        return []
    key = scope.counts_toward(session, names_of(pack))
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
        entry = step_entry(part(pack, key), str(step["id"]))
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
            part(pack, key)["steps"][step_id],
            steps[step_id],
            coaching,
            session.get("variables") or {},
            at,
            fallback_of(pack, key, step_id),
        )
        if adopted is not None:
            adoptions.append({"step_id": step_id, "scope": scope.parse_key(key), **adopted})
    return adoptions


def learn(
    entry: dict[str, Any],
    step: Mapping[str, Any],
    coaching: Mapping[str, Any],
    variables: Mapping[str, Any],
    at: str,
    fallback: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Apply CONTRACT §5's two rules to one step's entry; the new adoption, if any.
    `fallback`: the step's unscoped entry when `entry` is a scope's (its hand choices hold
    there too: its adoption is the current suggestion, its drops are not learned again)."""
    run = step.get("run")
    current, _ = effective(entry, run, fallback)
    dropped = set(entry.get("dropped") or []) | set((fallback or {}).get("dropped") or [])
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
            "scope": a.get("scope"),
        }
        for a in adoptions
    ]


# -- full recomputation ---------------------------------------------------------------------


def by_hand(adopted: Any) -> bool:
    """Was this adoption a person's choice (`corrections adopt` or `import`)?"""
    return isinstance(adopted, dict) and (
        bool(adopted.get("hand")) or adopted.get("source") in ("imported", "manual")
    )


def _hand_steps(found: Mapping[str, Any]) -> dict[str, Any]:
    """The hand choices in one part of a pack, per step."""
    steps: dict[str, Any] = {}
    for step_id, entry in sorted((found.get("steps") or {}).items()):
        hand = entry.get("adopted")
        mine: dict[str, Any] = {}
        if by_hand(hand):
            mine["adopted"] = dict(hand)
        if entry.get("dropped"):
            mine["dropped"] = list(entry["dropped"])
        imported = _imported(entry)
        if imported:
            mine["corrections"] = imported
        if mine:
            steps[str(step_id)] = mine
    return steps


def _imported(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A step entry's imported corrections as a choice by hand keeps them: counted from 0."""
    return [
        {"base": r["base"], "correction": r["correction"], "times": 0, "imported": r["imported"]}
        for r in entry.get("corrections") or []
        if r.get("imported")
    ]


def hand_part(pack: Mapping[str, Any]) -> dict[str, Any]:
    """What of a pack people chose by hand (adopt --command, drop, import): the truth that
    survives every rebuild, whatever trust_scope the pack was built for. {} when they chose
    nothing; `{"steps": …}` unscoped, `{"scopes": {KEY: {"steps": …}}}` per scope."""
    out: dict[str, Any] = {}
    for key, found in parts(pack):
        steps = _hand_steps(found)
        if not steps:
            continue
        if key:
            out.setdefault("scopes", {})[key] = {"steps": steps}
        else:
            out["steps"] = steps
    return out


def replay(
    workflow_id: str,
    sessions: Iterable[Mapping[str, Any]],
    keep: Mapping[str, Any] | None,
    names: Sequence[str] = (),
) -> dict[str, Any]:
    """The pack a full replay of the workflow's sessions gives for trust_scope `names`,
    oldest first, starting from the hand choices `keep` (see `hand_part`; every scope's
    are kept, even one the current names never ask for)."""
    pack = new_pack(workflow_id, names)
    for key, found in parts(keep or {}):
        for entry_id, entry in (found.get("steps") or {}).items():
            hand = entry.get("adopted")
            mine = step_entry(part(pack, key), entry_id)
            mine["dropped"] = list(entry.get("dropped") or [])
            mine["corrections"] = _imported(entry)
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
    for key, found in parts(pack):
        where = f" ({scope.label(scope.parse_key(key))})" if key else ""
        for step_id, entry in sorted((found.get("steps") or {}).items()):
            out[f"{step_id}{where}"] = _summary_entry(entry)
    return out


def _summary_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    adopted = entry.get("adopted") or {}
    return {
        "observations": sorted(
            Counter(o["command"] for o in entry.get("observations") or []).items()
        ),
        "corrections": sorted(
            (str(r["base"]), r["correction"], times(r)) for r in entry.get("corrections") or []
        ),
        "adopted": adopted.get("command"),
    }
