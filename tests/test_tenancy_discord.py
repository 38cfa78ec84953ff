"""Discord servers added and removed while the bot runs, through discord.py on the fake:
a new server gets its community and one welcome (to whoever the audit log says added the
bot, else the owner, in the system channel when DMs are closed); a removed server's work
waits, its data kept, and goes on when the bot is added back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest_asyncio

from adapters.discord import create
from bot.help import Help
from bot.model import ChannelRef, Post
from bot.tenancy import Tenancy, tenancy_of
from tests.fakes.discord_guilds import GuildsFake
from tests.fakes.fake_discord import pointed_at
from tests.test_discord_surface import env_for

OWNER, ADDER = 900_000_000_000_000_011, 900_000_000_000_000_012
ROLE = "ITSM Moderators"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[GuildsFake]:
    server = await GuildsFake().start()
    try:
        with pointed_at(server):
            yield server
    finally:
        await server.close()


async def eventually(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Wait (up to 20 s: a busy machine) for a gateway event to have been handled; fail
    naming it."""
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


@asynccontextmanager
async def running(make_app: Any, fake: GuildsFake) -> AsyncIterator[Any]:
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0, "moderator_role": ROLE}}
    app = await make_app([Tenancy, Help], config=config)
    surface = create(app, app.config.section("discord"), env_for(fake), guild_ready_timeout=0.1)
    await asyncio.wait_for(surface.start(), 10)
    try:
        yield app
    finally:
        await surface.stop()


async def workspace_row(app: Any, guild_id: int) -> Any:
    return await app.db.fetchone(
        "SELECT w.state, w.added_by, c.state AS community_state, c.left_at FROM"
        " community_workspaces w JOIN communities c ON c.id = w.community_id"
        " WHERE w.platform = 'discord' AND w.workspace = ?",
        (str(guild_id),),
    )


async def joined(app: Any, guild_id: int) -> Any:
    """The new server's row, once its welcome is queued too (the handler writes the
    community, then the welcome: on a slow database the outbox drain could come between)."""

    async def both() -> Any:
        row = await workspace_row(app, guild_id)
        queued = await app.outbox.state(f"welcome:discord:{guild_id}")
        return row if row is not None and queued is not None else None

    return await eventually(both, "the community of the new server and its welcome")


def dm_texts(fake: GuildsFake, user_id: int) -> list[str]:
    dm = fake.dm_channel_of(user_id)
    if dm is None:
        return []
    return [m["embeds"][0]["title"] for m in fake.messages.values() if m["channel_id"] == dm["id"]]


def channel_posts(fake: GuildsFake, channel_id: int) -> list[dict[str, Any]]:
    return [m for m in fake.messages.values() if m["channel_id"] == str(channel_id)]


async def test_a_new_server_gets_its_community_and_one_welcome_for_who_added_the_bot(
    fake: GuildsFake, make_app: Any, clock: Any
) -> None:
    async with running(make_app, fake) as app:
        guild, _ = await fake.add_guild(OWNER, added_by=ADDER, name="itSMF Norway")
        row = await joined(app, guild)
        assert (row["state"], row["added_by"], row["community_state"]) == ("active", str(ADDER), "active")  # fmt: skip
        await app.outbox.drain()
        (audit,) = fake.requests_to("GET", f"/guilds/{guild}/audit-logs")
        assert audit.query["action_type"] == "28"
        assert dm_texts(fake, ADDER) == ["Thanks for adding me to itSMF Norway"]
        assert dm_texts(fake, OWNER) == []  # the adder is told, not the owner
        (welcome,) = [m for m in fake.messages.values() if m["embeds"][0]["title"].startswith("Thanks")]  # fmt: skip
        text = welcome["embeds"][0]["description"]
        assert f'role named "{ROLE}"' in text and "Discord server" in text
        assert "`/help`" in text and "/feed add URL #channel" in text
        # The same server reported again (a resumed session, a restart) welcomes nobody again.
        await fake.dispatch("GUILD_CREATE", fake.extra_guilds[guild])
        await asyncio.sleep(0.2)
        await app.outbox.drain()
    async with running(make_app, fake) as app:
        await fake.dispatch("GUILD_CREATE", {**fake.extra_guilds[guild]})
        await asyncio.sleep(0.2)
        await app.outbox.drain()
        assert dm_texts(fake, ADDER) == ["Thanks for adding me to itSMF Norway"]
        # The server the bot was in from the start was not "joined": no welcome there.
        assert await workspace_row(app, fake.guild_id) is None
        assert dm_texts(fake, fake.owner_user_id) == []


async def test_without_view_audit_log_the_owner_is_welcomed(
    fake: GuildsFake, make_app: Any, clock: Any
) -> None:
    async with running(make_app, fake) as app:
        guild, _ = await fake.add_guild(OWNER, added_by=ADDER, audit_log=False)
        row = await joined(app, guild)
        (refused,) = fake.requests_to("GET", f"/guilds/{guild}/audit-logs")
        assert refused.status == 403
        assert row["added_by"] == str(OWNER)
        await app.outbox.drain()
        assert dm_texts(fake, OWNER) == ["Thanks for adding me to Second Guild"]
        assert dm_texts(fake, ADDER) == []


async def test_closed_dms_put_the_welcome_in_the_system_channel_once(
    fake: GuildsFake, make_app: Any, clock: Any
) -> None:
    fake.closed_dms.add(ADDER)
    async with running(make_app, fake) as app:
        guild, channel = await fake.add_guild(OWNER, added_by=ADDER)
        await joined(app, guild)
        await app.outbox.drain()
        clock.advance(5)
        await app.outbox.drain()
        posted = channel_posts(fake, channel)
        assert [m["embeds"][0]["title"] for m in posted] == ["Thanks for adding me to Second Guild"]
        assert await app.outbox.state(f"welcome:discord:{guild}") == "failed"  # the DM, refused
        assert await app.outbox.state(f"welcome:discord:{guild}:channel") == "sent"


async def test_a_server_without_a_system_channel_and_closed_dms_is_skipped_with_a_log_line(
    fake: GuildsFake, make_app: Any, clock: Any, caplog: Any
) -> None:
    fake.closed_dms.add(ADDER)
    async with running(make_app, fake) as app:
        guild, channel = await fake.add_guild(OWNER, added_by=ADDER, system_channel=False)
        await joined(app, guild)
        await app.outbox.drain()
        assert channel_posts(fake, channel) == []
        assert any("has no channel for it; skipped" in r.getMessage() for r in caplog.records)


async def test_a_removed_server_waits_keeps_its_data_and_goes_on_when_added_back(
    fake: GuildsFake, make_app: Any, clock: Any
) -> None:
    async with running(make_app, fake) as app:
        guild, channel = await fake.add_guild(OWNER, added_by=ADDER)
        await joined(app, guild)
        await app.outbox.drain()
        first = ChannelRef("discord", str(fake.guild_id), str(fake.channel_id))
        second = ChannelRef("discord", str(guild), str(channel))
        await fake.remove_guild(guild)

        async def has_left() -> bool:
            row = await workspace_row(app, guild)
            return row["state"] == "left"

        await eventually(has_left, "the server's removal")
        row = await workspace_row(app, guild)
        assert row["community_state"] == "left" and row["left_at"] is not None
        # Queued before the removal came through: held, not dropped.
        await app.db.execute(
            "INSERT INTO outbox (key, kind, channel, payload, not_before, created_at)"
            " SELECT 'held:1', 'post', ?, payload, not_before, created_at FROM outbox"
            " WHERE key = ?",
            (second.key, f"welcome:discord:{guild}"),
        )
        # Meanwhile a feed item for it is not queued; the other server's still is.
        assert not await app.outbox.enqueue(second, Post(title="feed item"), "feed:9:a")
        assert await app.outbox.enqueue(first, Post(title="other server"), "feed:8:a")
        await app.outbox.drain()
        assert [m["embeds"][0]["title"] for m in channel_posts(fake, fake.channel_id)] == ["other server"]  # fmt: skip
        assert channel_posts(fake, channel) == []
        assert await app.outbox.state("held:1") == "pending"
        assert not tenancy_of(app).is_active("discord", str(guild))

    async with running(make_app, fake) as app:  # a restart keeps it held
        await app.outbox.drain()
        assert channel_posts(fake, channel) == []
        await fake.readd_guild(guild, added_by=ADDER)
        await eventually(lambda: asyncio.sleep(0, tenancy_of(app).is_active("discord", str(guild))), "the return")  # fmt: skip
        row = await workspace_row(app, guild)
        assert (row["state"], row["community_state"], row["left_at"]) == ("active", "active", None)
        await app.outbox.drain()
        titles = [m["embeds"][0]["title"] for m in channel_posts(fake, channel)]
        assert titles == ["Thanks for adding me to Second Guild"]  # the held post, sent now
        assert await app.outbox.state("held:1") == "sent"
        assert await app.outbox.state("feed:9:a") == "failed"  # never sent late
        assert dm_texts(fake, ADDER) == ["Thanks for adding me to Second Guild"]  # not twice


async def test_a_server_added_back_while_the_bot_was_down_resumes_at_start(
    fake: GuildsFake, make_app: Any, clock: Any
) -> None:
    async with running(make_app, fake) as app:
        guild, channel = await fake.add_guild(OWNER, added_by=ADDER)
        await joined(app, guild)
        await app.outbox.drain()
        await fake.remove_guild(guild)
        await eventually(lambda: asyncio.sleep(0, not tenancy_of(app).is_active("discord", str(guild))), "the removal")  # fmt: skip
        second = ChannelRef("discord", str(guild), str(channel))
        await app.db.execute(
            "INSERT INTO outbox (key, kind, channel, payload, not_before, created_at)"
            " SELECT 'held:1', 'post', ?, payload, not_before, created_at FROM outbox"
            " WHERE key = ?",
            (second.key, f"welcome:discord:{guild}"),
        )
    await fake.readd_guild(guild)  # nobody is connected to hear it
    async with running(make_app, fake) as app:
        await eventually(lambda: asyncio.sleep(0, tenancy_of(app).is_active("discord", str(guild))), "the resume")  # fmt: skip
        assert (await workspace_row(app, guild))["state"] == "active"
        # Came back as available (not joined): the audit log was read once, at the join.
        assert len(fake.requests_to("GET", f"/guilds/{guild}/audit-logs")) == 1
        await app.outbox.drain()
        assert await app.outbox.state("held:1") == "sent"
        assert dm_texts(fake, ADDER) == ["Thanks for adding me to Second Guild"]  # once


async def test_a_server_outage_is_not_a_removal(
    fake: GuildsFake, make_app: Any, clock: Any, caplog: Any
) -> None:
    async with running(make_app, fake) as app:
        guild, _ = await fake.add_guild(OWNER, added_by=ADDER)
        await joined(app, guild)
        await fake.dispatch("GUILD_DELETE", {"id": str(guild), "unavailable": True})
        await fake.dispatch("GUILD_CREATE", {**fake.extra_guilds[guild], "unavailable": False})
        await fake.remove_guild(guild)  # then removed for real: the events came in order
        await eventually(lambda: asyncio.sleep(0, not tenancy_of(app).is_active("discord", str(guild))), "the removal")  # fmt: skip
        assert len(fake.requests_to("GET", f"/guilds/{guild}/audit-logs")) == 1  # no new join
        told = [r.getMessage() for r in caplog.records if r.name == "bot.tenancy"]
        assert [m for m in told if m.startswith("left ")] == [
            f"left discord workspace {guild} (community 1): its work waits, its data is kept"
        ]  # once, for the removal: the outage before it left nothing
