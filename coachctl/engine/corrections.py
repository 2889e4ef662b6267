"""Correction packs over a store: what a step proposes now, folding decisions in, rebuilds,
and what people choose by hand (adopt, drop, import).

The rules are in `learning.py` (pure); the store keeps two things apart: the derived pack
(rebuilt from the sessions whenever the store reports it missing, damaged or stale) and the
hand choices (truth: a damaged record is an error naming it, never a silent rebuild).

The stores keep a pack as opaque JSON; whether it was built for the workflow's current
trust_scope is checked here (`learning.built_for`): one built for other names is stale and
rebuilt like a missing one. Hand choices (adopt, drop, import) are per (step, scope) in a
workflow with a trust_scope: the caller names the scope (`within`), as `run` would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from coachctl.engine import learning, scope
from coachctl.errors import CoachctlError, UsageError

if TYPE_CHECKING:
    from coachctl.engine.workflow import Step, Workflow
    from coachctl.store.base import SessionTxn, Store


def rebuilt(
    store: Store,
    workflow_id: str,
    keep: Mapping[str, Any] | None,
    names: Sequence[str] = (),
) -> dict[str, Any]:
    """The pack a replay of the workflow's sessions gives for trust_scope `names`, from the
    hand choices `keep`."""
    sessions = store.iter_sessions(workflow_id, teaching=True)
    return learning.replay(workflow_id, sessions, keep, names)


def names_now(store: Store, workflow_id: str) -> tuple[str, ...]:
    """The workflow's trust_scope now: its file's, else (file gone or invalid) the one its
    latest session recorded."""
    from coachctl.engine.workflow_files import resolve_workflow_path
    from coachctl.engine.workflow_load import load_workflow

    try:
        return tuple(
            load_workflow(resolve_workflow_path(workflow_id, store.home)).coaching.trust_scope
        )
    except CoachctlError:
        pass
    latest = store.latest_session(workflow_id) or {}
    return scope.names_of(latest.get("coaching"))


def load_pack(store: Store, workflow_id: str, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The workflow's current pack for trust_scope `names` (None: the workflow's now): the
    stored one when it was built for them, else rebuilt (and stored when the store can be
    written). Hand choices that cannot be read raise StateError naming them."""
    hand = store.hand_choices(workflow_id)
    pack = store.pack(workflow_id)
    if names is None:
        names = names_now(store, workflow_id)
    if pack is not None and learning.built_for(pack, names):
        if not hand and learning.hand_part(pack):
            _keep_legacy_choices(store, workflow_id, pack)
        return pack
    if pack is not None and not hand and learning.hand_part(pack):
        _keep_legacy_choices(store, workflow_id, pack)
        hand = store.hand_choices(workflow_id)
    pack = rebuilt(store, workflow_id, hand, names)
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


def suggestions(
    store: Store, workflow: Workflow, within: Mapping[str, str | None] | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """(template, source) of every step in trust scope `within` (None: no scope): source is
    'run', 'learned', 'adopted', 'imported' or None. One pack read for the whole workflow."""
    pack = load_pack(store, workflow.id, workflow.coaching.trust_scope)
    key = scope.key_of(within) if workflow.coaching.trust_scope else ""
    return {
        step.id: learning.effective(
            learning.entry_of(pack, key, step.id),
            step.run,
            learning.fallback_of(pack, key, step.id),
        )
        for step in workflow.steps
    }


def current_suggestion(
    store: Store,
    workflow: Workflow,
    step: Step,
    within: Mapping[str, str | None] | None = None,
) -> tuple[str | None, str | None]:
    return suggestions(store, workflow, within)[step.id]


def fold_into(store: Store, txn: SessionTxn, session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Inside a session's transaction: fold its new observations and corrections into its
    workflow's pack; `suggestion_adopted` events for what was learned or adopted. A session
    with nothing to teach costs nothing."""
    if not learning.teaches(session):
        return []
    workflow_id = str(session.get("workflow_id"))
    pack = txn.pack(workflow_id)
    if pack is None:  # missing, damaged or stale: rebuild it (this session's new part below)
        # `decide` reads no workflow file: the names this session recorded stand for the
        # workflow's now (a reader that finds them changed rebuilds the pack again).
        names = scope.names_of(session.get("coaching"))
        pack = rebuilt(store, workflow_id, store.hand_choices(workflow_id), names)
    adoptions = learning.fold(pack, session)
    txn.put_pack(workflow_id, pack)
    return learning.adopted_events(session, adoptions)


# -- doctor ------------------------------------------------------------------------------------


def check(store: Store, workflow_id: str) -> list[str]:
    """Differences between the stored pack and a full recomputation (empty when they agree)."""
    hand = store.hand_choices(workflow_id)
    stored = store.pack(workflow_id)
    names = learning.names_of(stored) if stored is not None else names_now(store, workflow_id)
    fresh = rebuilt(store, workflow_id, hand, names)
    if stored is None:  # missing, damaged or stale: what a reader would have missed
        stored = learning.new_pack(workflow_id, names)
    have, want = learning.summary(stored), learning.summary(fresh)
    return [
        f"correction pack {workflow_id}: step {step}: stored {have.get(step)} "
        f"!= recomputed {want.get(step)}"
        for step in sorted(set(have) | set(want))
        if have.get(step, _EMPTY) != want.get(step, _EMPTY)
    ]


_EMPTY: dict[str, Any] = {"observations": [], "corrections": [], "adopted": None}


def rebuild(store: Store, workflow_id: str) -> None:
    """Replace the pack by its recomputation for the workflow's trust_scope now (keeping what
    people chose by hand)."""
    hand = store.hand_choices(workflow_id)
    store.put_pack(workflow_id, rebuilt(store, workflow_id, hand, names_now(store, workflow_id)))


# -- by hand -------------------------------------------------------------------------------------


def _hand_pack(store: Store, workflow: Workflow, hand: Any) -> dict[str, Any]:
    """Inside a hand transaction: the pack, rebuilt when missing or built for other names."""
    names = workflow.coaching.trust_scope
    pack = hand.pack()
    if pack is None or not learning.built_for(pack, names):
        pack = rebuilt(store, workflow.id, hand.choices, names)
    return pack  # type: ignore[no-any-return]


def _key(workflow: Workflow, within: Mapping[str, str | None] | None) -> str:
    return scope.key_of(within) if workflow.coaching.trust_scope else ""


class _Choice(NamedTuple):
    """One step's entry in one scope of a pack, inside a hand transaction (adopt, drop)."""

    hand: Any
    workflow_id: str
    pack: dict[str, Any]
    step: Step
    key: str
    entry: dict[str, Any]
    fallback: Mapping[str, Any] | None

    def keep(self, event: str, adopted: Mapping[str, Any]) -> dict[str, Any]:
        """Stage the choice, the pack and its event (committed when the transaction ends);
        what the command reports."""
        from coachctl.engine import pack_share

        self.hand.put(learning.hand_part(self.pack))
        self.hand.put_pack(self.pack)
        self.hand.append_events(
            [pack_share.hand_event(event, self.workflow_id, self.step.id, adopted, self.key)]
        )
        return dict(
            adopted,
            step_id=self.step.id,
            workflow_id=self.workflow_id,
            scope=scope.parse_key(self.key),
        )


@contextlib.contextmanager
def _step_choice(
    store: Store, workflow: Workflow, step_id: str, within: Mapping[str, str | None] | None
) -> Iterator[_Choice]:
    from coachctl.engine import pack_share

    step = pack_share.find_step(workflow, step_id)
    key = _key(workflow, within)
    with store.hand_transaction(workflow.id) as hand:
        pack = _hand_pack(store, workflow, hand)
        entry = learning.step_entry(learning.part(pack, key), step.id)
        fallback = learning.fallback_of(pack, key, step.id)
        yield _Choice(hand, workflow.id, pack, step, key, entry, fallback)


def adopt(
    store: Store,
    workflow: Workflow,
    step_id: str,
    command: str | None = None,
    within: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Adopt `command`, else the step's most frequent live correction or observation, in
    trust scope `within` (only that scope proposes it)."""
    from coachctl.engine import pack_share
    from coachctl.engine.session import utcnow

    with _step_choice(store, workflow, step_id, within) as c:
        step, entry = c.step, c.entry
        current, _ = learning.effective(entry, step.run, c.fallback)
        if command is not None:
            chosen, source = pack_share.check_command(workflow, command), "manual"
            base_from = current
        else:
            chosen, source, base_from = pack_share.most_frequent(entry, step, current)
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
        entry["dropped"] = [cmd for cmd in entry["dropped"] if cmd != chosen]
        return c.keep("suggestion_adopted", entry["adopted"])


def drop(
    store: Store,
    workflow: Workflow,
    step_id: str,
    within: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Forget a step's learned or adopted suggestion in trust scope `within`: it proposes
    its `run` again there (and the dropped command is not learned again by itself)."""
    with _step_choice(store, workflow, step_id, within) as c:
        entry = c.entry
        adopted = entry.get("adopted") or learning.lent_adoption(entry, c.step.run, c.fallback)
        if not adopted:
            where = f" for {scope.label(scope.parse_key(c.key))}" if c.key else ""
            raise UsageError(
                f"step {c.step.id} of {workflow.id} has no learned or adopted suggestion{where}"
            )
        entry["adopted"] = None
        if adopted.get("command") not in entry["dropped"]:
            entry["dropped"].append(adopted["command"])
        return c.keep("suggestion_dropped", adopted)


def plan_import(
    store: Store,
    workflow: Workflow,
    doc: Mapping[str, Any],
    default: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """What importing `doc` would change (nothing is written)."""
    from coachctl.engine import pack_share

    pack = load_pack(store, workflow.id, workflow.coaching.trust_scope)
    return pack_share.plan_import(pack, doc, workflow, default)


def apply_import(
    store: Store,
    workflow: Workflow,
    doc: Mapping[str, Any],
    default: Mapping[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """Apply an exported pack: its suggestions become `imported` adoptions (over the base they
    were made for) in their scope, else in `default`; correction counts rise to the imported
    ones (importing twice: no-op)."""
    from coachctl.engine import pack_share

    with store.hand_transaction(workflow.id) as hand:
        pack = _hand_pack(store, workflow, hand)
        changes = pack_share.apply_import(pack, doc, workflow, default)
        if changes:
            hand.put(learning.hand_part(pack))
            hand.put_pack(pack)
        hand.append_events(
            [
                pack_share.hand_event(
                    "suggestion_adopted",
                    workflow.id,
                    c["step_id"],
                    learning.part(pack, c["key"])["steps"][c["step_id"]]["adopted"],
                    c["key"],
                )
                for c in changes
                if c["what"] == "suggestion"
            ]
        )
    return changes
