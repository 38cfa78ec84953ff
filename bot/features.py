"""The bot's features, in the order they start. An explicit list: no plugin discovery."""

from __future__ import annotations

from bot.app import Feature
from bot.help import Help


def all_features() -> list[type[Feature]]:
    return [Help]
