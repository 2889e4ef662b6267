"""`--since` is bounded: an age or a time the clock cannot hold is one line and exit 2."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from coachctl.engine.events import MAX_AGE_DAYS, parse_since, parse_time
from coachctl.errors import UsageError
from tests.conftest import Cli

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_the_longest_age_is_accepted_and_one_second_more_is_not() -> None:
    assert parse_since(f"{MAX_AGE_DAYS}d", NOW) == NOW - timedelta(days=MAX_AGE_DAYS)
    with pytest.raises(UsageError, match="an age is at most 100 years"):
        parse_since(f"{MAX_AGE_DAYS * 86400 + 1}s", NOW)


@pytest.mark.parametrize(
    "text",
    ["99999999999999d", "1000000d", "3000000w", "9" * 5000 + "s", "0" * 20 + "1000000d"],
)
def test_huge_ages_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="invalid --since"):
        parse_since(text, NOW)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_times_outside_the_calendar_are_not_times(text: str) -> None:
    assert parse_time(text) is None
    with pytest.raises(UsageError, match="expected an ISO-8601 time"):
        parse_since(text)


@pytest.mark.parametrize("since", ["99999999999999d", "9999-12-31T23:59:59-01:00"])
def test_events_with_an_unbounded_since_is_one_line_exit_2(
    cli: Cli, home: Path, since: str
) -> None:
    cli.start("hello")
    res = cli("events", "--since", since)
    assert res.exit_code == 2
    assert res.stdout == ""
    assert len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith(f"coachctl: invalid --since: '{since}'")
