"""`itsm-bot run` as a child process on Discord: tests/process.py's BotProcess pointed at a
FakeDiscord (its token and URLs in DISCORD_*), and what reached the fake, per channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes.fake_discord import FakeDiscord
from tests.process import BotProcess


@dataclass
class DiscordBotProcess(BotProcess):
    """A bot connected to Discord alone; `extra_env` may name its shards
    (DISCORD_SHARD_COUNT, DISCORD_SHARD_IDS). Connected once the fake opened a session."""

    fake: FakeDiscord  # type: ignore[assignment]
    token: str = "discord-process-test"

    def platform_env(self) -> dict[str, str]:
        return {
            "DISCORD_TOKEN": self.token,
            "DISCORD_API_URL": self.fake.api_base,
            "DISCORD_GATEWAY_URL": self.fake.gateway_url,
        }


def titles(fake: FakeDiscord, channel_id: int) -> list[str]:
    """The embed title (a feed item's title) of every bot post in a channel, in order."""
    return [_title(m) for m in fake.posts(channel_id)]


def nonces(fake: FakeDiscord, channel_id: int) -> list[str]:
    """The nonce of every bot post in a channel that has one: each once, as Discord's
    dedup of a resent post (enforce_nonce) is what keeps a retry from doubling it."""
    return [str(m["nonce"]) for m in fake.posts(channel_id) if m.get("nonce") is not None]


def _title(message: dict[str, Any]) -> str:
    embeds = message.get("embeds") or []
    return str(embeds[0].get("title", "")) if embeds else str(message.get("content", ""))
