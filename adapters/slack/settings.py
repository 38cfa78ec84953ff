"""The `[slack]` configuration section (no SDK import: read before connecting)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.config import Section


class SlackSettings(Section):
    mode: Literal["socket", "http"] = "socket"
    port: int = Field(default=3000, ge=1, le=65535)
    api_url: str = "https://slack.com/api/"
    moderator_users: list[str] = []  # user ids (U...) treated as moderators
    moderator_group: str = ""  # a user group id (S...) whose members are moderators
    pace: float = Field(default=1.0, ge=0)  # seconds between two posts in one channel
