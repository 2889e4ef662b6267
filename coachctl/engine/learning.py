"""Which suggestion a step has now: its `run`, or what people taught it (correction packs).

(Learning from observations and adopting corrections lands with the metrics issue; until
then a step proposes exactly its `run`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coachctl.engine.store import Store
    from coachctl.engine.workflow import Step, Workflow


def current_suggestion(store: Store, workflow: Workflow, step: Step) -> tuple[str | None, str | None]:
    """(template, source): source is 'run', 'learned', 'adopted' or None (no suggestion)."""
    if step.run:
        return step.run, "run"
    return None, None


def after_write(store: Store, session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Collect corrections and observations of a just-written session; extra events."""
    return []
