"""Who and where an interaction comes from, in the core's terms, and whether it is a moderator.

Moderators are members with Manage Server (or Administrator), read from the permissions
Discord computes into every interaction, plus members of the configured `moderator_role`
(an id, or a name looked up once in a while through REST). Role ids come from the member
payload itself, because a bot with only the guilds intent may not have the guild cached.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import discord

from bot.model import ChannelRef, UserRef

log = logging.getLogger(__name__)

PLATFORM = "discord"
ROLE_NAMES_TTL = 600.0


def workspace_of(interaction: discord.Interaction) -> str:
    return str(interaction.guild_id) if interaction.guild_id else "dm"


def channel_ref(interaction: discord.Interaction) -> ChannelRef:
    return ChannelRef(PLATFORM, workspace_of(interaction), str(interaction.channel_id or 0))


def user_ref(interaction: discord.Interaction) -> UserRef:
    user = interaction.user
    return UserRef(PLATFORM, workspace_of(interaction), str(user.id), user.display_name)


def neutral(value: Any, workspace: str) -> Any:
    """An option value as the core takes it: channels and members become refs."""
    if isinstance(value, discord.User | discord.Member):
        return UserRef(PLATFORM, workspace, str(value.id), value.display_name)
    if isinstance(
        value, discord.abc.GuildChannel | discord.Thread | discord.app_commands.AppCommandChannel
    ):
        return ChannelRef(PLATFORM, workspace, str(value.id))
    return value


def role_ids(member: discord.User | discord.Member) -> set[int]:
    """Role ids of the member as the interaction gave them, cached guild or not."""
    ids = {role.id for role in getattr(member, "roles", [])}
    # Member.roles needs the guild in cache; the raw ids from the payload are always there.
    ids.update(getattr(member, "_roles", ()))
    return ids


class Moderators:
    """Decides `is_moderator` for each interaction, from permissions and the configured role."""

    def __init__(self, client: discord.Client, role: str) -> None:
        self.client = client
        self.role = role.strip()
        self._by_name: dict[int, tuple[float, set[int]]] = {}

    async def check(self, interaction: discord.Interaction) -> bool:
        permissions = interaction.permissions
        if permissions.administrator or permissions.manage_guild:
            return True
        if not self.role or interaction.guild_id is None:
            return False
        held = role_ids(interaction.user)
        if not held:
            return False
        if self.role.isdigit():
            return int(self.role) in held
        return bool(held & await self._named(interaction.guild_id))

    async def _named(self, guild_id: int) -> set[int]:
        """Ids of the roles called `self.role` in this guild (case-insensitive), cached a while."""
        cached = self._by_name.get(guild_id)
        if cached and time.monotonic() - cached[0] < ROLE_NAMES_TTL:
            return cached[1]
        guild = self.client.get_guild(guild_id)
        try:
            if guild is not None and guild.roles:
                roles = [(r.id, r.name) for r in guild.roles]
            else:
                roles = [
                    (int(r["id"]), r["name"]) for r in await self.client.http.get_roles(guild_id)
                ]
        except discord.HTTPException as exc:
            log.warning("could not read the roles of guild %s: %s", guild_id, exc)
            return cached[1] if cached else set()
        wanted = self.role.lower()
        ids = {rid for rid, name in roles if name.lower() == wanted}
        if not ids:
            log.warning(
                "no role named %r in guild %s; only Manage Server counts", self.role, guild_id
            )
        self._by_name[guild_id] = (time.monotonic(), ids)
        return ids
