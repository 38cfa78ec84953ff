"""The tables of series typed in chat: the rule each is made from, and the answers members
gave for every date of one (kept for the occurrences stored later).

An imported repeating event has no row here: its dates are the calendar's, stored once
at import; a series typed in chat is extended from its rule as time passes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.model import UserRef
from bot.store import Database
from bot.timeutil import utc_from_ts

log = logging.getLogger(__name__)


@dataclass
class Series:
    id: int
    community_id: int
    uid: str  # every occurrence's `series_uid`; the calendars' UID of the series
    rule: str  # an RRULE, UNTIL in UTC
    start: datetime  # the first date (DTSTART)
    tz: str  # the zone the rule repeats the local clock time in
    state: str = "scheduled"

    @property
    def cancelled(self) -> bool:
        return self.state == "cancelled"


@dataclass
class Standing:
    """A member's answer for every date of a series."""

    member: UserRef
    status: str
    notify: bool


def _series(row: Any) -> Series:
    start = utc_from_ts(row["start_at"])
    assert start is not None
    return Series(
        row["id"], row["community_id"], row["uid"], row["rule"], start, row["tz"], row["state"]
    )


class SeriesStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, series: Series, now: datetime) -> Series:
        new_id = await self.db.insert(
            "INSERT INTO event_series (community_id, uid, rule, start_at, tz, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (series.community_id, series.uid, series.rule, series.start.timestamp(), series.tz,
             now.timestamp(), now.timestamp()),
        )  # fmt: skip
        assert new_id is not None
        found = await self.get(new_id)
        assert found is not None
        return found

    async def get(self, series_id: int) -> Series | None:
        row = await self.db.fetchone("SELECT * FROM event_series WHERE id = ?", (series_id,))
        return None if row is None else _series(row)

    async def by_uid(self, community_id: int, uid: str) -> Series | None:
        if not uid:
            return None
        row = await self.db.fetchone(
            "SELECT * FROM event_series WHERE community_id = ? AND uid = ?", (community_id, uid)
        )
        return None if row is None else _series(row)

    async def of_community(self, community_id: int) -> dict[str, Series]:
        rows = await self.db.fetchall(
            "SELECT * FROM event_series WHERE community_id = ?", (community_id,)
        )
        return {r["uid"]: _series(r) for r in rows}

    async def live(self) -> list[Series]:
        """Series still to be extended."""
        rows = await self.db.fetchall(
            "SELECT * FROM event_series WHERE state = 'scheduled' ORDER BY id"
        )
        return [_series(r) for r in rows]

    async def cancel(self, series_id: int, now: datetime) -> bool:
        changed = await self.db.execute(
            "UPDATE event_series SET state = 'cancelled', sequence = sequence + 1,"
            " updated_at = ? WHERE id = ? AND state = 'scheduled'",
            (now.timestamp(), series_id),
        )
        return bool(changed)

    # --- Answers for every date ---------------------------------------------------------

    async def stand(
        self, series_id: int, member: UserRef, status: str, notify: bool, now: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO event_series_rsvps (series_id, member, name, status, notify, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (series_id, member) DO UPDATE SET"
            " status = excluded.status, notify = excluded.notify, name = excluded.name,"
            " updated_at = excluded.updated_at",
            (series_id, member.key, member.name, status, int(notify), now.timestamp()),
        )

    async def standing(self, series_id: int) -> list[Standing]:
        """Every date's answers, in the order they were given (the waiting list's order)."""
        rows = await self.db.fetchall(
            "SELECT * FROM event_series_rsvps WHERE series_id = ? ORDER BY updated_at, rowid",
            (series_id,),
        )
        out = []
        for row in rows:
            platform, workspace, user = row["member"].split(":", 2)
            member = UserRef(platform, workspace, user, row["name"])
            out.append(Standing(member, row["status"], bool(row["notify"])))
        return out
