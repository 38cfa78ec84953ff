"""A member's own settings: for now, the time zone their replies are shown in.

`/my timezone Europe/Oslo` sets it, `/my timezone` shows it, `/my timezone reset` forgets
the member's choice. Where the platform tells a member's zone (Slack's `users.info` has
`tz`; Discord says nothing), the bot asks it once, through the optional transport
capability `KnowsMemberZone`, and keeps the answer in the same table marked as the
platform's: a zone the member chose always wins over it, and is never overwritten by it.
With neither, a member sees the community's zone, as before.

The command is `/my`, not `/me`: both Slack and Discord have a built-in `/me` (an action
message) that an app command cannot take over or would sit confusingly beside.

Replies seen by one member get their zone in one place (`App.member_zone`, used when a
reply is finished); the daily prompt's reminder reads it through `zone_of` too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot import commands as cmd
from bot import timeutil
from bot.app import Context, Feature
from bot.errors import UsageError
from bot.model import Ephemeral, Post, UserRef, inert
from bot.store import Database

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE member_zones (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        "user" TEXT NOT NULL,
        zone TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('member', 'platform')),
        updated_at REAL NOT NULL,
        PRIMARY KEY (platform, workspace, "user")
    )
    """,
]

MEMBER, PLATFORM = "member", "platform"  # who set a stored zone
RESET_WORDS = frozenset({"reset", "clear", "default", "off"})
ASK_AGAIN = timedelta(hours=1)  # after the platform could not say, before asking it again
ASK_TIMEOUT = 5.0  # seconds a zone lookup may take: a reply waits for it


class KnowsMemberZone(Protocol):
    """The optional transport capability behind a platform's own zone for a member."""

    async def member_zone(self, user: UserRef) -> str | None:
        """The IANA zone the platform has for `user`, or None if it does not say."""
        ...


@dataclass(frozen=True)
class MemberZone:
    zone: str
    source: str  # MEMBER or PLATFORM


ZoneListener = Callable[[UserRef], Awaitable[None]]


class MemberZones:
    """The table of members' zones, with the platform asked once for those it knows."""

    def __init__(self, db: Database, platform_zone: Callable[[UserRef], Awaitable[str | None]]):
        self.db = db
        self.platform_zone = platform_zone
        self._known: dict[str, MemberZone | None] = {}  # user key -> row (None: no row)
        self._asked: dict[str, datetime] = {}  # user key -> when the platform could not say
        self.listeners: list[ZoneListener] = []  # told when a member's zone changes

    async def stored(self, user: UserRef) -> MemberZone | None:
        if user.key in self._known:
            return self._known[user.key]
        row = await self.db.fetchone(
            "SELECT zone, source FROM member_zones WHERE platform = ? AND workspace = ?"
            ' AND "user" = ?',
            (user.platform, user.workspace, user.user),
        )
        found = MemberZone(row["zone"], row["source"]) if row else None
        self._known[user.key] = found
        return found

    async def zone_of(self, user: UserRef, now: datetime, ask: bool = True) -> str | None:
        """The member's zone: their own choice, else the platform's (asked once and kept;
        with `ask` False only if known already), else None (the caller uses the community's)."""
        found = await self.stored(user)
        if found is not None or not ask:
            return found.zone if found else None
        asked = self._asked.get(user.key)
        if asked is not None and now - asked < ASK_AGAIN:
            return None
        zone = await self._ask_platform(user)
        if zone is None:
            self._asked[user.key] = now
            return None
        await self._write(user, zone, PLATFORM, now, keep_member=True)
        return zone

    async def choose(self, user: UserRef, zone: str, now: datetime) -> None:
        await self._write(user, zone, MEMBER, now)
        await self._tell(user)

    async def forget(self, user: UserRef) -> bool:
        """Drop the member's own choice (a zone the platform gave is dropped too, so it is
        asked afresh); True if there was one."""
        had = await self.stored(user)
        await self.db.execute(
            'DELETE FROM member_zones WHERE platform = ? AND workspace = ? AND "user" = ?',
            (user.platform, user.workspace, user.user),
        )
        self._known.pop(user.key, None)
        self._asked.pop(user.key, None)
        await self._tell(user)
        return had is not None and had.source == MEMBER

    async def _write(
        self, user: UserRef, zone: str, source: str, now: datetime, keep_member: bool = False
    ) -> None:
        # The platform's answer never replaces a member's own choice, even one made while
        # the platform was being asked.
        guard = " WHERE member_zones.source != 'member'" if keep_member else ""
        await self.db.execute(
            "INSERT INTO member_zones VALUES (?, ?, ?, ?, ?, ?)"
            ' ON CONFLICT (platform, workspace, "user") DO UPDATE SET zone = excluded.zone,'
            f" source = excluded.source, updated_at = excluded.updated_at{guard}",
            (user.platform, user.workspace, user.user, zone, source, now.timestamp()),
        )
        self._known.pop(user.key, None)

    async def _ask_platform(self, user: UserRef) -> str | None:
        try:
            zone = await asyncio.wait_for(self.platform_zone(user), ASK_TIMEOUT)
        except Exception as exc:  # a lookup is a courtesy: the reply goes on without it
            log.info("members: no zone from %s for %s: %r", user.platform, user.key, exc)
            return None
        if not zone or valid_zone(zone) is None:
            return None
        return valid_zone(zone)

    async def _tell(self, user: UserRef) -> None:
        for listener in self.listeners:
            try:
                await listener(user)
            except Exception:  # one listener's bug must not cost the member their answer
                log.exception("members: telling of %s's new zone failed", user.key)


def valid_zone(typed: str) -> str | None:
    """The IANA name `typed` means, written as the database has it (any case), or None."""
    close = timeutil.closest_zone(typed)
    return close if close is not None and close.lower() == typed.strip().lower() else None


def zone_words(zone: str, now: datetime) -> str:
    """'Europe/Oslo (it is 16:05 there, UTC+01:00)': written out, since a time marker would
    show in the reader's own device zone on Slack and Discord, not in this one."""
    local = now.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return f"{zone} (it is {local:%H:%M} there, UTC{offset[:3]}:{offset[3:]})"


class My(Feature):
    name = "my"
    migrations = MIGRATIONS

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.zones = MemberZones(app.db, self._platform_zone)

    def register(self) -> None:
        self.app.command(
            cmd.Command(
                ("my", "timezone"),
                "Your own time zone for the times the bot shows you",
                self.timezone,
                options=[
                    cmd.Option(
                        "zone",
                        description="an IANA zone like Europe/Oslo, or reset",
                        positional=True,
                        many=True,  # "America/New York" is read whole, to be corrected
                        max_length=64,
                        form="a time zone name like Europe/Oslo or America/New_York, or reset",
                    )
                ],
                examples=["/my timezone Europe/Oslo", "/my timezone", "/my timezone reset"],
            )
        )
        self.app.member_zone = self.zone_of

    async def zone_of(self, user: UserRef, ask: bool = True) -> str | None:
        return await self.zones.zone_of(user, self.app.clock.now(), ask)

    async def _platform_zone(self, user: UserRef) -> str | None:
        transport = self.app.outbox.lanes.transports.get(user.platform)
        ask = getattr(transport, "member_zone", None)
        return None if ask is None else await ask(user)

    async def timezone(self, ctx: Context, zone: list[str] | None = None) -> Ephemeral:
        typed = " ".join(zone or [])
        return await self._timezone(ctx, typed or None)

    async def _timezone(self, ctx: Context, zone: str | None) -> Ephemeral:
        if zone is None:
            return Ephemeral(Post(text=await self._current(ctx)))
        if zone.strip().lower() in RESET_WORDS:
            had = await self.zones.forget(ctx.user)
            said = "Forgot your time zone." if had else "You had not set a time zone."
            return Ephemeral(Post(text=f"{said} {await self._current(ctx)}"))
        chosen = valid_zone(zone)
        if chosen is None:
            timeutil.zone(zone, option="zone")  # raises, naming the closest zone
            raise UsageError(f"`{inert(zone)}` is not a time zone I know.", option="zone")
        await self.zones.choose(ctx.user, chosen, ctx.now)
        return Ephemeral(
            Post(
                text=f"Your time zone is now **{zone_words(chosen, ctx.now)}**. Replies only "
                "you see, the web console and your reminders use it; posts in channels keep "
                "the community's zone.",
                footer="Type /my timezone reset to go back.",
            )
        )

    async def _current(self, ctx: Context) -> str:
        found = await self.zones.stored(ctx.user)
        if found is None and await self.zone_of(ctx.user) is not None:
            found = await self.zones.stored(ctx.user)
        if found is not None and found.source == MEMBER:
            return f"Your time zone is **{zone_words(found.zone, ctx.now)}**, as you set it."
        if found is not None:
            platform = ctx.user.platform.title()
            return (
                f"Your time zone is **{zone_words(found.zone, ctx.now)}**, as {platform} "
                "has it. Set your own with /my timezone Europe/Oslo."
            )
        return (
            f"You have not set a time zone: you see the community's, "
            f"**{zone_words(ctx.tz, ctx.now)}**. Set yours with /my timezone Europe/Oslo."
        )
