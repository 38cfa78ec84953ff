"""Slack surface: `create(app, settings, env)` builds it; `start()` / `stop()` run it.

Importing this package costs nothing: slack-bolt and slack-sdk are imported by `create`
(from `adapters.slack.setup`), so reading the `[slack]` settings, or running on Discord
alone, never loads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.slack.settings import SlackSettings
    from adapters.slack.surface import SlackSurface
    from bot.app import App

__all__ = ["SlackSurface", "create"]


def create(
    app: App, settings: SlackSettings, env: Mapping[str, str], **options: Any
) -> SlackSurface:
    from adapters.slack.setup import create as build

    return build(app, settings, env, **options)


def __getattr__(name: str) -> Any:
    if name == "SlackSurface":
        from adapters.slack.surface import SlackSurface

        return SlackSurface
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
