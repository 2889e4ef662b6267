"""The workflow model: what a loaded workflow file is (Workflow, Step, Coaching).

Kept apart from loading so that the many modules that only pass workflows and steps around
(sessions, learning, history) import plain dataclasses, never the YAML validator.
Pure engine code: no printing, no click.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from coachctl.engine.coaching import DEFAULTS, STEP_KEYS

#: Workflow and step ids: also what keeps a workflow reference inside `workflows/`.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
LEVELS = ("OBSERVATION", "COACHING", "AUTO")


@dataclass(frozen=True)
class Coaching:
    """How much trust a step must earn before it runs unattended (CONTRACT §5).

    Defaults come from `engine/coaching.py`, the one place they are written down.
    `trust_scope` is last so that positional construction keeps its older meaning.
    """

    threshold: float = DEFAULTS["threshold"]
    min_decisions: int = DEFAULTS["min_decisions"]
    window: int = DEFAULTS["window"]
    strict: bool = DEFAULTS["strict"]
    min_observations: int = DEFAULTS["min_observations"]
    adopt_after: int = DEFAULTS["adopt_after"]
    trust_scope: tuple[str, ...] = DEFAULTS["trust_scope"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe copy, so sessions and reports can record the settings they used."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["trust_scope"] = list(self.trust_scope)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Coaching:
        """Inverse of `to_dict`; unknown keys are ignored so older readers accept newer files."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "trust_scope" in values:
            values["trust_scope"] = tuple(values["trust_scope"] or ())
        return cls(**values)


@dataclass(frozen=True)
class Step:
    """One step as written: `run` and `instructions` are templates, not yet filled in."""

    id: str
    name: str
    run: str | None
    instructions: str | None
    timeout: float | None
    max_level: str | None
    line: int = 0
    #: The step's own `coaching:` keys (a subset of STEP_KEYS), overriding the workflow's.
    coaching: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot: a session keeps the steps it started with (CONTRACT §2)."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "run": self.run,
            "instructions": self.instructions,
            "timeout": self.timeout,
            "max_level": self.max_level,
            "line": self.line,
        }
        if self.coaching:  # only when set: snapshots of other steps stay as they were
            out["coaching"] = dict(self.coaching)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """Inverse of `to_dict`; tolerant of missing optional keys and of unknown ones."""
        step_id = str(data["id"])
        timeout = data.get("timeout")
        return cls(
            id=step_id,
            name=str(data.get("name") or step_id),
            run=data.get("run"),
            instructions=data.get("instructions"),
            timeout=None if timeout is None else float(timeout),
            max_level=data.get("max_level"),
            line=int(data.get("line") or 0),
            coaching=step_coaching(data),
        )


def step_coaching(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step snapshot's own `coaching:` overrides; anything but a mapping counts as none."""
    raw = step.get("coaching")
    if not isinstance(raw, Mapping):
        return {}
    return {k: v for k, v in raw.items() if k in STEP_KEYS}


@dataclass(frozen=True)
class Workflow:
    """A validated workflow file; `variables` maps each name to its default (None: required)."""

    id: str
    name: str
    description: str
    variables: dict[str, str | None]
    coaching: Coaching
    steps: tuple[Step, ...]
    path: str = field(default="")
