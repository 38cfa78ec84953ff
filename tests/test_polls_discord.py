"""A poll on Discord: real discord.py against the fake Discord, interactions fed to its parser."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from adapters.discord import create
from bot.help import Help
from bot.polls import Polls, Surveys
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)


@asynccontextmanager
async def discord_bot(make_app: Any, fake: FakeDiscord) -> AsyncIterator[Any]:
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0}}
    app = await make_app([Help, Polls, Surveys], config=config)
    env = {
        "DISCORD_TOKEN": "fake-token",
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    surface = create(app, app.config.section("discord"), env, guild_ready_timeout=0.1)
    await surface.login()
    try:
        yield app, surface
    finally:
        await surface.stop()


def feed(surface: Any, payload: dict[str, Any]) -> None:
    surface.client._connection.parse_interaction_create(payload)


async def interact(fake: FakeDiscord, surface: Any, payload: dict[str, Any]) -> dict[str, Any]:
    feed(surface, payload)
    return await fake.wait_interaction_response(payload["id"], timeout=3.0)


def said(body: dict[str, Any]) -> str:
    data = body.get("data") or {}
    parts = [data.get("content") or ""]
    for embed in data.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
    return "\n".join(parts)


async def test_a_poll_on_discord_votes_change_and_close(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        options = [
            {"name": "question", "type": 3, "value": "Which practice needs most love?"},
            {"name": "choices", "type": 3, "value": "Incident | Change | Problem"},
        ]
        create_poll = fake.slash_payload(
            "poll", [{"type": 1, "name": "create", "options": options}], user_id=4242
        )
        body = await interact(fake, surface, create_poll)
        assert body["data"]["flags"] & 64 and "Poll #1 is posted" in said(body)
        assert await app.outbox.drain() == 1
        message_id = int(
            await app.outbox.message_id(f"poll:1:discord:{fake.guild_id}:{fake.channel_id}")
        )
        ids = [c["custom_id"] for c in fake.messages[message_id]["components"][0]["components"]]
        assert ids == ["itsm:poll.vote:1:0", "itsm:poll.vote:1:1", "itsm:poll.vote:1:2"]

        vote = await interact(fake, surface, fake.component_payload(ids[0], message_id, user_id=77))
        assert vote["data"]["flags"] & 64 and "You voted **Incident**" in said(vote)
        await interact(fake, surface, fake.component_payload(ids[2], message_id, user_id=78))
        change = await interact(
            fake, surface, fake.component_payload(ids[2], message_id, user_id=77)
        )
        assert "changed your vote" in said(change)

        await app.features["poll"].refresher.flush()
        clock.advance(5)
        await app.outbox.drain()
        shown = fake.messages[message_id]["embeds"][0]["description"]
        assert "**Problem**  `██████████` 2 · 100%" in shown

        # A click racing the close: sent while the buttons were still showing.
        racing = copy.deepcopy(fake.component_payload(ids[0], message_id, user_id=79))
        close = fake.slash_payload(
            "poll", [{"type": 1, "name": "close", "options": [{"name": "id", "type": 4, "value": 1}]}],
            user_id=4242,
        )  # fmt: skip
        assert "is closed" in said(await interact(fake, surface, close))
        clock.advance(5)
        await app.outbox.drain()
        assert fake.messages[message_id]["components"] == []
        late = await interact(fake, surface, racing)
        assert "Poll #1 is closed" in said(late)
    results = [
        m
        for m in fake.messages.values()
        if m.get("embeds") and "Results" in m["embeds"][0].get("title", "")
    ]
    assert len(results) == 1 and results[0]["attachments"][0]["filename"] == "poll-1.png"
    assert await app.features["poll"].store.tallies(1) == {"q": {2: 2}}
