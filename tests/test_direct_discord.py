"""Direct messages on Discord: the DM channel is got once, then posted to, edited and searched
like a channel; a member who does not accept DMs (50007) fails that post only, unretried."""

from __future__ import annotations

import logging
import time
from typing import Any

from adapters.discord.transport import marker
from bot.model import ChannelRef, Post, UserRef
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.test_discord_surface import (  # noqa: F401
    _endpoints_restored,
    channel_of,
    desk_app,
    logged_in,
)

ANA_ID, BEN_ID = 900_000_000_000_000_001, 900_000_000_000_000_002


def direct(fake: FakeDiscord, user_id: int) -> ChannelRef:
    return ChannelRef.direct(UserRef("discord", str(fake.guild_id), str(user_id)))


async def test_dm_channel_is_opened_once_and_posts_go_there(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    async with logged_in(app, fake):
        await app.outbox.enqueue(direct(fake, ANA_ID), Post(text="first"), "dm:1")
        await app.outbox.drain()
        clock.advance(5)
        await app.outbox.enqueue(direct(fake, ANA_ID), Post(text="second"), "dm:2")
        await app.outbox.drain()
    (opened,) = fake.requests_to("POST", "/users/@me/channels")
    assert opened.json == {"recipient_id": ANA_ID}
    dm_id = fake.dm_channel_of(ANA_ID)["id"]
    in_dm = [m for m in fake.messages.values() if m["channel_id"] == dm_id]
    assert [m["embeds"][0]["description"] for m in in_dm] == [
        "first" + marker("dm:1"),
        "second" + marker("dm:2"),
    ]
    assert await app.outbox.message_id("dm:1") == in_dm[0]["id"]


async def test_dm_is_edited_and_found_again_in_its_channel(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    app = await desk_app(make_app, fake)
    ana = direct(fake, ANA_ID)
    async with logged_in(app, fake) as surface:
        await app.outbox.enqueue(ana, Post(text="v1"), "dm:1")
        await app.outbox.drain()
        message_id = await app.outbox.message_id("dm:1")
        # A post in doubt after a crash is looked for in the DM, by its marker.
        since = time.time() - 60
        assert await surface.transport.find(ana, "dm:1", since) == message_id
        assert await surface.transport.find(ana, "dm:other", since) is None
        await app.outbox.edit("dm:1", Post(text="v2"))
        clock.advance(5)
        await app.outbox.drain()
    assert fake.messages[int(message_id)]["embeds"][0]["description"] == "v2"


async def test_member_who_refuses_dms_fails_that_post_only_and_is_not_retried(
    fake_discord: FakeDiscord, make_app: Any, clock: Any, caplog: Any
) -> None:
    fake = fake_discord
    fake.closed_dms.add(ANA_ID)
    app = await desk_app(make_app, fake)
    channel = channel_of(fake)
    async with logged_in(app, fake):
        with caplog.at_level(logging.ERROR, logger="bot.outbox"):
            await app.outbox.enqueue(direct(fake, ANA_ID), Post(text="to ana"), "dm:ana")
            await app.outbox.enqueue(direct(fake, BEN_ID), Post(text="to ben"), "dm:ben")
            await app.outbox.enqueue(channel, Post(text="to all"), "chan:1")
            await app.outbox.drain()
            clock.advance(3600)
            await app.outbox.drain()
    assert await app.outbox.state("dm:ana") == "failed"
    assert await app.outbox.state("dm:ben") == "sent"
    assert await app.outbox.state("chan:1") == "sent"
    ana_dm = fake.dm_channel_of(ANA_ID)["id"]
    assert len(fake.requests_to("POST", f"/channels/{ana_dm}/messages")) == 1  # never retried
    assert "does not accept DMs" in caplog.text and "dm:ana" in caplog.text
