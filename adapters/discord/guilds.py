"""Servers the bot is added to and removed from, reported to the core (bot/tenancy.py).

- `on_guild_join` (a GUILD_CREATE for a server the bot had not seen since it connected):
  who added the bot comes from the server's audit log (BOT_ADD entries, which needs View
  Audit Log), else it is the server's owner; the server's system channel is where the
  welcome goes when that member's direct messages are closed.
- `on_guild_remove` (a GUILD_DELETE that is not an outage): the core holds its work.
- `on_guild_available` for a server the core has as left: the bot was added back while it
  was offline, so its work resumes (the welcome is never sent twice).

The words of the welcome are the core's; this module only says who, where and what.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from adapters.discord.surface import DiscordSurface
    from bot.tenancy import Tenancy

log = logging.getLogger(__name__)

PLATFORM = "discord"
AUDIT_LOG_LOOKBACK = 10  # BOT_ADD entries read: the bot's own is normally the newest


class GuildWatch:
    def __init__(self, surface: DiscordSurface) -> None:
        self.surface = surface
        client = surface.client
        for listener in (self.on_guild_join, self.on_guild_remove, self.on_guild_available):
            client.event(listener)

    @property
    def tenancy(self) -> Tenancy | None:
        return self.surface.app.features.get("tenancy")  # type: ignore[return-value]

    async def on_guild_join(self, guild: discord.Guild) -> None:
        if self.tenancy is None:
            return
        channel = guild.system_channel
        await self.tenancy.joined(
            PLATFORM,
            str(guild.id),
            await self.added_by(guild),
            fallback=str(channel.id) if channel is not None else "",
            name=guild.name or "",
            moderator_role=self.surface.settings.moderator_role,
        )

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        if self.tenancy is not None:
            await self.tenancy.left(PLATFORM, str(guild.id))

    async def on_guild_available(self, guild: discord.Guild) -> None:
        tenancy = self.tenancy
        if tenancy is not None and not tenancy.is_active(PLATFORM, str(guild.id)):
            await tenancy.joined(PLATFORM, str(guild.id), name=guild.name or "")

    async def added_by(self, guild: discord.Guild) -> str:
        """The id of the member who added the bot, from the audit log, else the owner's."""
        me = self.surface.client.user
        try:
            async for entry in guild.audit_logs(
                limit=AUDIT_LOG_LOOKBACK, action=discord.AuditLogAction.bot_add
            ):
                target = getattr(entry.target, "id", None)
                who = entry.user_id or (entry.user.id if entry.user else None)
                if me is not None and target == me.id and who:
                    return str(who)
        except discord.Forbidden:
            log.info("no View Audit Log in guild %s: the welcome goes to its owner", guild.id)
        except discord.HTTPException as exc:
            log.warning("could not read guild %s's audit log (%s): welcoming its owner",
                        guild.id, exc)  # fmt: skip
        return str(guild.owner_id) if guild.owner_id else ""
