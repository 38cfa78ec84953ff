"""The Discord surface: `create(app, settings, env)` gives a `DiscordSurface` to start and stop.

The token comes from DISCORD_TOKEN; DISCORD_API_URL and DISCORD_GATEWAY_URL (or the
`[discord]` settings `api_url` / `gateway_url`) point the client elsewhere, e.g. at a fake.
DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS (or `shard_count` / `shard_ids`) choose the
shards this process connects (adapters/discord/shards.py).

Importing this package costs nothing: discord.py is imported by `create` (from
`adapters.discord.surface`), so reading the `[discord]` settings, or running on Slack
alone, never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from adapters.discord import shards
from adapters.discord.settings import DiscordSettings

if TYPE_CHECKING:
    from adapters.discord.surface import DiscordSurface
    from bot.app import App

__all__ = ["DiscordSettings", "DiscordSurface", "create"]


def create(
    app: App, settings: DiscordSettings, env: Mapping[str, str], **options: Any
) -> DiscordSurface:
    token = env.get("DISCORD_TOKEN", "")
    if not token:
        raise RuntimeError("DISCORD_TOKEN is not set")
    plan = shards.plan(settings.shard_count, settings.shard_ids, env)
    from adapters.discord.surface import DiscordSurface

    return DiscordSurface(
        app,
        settings,
        token,
        api_url=env.get("DISCORD_API_URL") or settings.api_url,
        gateway_url=env.get("DISCORD_GATEWAY_URL") or settings.gateway_url,
        shards=plan,
        **options,
    )


def __getattr__(name: str) -> Any:
    if name == "DiscordSurface":
        from adapters.discord.surface import DiscordSurface

        return DiscordSurface
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
