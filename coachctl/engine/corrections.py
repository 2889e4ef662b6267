"""Correction packs over a store: what a step proposes now, folding decisions in, rebuilds,
and what people choose by hand (adopt, drop, import).

The rules are in `learning.py` (pure); the store keeps two things apart: the derived pack
(rebuilt from the sessions whenever the store reports it missing, damaged or stale) and the
hand choices (truth: a damaged record is an error naming it, never a silent rebuild).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coachctl.engine import learning
from coachctl.errors import CoachctlError, UsageError

if TYPE_CHECKING:
    from coachctl.engine.workflow import Step, Workflow
    from coachctl.store.base import SessionTxn, Store


def rebuilt(store: Store, workflow_id: str, keep: Mapping[str, Any] | None) -> dict[str, Any]:
    """The pack a replay of the workflow's sessions gives, from the hand choices `keep`."""
    return learning.replay(workflow_id, store.iter_sessions(workflow_id, teaching=True), keep)


def load_pack(store: Store, workflow_id: str) -> dict[str, Any]:
    """The workflow's current pack: the stored one, else rebuilt (and stored when the store
    can be written). Hand choices that cannot be read raise StateError naming them."""
    hand = store.hand_choices(workflow_id)
    pack = store.pack(workflow_id)
    if pack is not None:
        if not hand and learning.hand_part(pack):
            _keep_legacy_choices(store, workflow_id, pack)
        return pack
    pack = rebuilt(store, workflow_id, hand)
    if pack["folded"] or hand:
        with contextlib.suppress(CoachctlError, OSError):  # read-only: use it, don't keep it
            store.put_pack(workflow_id, pack)
    return pack


def _keep_legacy_choices(store: Store, workflow_id: str, pack: Mapping[str, Any]) -> None:
    """A pack written before hand choices had their own record holds them: copy them into
    the record once, so no rebuild can lose them."""
    with contextlib.suppress(CoachctlError, OSError), store.hand_transaction(workflow_id) as h:
        if not h.choices:
            h.put(learning.hand_part(pack))


def suggestions(store: Store, workflow: Workflow) -> dict[str, tuple[str | None, str | None]]:
    """(template, source) of every step: source is 'run', 'learned', 'adopted', 'imported'
    or None. One pack read for the whole workflow."""
    steps = load_pack(store, workflow.id).get("steps") or {}
    return {step.id: learning.effective(steps.get(step.id), step.run) for step in workflow.steps}


def current_suggestion(
    store: Store, workflow: Workflow, step: Step
) -> tuple[str | None, str | None]:
    return suggestions(store, workflow)[step.id]


def fold_into(store: Store, txn: SessionTxn, session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Inside a session's transaction: fold its new observations and corrections into its
    workflow's pack; `suggestion_adopted` events for what was learned or adopted. A session
    with nothing to teach costs nothing."""
    if not learning.teaches(session):
        return []
    workflow_id = str(session.get("workflow_id"))
    pack = txn.pack(workflow_id)
    if pack is None:  # missing, damaged or stale: rebuild it (this session's new part below)
        pack = rebuilt(store, workflow_id, store.hand_choices(workflow_id))
    adoptions = learning.fold(pack, session)
    txn.put_pack(workflow_id, pack)
    return learning.adopted_events(session, adoptions)


# -- doctor ------------------------------------------------------------------------------------


def check(store: Store, workflow_id: str) -> list[str]:
    """Differences between the stored pack and a full recomputation (empty when they agree)."""
    hand = store.hand_choices(workflow_id)
    stored = store.pack(workflow_id)
    fresh = rebuilt(store, workflow_id, hand)
    if stored is None:  # missing, damaged or stale: what a reader would have missed
        stored = learning.new_pack(workflow_id)
    have, want = learning.summary(stored), learning.summary(fresh)
    return [
        f"correction pack {workflow_id}: step {step}: stored {have.get(step)} "
        f"!= recomputed {want.get(step)}"
        for step in sorted(set(have) | set(want))
        if have.get(step, _EMPTY) != want.get(step, _EMPTY)
    ]


_EMPTY: dict[str, Any] = {"observations": [], "corrections": [], "adopted": None}


def rebuild(store: Store, workflow_id: str) -> None:
    """Replace the pack by its recomputation (keeping what people chose by hand)."""
    store.put_pack(workflow_id, rebuilt(store, workflow_id, store.hand_choices(workflow_id)))


# -- by hand -------------------------------------------------------------------------------------


def adopt(
    store: Store, workflow: Workflow, step_id: str, command: str | None = None
) -> dict[str, Any]:
    """Adopt `command`, else the step's most frequent live correction or observation."""
    from coachctl.engine.session import utcnow

    step = learning.find_step(workflow, step_id)
    with store.hand_transaction(workflow.id) as hand:
        pack = hand.pack() or rebuilt(store, workflow.id, hand.choices)
        entry = learning.step_entry(pack, step.id)
        current, _ = learning.effective(entry, step.run)
        if command is not None:
            chosen, source = learning.check_command(workflow, command), "manual"
            base_from = current
        else:
            chosen, source, base_from = learning.most_frequent(entry, step, current)
        if chosen == current:
            raise UsageError(f"step {step.id} already proposes: {chosen}")
        entry["adopted"] = {
            "command": chosen,
            "source": source,
            "base": step.run,
            "from": base_from,
            "at": utcnow(),
            "hand": True,
        }
        entry["dropped"] = [c for c in entry["dropped"] if c != chosen]
        hand.put(learning.hand_part(pack))
        hand.put_pack(pack)
        hand.append_events(
            [learning.hand_event("suggestion_adopted", workflow.id, step.id, entry["adopted"])]
        )
    return dict(entry["adopted"], step_id=step.id, workflow_id=workflow.id)


def drop(store: Store, workflow: Workflow, step_id: str) -> dict[str, Any]:
    """Forget a step's learned or adopted suggestion: it proposes its `run` again (and the
    dropped command is not learned again by itself)."""
    step = learning.find_step(workflow, step_id)
    with store.hand_transaction(workflow.id) as hand:
        pack = hand.pack() or rebuilt(store, workflow.id, hand.choices)
        entry = learning.step_entry(pack, step.id)
        adopted = entry.get("adopted")
        if not adopted:
            raise UsageError(
                f"step {step.id} of {workflow.id} has no learned or adopted suggestion"
            )
        entry["adopted"] = None
        if adopted.get("command") not in entry["dropped"]:
            entry["dropped"].append(adopted["command"])
        hand.put(learning.hand_part(pack))
        hand.put_pack(pack)
        hand.append_events(
            [learning.hand_event("suggestion_dropped", workflow.id, step.id, adopted)]
        )
    return dict(adopted, step_id=step.id, workflow_id=workflow.id)


def apply_import(store: Store, workflow: Workflow, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Apply an exported pack: its suggestions become `imported` adoptions (over the base they
    were made for); correction counts rise to the imported ones (importing twice: no-op)."""
    with store.hand_transaction(workflow.id) as hand:
        pack = hand.pack() or rebuilt(store, workflow.id, hand.choices)
        changes = learning.apply_import(pack, doc, workflow)
        if changes:
            hand.put(learning.hand_part(pack))
            hand.put_pack(pack)
        hand.append_events(
            [
                learning.hand_event(
                    "suggestion_adopted",
                    workflow.id,
                    c["step_id"],
                    pack["steps"][c["step_id"]]["adopted"],
                )
                for c in changes
                if c["what"] == "suggestion"
            ]
        )
    return changes
