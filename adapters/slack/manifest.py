"""A ready Slack app manifest, generated from the commands the core declares.

Paste it at api.slack.com/apps → Create New App → From a manifest. Slash commands come
from the core's registry (one per top-level command; help is `/itsm`), so the manifest
never drifts from the code.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from adapters.slack.translate import slash_name
from bot import commands as cmd
from bot.app import App, Feature
from bot.clock import SystemClock
from bot.config import CoreConfig
from bot.help import JOBS
from bot.store import Database

BOT_SCOPES = [
    "commands",  # slash commands
    "chat:write",  # post, update, ephemeral replies
    "chat:write.public",  # post to public channels the bot was not invited to
    "users:read",  # workspace admins and owners are moderators
    "usergroups:read",  # members of the configured moderator group
    "files:write",  # charts and exports
    "channels:history",  # find a post again after a crash (public channels)
    "groups:history",  # ... and private ones the bot is in
    "im:write",  # open a member's direct messages (reminders, suggestion outcomes, files)
    "im:history",  # find a direct message again after a crash
    "reactions:read",  # the weekly digest ranks the bot's feed posts by their reactions
    "channels:read",  # a poll's reminder goes to the channel's members who have not voted
    "groups:read",  # ... in private channels too
]
REDIRECT_PATH = "/slack/oauth_redirect"  # where bolt's OAuth flow takes the installer back
URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
COMMAND_LENGTH = 32
DESCRIPTION_LENGTH = 2000
USAGE_HINT_LENGTH = 1000


def registry(config: CoreConfig, features: list[type[Feature]]) -> cmd.Registry:
    """The commands the features declare, from an App that is built but never started.

    The App sits on a throwaway in-memory database that is never migrated or used.
    """

    async def build() -> cmd.Registry:
        db = await Database.open(":memory:")
        try:
            return App(config, db, SystemClock(), features).registry
        finally:
            await db.close()

    return asyncio.run(build())


def slash_commands(commands: cmd.Registry, request_url: str = "") -> list[dict[str, Any]]:
    found = []
    for top in sorted(commands.groups, key=lambda name: (name == "help", name)):
        subs = sorted(p[1] for p in commands.commands if p[0] == top and len(p) > 1)
        if top == "help":
            description, hint = "What the bot can do, or how to use one command", "[command]"
        else:
            description = JOBS.get(top) or commands.groups[top].description
            hint = " | ".join(subs) if subs else _usage_hint(commands.commands.get((top,)))
        entry: dict[str, Any] = {
            "command": "/" + slash_name(top)[: COMMAND_LENGTH - 1],
            "description": description[:DESCRIPTION_LENGTH],
            "should_escape": True,
        }
        if hint:
            entry["usage_hint"] = hint[:USAGE_HINT_LENGTH]
        if request_url:
            entry["url"] = request_url
        found.append(entry)
    return found


def _usage_hint(command: cmd.Command | None) -> str:
    return " ".join(o.placeholder() for o in command.options) if command else ""


def manifest(
    name: str, commands: cmd.Registry, request_url: str = "", distribution: str = ""
) -> dict[str, Any]:
    """The whole manifest; with `request_url` it is for HTTP mode, else Socket Mode. With
    `distribution` (the bot's public address) any workspace may install it by link."""
    interactivity: dict[str, Any] = {"is_enabled": True}
    if request_url:
        interactivity["request_url"] = request_url
    data = {
        "display_information": {
            "name": name[:35],
            "description": "Feeds, survey polls, events and a daily BRM prompt for the community",
            "background_color": "#1d3557",
        },
        "features": {
            "bot_user": {"display_name": name[:80], "always_online": True},
            "slash_commands": slash_commands(commands, request_url),
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": not request_url,
            "token_rotation_enabled": False,
        },
    }
    if distribution:
        _distributed(data, distribution, request_url)
    return data


def _distributed(data: dict[str, Any], base_url: str, request_url: str) -> None:
    """Install by link: Slack sends the installer back to the bot's OAuth redirect, and
    tells the bot when a workspace uninstalls it or revokes its token. One workspace's
    install is one token: no org-wide deploy, no Slack-hosted app, no token rotation."""
    if not URL.fullmatch(base_url):
        raise ValueError(f"{base_url!r} is not the bot's public address (https://host[/path])")
    data["oauth_config"]["redirect_urls"] = [base_url.rstrip("/") + REDIRECT_PATH]
    events: dict[str, Any] = {"bot_events": ["app_uninstalled", "tokens_revoked"]}
    if request_url:
        events["request_url"] = request_url
    data["settings"].update(
        event_subscriptions=events,
        org_deploy_enabled=False,
        is_hosted=False,
        token_rotation_enabled=False,
    )


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
