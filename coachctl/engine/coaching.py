"""The `coaching:` block's defaults and bounds, defined once (CONTRACT §2).

Every reader of a workflow's or a session's coaching settings (the workflow loader, the metrics
rules, learning, the index) takes its defaults from here, so a changed default cannot leave one
of them behind. Deliberately import-free: `decide` loads it on every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Every key of a workflow's `coaching:` block with its default, in the contract's order.
DEFAULTS: dict[str, Any] = {
    "threshold": 0.85,
    "min_decisions": 20,
    "window": 50,
    "strict": True,
    "trust_scope": (),
    "min_observations": 3,
    "adopt_after": 2,
}

#: The keys a step's own `coaching:` block may override (the ones that decide readiness).
STEP_KEYS = ("threshold", "min_decisions", "window", "strict")

#: The largest count any integer key may hold. A window is "the most recent N decisions": ten
#: thousand is far beyond any useful one, and the bound keeps every query, the accepts_needed
#: simulation and SQLite's 64-bit integers safe from a typo (or a 2^63) in a workflow file.
MAX_COUNT = 10_000


def setting(coaching: Mapping[str, Any] | None, key: str) -> Any:
    """One setting from a recorded `coaching` mapping, its default when absent or null."""
    if coaching is not None:
        value = coaching.get(key)
        if value is not None:
            return value
    return DEFAULTS[key]


def merged(
    coaching: Mapping[str, Any] | None,
    step: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The readiness settings of one step: defaults < workflow < the step's own < overrides.

    `overrides` are a command's explicit options (`readiness --threshold`): a person asking
    "what if" right now, so they win over everything written in the file.
    """
    out = {key: setting(coaching, key) for key in STEP_KEYS}
    for layer in (step, overrides):
        if layer:
            out.update({k: v for k, v in layer.items() if k in STEP_KEYS and v is not None})
    return out
