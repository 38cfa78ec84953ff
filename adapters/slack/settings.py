"""The `[slack]` configuration section (no SDK import: read before connecting)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from bot.config import Section


class SlackSettings(Section):
    mode: Literal["socket", "http"] = "socket"  # socket needs SLACK_APP_TOKEN; http a secret
    host: str = "0.0.0.0"  # HTTP mode: the address to listen on
    port: Annotated[int, Meta(ge=0, le=65535)] = 3000  # HTTP mode; $PORT wins; 0 = any free port
    path: str = "/slack/events"  # HTTP mode: request URL path for commands and interactivity
    api_url: str = "https://slack.com/api/"  # $SLACK_API_URL wins
    moderator_users: list[str] = []  # user ids (U...) treated as moderators
    moderator_group: str = ""  # a user group id (S...) whose members are moderators
    moderator_cache: Annotated[float, Meta(ge=0)] = 300.0  # seconds a moderator check is reused
    pace: Annotated[float, Meta(ge=0)] = 1.0  # seconds between two posts in one channel
    rate_limit_wait: Annotated[float, Meta(ge=0)] = 5.0  # wait out a 429 this short in place
    # Install by link: any workspace installs the bot through /slack/install (OAuth v2),
    # each with its own bot token, kept encrypted in the database (adapters/slack/distribution.py).
    distribution: bool = False
    client_id: str = ""  # the app's Client ID (Basic Information); $SLACK_CLIENT_ID wins
