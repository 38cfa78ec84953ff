"""Next-occurrence arithmetic in local time, and reading times and days as typed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from bot.errors import UsageError
from bot.prompts.schedule import Rule, format_days, parse_days, parse_time

LONDON = "Europe/London"
NEW_YORK = "America/New_York"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:30", time(8, 30)),
        ("8:30", time(8, 30)),
        ("0830", time(8, 30)),
        ("8am", time(8, 0)),
        ("12am", time(0, 0)),
        ("12pm", time(12, 0)),
        ("5:15pm", time(17, 15)),
        ("23:59", time(23, 59)),
    ],
)
def test_parse_time(text: str, expected: time) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["24:00", "8:60", "13pm", "noonish", "", "8:3"])
def test_parse_time_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_time(text)
    assert err.value.option == "time"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("weekdays", {0, 1, 2, 3, 4}),
        ("mon,wed,fri", {0, 2, 4}),
        ("Monday, Wednesday", {0, 2}),
        ("daily", set(range(7))),
        ("weekends", {5, 6}),
        ("fri-mon", {4, 5, 6, 0}),
        ("tues,thurs", {1, 3}),
    ],
)
def test_parse_days(text: str, expected: set[int]) -> None:
    assert parse_days(text) == expected


@pytest.mark.parametrize("text", ["funday", "mon-xyz", "", "m"])
def test_parse_days_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_days(text)
    assert err.value.option == "days"


def test_format_days_reads_back() -> None:
    assert format_days(parse_days("mon-fri")) == "mon-fri"
    assert format_days(parse_days("mon,wed,fri")) == "mon, wed, fri"
    assert format_days(parse_days("daily")) == "daily"


def test_london_autumn_change_keeps_the_wall_clock() -> None:
    rule = Rule(time(8, 30), LONDON, parse_days("daily"))
    # Clocks go back at 02:00 BST on Sunday 25 October 2026.
    before = rule.next_after(datetime(2026, 10, 24, 0, 0, tzinfo=UTC))
    assert before == (date(2026, 10, 24), datetime(2026, 10, 24, 7, 30, tzinfo=UTC))
    after = rule.next_after(before[1])
    assert after == (date(2026, 10, 25), datetime(2026, 10, 25, 8, 30, tzinfo=UTC))


def test_us_spring_change_keeps_the_wall_clock() -> None:
    rule = Rule(time(8, 30), NEW_YORK, parse_days("mon-fri"))
    # Clocks go forward on Sunday 14 March 2027: Friday is EST, Monday EDT.
    friday = rule.next_after(datetime(2027, 3, 12, 12, 0, tzinfo=UTC))
    assert friday == (date(2027, 3, 12), datetime(2027, 3, 12, 13, 30, tzinfo=UTC))
    monday = rule.next_after(friday[1])
    assert monday == (date(2027, 3, 15), datetime(2027, 3, 15, 12, 30, tzinfo=UTC))


def test_a_time_in_the_spring_gap_moves_forward() -> None:
    rule = Rule(time(2, 30), NEW_YORK, parse_days("daily"))
    day, due = rule.next_after(datetime(2027, 3, 14, 0, 0, tzinfo=UTC))
    assert day == date(2027, 3, 14)
    assert due.astimezone(rule.zone).hour == 3  # 02:30 does not exist that night


def test_skips_and_weekdays() -> None:
    rule = Rule(time(8, 30), "UTC", parse_days("mon-fri"), frozenset({date(2026, 12, 25)}))
    # Thursday 24 Dec after 08:30 -> Friday 25 is skipped, weekend too -> Monday 28.
    day, _ = rule.next_after(datetime(2026, 12, 24, 9, 0, tzinfo=UTC))
    assert day == date(2026, 12, 28)
    assert not rule.is_scheduled(date(2026, 12, 25))
    assert not rule.is_scheduled(date(2026, 12, 26))
    assert rule.is_scheduled(date(2026, 12, 24))


def test_latest_until_and_the_exact_moment() -> None:
    rule = Rule(time(8, 30), LONDON, parse_days("mon-fri"))
    due = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert rule.latest_until(due) == (date(2026, 11, 23), due)
    assert rule.next_after(due)[0] == date(2026, 11, 24)  # strictly after
    # Monday 07:00: the latest is last Friday.
    assert rule.latest_until(datetime(2026, 11, 23, 7, 0, tzinfo=UTC))[0] == date(2026, 11, 20)


def test_next_monday_for_the_digest() -> None:
    rule = Rule(time(8, 30), LONDON, parse_days("mon-fri"))
    day, due = rule.next_weekday_after(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), 0)
    assert day == date(2026, 11, 30)
    assert due == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
