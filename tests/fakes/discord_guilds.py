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

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        """A new session: the servers the bot is in come back as available, as at any start
        (discord.py: `on_guild_available`, not `on_guild_join`)."""
        await super()._identify(ws, data)
        for payload in self.extra_guilds.values():
            await self.dispatch("GUILD_CREATE", {**payload, "unavailable": False})

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
        guild_id, channel_id = self.snowflake(), self.snowflake()
        if not audit_log:
            self.audit_forbidden.add(guild_id)
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
        if added_by is not None:
            self.audit_entries.setdefault(guild_id, []).insert(0, self._bot_added(added_by))
        await self.wait_ready()
        await self.dispatch("GUILD_CREATE", payload)
        return guild_id, channel_id

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
