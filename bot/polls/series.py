"""Repeating polls: a series is one poll asked again each week or month, each period a run
of its own (its own votes, its own results), until it is stopped or has run `runs` times.

Periods are counted in the zone the series was made in, so a weekly poll made for Monday
09:00 opens at 09:00 on Mondays either side of a daylight-saving change, and a monthly one
made on the 31st opens on the last day of shorter months. A run is found again by its
(series, period number), which the database keeps unique: opening a period twice (a retry
after a crash) makes one run.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.model import UserRef
from bot.polls.store import Question, Run, VoteStore, run_from_row
from bot.store import Database, IntegrityError
from bot.timeutil import local, utc_from_ts

log = logging.getLogger(__name__)

Repeat = Literal["weekly", "monthly"]
REPEATS: tuple[Repeat, ...] = ("weekly", "monthly")
PERIOD_WORDS = {"weekly": "week", "monthly": "month"}


@dataclass
class Series:
    id: int
    community_id: int
    repeat: Repeat
    zone: str
    first_opens_at: datetime
    length: timedelta | None  # how long each run stays open; None: until the next opens
    remind: timedelta | None  # how long before a run closes its reminders go out
    runs: int | None  # periods in all; None: until stopped
    stopped_at: datetime | None

    def opening(self, number: int) -> datetime:
        return opening(self.repeat, self.zone, self.first_opens_at, number)

    def closing(self, number: int) -> datetime:
        """When period `number`'s run closes: its own length, else when the next opens."""
        if self.length is not None:
            return self.opening(number) + self.length
        return self.opening(number + 1)

    def has_period(self, number: int) -> bool:
        return self.runs is None or number <= self.runs


def opening(repeat: Repeat, zone: str, first: datetime, number: int) -> datetime:
    """When period `number` (from 1) opens: the first opening's wall-clock time in `zone`,
    `number - 1` weeks or months on (a month too short for the day takes its last day)."""
    start = local(first, zone)
    if repeat == "weekly":
        moment = start + timedelta(weeks=number - 1)  # wall-clock arithmetic in the zone
    else:
        months = start.month - 1 + number - 1
        year, month = start.year + months // 12, months % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        moment = start.replace(year=year, month=month, day=day)
    return moment.astimezone(UTC)


@dataclass
class TrendPoint:
    """One run's tally, for the trend across a series' runs."""

    run_id: int
    number: int  # the period's number in the series
    tally: dict[int, int]
    voters: int


class SeriesStore:
    def __init__(self, db: Database, runs: VoteStore) -> None:
        self.db = db
        self.runs = runs

    async def create(
        self,
        community_id: int,
        repeat: Repeat,
        zone: str,
        first_opens_at: datetime,
        length: timedelta | None,
        remind: timedelta | None,
        runs: int | None,
    ) -> int:
        series_id = await self.db.insert(
            "INSERT INTO vote_series (community_id, repeat, zone, first_opens_at, length,"
            " remind, runs) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                community_id, repeat, zone, first_opens_at.timestamp(), _seconds(length),
                _seconds(remind), runs,
            ),
        )  # fmt: skip
        return int(series_id)  # type: ignore[arg-type]

    async def get(self, series_id: int) -> Series | None:
        row = await self.db.fetchone("SELECT * FROM vote_series WHERE id = ?", (series_id,))
        return _series(row) if row else None

    async def stop(self, series_id: int, now: datetime) -> bool:
        """No further periods; False if it was stopped already."""
        changed = await self.db.execute(
            "UPDATE vote_series SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL",
            (now.timestamp(), series_id),
        )
        return bool(changed)

    async def run_for(
        self, template: Run, questions: list[Question], number: int, opens: datetime,
        closes: datetime, now: datetime,
    ) -> int:  # fmt: skip
        """Period `number`'s run, made once from the run before it (`template`)."""
        found = await self._run_id(template.series_id, number)
        if found is not None:
            return found
        try:
            return await self.runs.create(
                kind="poll", title=template.title, community_id=template.community_id,
                channel=template.channel, creator=member(template.creator), questions=questions,
                now=now, anonymous=template.anonymous, hidden=template.hidden,
                everywhere=template.everywhere, closes_at=closes, opens_at=opens,
                series=(template.series_id, number),
            )  # fmt: skip
        except IntegrityError:  # made meanwhile by another call for the same period
            found = await self._run_id(template.series_id, number)
            if found is None:
                raise
            return found

    async def waiting(self, series_id: int) -> list[Run]:
        """The series' runs made but not yet posted (the next period's)."""
        rows = await self.db.fetchall(
            "SELECT * FROM vote_runs WHERE series_id = ? AND opened_at IS NULL"
            " AND closed_at IS NULL",
            (series_id,),
        )
        return [run_from_row(r) for r in rows]

    async def current(self, series_id: int) -> Run | None:
        """The latest posted run of the series, if it is still open."""
        row = await self.db.fetchone(
            "SELECT * FROM vote_runs WHERE series_id = ? AND opened_at IS NOT NULL"
            " ORDER BY series_run DESC LIMIT 1",
            (series_id,),
        )
        run = run_from_row(row) if row else None
        return run if run is not None and run.closed_at is None else None

    async def previous(self, run: Run) -> Run | None:
        """The run posted before this one in its series (a missed period is skipped)."""
        row = await self.db.fetchone(
            "SELECT * FROM vote_runs WHERE series_id = ? AND series_run < ?"
            " AND opened_at IS NOT NULL ORDER BY series_run DESC LIMIT 1",
            (run.series_id, run.series_run),
        )
        return run_from_row(row) if row else None

    async def voters(self, run_id: int) -> set[str]:
        """Who answered a run, as recorded (member keys; hashes for an anonymous run)."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT voter FROM vote_answers WHERE run_id = ?", (run_id,)
        )
        return {r[0] for r in rows}

    async def trend(self, run: Run, most: int) -> list[TrendPoint]:
        """The tallies of the series' posted runs up to this one, the latest `most`."""
        rows = await self.db.fetchall(
            "SELECT id, series_run FROM vote_runs WHERE series_id = ? AND series_run <= ?"
            " AND opened_at IS NOT NULL ORDER BY series_run DESC LIMIT ?",
            (run.series_id, run.series_run, most),
        )
        points = {r[0]: TrendPoint(r[0], r[1], {}, 0) for r in reversed(rows)}
        if not points:
            return []
        marks = ", ".join("?" * len(points))
        for run_id, option, count in await self.db.fetchall(
            f"SELECT run_id, option, count(*) FROM vote_answers WHERE run_id IN ({marks})"
            " AND option IS NOT NULL GROUP BY run_id, option",
            tuple(points),
        ):
            points[run_id].tally[option] = count
        for run_id, voters in await self.db.fetchall(
            f"SELECT run_id, count(DISTINCT voter) FROM vote_answers WHERE run_id IN ({marks})"
            " GROUP BY run_id",
            tuple(points),
        ):
            points[run_id].voters = voters
        return list(points.values())

    async def _run_id(self, series_id: int | None, number: int) -> int | None:
        return await self.db.fetchval(
            "SELECT id FROM vote_runs WHERE series_id = ? AND series_run = ?",
            (series_id, number),
        )


def member(key: str) -> UserRef:
    """The member a named run recorded as `key` (UserRef.key: platform:workspace:user)."""
    platform, workspace, user = key.split(":", 2)
    return UserRef(platform, workspace, user)


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else delta.total_seconds()


def _series(row: Any) -> Series:
    length, remind = row["length"], row["remind"]
    return Series(
        id=row["id"],
        community_id=row["community_id"],
        repeat=row["repeat"],
        zone=row["zone"],
        first_opens_at=utc_from_ts(row["first_opens_at"]),  # type: ignore[arg-type]
        length=None if length is None else timedelta(seconds=length),
        remind=None if remind is None else timedelta(seconds=remind),
        runs=row["runs"],
        stopped_at=utc_from_ts(row["stopped_at"]),
    )
