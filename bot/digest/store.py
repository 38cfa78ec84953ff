"""The digest's own tables, and the few reads it makes of what other parts of the bot keep.

Its own: each community's schedule; each week's digest as built the first time (so every
channel, and a run after a crash, posts the very same text); the members who chose to be
named in it; and the prompt answers members chose to share in it.

Read only, never written: the outbox's sent feed posts (their message ids, to read the
reactions and replies back from the platforms) and the polls' closed runs. Everything else
comes through the other features' own stores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.digest.timing import Weekly
from bot.model import ChannelRef, Post, UserRef
from bot.postcodec import dump_post, load_post
from bot.prompts.schedule import parse_time
from bot.store import Database

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE digest_schedules (
        community_id INTEGER PRIMARY KEY,
        weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
        at TEXT NOT NULL,
        tz TEXT NOT NULL,
        channel TEXT NOT NULL,  -- where it was set: the digest goes there if the
                                -- community lists no channels of its own
        active INTEGER NOT NULL DEFAULT 1,
        rev INTEGER NOT NULL DEFAULT 1,
        set_by TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL
    );
    CREATE TABLE digest_weeks (
        community_id INTEGER NOT NULL,
        week TEXT NOT NULL,
        payload TEXT NOT NULL,
        made_at REAL NOT NULL,
        PRIMARY KEY (community_id, week)
    );
    CREATE TABLE digest_members (
        member TEXT PRIMARY KEY,
        named INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE digest_shares (
        channel TEXT NOT NULL,
        day TEXT NOT NULL,
        member TEXT NOT NULL,
        shared_at REAL NOT NULL,
        PRIMARY KEY (channel, day, member)
    )
    """,
]


@dataclass
class Schedule:
    community_id: int
    weekly: Weekly
    channel: ChannelRef
    active: bool
    rev: int


@dataclass
class SentPost:
    """One of the bot's feed posts as the outbox delivered it."""

    key: str
    channel: ChannelRef
    message_id: str
    sent_at: float
    post: Post


@dataclass
class ClosedRun:
    id: int
    kind: str  # 'poll' or 'survey'
    title: str
    closed_at: float


@dataclass
class Share:
    channel: ChannelRef
    day: date
    member: str


FEED_KEYS = ("feed:", "feed;")  # the key range of feed items: "feed:{sub}:{item}"


class DigestStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- Schedules -------------------------------------------------------------------

    async def save_schedule(
        self, community_id: int, weekly: Weekly, channel: ChannelRef, by: UserRef, now: datetime
    ) -> Schedule:
        await self.db.execute(
            "INSERT INTO digest_schedules (community_id, weekday, at, tz, channel, set_by,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (community_id) DO UPDATE SET"
            " weekday = excluded.weekday, at = excluded.at, tz = excluded.tz,"
            " channel = excluded.channel, set_by = excluded.set_by, active = 1,"
            " rev = digest_schedules.rev + 1, updated_at = excluded.updated_at",
            (community_id, weekly.weekday, f"{weekly.at:%H:%M}", weekly.tz, channel.key, by.key,
             now.timestamp()),
        )  # fmt: skip
        schedule = await self.schedule(community_id)
        assert schedule is not None
        return schedule

    async def switch_off(self, community_id: int, now: datetime) -> bool:
        """False if there was no digest on."""
        changed = await self.db.execute(
            "UPDATE digest_schedules SET active = 0, rev = rev + 1, updated_at = ?"
            " WHERE community_id = ? AND active = 1",
            (now.timestamp(), community_id),
        )
        return bool(changed)

    async def schedule(self, community_id: int) -> Schedule | None:
        row = await self.db.fetchone(
            "SELECT * FROM digest_schedules WHERE community_id = ?", (community_id,)
        )
        return None if row is None else _schedule(row)

    async def active_schedules(self) -> list[Schedule]:
        rows = await self.db.fetchall(
            "SELECT * FROM digest_schedules WHERE active = 1 ORDER BY community_id"
        )
        return [_schedule(r) for r in rows]

    # --- Weeks -----------------------------------------------------------------------

    async def keep_week(self, community_id: int, week: str, post: Post, now: datetime) -> Post:
        """The week's digest: `post` if it is the first built for that week, else the one
        kept before (a second run posts the same text)."""
        await self.db.execute(
            "INSERT INTO digest_weeks VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (community_id, week, dump_post(post), now.timestamp()),
        )
        kept = await self.week(community_id, week)
        assert kept is not None
        return kept

    async def week(self, community_id: int, week: str) -> Post | None:
        payload = await self.db.fetchval(
            "SELECT payload FROM digest_weeks WHERE community_id = ? AND week = ?",
            (community_id, week),
        )
        return None if payload is None else load_post(payload)

    # --- Members' choices ------------------------------------------------------------

    async def set_named(self, member: UserRef, named: bool, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO digest_members VALUES (?, ?, ?) ON CONFLICT (member) DO UPDATE SET"
            " named = excluded.named, updated_at = excluded.updated_at",
            (member.key, int(named), now.timestamp()),
        )

    async def is_named(self, member: UserRef) -> bool:
        return bool(
            await self.db.fetchval(
                "SELECT named FROM digest_members WHERE member = ?", (member.key,)
            )
        )

    async def named_among(self, members: list[str]) -> set[str]:
        """Which of these member keys chose to be named."""
        if not members:
            return set()
        marks = ", ".join("?" * len(members))
        rows = await self.db.fetchall(
            f"SELECT member FROM digest_members WHERE named = 1 AND member IN ({marks})", members
        )
        return {r[0] for r in rows}

    async def share(self, channel: ChannelRef, day: date, member: UserRef, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO digest_shares VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (channel.key, day.isoformat(), member.key, now.timestamp()),
        )

    async def unshare(self, channel: ChannelRef, day: date, member: UserRef) -> bool:
        changed = await self.db.execute(
            "DELETE FROM digest_shares WHERE channel = ? AND day = ? AND member = ?",
            (channel.key, day.isoformat(), member.key),
        )
        return bool(changed)

    async def shares(self, channels: list[ChannelRef], since: date) -> list[Share]:
        """Answers shared in these channels, of prompt days from `since` on, newest first."""
        if not channels:
            return []
        marks = ", ".join("?" * len(channels))
        rows = await self.db.fetchall(
            f"SELECT * FROM digest_shares WHERE channel IN ({marks}) AND day >= ?"
            " ORDER BY day DESC, shared_at DESC",
            [c.key for c in channels] + [since.isoformat()],
        )
        return [Share(ChannelRef.parse(r["channel"]), date.fromisoformat(r["day"]), r["member"])
                for r in rows]  # fmt: skip

    # --- What others keep (read only) ------------------------------------------------

    async def feed_posts(
        self, workspaces: list[tuple[str, str]], since: float, until: float
    ) -> list[SentPost]:
        """Feed items the outbox delivered in the community's workspaces between `since`
        and `until`, newest first. A key range, not LIKE: the key's index is used."""
        rows = await self.db.fetchall(
            "SELECT key, channel, message_id, sent_at, payload FROM outbox"
            " WHERE key >= ? AND key < ? AND kind = 'post' AND state = 'sent'"
            " AND message_id IS NOT NULL AND sent_at > ? AND sent_at <= ?"
            " ORDER BY sent_at DESC, id DESC",
            (*FEED_KEYS, since, until),
        )
        wanted = set(workspaces)
        found = []
        for r in rows:
            channel = ChannelRef.parse(r["channel"])
            if (channel.platform, channel.workspace) in wanted:
                post = load_post(r["payload"])
                found.append(SentPost(r["key"], channel, r["message_id"], r["sent_at"], post))
        return found

    async def closed_runs(self, community_id: int, since: float, until: float) -> list[ClosedRun]:
        """Polls and surveys of the community closed between `since` and `until`."""
        rows = await self.db.fetchall(
            "SELECT id, kind, title, closed_at FROM vote_runs WHERE community_id = ?"
            " AND opened_at IS NOT NULL"  # a run cancelled before it opened is no result
            " AND closed_at > ? AND closed_at <= ? ORDER BY closed_at DESC, id DESC",
            (community_id, since, until),
        )
        return [ClosedRun(r["id"], r["kind"], r["title"], r["closed_at"]) for r in rows]


def _schedule(row: Any) -> Schedule:
    weekly = Weekly(row["weekday"], parse_time(row["at"]), row["tz"])
    return Schedule(
        row["community_id"], weekly, ChannelRef.parse(row["channel"]), bool(row["active"]),
        row["rev"],
    )  # fmt: skip
