"""Slack surface: `create(app, settings, env)` builds it; `start()` / `stop()` run it."""

from __future__ import annotations

from adapters.slack.surface import SlackSurface, create

__all__ = ["SlackSurface", "create"]
