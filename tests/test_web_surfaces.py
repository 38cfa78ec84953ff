"""`/web` on Slack and Discord: a private one-time link, for the member and community it was
asked in, with the moderator's rights only for a moderator of that platform."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import discord

from adapters.discord import create as create_discord
from adapters.slack import create as create_slack
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import FakeSlack, signed_headers, slash_command_body
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.web import WEB, sign_in_link

SECRET = "test-signing-secret"
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)


async def signed_in_page(link: str) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(link) as response:  # follows to the first page
            assert response.status == 200
            return await response.text()


async def slack_web(make_app: Any, fake: FakeSlack, user: str) -> str:
    config = {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0}, "web": WEB}
    app = await make_app(config=config)
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.base_url, "SLACK_SIGNING_SECRET": SECRET}  # fmt: skip
    surface = create_slack(app, app.config.section("slack"), env)
    await surface.start()
    try:
        body = slash_command_body("/web", "", user, response_url=fake.response_url())
        headers = signed_headers(SECRET, body, timestamp=int(time.time()))
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{surface.port}/slack/events"
            async with session.post(url, data=body.encode(), headers=headers) as response:
                assert response.status == 200
        answer = (await fake.wait_for_response(1))[-1]
        assert answer["response_type"] == "ephemeral"
        return sign_in_link(str(answer))
    finally:
        await surface.stop()


async def test_slack_web_gives_an_admin_a_private_moderators_link(make_app, fake_slack):
    fake_slack.users["UADMIN"] = {"is_admin": True}
    link = await slack_web(make_app, fake_slack, "UADMIN")
    html = await signed_in_page(link)
    assert "(moderator)" in html and "Add a feed" in html
    assert "slack:" in html  # the community of the workspace it was asked in


async def test_slack_web_gives_a_member_a_read_only_link(make_app, fake_slack):
    link = await slack_web(make_app, fake_slack, "U5")
    html = await signed_in_page(link)
    assert "read only" in html and "Add a feed" not in html


async def discord_web(make_app: Any, fake: FakeDiscord, user_id: int, permissions: str) -> dict:
    """`/web` typed on Discord by a member with these permissions: the interaction's answer."""
    app = await make_app(config={"discord": {"guild_id": fake.guild_id, "pace": 0}, "web": WEB})
    env = {"DISCORD_TOKEN": "fake-token", "DISCORD_API_URL": fake.api_base, "DISCORD_GATEWAY_URL": fake.gateway_url}  # fmt: skip
    surface = create_discord(app, app.config.section("discord"), env, guild_ready_timeout=0.1)
    await surface.login()
    try:
        payload = fake.slash_payload("web", [], user_id=user_id, permissions=permissions)
        surface.client._connection.parse_interaction_create(payload)
        return await fake.wait_interaction_response(payload["id"], timeout=3.0)
    finally:
        await surface.stop()


async def test_discord_web_answers_privately_with_a_link_for_that_guild(
    make_app, fake_discord: FakeDiscord
):
    body = await discord_web(make_app, fake_discord, 4242, MANAGE_GUILD)
    assert body["data"]["flags"] & 64
    html = await signed_in_page(sign_in_link(str(body["data"])))
    assert "(moderator)" in html and f"discord:{fake_discord.guild_id}" in html  # its community


async def test_discord_web_without_manage_server_gives_a_read_only_link(
    make_app, fake_discord: FakeDiscord
):
    body = await discord_web(make_app, fake_discord, 77, "0")
    html = await signed_in_page(sign_in_link(str(body["data"])))
    assert "read only" in html and "Add a feed" not in html
