"""The daily prompt's tables (all of them, in one migration list) and the queries for
schedules, skip dates, prompt days and answers. UNIQUE keys carry the rules: one prompt
a day per channel, no prompt twice in a channel's cycle, one answer per member per day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.model import ChannelRef, UserRef
from bot.prompts.bank import Prompt, choose_next
from bot.prompts.schedule import Rule, parse_time
from bot.store import Database
from bot.timeutil import utc_from_ts

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE justdoit_schedules (
        channel TEXT PRIMARY KEY,
        community_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        tz TEXT NOT NULL,
        days TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        rev INTEGER NOT NULL DEFAULT 1,
        updated_at REAL NOT NULL
    );
    CREATE TABLE justdoit_skips (
        channel TEXT NOT NULL,
        day TEXT NOT NULL,
        PRIMARY KEY (channel, day)
    );
    CREATE TABLE justdoit_days (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        day TEXT NOT NULL,
        community_id INTEGER NOT NULL,
        prompt_id TEXT NOT NULL,
        competency TEXT NOT NULL,
        text TEXT NOT NULL,
        cycle INTEGER NOT NULL,
        scheduled INTEGER NOT NULL,
        posted_at REAL NOT NULL,
        UNIQUE (channel, day),
        UNIQUE (channel, cycle, prompt_id)
    );
    CREATE TABLE justdoit_answers (
        id INTEGER PRIMARY KEY,
        day_id INTEGER NOT NULL REFERENCES justdoit_days (id) ON DELETE CASCADE,
        member TEXT NOT NULL,
        member_name TEXT NOT NULL,
        competency TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (day_id, member)
    );
    CREATE TABLE justdoit_suggestions (
        id INTEGER PRIMARY KEY,
        community_id INTEGER NOT NULL,
        channel TEXT NOT NULL,
        member TEXT NOT NULL,
        member_name TEXT NOT NULL,
        text TEXT NOT NULL,
        competency TEXT,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'approved', 'rejected')),
        decided_by TEXT,
        decided_at REAL,
        created_at REAL NOT NULL
    )
    """,
    # Who last set a channel's schedule (a member key; NULL: unknown, e.g. the demo's own):
    # prompt suggestions go to them when the community names no moderators' channel.
    """
    ALTER TABLE justdoit_schedules ADD COLUMN scheduled_by TEXT
    """,
    # Members' reminders by direct message, at their own local time (bot/prompts/reminders.py).
    """
    CREATE TABLE justdoit_reminders (
        channel TEXT NOT NULL,
        member TEXT NOT NULL,
        member_name TEXT NOT NULL,
        at TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (channel, member)
    )
    """,
]


@dataclass
class Schedule:
    channel: ChannelRef
    community_id: int
    rule: Rule
    paused: bool
    rev: int
    scheduled_by: str | None = None  # the member key of who last set it


@dataclass
class PromptDay:
    id: int
    channel: ChannelRef
    day: date
    prompt: Prompt
    cycle: int
    scheduled: bool
    posted_at: datetime


@dataclass
class Answer:
    day: date
    member: str
    member_name: str
    competency: str
    text: str
    prompt_competency: str
    scheduled: bool


class PromptStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- Schedules -----------------------------------------------------------------------

    async def save_schedule(
        self,
        channel: ChannelRef,
        community_id: int,
        at: str,
        tz: str,
        days: frozenset[int],
        now: datetime,
        by: UserRef | None = None,
    ) -> None:
        """Set a channel's schedule; `by` (the moderator who set it) is kept, and an earlier
        one stays when `by` is None."""
        await self.db.execute(
            "INSERT INTO justdoit_schedules (channel, community_id, at, tz, days, updated_at,"
            " scheduled_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(channel) DO UPDATE SET"
            " at = excluded.at, tz = excluded.tz, days = excluded.days, paused = 0,"
            " rev = justdoit_schedules.rev + 1, updated_at = excluded.updated_at,"
            " scheduled_by = coalesce(excluded.scheduled_by, justdoit_schedules.scheduled_by)",
            (channel.key, community_id, at, tz, ",".join(map(str, sorted(days))), now.timestamp(),
             by.key if by else None),
        )  # fmt: skip

    async def set_paused(self, channel: ChannelRef, paused: bool, now: datetime) -> bool:
        return bool(
            await self.db.execute(
                "UPDATE justdoit_schedules SET paused = ?, rev = rev + 1, updated_at = ?"
                " WHERE channel = ?",
                (int(paused), now.timestamp(), channel.key),
            )
        )

    async def touch(self, channel: ChannelRef, now: datetime) -> None:
        """A new revision: jobs armed for an older one no longer post."""
        await self.db.execute(
            "UPDATE justdoit_schedules SET rev = rev + 1, updated_at = ? WHERE channel = ?",
            (now.timestamp(), channel.key),
        )

    async def schedule(self, channel: ChannelRef) -> Schedule | None:
        row = await self.db.fetchone(
            "SELECT * FROM justdoit_schedules WHERE channel = ?", (channel.key,)
        )
        return None if row is None else await self._schedule(row)

    async def schedules(self) -> list[Schedule]:
        rows = await self.db.fetchall("SELECT * FROM justdoit_schedules ORDER BY channel")
        return [await self._schedule(r) for r in rows]

    async def _schedule(self, row: Any) -> Schedule:
        skips = await self.db.fetchall(
            "SELECT day FROM justdoit_skips WHERE channel = ?", (row["channel"],)
        )
        rule = Rule(
            parse_time(row["at"]),
            row["tz"],
            frozenset(int(d) for d in row["days"].split(",")),
            frozenset(date.fromisoformat(s["day"]) for s in skips),
        )
        return Schedule(
            ChannelRef.parse(row["channel"]),
            row["community_id"],
            rule,
            bool(row["paused"]),
            row["rev"],
            row["scheduled_by"],
        )

    async def scheduled_by(self, community_id: int, prefer: list[ChannelRef]) -> str | None:
        """The member key of a moderator who scheduled the community's daily prompt: of the
        first channel in `prefer` that has one, else of the community's most recently set
        schedule; None if no schedule names its moderator."""
        rows = await self.db.fetchall(
            "SELECT channel, scheduled_by FROM justdoit_schedules"
            " WHERE community_id = ? AND scheduled_by IS NOT NULL ORDER BY updated_at DESC",
            (community_id,),
        )
        by_channel = {r["channel"]: r["scheduled_by"] for r in rows}
        for channel in prefer:
            if channel.key in by_channel:
                return by_channel[channel.key]
        return rows[0]["scheduled_by"] if rows else None

    async def add_skips(self, channel: ChannelRef, days: list[date]) -> None:
        async with self.db.transaction() as tx:
            for day in days:
                await tx.execute(
                    "INSERT INTO justdoit_skips VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (channel.key, day.isoformat()),
                )

    async def remove_skips(self, channel: ChannelRef, days: list[date]) -> None:
        async with self.db.transaction() as tx:
            for day in days:
                await tx.execute(
                    "DELETE FROM justdoit_skips WHERE channel = ? AND day = ?",
                    (channel.key, day.isoformat()),
                )

    # --- Prompt days ---------------------------------------------------------------------

    async def prompt_day(
        self,
        channel: ChannelRef,
        day: date,
        community_id: int,
        bank: list[Prompt],
        scheduled: bool,
        now: datetime,
    ) -> tuple[PromptDay, bool]:
        """The prompt of `day` in `channel`, choosing and keeping it the first time.

        Returns the day and whether it was chosen just now.
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchone(
                "SELECT * FROM justdoit_days WHERE channel = ? AND day = ?",
                (channel.key, day.isoformat()),
            )
            if row is not None:
                return _day(row), False
            last = await tx.fetchone(
                "SELECT competency, cycle FROM justdoit_days WHERE channel = ?"
                " ORDER BY day DESC, id DESC LIMIT 1",
                (channel.key,),
            )
            cycle = await tx.fetchval(
                "SELECT max(cycle) FROM justdoit_days WHERE channel = ?", (channel.key,)
            )
            cycle = cycle or 1
            used = await tx.fetchall(
                "SELECT prompt_id FROM justdoit_days WHERE channel = ? AND cycle = ?",
                (channel.key, cycle),
            )
            choice = choose_next(
                bank, [u[0] for u in used], cycle, last["competency"] if last else None
            )
            prompt = choice.prompt
            await tx.execute(
                "INSERT INTO justdoit_days (channel, day, community_id, prompt_id, competency,"
                " text, cycle, scheduled, posted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    channel.key, day.isoformat(), community_id, prompt.id, prompt.competency,
                    prompt.text, choice.cycle, int(scheduled), now.timestamp(),
                ),
            )  # fmt: skip
            row = await tx.fetchone(
                "SELECT * FROM justdoit_days WHERE channel = ? AND day = ?",
                (channel.key, day.isoformat()),
            )
        return _day(row), True

    async def find_day(self, channel: ChannelRef, day: date) -> PromptDay | None:
        row = await self.db.fetchone(
            "SELECT * FROM justdoit_days WHERE channel = ? AND day = ?",
            (channel.key, day.isoformat()),
        )
        return None if row is None else _day(row)

    async def latest_day(self, channel: ChannelRef) -> PromptDay | None:
        row = await self.db.fetchone(
            "SELECT * FROM justdoit_days WHERE channel = ? ORDER BY day DESC LIMIT 1",
            (channel.key,),
        )
        return None if row is None else _day(row)

    async def days(self, channel: ChannelRef) -> list[PromptDay]:
        rows = await self.db.fetchall(
            "SELECT * FROM justdoit_days WHERE channel = ? ORDER BY day", (channel.key,)
        )
        return [_day(r) for r in rows]

    # --- Answers -------------------------------------------------------------------------

    async def save_answer(
        self, day: PromptDay, member: UserRef, competency: str, text: str, now: datetime
    ) -> bool:
        """Record or replace a member's answer for a prompt day; True if it was new."""
        async with self.db.transaction() as tx:
            existed = await tx.fetchval(
                "SELECT 1 FROM justdoit_answers WHERE day_id = ? AND member = ?",
                (day.id, member.key),
            )
            await tx.execute(
                "INSERT INTO justdoit_answers (day_id, member, member_name, competency, text,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(day_id, member) DO UPDATE SET competency = excluded.competency,"
                " text = excluded.text, member_name = excluded.member_name,"
                " updated_at = excluded.updated_at",
                (day.id, member.key, member.name or member.user, competency, text,
                 now.timestamp(), now.timestamp()),
            )  # fmt: skip
        return not existed

    async def answer_of(self, day: PromptDay, member: UserRef) -> Answer | None:
        rows = await self._answers("a.day_id = ? AND a.member = ?", (day.id, member.key))
        return rows[0] if rows else None

    async def member_answers(self, channel: ChannelRef, member: UserRef) -> list[Answer]:
        return await self._answers("d.channel = ? AND a.member = ?", (channel.key, member.key))

    async def community_answers(self, community_id: int) -> list[Answer]:
        return await self._answers("d.community_id = ?", (community_id,))

    async def channel_answers(self, channel: ChannelRef, since: date, until: date) -> list[Answer]:
        """Answers to the channel's prompts of days in [since, until)."""
        return await self._answers(
            "d.channel = ? AND d.day >= ? AND d.day < ?",
            (channel.key, since.isoformat(), until.isoformat()),
        )

    async def _answers(self, where: str, params: Any) -> list[Answer]:
        rows = await self.db.fetchall(
            "SELECT d.day, a.member, a.member_name, a.competency, a.text,"
            " d.competency AS prompt_competency, d.scheduled FROM justdoit_answers a"
            f" JOIN justdoit_days d ON d.id = a.day_id WHERE {where} ORDER BY d.day, a.id",
            params,
        )
        return [
            Answer(
                date.fromisoformat(r["day"]),
                r["member"],
                r["member_name"],
                r["competency"],
                r["text"],
                r["prompt_competency"],
                bool(r["scheduled"]),
            )  # fmt: skip
            for r in rows
        ]

    async def export_rows(self, community_id: int | None = None) -> list[Any]:
        where = "" if community_id is None else "WHERE d.community_id = ?"
        return await self.db.fetchall(
            "SELECT d.day, d.channel, a.member, a.member_name, a.competency, d.prompt_id,"
            " d.text AS prompt, a.text AS answer, a.created_at, a.updated_at"
            " FROM justdoit_answers a JOIN justdoit_days d ON d.id = a.day_id"
            f" {where} ORDER BY d.day, d.channel, a.id",
            () if community_id is None else (community_id,),
        )


def _day(row: Any) -> PromptDay:
    return PromptDay(
        id=row["id"],
        channel=ChannelRef.parse(row["channel"]),
        day=date.fromisoformat(row["day"]),
        prompt=Prompt(row["prompt_id"], row["competency"], row["text"]),
        cycle=row["cycle"],
        scheduled=bool(row["scheduled"]),
        posted_at=utc_from_ts(row["posted_at"]),
    )
