"""The feeds on Slack and Discord for the interval and ping tests: the bot with /feed only,
real slack-bolt (HTTP mode, signed requests) and real discord.py against the fakes, feeds
served locally. A moderator types the command as each platform sends it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord

from adapters.discord import create as create_discord
from adapters.slack import create as create_slack
from bot.app import App
from bot.feeds import Feeds
from bot.help import Help
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_slack import FakeSlack, signed_headers, slash_command_body

SECRET = "test-signing-secret"
FEEDS = {"allow_private": True, "timeout": 2, "per_channel_cap": 50, "jitter": 0}
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)
# Discord's option types (application command option type numbers).
SUB_COMMAND, STRING, INTEGER, BOOLEAN, ROLE = 1, 3, 4, 5, 8


class SlackBot:
    def __init__(self, app: App, surface: Any, fake: FakeSlack, session: aiohttp.ClientSession):
        self.app, self.surface, self.fake, self.session = app, surface, fake, session

    async def command(self, text: str, user: str = "UMOD") -> dict[str, Any]:
        """`/feed text` as Slack sends it; the answer the bot gave through response_url."""
        before = len(self.fake.responses)
        body = slash_command_body("/feed", text, user, response_url=self.fake.response_url())
        headers = signed_headers(SECRET, body, timestamp=int(time.time()))
        url = f"http://127.0.0.1:{self.surface.port}/slack/events"
        request = self.session.post(url, data=body.encode(), headers=headers)
        async with await asyncio.wait_for(request, timeout=3) as response:
            assert response.status == 200
        return (await self.fake.wait_for_response(before + 1))[-1]

    def posts(self) -> list[dict[str, Any]]:
        """What the bot posted in channels (chat.postMessage calls), in order."""
        return self.fake.calls_to("chat.postMessage")


@asynccontextmanager
async def slack_bot(make_app: Any, fake: FakeSlack) -> AsyncIterator[SlackBot]:
    config = {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0, "pace": 0}, "feeds": FEEDS}
    app = await make_app([Help, Feeds], config=config)
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.base_url,
           "SLACK_SIGNING_SECRET": SECRET}  # fmt: skip
    fake.users["UMOD"] = {"is_admin": True}
    surface = create_slack(app, app.config.section("slack"), env)
    await surface.start()
    async with aiohttp.ClientSession() as session:
        try:
            yield SlackBot(app, surface, fake, session)
        finally:
            await surface.stop()


class DiscordBot:
    def __init__(self, app: App, surface: Any, fake: FakeDiscord) -> None:
        self.app, self.surface, self.fake = app, surface, fake

    async def feed(
        self, verb: str, role: dict[str, Any] | None = None, **options: str | int | bool
    ) -> str:
        """`/feed verb` with options typed as Discord types them (and a role option `ping`,
        resolved as Discord resolves it); the text of the bot's answer."""
        typed: list[dict[str, Any]] = [
            {"name": k, "type": _type(v), "value": v} for k, v in options.items()
        ]
        if role is not None:
            typed.append({"name": "ping", "type": ROLE, "value": role["id"]})
        payload = self.fake.slash_payload(
            "feed", [{"type": SUB_COMMAND, "name": verb, "options": typed}],
            permissions=MANAGE_GUILD,
        )  # fmt: skip
        if role is not None:
            payload["data"]["resolved"] = {"roles": {role["id"]: role}}
        self.surface.client._connection.parse_interaction_create(payload)
        body = await self.fake.wait_interaction_response(payload["id"], timeout=5.0)
        return str(body)

    def posts(self) -> list[dict[str, Any]]:
        """The bodies of the bot's channel posts (REST), in order."""
        path = f"/channels/{self.fake.channel_id}/messages"
        return [r.json for r in self.fake.requests_to("POST", path) if r.status == 200]


def _type(value: str | int | bool) -> int:
    if isinstance(value, bool):
        return BOOLEAN
    return INTEGER if isinstance(value, int) else STRING


@asynccontextmanager
async def discord_bot(make_app: Any, fake: FakeDiscord) -> AsyncIterator[DiscordBot]:
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0, "defer_after": 2.5}, "feeds": FEEDS}  # fmt: skip
    app = await make_app([Help, Feeds], config=config)
    env = {"DISCORD_TOKEN": "fake-token", "DISCORD_API_URL": fake.api_base,
           "DISCORD_GATEWAY_URL": fake.gateway_url}  # fmt: skip
    surface = create_discord(app, app.config.section("discord"), env, guild_ready_timeout=0.1)
    await surface.login()
    try:
        yield DiscordBot(app, surface, fake)
    finally:
        await surface.stop()
