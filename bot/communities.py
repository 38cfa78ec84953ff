"""Communities: one group of channels across platforms, with its own zone and settings.

Rows are keyed by platform + workspace, so one process can serve several communities. A
workspace that no configuration names gets a community of its own on first sight.
Configured communities also list their `channels`: the places community-wide posts (an
event, a poll run everywhere, the daily prompt) go to on every platform together, and may
name one `moderators` channel, where the moderators' business goes instead of the members'
channels: prompt suggestions to review and the bot's notices (a feed it paused). See
`Communities.for_moderators` for where that goes when a community names none.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from bot.model import DIRECT_PREFIX, ChannelRef, UserRef
from bot.store import Database

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE communities (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        timezone TEXT NOT NULL DEFAULT 'UTC'
    );
    CREATE TABLE community_workspaces (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
        PRIMARY KEY (platform, workspace)
    );
    CREATE TABLE community_channels (
        community_id INTEGER NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        PRIMARY KEY (community_id, channel)
    );
    CREATE TABLE settings (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    )
    """,
    # The community's moderators' channel ("platform:workspace:channel"); NULL: none.
    """
    ALTER TABLE communities ADD COLUMN moderators TEXT
    """,
    # Hosting many communities (bot/tenancy.py): whether the bot is still in a workspace
    # (a Discord server that removed it, a Slack workspace that uninstalled it keep their
    # data, and their work waits), who added it, and the community's state: 'left' once
    # every one of its workspaces has, since `left_at` (epoch seconds).
    """
    ALTER TABLE community_workspaces ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'left'));
    ALTER TABLE community_workspaces ADD COLUMN left_at REAL;
    ALTER TABLE community_workspaces ADD COLUMN added_by TEXT;
    ALTER TABLE communities ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'left'));
    ALTER TABLE communities ADD COLUMN left_at REAL
    """,
]


@dataclass
class Community:
    id: int
    name: str
    timezone: str
    channels: list[ChannelRef] = field(default_factory=list)
    moderators: ChannelRef | None = None  # the moderators' channel, if configured


@dataclass
class CommunitySpec:
    """A community as the configuration file declares it."""

    name: str
    timezone: str
    workspaces: list[str]  # "platform:workspace"
    channels: list[str]  # "platform:workspace:channel"
    moderators: str | None = None  # "platform:workspace:channel"


class Communities:
    def __init__(self, db: Database, default_timezone: str = "UTC") -> None:
        self.db = db
        self.default_timezone = default_timezone
        # Every request looks its community up; this class is the only writer of these
        # tables, so a cache cleared on each write stays right and saves three queries.
        self._by_workspace: dict[tuple[str, str], Community] = {}
        self._by_id: dict[int, Community] = {}  # the web console asks by id on every page
        self._workspaces: dict[int, list[tuple[str, str]]] = {}

    async def declare(self, specs: list[CommunitySpec]) -> None:
        """Make the database agree with the configured communities (run at start-up)."""
        for spec in specs:
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO communities (name, timezone, moderators) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET timezone = excluded.timezone,"
                    " moderators = excluded.moderators",
                    (spec.name, spec.timezone, spec.moderators),
                )
                cid = await tx.fetchval("SELECT id FROM communities WHERE name = ?", (spec.name,))
                for ws in spec.workspaces:
                    platform, workspace = ws.split(":", 1)
                    await tx.execute(
                        "INSERT INTO community_workspaces (platform, workspace, community_id)"
                        " VALUES (?, ?, ?) ON CONFLICT (platform, workspace)"
                        " DO UPDATE SET community_id = excluded.community_id",
                        (platform, workspace, cid),
                    )
                await tx.execute("DELETE FROM community_channels WHERE community_id = ?", (cid,))
                for channel in spec.channels:
                    await tx.execute("INSERT INTO community_channels VALUES (?, ?)", (cid, channel))
        self.forget()

    def forget(self) -> None:
        """Drop what is cached (after a community was created or erased elsewhere)."""
        self._by_workspace.clear()
        self._by_id.clear()
        self._workspaces.clear()

    async def of(self, channel: ChannelRef) -> Community:
        """The community a channel belongs to, creating one for an unknown workspace."""
        cached = self._by_workspace.get((channel.platform, channel.workspace))
        if cached is not None:
            return cached
        community = await self._lookup(channel)
        self._by_workspace[(channel.platform, channel.workspace)] = community
        return community

    async def _lookup(self, channel: ChannelRef) -> Community:
        row = await self.db.fetchone(
            "SELECT c.* FROM communities c JOIN community_workspaces w ON w.community_id = c.id "
            "WHERE w.platform = ? AND w.workspace = ?",
            (channel.platform, channel.workspace),
        )
        if row is None:
            async with self.db.transaction() as tx:
                name = f"{channel.platform}:{channel.workspace}"
                await tx.execute(
                    "INSERT INTO communities (name, timezone) VALUES (?, ?) "
                    "ON CONFLICT(name) DO NOTHING",
                    (name, self.default_timezone),
                )
                cid = await tx.fetchval("SELECT id FROM communities WHERE name = ?", (name,))
                await tx.execute(
                    "INSERT INTO community_workspaces (platform, workspace, community_id)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (channel.platform, channel.workspace, cid),
                )
            self._workspaces.pop(cid, None)
            return await self.get(cid)
        return await self.get(row["id"])

    async def get(self, community_id: int) -> Community:
        cached = self._by_id.get(community_id)
        if cached is not None:
            return cached
        community = await self._read(community_id)
        self._by_id[community_id] = community
        return community

    async def _read(self, community_id: int) -> Community:
        row = await self.db.fetchone("SELECT * FROM communities WHERE id = ?", (community_id,))
        if row is None:
            raise KeyError(community_id)
        channels = await self.db.fetchall(
            "SELECT channel FROM community_channels WHERE community_id = ? ORDER BY channel",
            (community_id,),
        )
        moderators = row["moderators"]
        return Community(
            row["id"], row["name"], row["timezone"], [ChannelRef.parse(c[0]) for c in channels],
            ChannelRef.parse(moderators) if moderators else None,
        )  # fmt: skip

    async def workspaces(self, community_id: int) -> list[tuple[str, str]]:
        """The (platform, workspace) pairs of one community: what scopes its data."""
        cached = self._workspaces.get(community_id)
        if cached is not None:
            return list(cached)
        rows = await self.db.fetchall(
            "SELECT platform, workspace FROM community_workspaces WHERE community_id = ?"
            " ORDER BY platform, workspace",
            (community_id,),
        )
        self._workspaces[community_id] = [(r[0], r[1]) for r in rows]
        return list(self._workspaces[community_id])

    async def linked(self, channel: ChannelRef) -> list[ChannelRef]:
        """The channel itself, then the community's other channels on any platform."""
        community = await self.of(channel)
        return [channel, *(c for c in community.channels if c != channel)]

    async def for_moderators(
        self, channel: ChannelRef, configured_by: str | None = None
    ) -> ChannelRef:
        """Where the moderators are told of `channel`'s business (a card to review, a notice).

        1. The moderators' channel of `channel`'s community, when the configuration names one
           (on whichever platform it is: the outbox posts across platforms).
        2. Else the direct messages of the moderator who set the job up: `configured_by` is
           their member key ("platform:workspace:user", as `UserRef.key`); anything else
           (empty, or "opml" for an imported feed) names nobody.
        3. Else, with neither known, `channel` itself: what the bot did before moderators'
           channels existed, so nothing meant for moderators is ever dropped.
        """
        community = await self.of(channel)
        if community.moderators is not None:
            return community.moderators
        member = member_of(configured_by)
        return ChannelRef.direct(member) if member is not None else channel


def member_of(key: str | None) -> UserRef | None:
    """The member a stored member key names ("platform:workspace:user"), or None."""
    parts = (key or "").split(":", 2)
    if len(parts) != 3 or not all(parts) or parts[2].startswith(DIRECT_PREFIX):
        return None
    return UserRef(*parts)


class Settings:
    """Small per-scope settings (a community id or a channel key) with declared defaults."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, scope: str, key: str, default: Any = None) -> Any:
        value = await self.db.fetchval(
            "SELECT value FROM settings WHERE scope = ? AND key = ?", (scope, key)
        )
        return default if value is None else json.loads(value)

    async def set(self, scope: str, key: str, value: Any) -> None:
        await self.db.execute(
            "INSERT INTO settings VALUES (?, ?, ?) "
            "ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value",
            (scope, key, json.dumps(value)),
        )
