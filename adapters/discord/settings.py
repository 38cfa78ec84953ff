"""The `[discord]` configuration section (no SDK import: read before connecting)."""

from __future__ import annotations

from pydantic import Field

from bot.config import Section


class DiscordSettings(Section):
    api_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    guild_id: int = 0  # sync commands to this guild only (instant; for development)
    moderator_role: str = ""  # a role name or id whose members are moderators
    pace: float = Field(default=1.0, ge=0)
    scheduled_events: bool = False  # mirror events as Discord Scheduled Events
