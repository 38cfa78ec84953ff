"""Who and where an interaction comes from, in the core's terms, and whether it is a moderator.

Moderators are members with Manage Server (or Administrator), read from the permissions
Discord computes into every interaction, plus members of the configured `moderator_role`
(an id, or a name looked up once in a while through REST).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import discord

from bot.model import ChannelRef, RoleRef, UserRef

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
    """An option value as the core takes it: channels, members and roles become refs."""
    if isinstance(value, discord.User | discord.Member):
        return UserRef(PLATFORM, workspace, str(value.id), value.display_name)
    if isinstance(value, discord.Role):
        return RoleRef(PLATFORM, workspace, str(value.id), value.name)
    if isinstance(
        value, discord.abc.GuildChannel | discord.Thread | discord.app_commands.AppCommandChannel
    ):
        return ChannelRef(PLATFORM, workspace, str(value.id))
    return value


def role_ids(user: discord.User | discord.Member) -> set[int]:
    """Ids of the roles the member holds, straight from the interaction payload.

    The public `Member.roles` and `Member.get_role` resolve ids through the guild's role
    cache, which is empty until the gateway has sent the guild (or while it is unavailable);
    discord.py (2.4 to 2.7) keeps the ids themselves only in `Member._roles`.
    """
    if not isinstance(user, discord.Member):
        return set()  # a direct message: no guild, no roles
    return set(user._roles)


class Moderators:
    """Decides `is_moderator` for each interaction, from permissions and the configured role."""

    def __init__(self, role: str) -> None:
        self.role = role.strip()
        self._by_name: dict[int, tuple[float, set[int]]] = {}

    async def check(self, interaction: discord.Interaction) -> bool:
        permissions = interaction.permissions
        if permissions.administrator or permissions.manage_guild:
            return True
        if not self.role or interaction.guild is None:
            return False
        held = role_ids(interaction.user)
        if not held:
            return False
        if self.role.isdigit():
            return int(self.role) in held
        return bool(held & await self._named(interaction.guild))

    async def _named(self, guild: discord.Guild) -> set[int]:
        """Ids of the roles called `self.role` in this guild (case-insensitive), cached a while."""
        cached = self._by_name.get(guild.id)
        if cached and time.monotonic() - cached[0] < ROLE_NAMES_TTL:
            return cached[1]
        try:
            roles = guild.roles or await guild.fetch_roles()  # no cache without the gateway
        except discord.HTTPException as exc:
            log.warning("could not read the roles of guild %s: %s", guild.id, exc)
            return cached[1] if cached else set()
        wanted = self.role.lower()
        ids = {role.id for role in roles if role.name.lower() == wanted}
        if not ids:
            log.warning(
                "no role named %r in guild %s; only Manage Server counts", self.role, guild.id
            )
        self._by_name[guild.id] = (time.monotonic(), ids)
        return ids
