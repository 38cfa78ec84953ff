"""When the weekly digest is due, and which week a moment belongs to.

The moderators give a weekday and a wall-clock time in a zone; the arithmetic is done on
local dates and turned into UTC at the end with zoneinfo, so 09:00 stays 09:00 across
daylight-saving changes. A week is named by its ISO week in that zone ("2026-W48"): the
name is part of the job's key and of every outbox key of that week's posts, so a week is
posted once whatever happens between its first try and its last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Weekly:
    """Once a week: `weekday` (0 = Monday) at wall-clock `at` in zone `tz`."""

    weekday: int
    at: time
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def moment(self, day: date) -> datetime:
        """The due time on local date `day`, in UTC (a time in a DST gap moves forward)."""
        return datetime.combine(day, self.at, tzinfo=self.zone).astimezone(UTC)

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment`."""
        day = moment.astimezone(self.zone).date()
        day += timedelta(days=(self.weekday - day.weekday()) % 7)
        while self.moment(day) <= moment:
            day += timedelta(days=7)
        return self.moment(day)

    def week_of(self, moment: datetime) -> str:
        """The ISO week (in the schedule's zone) that `moment` falls in: "2026-W48"."""
        year, week, _ = moment.astimezone(self.zone).date().isocalendar()
        return f"{year}-W{week:02d}"

    def describe(self) -> str:
        return f"every {DAY_NAMES[self.weekday]} at {self.at:%H:%M} ({self.tz})"
