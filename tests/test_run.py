"""`itsm-bot run`'s composition root, end to end: one process on Slack and Discord at once."""

from __future__ import annotations

import asyncio
import gc
import json

import discord

from bot.cli import _run
from tests.conftest import make_config
from tests.fakes.fake_discord import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.fake_slack import FakeSlack, slash_command_payload
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401


async def test_run_serves_slack_and_discord_and_stops_cleanly(
    fake_slack: FakeSlack, fake_discord: FakeDiscord, tmp_path
):
    base_before = discord.http.Route.BASE
    config = make_config(
        {
            "bot": {"database": str(tmp_path / "run.db")},
            "discord": {"guild_id": fake_discord.guild_id},
        }
    )
    env = {
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_APP_TOKEN": "xapp-run",
        "SLACK_API_URL": fake_slack.base_url,
        "DISCORD_TOKEN": "run-token",
        "DISCORD_API_URL": fake_discord.api_base,
        "DISCORD_GATEWAY_URL": fake_discord.gateway_url,
    }
    stop = asyncio.Event()
    gc.unfreeze()
    running = asyncio.create_task(_run(config, ["discord", "slack"], env, stop))
    try:
        await asyncio.wait_for(fake_discord.wait_ready(), 15)
        await fake_slack.wait_connected(timeout=15)
        # Once connected, start-up objects are set aside from full garbage collections.
        for _ in range(100):
            if gc.get_freeze_count():
                break
            await asyncio.sleep(0.05)
        assert gc.get_freeze_count() > 1000
        # Discord got the commands the core declares, synced to the configured guild.
        synced = await fake_discord.wait_for_request("PUT", "/applications/*/guilds/*/commands")
        names = {c["name"] for c in synced[-1].json}
        assert {"help", "feed", "poll", "survey", "event", "justdoit"} <= names
        # A Slack slash command through Socket Mode is acked and answered by the core.
        payload = slash_command_payload("/itsm", "poll", response_url=fake_slack.response_url())
        envelope = await fake_slack.push("slash_commands", payload)
        await fake_slack.wait_ack(envelope, timeout=5)
        [answer] = await fake_slack.wait_for_response(1, timeout=5)
        assert "/poll create" in json.dumps(answer)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)
        gc.unfreeze()
    assert running.exception() is None
    assert discord.http.Route.BASE == base_before  # process-wide settings put back


async def test_a_platform_that_fails_to_start_stops_the_ones_already_running(
    fake_slack: FakeSlack, tmp_path
):
    config = make_config({"bot": {"database": str(tmp_path / "run.db")}})
    env = {
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_APP_TOKEN": "xapp-run",
        "SLACK_API_URL": fake_slack.base_url,
        "DISCORD_TOKEN": "",  # Discord is asked for but has no token
    }
    try:
        await asyncio.wait_for(_run(config, ["slack", "discord"], env, asyncio.Event()), 15)
    except RuntimeError as exc:
        assert "DISCORD_TOKEN" in str(exc)
    else:
        raise AssertionError("run should fail without a Discord token")
    assert fake_slack.connections == 1
    # Slack had connected first; it was disconnected on the way out, not left running.
    try:
        await fake_slack.push("slash_commands", slash_command_payload("/itsm", ""))
    except RuntimeError as exc:
        assert "no" in str(exc).lower()
    else:
        raise AssertionError("the Slack socket should be closed")
