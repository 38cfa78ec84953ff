"""When the daily prompt is due: a local time, weekdays and skip dates, in one zone.

All arithmetic is done on local dates and turned into UTC at the end with zoneinfo, so
08:30 stays 08:30 on the wall clock across daylight-saving changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.errors import UsageError
from bot.model import inert

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAMED_SETS = {
    "daily": frozenset(range(7)),
    "everyday": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}
_TIME = re.compile(r"^(\d{1,2})(?::?(\d{2}))?\s*(am|pm)?$", re.IGNORECASE)


def parse_time(text: str) -> time:
    """'08:30', '8:30', '0830', '8am', '5:15pm' -> a wall-clock time."""
    match = _TIME.match(text.strip())
    if match:
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        half = (match.group(3) or "").lower()
        if half and not 1 <= hour <= 12:
            match = None
        elif half:
            hour = hour % 12 + (12 if half == "pm" else 0)
        if match and hour < 24 and minute < 60:
            return time(hour, minute)
    raise UsageError(
        f"`{inert(text)}` is not a time of day.",
        option="time",
        hint="Write it like 08:30, 8am or 17:15.",
    )


def _weekday(word: str) -> int:
    key = word.strip().lower()[:3]
    if key in WEEKDAYS and word.strip().lower() in _day_spellings(key):
        return WEEKDAYS.index(key)
    raise UsageError(
        f"`{inert(word)}` is not a day of the week.",
        option="days",
        hint="Write days like mon-fri, mon,wed,fri, daily, weekdays or weekends.",
    )


def _day_spellings(key: str) -> set[str]:
    full = {
        "mon": "monday",
        "tue": "tuesday",
        "wed": "wednesday",
        "thu": "thursday",
        "fri": "friday",
        "sat": "saturday",
        "sun": "sunday",
    }[key]
    extra = {"tue": {"tues"}, "wed": {"weds"}, "thu": {"thur", "thurs"}}.get(key, set())
    return {key, full, *extra}


def parse_days(text: str) -> frozenset[int]:
    """'mon-fri', 'mon,wed,fri', 'fri-mon', 'daily', 'weekends' -> weekday numbers (Mon=0)."""
    spec = text.strip().lower()
    if spec in _NAMED_SETS:
        return _NAMED_SETS[spec]
    days: set[int] = set()
    for part in re.split(r"[,\s]+", spec):
        if not part:
            continue
        if part in _NAMED_SETS:
            days |= _NAMED_SETS[part]
        elif "-" in part:
            first, _, last = part.partition("-")
            start, end = _weekday(first), _weekday(last)
            days.update((start + i) % 7 for i in range((end - start) % 7 + 1))
        else:
            days.add(_weekday(part))
    if not days:
        raise UsageError("Name at least one day.", option="days", hint="For example: mon-fri.")
    return frozenset(days)


def format_days(days: Iterable[int]) -> str:
    """Weekday numbers back to a short readable form: 'mon-fri', 'mon, wed, fri', 'daily'."""
    chosen = sorted(set(days))
    if len(chosen) == 7:
        return "daily"
    runs: list[list[int]] = []
    for day in chosen:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = [
        f"{WEEKDAYS[r[0]]}-{WEEKDAYS[r[-1]]}" if len(r) > 2 else ", ".join(WEEKDAYS[d] for d in r)
        for r in runs
    ]
    return ", ".join(parts)


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"`{inert(text)}` is not a date.", option="dates", hint="Write dates like 2026-12-25."
        ) from None


@dataclass(frozen=True)
class Rule:
    """A channel's schedule: wall-clock `at` in zone `tz` on `days`, except `skips`."""

    at: time
    tz: str
    days: frozenset[int]
    skips: frozenset[date] = field(default_factory=frozenset)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def is_scheduled(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.skips

    def moment(self, day: date) -> datetime:
        """When `day`'s prompt is due, in UTC (a time in a DST gap moves forward)."""
        return datetime.combine(day, self.at, tzinfo=self.zone).astimezone(UTC)

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def next_after(self, moment: datetime) -> tuple[date, datetime] | None:
        """The first scheduled day whose time is strictly after `moment`."""
        day = self.local_day(moment) - timedelta(days=1)
        for _ in range(372 + len(self.skips)):
            if self.is_scheduled(day) and self.moment(day) > moment:
                return day, self.moment(day)
            day += timedelta(days=1)
        return None

    def latest_until(self, moment: datetime) -> tuple[date, datetime] | None:
        """The last scheduled day whose time is at or before `moment`."""
        day = self.local_day(moment) + timedelta(days=1)
        for _ in range(372 + len(self.skips)):
            if self.is_scheduled(day) and self.moment(day) <= moment:
                return day, self.moment(day)
            day -= timedelta(days=1)
        return None

    def next_weekday_after(self, moment: datetime, weekday: int) -> tuple[date, datetime]:
        """The next `weekday` at the schedule's time strictly after `moment` (the digest)."""
        day = self.local_day(moment)
        while day.weekday() != weekday or self.moment(day) <= moment:
            day += timedelta(days=1)
        return day, self.moment(day)
