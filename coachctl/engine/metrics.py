"""Trust metrics: how decisions on a step's suggestion turn into a level (CONTRACT §5).

Everything here is a pure function of plain data, so `stats`, `readiness`, the panel, the
derived index and `doctor` all compute the very same numbers from the same inputs.

Callers pass a step's *kinds*: the chronological (oldest first) list of `classify()` results,
with `None` dropped, for the decisions on the step's **current** suggestion only. The window is
applied here: only the last `Rules.window` kinds count. A skip is a decision, so it occupies a
window slot (pushing an older decision out) even though it is neutral in the counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from coachctl.engine.coaching import DEFAULTS, MAX_COUNT, merged

LEVELS = ("OBSERVATION", "COACHING", "AUTO")
KINDS = ("accepted", "rejected", "corrected", "manual", "failed", "skipped")
COUNT_KEYS = ("suggestions", "accepted", "rejected", "corrected", "manual", "failed", "skipped")

# Kinds that count as a judgement on the suggestion; "skipped" is neutral.
_SUGGESTION_KINDS = ("accepted", "rejected", "corrected", "manual", "failed")

# 97.5th percentile of the standard normal: the two-sided 95% Wilson interval.
_Z95 = 1.959963984540054

# Slack in threshold comparisons, so 17/20 (0.8500000000000001 or 0.8499999999999999)
# reaches 0.85 whatever the float rounding.
_EPS = 1e-12

_SPARK = "▁▂▃▄▅▆▇█"


class Rules:
    """A workflow's `coaching:` settings that decide readiness (defaults as in CONTRACT §2).

    Immutable value; a plain class because `dataclasses` costs `decide` its `inspect` import.
    """

    __slots__ = ("min_decisions", "strict", "threshold", "window")

    threshold: float
    min_decisions: int
    window: int
    strict: bool

    def __init__(
        self,
        threshold: float = DEFAULTS["threshold"],
        min_decisions: int = DEFAULTS["min_decisions"],
        window: int = DEFAULTS["window"],
        strict: bool = DEFAULTS["strict"],
    ) -> None:
        for name, value in (
            ("threshold", threshold),
            ("min_decisions", min_decisions),
            ("window", window),
            ("strict", strict),
        ):
            object.__setattr__(self, name, value)
        self._check()

    @classmethod
    def of(
        cls,
        coaching: Mapping[str, Any] | None,
        step: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Rules:
        """A step's rules: its workflow's `coaching`, then its own `coaching:` block, then a
        command's explicit overrides (each layer only where it sets a key)."""
        return cls(**merged(coaching, step, overrides))

    @classmethod
    def safe(
        cls, coaching: Any, step: Any = None, fallback: Rules | None = None, **overrides: Any
    ) -> Rules:
        """`of` for settings read back from a session file, which a hand edit may have broken:
        a broken layer is ignored rather than failing the reader."""
        base = coaching if isinstance(coaching, Mapping) else None
        own = step if isinstance(step, Mapping) else None
        for layers in ((base, own), (base, None), (None, own)):
            try:
                return cls.of(*layers, overrides)
            except (ValueError, TypeError):
                continue
        return fallback if fallback is not None else cls.of(None, None, overrides)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Rules is immutable (tried to set {name})")

    def _key(self) -> tuple[float, int, int, bool]:
        return (self.threshold, self.min_decisions, self.window, self.strict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rules) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Rules(threshold={self.threshold!r}, min_decisions={self.min_decisions!r}, "
            f"window={self.window!r}, strict={self.strict!r})"
        )

    def _check(self) -> None:
        # Nonsense rules would silently make every step ready (or none): refuse them early.
        if not (isinstance(self.threshold, (int, float)) and 0.0 <= self.threshold <= 1.0):
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        if isinstance(self.min_decisions, bool) or not isinstance(self.min_decisions, int):
            raise ValueError(f"min_decisions must be an integer, got {self.min_decisions!r}")
        if not 0 <= self.min_decisions <= MAX_COUNT:
            raise ValueError(
                f"min_decisions must be from 0 to {MAX_COUNT}, got {self.min_decisions}"
            )
        if isinstance(self.window, bool) or not isinstance(self.window, int):
            raise ValueError(f"window must be an integer, got {self.window!r}")
        if not 1 <= self.window <= MAX_COUNT:
            # Also what keeps a window recorded in an old session file (before workflow files
            # were bounded) from overflowing SQLite: Rules.safe falls back to the defaults.
            raise ValueError(f"window must be from 1 to {MAX_COUNT}, got {self.window}")


def wilson_lower_bound(successes: int, n: int, z: float = _Z95) -> float | None:
    """Lower bound of the Wilson score interval: a rate we are fairly sure of, not a lucky one.

    None when there is nothing to judge (n == 0). Always within [0, successes / n].
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    bound = (centre - margin) / (1 + z2 / n)
    # Float noise must not push the bound below 0 or above the observed rate.
    return min(max(bound, 0.0), p)


def classify(decision: Mapping[str, Any]) -> str | None:
    """The kind one decision record counts as, or None when it does not count at all.

    In an AUTO run (`decided_by == "auto"`) nobody judged the suggestion, so only a failure
    says something; a success adds nothing (CONTRACT §5). In an observation session
    nothing was proposed, so a report there teaches a command but judges no suggestion.
    """
    if decision.get("mode") == "observation" or decision.get("outcome") == "interrupted":
        return None  # a command the person stopped is neither accepted nor failed (§3)
    failed = decision.get("outcome") == "failed"
    if decision.get("decided_by") == "auto":
        return "failed" if failed else None
    kind = decision.get("decision")
    if kind == "accept":
        return "failed" if failed else "accepted"
    if kind == "correct":
        return "corrected"
    if kind == "reject":
        return "rejected"
    if kind == "manual":
        return "manual"
    if kind == "skip":
        return "skipped"
    return None


def _window(kinds: Sequence[str], rules: Rules) -> Sequence[str]:
    """The last `rules.window` kinds (explicit start: `kinds[-0:]` would be everything)."""
    return kinds[max(0, len(kinds) - rules.window) :]


def _tally(kinds: Sequence[str]) -> dict[str, int]:
    c = dict.fromkeys(COUNT_KEYS, 0)
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown decision kind {kind!r}")
        c[kind] += 1
    c["suggestions"] = sum(c[k] for k in _SUGGESTION_KINDS)
    return c


def counts(kinds: Sequence[str]) -> dict[str, int]:
    """Count each kind; `suggestions` sums every kind but the neutral skip.

    Counts exactly what it is given: pass a windowed list (`step_metrics` does) for §5 numbers.
    """
    return _tally(kinds)


def rate(c: Mapping[str, int]) -> float | None:
    """Acceptance rate, accepted / suggestions; None when nothing was judged yet."""
    n = c["suggestions"]
    return c["accepted"] / n if n else None


def _confidence(c: Mapping[str, int]) -> float | None:
    return wilson_lower_bound(c["accepted"], c["suggestions"])


def is_ready(c: Mapping[str, int], rules: Rules) -> bool:
    """Whether counts earn AUTO: enough decisions, a high enough rate and, when strict, a
    confidence that is high enough too (so a lucky streak is not mistaken for trust)."""
    if c["suggestions"] < rules.min_decisions:
        return False
    r = rate(c)
    if r is None or r < rules.threshold - _EPS:
        return False
    if rules.strict:
        conf = _confidence(c)
        if conf is None or conf < rules.threshold - _EPS:
            return False
    return True


def accepts_needed(kinds: Sequence[str], rules: Rules) -> int | None:
    """How many more accepts in a row make the step ready: 0 if it is, None if none can.

    Exact by simulation: each appended accept enters the window and pushes the oldest kind out.
    Once the window holds only accepts nothing changes any more, so `window` steps (bounded by
    window + min_decisions + 1) settle it.
    """
    if rules.window < rules.min_decisions:
        return None
    win = list(_window(kinds, rules))
    c = _tally(win)
    if is_ready(c, rules):
        return 0
    oldest = 0
    for n in range(1, rules.window + rules.min_decisions + 2):
        if len(win) - oldest >= rules.window:
            out = win[oldest]
            oldest += 1
            c[out] -= 1
            if out != "skipped":
                c["suggestions"] -= 1
        win.append("accepted")
        c["accepted"] += 1
        c["suggestions"] += 1
        if is_ready(c, rules):
            return n
        if c["accepted"] >= rules.window:
            return None  # a full window of accepts is the best there is, and it is not enough
    return None


def _level_index(level: str) -> int:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    return LEVELS.index(level)


def level_of(has_suggestion: bool, ready: bool, max_level: str | None) -> str:
    """A step's level: OBSERVATION without a suggestion, AUTO when ready, else COACHING;
    never above the step's `max_level` ceiling."""
    if not has_suggestion:
        level = "OBSERVATION"
    elif ready:
        level = "AUTO"
    else:
        level = "COACHING"
    if max_level is not None and _level_index(max_level) < _level_index(level):
        return max_level
    return level


def round_metric(x: float | None) -> float | None:
    """Round a rate or confidence to 3 decimals for output (decisions use the exact value)."""
    return None if x is None else round(x, 3)


def _fmt_threshold(t: float) -> str:
    """A threshold as written: 0.85 → "0.85", 0.875 → "0.875", 1 → "1.00"."""
    text = f"{t:.4f}".rstrip("0")
    return text if len(text.split(".")[1]) >= 2 else f"{t:.2f}"


def _fmt_below(value: float, threshold: float) -> str:
    """`value` with enough decimals that it visibly differs from the threshold it misses."""
    shown = _fmt_threshold(threshold)
    for digits in (2, 3, 4, 6):
        text = f"{value:.{digits}f}"
        if float(text) != float(shown):
            return f"{text} < {shown}"
    return f"{value!r} < {shown}"


def _reason(c: Mapping[str, int], rules: Rules) -> str:
    """Why a step with a suggestion is not ready (or "ready"), most basic condition first."""
    if is_ready(c, rules):
        return "ready"
    n = c["suggestions"]
    r = rate(c)
    if r is None:  # nothing judged yet: the count is all there is to say
        return f"0 of {rules.min_decisions} decisions" if rules.min_decisions else "no decisions"
    parts = []
    if n < rules.min_decisions:
        parts.append(f"{n} of {rules.min_decisions} decisions")
    if r < rules.threshold - _EPS:
        parts.append("rate " + _fmt_below(r, rules.threshold))
    conf = _confidence(c)
    if rules.strict and conf is not None and conf < rules.threshold - _EPS:
        parts.append("confidence " + _fmt_below(conf, rules.threshold))
    return "; ".join(parts)


def step_metrics(
    step_id: str,
    suggestion: str | None,
    kinds: Sequence[str],
    rules: Rules,
    max_level: str | None = None,
) -> dict[str, Any]:
    """The CONTRACT §5 step object, from the step's kinds on its current suggestion."""
    c = _tally(_window(kinds, rules))
    has_suggestion = suggestion is not None
    capped = max_level is not None and _level_index(max_level) < LEVELS.index("AUTO")
    ready = has_suggestion and not capped and is_ready(c, rules)
    if not has_suggestion:
        reason = "no suggestion yet: observe the step"
        needed: int | None = None
    elif capped:
        reason = f"capped at {max_level} by max_level"
        needed = None
    else:
        reason = _reason(c, rules)
        needed = accepts_needed(kinds, rules)
    out: dict[str, Any] = {
        "step_id": step_id,
        "level": level_of(has_suggestion, ready, max_level),
        "ready": ready,
        "suggestion": suggestion,
    }
    out.update(c)
    out["acceptance_rate"] = round_metric(rate(c))
    out["confidence"] = round_metric(_confidence(c))
    out["accepts_needed"] = needed
    out["reason"] = reason
    return out


def _summed(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Count keys summed over items, with rate and confidence recomputed from the sums."""
    total = {key: sum(int(item[key]) for item in items) for key in COUNT_KEYS}
    out: dict[str, Any] = dict(total)
    out["acceptance_rate"] = round_metric(rate(total))
    out["confidence"] = round_metric(_confidence(total))
    return out


def workflow_metrics(
    workflow_id: str, steps: Sequence[Mapping[str, Any]], sessions: int
) -> dict[str, Any]:
    """A workflow object from its step objects: counts are the steps' sums, so they agree with
    its readiness; its level is its lowest step's."""
    level = min((s["level"] for s in steps), key=_level_index, default="OBSERVATION")
    out: dict[str, Any] = {
        "workflow_id": workflow_id,
        "level": level,
        "ready": bool(steps) and all(bool(s["ready"]) for s in steps),
        "sessions": sessions,
    }
    out.update(_summed(steps))
    out["steps"] = list(steps)
    return out


def global_metrics(workflows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The global row: every workflow's counts summed.

    A workflow with a trust scope may come once per scope: it counts once, and as ready only
    when it is ready in every scope listed.
    """
    ready: dict[Any, bool] = {}
    for i, w in enumerate(workflows):
        key = ("scoped", w["workflow_id"]) if w.get("scope") else i
        ready[key] = ready.get(key, True) and bool(w["ready"])
    out: dict[str, Any] = {
        "workflows": len(ready),
        "ready_workflows": sum(ready.values()),
        "sessions": sum(int(w["sessions"]) for w in workflows),
    }
    out.update(_summed(workflows))
    return out


def sparkline(values: Sequence[float | None]) -> str:
    """One block per value in [0, 1] (clamped), a space for a missing one: a trend at a glance."""
    chars = []
    for v in values:
        if v is None or math.isnan(v):
            chars.append(" ")
        else:
            x = min(max(v, 0.0), 1.0)
            chars.append(_SPARK[round(x * (len(_SPARK) - 1))])
    return "".join(chars)
