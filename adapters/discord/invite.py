"""The OAuth2 URL that adds the bot to a server, asking only for what it uses."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import discord

SCOPES = ("bot", "applications.commands")


def permissions() -> discord.Permissions:
    """See channels, post and edit its own messages with embeds and files, read back history
    (to find a post after a crash), reply in a thread on its own post (an event's reminders),
    and mirror events as the server's Scheduled Events."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        create_public_threads=True,
        send_messages_in_threads=True,
        manage_events=True,
    )


def application_id(env: Mapping[str, str]) -> int:
    """DISCORD_CLIENT_ID, else the id encoded in the first part of DISCORD_TOKEN."""
    explicit = env.get("DISCORD_CLIENT_ID", "").strip()
    if explicit:
        if not explicit.isdigit():
            raise ValueError("DISCORD_CLIENT_ID must be the application's numeric id")
        return int(explicit)
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise ValueError("Set DISCORD_CLIENT_ID (or DISCORD_TOKEN) to build the invite URL")
    first = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    if not decoded.isdigit():
        raise ValueError("DISCORD_TOKEN does not look like a bot token; set DISCORD_CLIENT_ID")
    return int(decoded)


def invite_url(app_id: int) -> str:
    return discord.utils.oauth_url(app_id, permissions=permissions(), scopes=SCOPES)
