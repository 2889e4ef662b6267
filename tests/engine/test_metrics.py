"""Trust metrics (CONTRACT §5): exact examples, properties, and the calibration of the AUTO rule."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coachctl.engine.metrics import (
    COUNT_KEYS,
    KINDS,
    LEVELS,
    Rules,
    accepts_needed,
    classify,
    counts,
    global_metrics,
    is_ready,
    level_of,
    rate,
    round_metric,
    sparkline,
    step_metrics,
    wilson_lower_bound,
    workflow_metrics,
)

PLAIN = Rules(strict=False)
STRICT = Rules()


def _kinds(accepted: int = 0, rejected: int = 0, **others: int) -> list[str]:
    out = ["accepted"] * accepted + ["rejected"] * rejected
    for kind, n in others.items():
        out += [kind] * n
    return out


def _ready(kinds: Sequence[str], rules: Rules) -> bool:
    """Readiness of a whole history, windowed independently of the code under test."""
    start = max(0, len(kinds) - rules.window)
    return is_ready(counts(kinds[start:]), rules)


# --- CONTRACT §5 examples ---------------------------------------------------------------------


def test_17_of_20_is_ready_only_without_strict() -> None:
    c = counts(_kinds(17, 3))
    assert rate(c) == pytest.approx(0.85)
    assert round(wilson_lower_bound(17, 20) or 0, 2) == 0.64
    assert is_ready(c, PLAIN)
    assert not is_ready(c, STRICT)


def test_23_of_23_is_ready_either_way() -> None:
    c = counts(_kinds(23))
    assert round_metric(wilson_lower_bound(23, 23)) == 0.857
    assert is_ready(c, PLAIN)
    assert is_ready(c, STRICT)


def test_contract_step_example() -> None:
    kinds = _kinds(12, corrected=1, failed=1)
    m = step_metrics("fetch", "certbot …", kinds, STRICT)
    assert m == {
        "step_id": "fetch",
        "level": "COACHING",
        "ready": False,
        "suggestion": "certbot …",
        "suggestions": 14,
        "accepted": 12,
        "rejected": 0,
        "corrected": 1,
        "manual": 0,
        "failed": 1,
        "skipped": 0,
        "acceptance_rate": 0.857,
        "confidence": 0.601,
        "accepts_needed": 31,
        "reason": "14 of 20 decisions; confidence 0.60 < 0.85",
    }
    assert _ready(kinds + ["accepted"] * 31, STRICT)
    assert not _ready(kinds + ["accepted"] * 30, STRICT)


def test_wilson_edges() -> None:
    assert wilson_lower_bound(0, 0) is None
    assert wilson_lower_bound(0, 10) == 0.0
    assert wilson_lower_bound(10, 10) == pytest.approx(1 / (1 + 1.959963984540054**2 / 10))
    with pytest.raises(ValueError):
        wilson_lower_bound(3, 2)


def test_epsilon_makes_an_exact_tie_reach_the_threshold() -> None:
    # 0.1 * 3 is 0.30000000000000004 in floats, while 3 / 10 is 0.3: still a tie.
    rules = Rules(threshold=0.1 * 3, min_decisions=10, strict=False)
    assert rules.threshold > 3 / 10
    assert is_ready(counts(_kinds(3, 7)), rules)


# --- classify ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "outcome", "decided_by", "expected"),
    [
        ("accept", "ok", "ana", "accepted"),
        ("accept", None, "ana", "accepted"),  # --no-exec: counts as succeeded
        ("accept", "failed", "ana", "failed"),
        ("correct", "ok", "ana", "corrected"),
        ("correct", None, "ana", "corrected"),
        ("correct", "failed", "ana", "corrected"),
        ("reject", None, "ana", "rejected"),
        ("manual", None, "ana", "manual"),
        ("skip", None, "ana", "skipped"),
        ("accept", "ok", "auto", None),  # an AUTO success adds nothing
        ("accept", None, "auto", None),
        ("accept", "failed", "auto", "failed"),
    ],
)
def test_classify(
    decision: str, outcome: str | None, decided_by: str, expected: str | None
) -> None:
    record: dict[str, Any] = {
        "step_id": "fetch",
        "decision": decision,
        "suggestion": "certbot",
        "command": "certbot",
        "exit_code": None if outcome is None else (0 if outcome == "ok" else 1),
        "outcome": outcome,
        "decided_by": decided_by,
        "decided_at": "2026-01-01T00:00:00Z",
    }
    assert classify(record) == expected


# --- counts, window, skip ---------------------------------------------------------------------


def test_counts_keys_and_skip_is_neutral() -> None:
    c = counts(["accepted", "rejected", "corrected", "manual", "failed", "skipped", "skipped"])
    assert tuple(c) == COUNT_KEYS
    assert c["suggestions"] == 5
    assert c["skipped"] == 2
    assert rate(counts(_kinds(3, 1, skipped=9))) == rate(counts(_kinds(3, 1)))
    assert rate(counts([])) is None
    with pytest.raises(ValueError):
        counts(["bogus"])


def test_only_the_last_window_decisions_count() -> None:
    kinds = _kinds(0, 30) + _kinds(50)
    m = step_metrics("s", "x", kinds, STRICT)
    assert (m["suggestions"], m["rejected"], m["ready"], m["level"]) == (50, 0, True, "AUTO")
    assert m["accepts_needed"] == 0 and m["reason"] == "ready"


def test_skips_occupy_window_slots() -> None:
    # 25 accepts then 30 skips: the window of 50 keeps 20 accepts and the 30 skips.
    m = step_metrics("s", "x", _kinds(25, skipped=30), STRICT)
    assert (m["accepted"], m["skipped"], m["suggestions"]) == (20, 30, 20)
    assert not m["ready"]  # 20/20 has confidence 0.839 < 0.85
    assert step_metrics("s", "x", _kinds(25, skipped=30), PLAIN)["ready"]


# --- levels, cap, reasons ---------------------------------------------------------------------


def test_level_of() -> None:
    assert level_of(False, False, None) == "OBSERVATION"
    assert level_of(False, True, None) == "OBSERVATION"
    assert level_of(True, False, None) == "COACHING"
    assert level_of(True, True, None) == "AUTO"
    assert level_of(True, True, "COACHING") == "COACHING"
    assert level_of(True, True, "OBSERVATION") == "OBSERVATION"
    assert level_of(True, False, "AUTO") == "COACHING"
    with pytest.raises(ValueError):
        level_of(True, True, "auto")


def test_max_level_caps_a_ready_step() -> None:
    m = step_metrics("reload", "systemctl reload haproxy", _kinds(30), STRICT, "COACHING")
    assert (m["level"], m["ready"], m["accepts_needed"]) == ("COACHING", False, None)
    assert m["reason"] == "capped at COACHING by max_level"
    assert m["acceptance_rate"] == 1.0  # the numbers still show
    m = step_metrics("reload", "x", _kinds(30), STRICT, "AUTO")
    assert (m["level"], m["ready"]) == ("AUTO", True)


def test_no_suggestion_observes() -> None:
    m = step_metrics("verify", None, ["manual"] * 3, STRICT)
    assert (m["level"], m["ready"], m["accepts_needed"]) == ("OBSERVATION", False, None)
    assert m["reason"] == "no suggestion yet: observe the step"


@pytest.mark.parametrize(
    ("kinds", "rules", "reason"),
    [
        (_kinds(23), STRICT, "ready"),
        ([], STRICT, "0 of 20 decisions"),
        (_kinds(0, skipped=4), STRICT, "0 of 20 decisions"),
        (_kinds(12, 2), STRICT, "14 of 20 decisions; confidence 0.60 < 0.85"),
        (_kinds(8, 2), STRICT, "10 of 20 decisions; rate 0.80 < 0.85; confidence 0.49 < 0.85"),
        (_kinds(8, 2), PLAIN, "10 of 20 decisions; rate 0.80 < 0.85"),
        (_kinds(16, 4), STRICT, "rate 0.80 < 0.85; confidence 0.58 < 0.85"),
        (_kinds(16, 4), PLAIN, "rate 0.80 < 0.85"),
        (_kinds(17, 3), STRICT, "confidence 0.64 < 0.85"),
        # 0.849 must not print as "0.85 < 0.85".
        (_kinds(849, 151), Rules(window=1000, strict=False), "rate 0.849 < 0.85"),
        (_kinds(17, 3), Rules(threshold=0.875, strict=False), "rate 0.85 < 0.875"),
    ],
)
def test_reasons(kinds: list[str], rules: Rules, reason: str) -> None:
    assert step_metrics("s", "x", kinds, rules)["reason"] == reason


def test_accepts_needed_examples() -> None:
    assert accepts_needed(_kinds(23), STRICT) == 0
    assert accepts_needed([], STRICT) == 22  # 20/20 is confidence 0.839; 22/22 is 0.851
    assert accepts_needed([], PLAIN) == 20
    assert accepts_needed([], Rules(window=10)) is None  # window < min_decisions
    assert accepts_needed([], Rules(threshold=1.0)) is None  # confidence is never 1
    assert accepts_needed(_kinds(0, 50), Rules(threshold=1.0, strict=False)) == 50


def test_rules_refuse_nonsense() -> None:
    for bad in ({"threshold": 1.5}, {"threshold": -0.1}, {"min_decisions": -1}, {"window": 0}):
        with pytest.raises(ValueError):
            Rules(**bad)


# --- workflow and global ----------------------------------------------------------------------


def test_workflow_and_global_sum_their_parts() -> None:
    fetch = step_metrics("fetch", "a", _kinds(12, corrected=1, failed=1), STRICT)
    reload_ = step_metrics("reload", "b", _kinds(21, 2, corrected=2, manual=1, skipped=4), STRICT)
    w = workflow_metrics("rotate-certs", [fetch, reload_], sessions=12)
    assert w["level"] == "COACHING" and w["ready"] is False and w["sessions"] == 12
    assert [w[k] for k in COUNT_KEYS] == [40, 33, 2, 3, 1, 1, 4]
    assert (w["acceptance_rate"], w["confidence"]) == (0.825, 0.681)
    assert w["steps"] == [fetch, reload_]
    g = global_metrics([w])
    assert g == {
        "workflows": 1,
        "ready_workflows": 0,
        "sessions": 12,
        **{k: w[k] for k in COUNT_KEYS},
        "acceptance_rate": 0.825,
        "confidence": 0.681,
    }


def test_workflow_level_is_lowest_and_ready_needs_every_step() -> None:
    auto = step_metrics("a", "x", _kinds(30), STRICT)
    observe = step_metrics("b", None, [], STRICT)
    assert workflow_metrics("w", [auto], 1)["ready"] is True
    assert workflow_metrics("w", [auto], 1)["level"] == "AUTO"
    mixed = workflow_metrics("w", [auto, observe], 1)
    assert (mixed["level"], mixed["ready"]) == ("OBSERVATION", False)
    empty = workflow_metrics("w", [], 0)
    assert (empty["level"], empty["ready"], empty["acceptance_rate"]) == (
        "OBSERVATION",
        False,
        None,
    )
    g = global_metrics([workflow_metrics("w", [auto], 2), mixed])
    assert (g["workflows"], g["ready_workflows"], g["sessions"]) == (2, 1, 3)
    assert global_metrics([])["acceptance_rate"] is None


def test_sparkline() -> None:
    assert sparkline([0.0, 1.0, None, 0.5]) == "▁█ ▅"
    assert sparkline([i / 7 for i in range(8)]) == "▁▂▃▄▅▆▇█"
    assert sparkline([-1.0, 2.0, math.nan]) == "▁█ "
    assert sparkline([]) == ""


def test_round_metric() -> None:
    assert round_metric(None) is None
    assert round_metric(0.85714) == 0.857


# --- properties -------------------------------------------------------------------------------

kinds_st = st.lists(st.sampled_from(KINDS), max_size=120)
rules_st = st.builds(
    Rules,
    threshold=st.one_of(st.sampled_from([0.0, 0.5, 0.8, 0.85, 0.9, 1.0]), st.floats(0.0, 1.0)),
    min_decisions=st.integers(0, 30),
    window=st.integers(1, 60),
    strict=st.booleans(),
)


@given(kinds_st, rules_st)
def test_rates_are_probabilities_and_confidence_is_below_rate(
    kinds: list[str], rules: Rules
) -> None:
    m = step_metrics("s", "x", kinds, rules)
    assert m["suggestions"] + m["skipped"] == min(len(kinds), rules.window)
    if m["suggestions"] == 0:
        assert m["acceptance_rate"] is None and m["confidence"] is None
    else:
        assert 0.0 <= m["confidence"] <= m["acceptance_rate"] <= 1.0


@given(st.integers(0, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_within_zero_and_rate(sn: tuple[int, int]) -> None:
    s, n = sn
    lb = wilson_lower_bound(s, n)
    if n == 0:
        assert lb is None
    else:
        assert lb is not None and 0.0 <= lb <= s / n


@settings(max_examples=300)
@given(kinds_st, rules_st)
def test_accepts_needed_is_exact(kinds: list[str], rules: Rules) -> None:
    n = accepts_needed(kinds, rules)
    if n is None:
        for extra in range(rules.window + rules.min_decisions + 1):
            assert not _ready(kinds + ["accepted"] * extra, rules)
    else:
        assert _ready(kinds + ["accepted"] * n, rules)
        for fewer in range(n):
            assert not _ready(kinds + ["accepted"] * fewer, rules)


@given(kinds_st, rules_st, st.one_of(st.none(), st.sampled_from(LEVELS)), st.booleans())
def test_level_agrees_with_readiness(
    kinds: list[str], rules: Rules, max_level: str | None, has_suggestion: bool
) -> None:
    m = step_metrics("s", "x" if has_suggestion else None, kinds, rules, max_level)
    assert (m["level"] == "AUTO") == m["ready"]
    if m["ready"]:
        assert m["accepts_needed"] == 0 and m["reason"] == "ready"
    if max_level is not None:
        assert LEVELS.index(m["level"]) <= LEVELS.index(max_level)


@given(st.booleans(), st.one_of(st.none(), st.sampled_from(LEVELS)))
def test_level_is_monotone_in_readiness(has_suggestion: bool, max_level: str | None) -> None:
    low = level_of(has_suggestion, False, max_level)
    high = level_of(has_suggestion, True, max_level)
    assert LEVELS.index(low) <= LEVELS.index(high)


# --- calibration: the product requirement behind `strict: true` --------------------------------


def _ready_table(rules: Rules) -> list[list[bool]]:
    """is_ready for every (suggestions, accepted) a window of accept/reject can hold."""
    return [
        [is_ready(counts(_kinds(a, n - a)), rules) for a in range(n + 1)]
        for n in range(rules.window + 1)
    ]


def _promoted_shares(
    p: float, rule_sets: Sequence[Rules], seed: int, histories: int = 2000, horizon: int = 200
) -> list[float]:
    """Share of random accept/reject histories that are ever ready, checked after every decision.

    The window is kept incrementally (a ring of the last `window` decisions and its accept count)
    so 2,000 x 200 checks stay fast; the same histories serve every rule set.
    """
    window = rule_sets[0].window
    assert all(r.window == window for r in rule_sets)
    tables = [_ready_table(r) for r in rule_sets]
    rng = random.Random(seed)
    promoted = [0] * len(rule_sets)
    for _ in range(histories):
        ring = [False] * window
        accepted = 0
        done = [False] * len(rule_sets)
        for t in range(horizon):
            slot = t % window
            if t >= window:
                accepted -= ring[slot]
            ring[slot] = rng.random() < p
            accepted += ring[slot]
            n = min(t + 1, window)
            for i, table in enumerate(tables):
                if not done[i] and table[n][accepted]:
                    done[i] = True
        for i, flag in enumerate(done):
            promoted[i] += flag
    return [count / histories for count in promoted]


def test_incremental_check_matches_step_metrics() -> None:
    """The fast simulation must judge exactly like step_metrics on the same histories."""
    rng = random.Random(7)
    table = _ready_table(STRICT)
    for _ in range(20):
        kinds: list[str] = []
        for _t in range(80):
            kinds.append("accepted" if rng.random() < 0.93 else "rejected")
            win = kinds[-STRICT.window :]
            fast = table[len(win)][win.count("accepted")]
            assert fast == step_metrics("s", "x", kinds, STRICT)["ready"]


def test_calibration_strict_rule_rarely_promotes_an_80_percent_step() -> None:
    strict_80, plain_80 = _promoted_shares(0.80, [STRICT, PLAIN], seed=80)
    strict_95, plain_95 = _promoted_shares(0.95, [STRICT, PLAIN], seed=95)
    print(
        f"\ncalibration (2000 histories x 200 decisions, threshold .85, min 20, window 50): "
        f"p=0.80 strict {strict_80:.2%} plain {plain_80:.2%}; "
        f"p=0.95 strict {strict_95:.2%} plain {plain_95:.2%}"
    )
    assert strict_80 <= 0.05
    assert strict_95 >= 0.99
    # Why strict is the default: the plain 85% rule promotes an 80% step far too often.
    assert plain_80 > 0.20
    assert plain_95 >= strict_95


def test_an_interrupted_run_is_neutral_for_trust() -> None:
    from coachctl.engine.metrics import classify

    for decision in ("accept", "correct"):
        for by in ("alice", "auto"):
            record = {"decision": decision, "outcome": "interrupted", "decided_by": by}
            assert classify(record) is None
