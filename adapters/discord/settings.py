"""The `[discord]` configuration section (no SDK import: read before connecting)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from adapters.discord.shards import problem
from bot.config import Section


class DiscordSettings(Section):
    api_url: str = "https://discord.com/api/v10"  # DISCORD_API_URL overrides
    gateway_url: str = "wss://gateway.discord.gg/"  # DISCORD_GATEWAY_URL overrides
    guild_id: int = 0  # sync commands to this guild only (instant; for development)
    moderator_role: str = ""  # a role name or id whose members are moderators
    pace: Annotated[float, Meta(ge=0)] = 1.0
    # Seconds before a slow answer is deferred.
    defer_after: Annotated[float, Meta(gt=0, le=2.5)] = 2.0
    ready_timeout: Annotated[float, Meta(gt=0)] = 30.0  # how long start-up waits for the gateway
    # Mirror announced events as the server's Scheduled Events (needs Manage Events; without
    # it the mirror is skipped with one log line) and count their "Interested" as RSVPs.
    scheduled_events: bool = True
    # Shards this process connects (adapters/discord/shards.py); DISCORD_SHARD_COUNT and
    # DISCORD_SHARD_IDS win. Neither: one connection, no shards.
    shard_count: int | None = None
    shard_ids: list[int] | None = None

    def __post_init__(self) -> None:
        wrong = problem(self.shard_count, self.shard_ids)
        if wrong:
            raise ValueError(wrong)
