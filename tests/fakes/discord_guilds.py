"""The fake Discord with more servers: added after start, removed, and their audit logs.

`GuildsFake.add_guild()` makes a second (third…) server with one text channel, its system
channel, and sends its GUILD_CREATE as Discord does when the bot joins a server (no
`unavailable` key: discord.py calls `on_guild_join`); with `added_by` it also writes the
BOT_ADD entry (action type 28) that `GET /guilds/{id}/audit-logs` returns. A server in
`audit_forbidden` answers that request 403 (50013), as for a bot without View Audit Log.
`remove_guild()` sends GUILD_DELETE without `unavailable` (the bot was removed), and
`readd_guild()` a new GUILD_CREATE for it. A new session (a restart) gets every added server
back with `unavailable: false`, as Discord sends the servers a bot is already in.
The fake's own guild stays as it was, so every other test sees the fake unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from tests.fakes.discord_gateway import shard_of
from tests.fakes.fake_discord import (
    EVERYONE_PERMISSIONS,
    FakeDiscord,
    Req,
    _error,
    _json_response,
)

BOT_ADD = 28


class GuildsFake(FakeDiscord):
    def __init__(self) -> None:
        super().__init__()
        self.extra_guilds: dict[int, dict[str, Any]] = {}  # guild id -> its GUILD_CREATE
        self.audit_entries: dict[int, list[dict[str, Any]]] = {}
        self.audit_forbidden: set[int] = set()
        self.removed: dict[int, dict[str, Any]] = {}  # servers the bot was removed from
        self._route("GET", "/guilds/{gid}/audit-logs", self._audit_logs)

    def guilds_at_identify(self) -> list[dict[str, Any]]:
        """A new session: the servers the bot is in come back as available, as at any start
        (discord.py: `on_guild_available`, not `on_guild_join`)."""
        extra = [{**payload, "unavailable": False} for payload in self.extra_guilds.values()]
        return super().guilds_at_identify() + extra

    def _is_our_guild(self, gid: str) -> bool:
        return super()._is_our_guild(gid) or (gid.isdigit() and int(gid) in self.extra_guilds)

    async def add_guild(
        self,
        owner_id: int,
        added_by: int | None = None,
        name: str = "Second Guild",
        audit_log: bool = True,
        system_channel: bool = True,
    ) -> tuple[int, int]:
        """Add the bot to a new server; return (guild id, its text channel's id).
        `audit_log=False`: the bot may not read it; `system_channel=False`: it has none."""
        guild_id, channel_id = self.new_guild(owner_id, name, system_channel)
        if not audit_log:
            self.audit_forbidden.add(guild_id)
        if added_by is not None:
            self.audit_entries.setdefault(guild_id, []).insert(0, self._bot_added(added_by))
        await self.wait_ready(guild_id=guild_id)
        await self.dispatch("GUILD_CREATE", self.extra_guilds[guild_id])
        return guild_id, channel_id

    def new_guild(
        self, owner_id: int, name: str, system_channel: bool = True, guild_id: int = 0
    ) -> tuple[int, int]:
        """A server the bot is in, told to no session yet (a new session gets it): return
        (guild id, its text channel's id). `guild_id` 0: a fresh one."""
        guild_id, channel_id = guild_id or self.snowflake(), self.snowflake()
        channel = self._text_channel(channel_id, "welcome", 0)
        channel["guild_id"] = str(guild_id)
        self.channels[channel_id] = channel
        payload = copy.deepcopy(self.guild_payload())
        everyone = self._role(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        bot_role = self.roles[self.bot_role_id]
        payload.update(
            id=str(guild_id), name=name, owner_id=str(owner_id),
            system_channel_id=str(channel_id) if system_channel else None, channels=[channel], roles=[everyone, bot_role],
        )  # fmt: skip
        del payload["unavailable"]  # a join, not a server coming back after an outage
        self.extra_guilds[guild_id] = payload
        return guild_id, channel_id

    def add_channel(self, guild_id: int, name: str) -> int:
        """One more text channel in the fake's own server or an added one (before a session
        gets the server: its GUILD_CREATE lists it)."""
        channel_id = self.snowflake()
        channel = self._text_channel(channel_id, name, len(self.channels))
        channel["guild_id"] = str(guild_id)
        self.channels[channel_id] = channel
        if guild_id in self.extra_guilds:
            self.extra_guilds[guild_id]["channels"].append(channel)
        return channel_id

    def snowflake_on_shard(self, shard: int, count: int) -> int:
        """A fresh id for a server whose events come on `shard` of `count` (its timestamp
        part, `id >> 22`, picks the shard: later milliseconds until one fits)."""
        while True:
            candidate = self.snowflake()
            if shard_of(candidate, count) == shard:
                return candidate
            self._snowflake_last = ((candidate >> 22) + 1) << 22

    def in_guild(self, payload: dict[str, Any], guild_id: int, channel_id: int) -> dict[str, Any]:
        """An interaction payload made for the fake's own guild, moved to an added server's
        channel, as Discord would send it from there."""
        payload.update(
            guild_id=str(guild_id), channel_id=str(channel_id),
            guild={**payload["guild"], "id": str(guild_id)}, channel=dict(self.channels[channel_id]),
            authorizing_integration_owners={"0": str(guild_id)},
        )  # fmt: skip
        return payload

    async def readd_guild(self, guild_id: int, added_by: int | None = None) -> None:
        """Add the bot back to a server it was removed from."""
        payload = self.removed.pop(guild_id)
        self.extra_guilds[guild_id] = payload
        if added_by is not None:
            self.audit_entries.setdefault(guild_id, []).insert(0, self._bot_added(added_by))
        await self.dispatch("GUILD_CREATE", payload)

    async def remove_guild(self, guild_id: int) -> None:
        """The bot is removed from (kicked out of) the server."""
        self.removed[guild_id] = self.extra_guilds.pop(guild_id)
        await self.dispatch("GUILD_DELETE", {"id": str(guild_id)})

    def _bot_added(self, by: int) -> dict[str, Any]:
        return {
            "id": str(self.snowflake()), "user_id": str(by), "target_id": str(self.bot_user_id),
            "action_type": BOT_ADD, "changes": [], "reason": None, "options": None,
        }  # fmt: skip

    async def _audit_logs(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if not self._is_our_guild(p["gid"]):
            return _error(404, "Unknown Guild", 10004)
        if int(p["gid"]) in self.audit_forbidden:
            return _error(403, "Missing Permissions", 50013)
        entries = self.audit_entries.get(int(p["gid"]), [])
        if "action_type" in req.query:
            entries = [e for e in entries if str(e["action_type"]) == req.query["action_type"]]
        limit = int(req.query.get("limit", 50))
        entries = entries[:limit]
        users = {e["user_id"] for e in entries} | {str(self.bot_user_id)}
        return _json_response({
            "audit_log_entries": entries,
            "users": [self.bot_user() if int(u) == self.bot_user_id else self.user(int(u)) for u in users],  # fmt: skip
            "integrations": [], "webhooks": [], "guild_scheduled_events": [], "threads": [],
            "application_commands": [], "auto_moderation_rules": [],
        })  # fmt: skip
