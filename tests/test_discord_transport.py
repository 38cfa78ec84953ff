"""The outbox's Discord transport against the fake: 429 and 5xx retried, refusals final,
posts found again by their marker after a crash, edits, and pings only where intended."""

from __future__ import annotations

import time
from typing import Any

from adapters.discord.transport import marker, nonce
from bot.model import Post, UserRef, mention_tag
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.test_discord_surface import (  # noqa: F401
    VOTE_BUTTONS,
    _endpoints_restored,
    channel_of,
    desk_app,
    logged_in,
)


async def test_channel_post_answered_by_429_is_delivered_once(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    channel = channel_of(fake)
    fake.fail_next("POST", "/channels/*/messages", status=429, retry_after=0.05)
    async with logged_in(app, fake):
        await app.outbox.enqueue(channel, Post(title="New article"), "feed:item:1")
        await app.outbox.enqueue(channel, Post(title="New article"), "feed:item:1")
        assert await app.outbox.drain() == 1
        assert await app.outbox.drain() == 0
    posts = fake.requests_to("POST", f"/channels/{fake.channel_id}/messages")
    assert [r.status for r in posts] == [429, 200]
    assert {r.json["nonce"] for r in posts} == {nonce("feed:item:1")}
    assert all(r.json["enforce_nonce"] is True for r in posts)
    assert [m["embeds"][0]["title"] for m in fake.messages.values()] == ["New article"]
    assert await app.outbox.state("feed:item:1") == "sent"


async def test_server_error_retried_by_the_outbox_and_refusal_is_final(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    channel = channel_of(fake)
    fake.fail_next("POST", "/channels/*/messages", status=503)  # discord.py does not retry 503
    async with logged_in(app, fake):
        await app.outbox.enqueue(channel, Post(text="digest"), "digest:1")
        assert await app.outbox.drain() == 0
        assert await app.outbox.state("digest:1") == "pending"
        clock.advance(600)
        assert await app.outbox.drain() == 1

        fake.fail_next("POST", "/channels/*/messages", status=403)
        await app.outbox.enqueue(channel, Post(text="forbidden"), "digest:2")
        await app.outbox.drain()
        assert await app.outbox.state("digest:2") == "failed"
    assert [m["embeds"][0]["description"].startswith("digest") for m in fake.messages.values()] == [
        True
    ]


async def test_post_in_doubt_after_a_crash_is_found_by_its_marker_not_sent_again(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    channel = channel_of(fake)
    async with logged_in(app, fake) as surface:
        await app.outbox.enqueue(channel, Post(text="event reminder"), "event:9:remind")
        await app.outbox.drain()
        message_id = await app.outbox.message_id("event:9:remind")
        stored = fake.messages[int(message_id)]["embeds"][0]["description"]
        assert stored == "event reminder" + marker("event:9:remind")
        # The process died after Discord accepted the post, before the row was marked sent.
        await app.db.execute(
            "UPDATE outbox SET state = 'sending', message_id = NULL WHERE key = 'event:9:remind'"
        )
        await surface.client.get_partial_messageable(fake.channel_id).send("someone else")
        await app.outbox.recover()  # as the restarted process does
        assert await app.outbox.drain() == 0  # found by its marker: nothing sent
        assert await app.outbox.message_id("event:9:remind") == message_id
        assert await surface.transport.find(channel, "another:key", time.time() - 60) is None
    assert len(fake.requests_to("POST", "/channels/*/messages")) == 2


async def test_a_marker_copied_into_the_text_does_not_pass_for_that_post(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    channel = channel_of(fake)
    forged = f"A feed item that carries another post's marker{marker('feed:item:2')} mid-text"
    async with logged_in(app, fake) as surface:
        await app.outbox.enqueue(channel, Post(text=forged), "feed:item:1")
        await app.outbox.drain()
        since = time.time() - 60
        assert await surface.transport.find(channel, "feed:item:2", since) is None
        found = await surface.transport.find(channel, "feed:item:1", since)
    assert found == await app.outbox.message_id("feed:item:1")


async def test_outbox_edit_changes_the_posted_message(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    channel = channel_of(fake)
    async with logged_in(app, fake):
        await app.outbox.enqueue(channel, Post(text="3 votes", buttons=VOTE_BUTTONS), "poll:1")
        await app.outbox.drain()
        await app.outbox.edit("poll:1", Post(text="4 votes"))
        clock.advance(5)
        await app.outbox.drain()
        message_id = int(await app.outbox.message_id("poll:1"))
    assert fake.messages[message_id]["embeds"][0]["description"] == "4 votes"
    assert fake.messages[message_id]["components"] == []


async def test_mentions_reach_discord_as_allowed_only_for_the_intended_member(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    channel = channel_of(fake)
    member = UserRef("discord", str(fake.guild_id), "555")
    post = Post(text=f"{mention_tag(member)}, your turn. Feed said: <@666> @here", mentions=["555"])
    async with logged_in(app, fake):
        await app.outbox.enqueue(channel, post, "turn:1")
        await app.outbox.drain()
    (req,) = fake.requests_to("POST", "/channels/*/messages")
    assert req.json["content"] == "<@555>"
    assert req.json["allowed_mentions"] == {"parse": [], "users": [555]}
    description = req.json["embeds"][0]["description"]
    assert description.startswith("<@555>, your turn. Feed said: <\u200b@666> @\u200bhere")
