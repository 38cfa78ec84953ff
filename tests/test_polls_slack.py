"""A poll on Slack: real slack-bolt in HTTP mode with signed requests, against the fake Slack."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from adapters.slack import create
from bot.help import Help
from bot.polls import Polls, Surveys
from tests.fakes.fake_slack import (
    FakeSlack,
    block_actions_payload,
    interaction_body,
    signed_headers,
    slash_command_body,
)
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401

SECRET = "test-signing-secret"


def shown(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


def controls(message: dict) -> list[dict]:
    """The interactive elements of a Block Kit message, in order."""
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


class Slack:
    def __init__(self, app, surface, fake: FakeSlack, session: aiohttp.ClientSession) -> None:
        self.app, self.surface, self.fake, self.session = app, surface, fake, session

    async def post(self, body: str) -> int:
        headers = signed_headers(SECRET, body, timestamp=int(time.time()))
        url = f"http://127.0.0.1:{self.surface.port}/slack/events"
        request = self.session.post(url, data=body.encode(), headers=headers)
        async with await asyncio.wait_for(request, timeout=3) as response:
            return response.status

    async def command(self, top: str, text: str, user: str = "U1") -> dict:
        before = len(self.fake.responses)
        url = self.fake.response_url()
        assert await self.post(slash_command_body(f"/{top}", text, user, response_url=url)) == 200
        return (await self.fake.wait_for_response(before + 1))[-1]

    async def click(
        self, action_id: str, value: str, user: str, ts: str, ephemeral: bool = False
    ) -> dict:
        before = len(self.fake.responses)
        payload = block_actions_payload(
            action_id, value, user_id=user, message_ts=ts, response_url=self.fake.response_url()
        )
        payload["container"]["is_ephemeral"] = ephemeral  # a click on a member's own card
        assert await self.post(interaction_body(payload)) == 200
        return (await self.fake.wait_for_response(before + 1))[-1]


@pytest.fixture
async def slack(make_app, fake_slack: FakeSlack) -> AsyncIterator[Slack]:
    async with slack_bot(make_app, fake_slack, [Help, Polls, Surveys]) as bot:
        yield bot


@asynccontextmanager
async def slack_bot(make_app, fake_slack: FakeSlack, features: list) -> AsyncIterator[Slack]:
    """The bot with `features` on Slack (slack-bolt in HTTP mode, signed requests) against
    the fake."""
    config = {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0}}
    app = await make_app(features, config=config)
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": fake_slack.base_url,
        "SLACK_SIGNING_SECRET": SECRET,
    }
    surface = create(app, app.config.section("slack"), env)
    await surface.start()
    async with aiohttp.ClientSession() as session:
        try:
            yield Slack(app, surface, fake_slack, session)
        finally:
            await surface.stop()


async def test_a_poll_on_slack_votes_change_and_close(slack: Slack, clock) -> None:
    answer = await slack.command("poll", 'create "Which practice needs most love?" Incident Change')
    assert answer["response_type"] == "ephemeral" and "Poll #1 is posted" in answer["text"]
    await slack.app.outbox.drain()
    (posted,) = slack.fake.calls_to("chat.postMessage")
    buttons = controls(posted)
    assert [b["value"] for b in buttons] == ["1:0", "1:1"]
    ts = slack.fake.messages["C1"][0]["ts"]

    voted = await slack.click(buttons[0]["action_id"], buttons[0]["value"], "U5", ts)
    assert voted["response_type"] == "ephemeral" and "You voted" in shown(voted)
    await slack.click(buttons[1]["action_id"], buttons[1]["value"], "U6", ts)
    changed = await slack.click(buttons[1]["action_id"], buttons[1]["value"], "U5", ts)
    assert "changed your vote" in shown(changed)

    await slack.app.features["poll"].refresher.flush()
    clock.advance(5)
    await slack.app.outbox.drain()
    (update,) = slack.fake.calls_to("chat.update")
    assert update["ts"] == ts and "2 · 100%" in shown(update["blocks"])

    closed = await slack.command("poll", "close 1", user="U1")
    assert "is closed" in shown(closed)
    clock.advance(5)
    await slack.app.outbox.drain()
    posts = shown(slack.fake.calls_to("chat.postMessage"))
    assert "Results: Which practice needs most love?" in posts
    late = await slack.click(buttons[0]["action_id"], buttons[0]["value"], "U7", ts)
    assert "Poll #1 is closed" in shown(late)
    assert await slack.app.features["poll"].store.tallies(1) == {"q": {1: 2}}


async def test_a_survey_on_slack_answered_in_private(slack: Slack) -> None:
    slack.fake.users["U9"] = {"is_admin": True}
    started = await slack.command("survey", "start community", user="U9")
    assert "survey is open" in shown(started)
    await slack.app.outbox.drain()
    (invite,) = slack.fake.calls_to("chat.postMessage")
    (take,) = controls(invite)
    ts = slack.fake.messages["C1"][0]["ts"]
    first = await slack.click(take["action_id"], take["value"], "U5", ts)
    assert first["response_type"] == "ephemeral" and "1/5" in shown(first)
    yes = next(e for e in controls(first) if e.get("value") == "1:exists:0")
    card_ts = "1700000001.000100"  # the member's ephemeral card
    second = await slack.click(yes["action_id"], yes["value"], "U5", card_ts, ephemeral=True)
    assert second["replace_original"] is True and "2/5" in shown(second)
    assert (await slack.app.features["survey"].store.tallies(1))["exists"] == {0: 1}


async def test_a_poll_export_reaches_the_member_as_a_file_in_their_direct_messages(
    slack: Slack,
) -> None:
    await slack.command("poll", 'create "Which practice?" Incident Change', user="U1")
    await slack.app.outbox.drain()
    answer = await slack.command("poll", "export 1", user="U1")
    assert "as CSV" in shown(answer)
    await asyncio.wait_for(slack.surface.settled(), timeout=5)
    (opened,) = slack.fake.calls_to("conversations.open")
    assert opened["users"] == "U1"
    (csv_file,) = [f for f in slack.fake.uploads.values() if f.completed]
    assert csv_file.filename == "poll-1.csv" and csv_file.channel_id == "DU1"
    assert csv_file.data is not None and b"Incident" in csv_file.data
