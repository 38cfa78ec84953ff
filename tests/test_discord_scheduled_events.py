"""Events mirrored as Discord Scheduled Events: real discord.py, connected to the fake's
gateway, commands and "Interested" clicks arriving as Discord sends them.

Created when an event is announced, changed by /event edit, cancelled by /event cancel;
a member's "Interested" in Discord's own UI is an RSVP of "interested" (and taking it back
removes it); without Manage Events the announcement still goes out and the mirror is
skipped with one log line; a lost answer or a restart neither loses nor doubles it; a
series' mirror moves on to its next date.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest

from adapters.discord import create
from adapters.discord.client import intents
from adapters.discord.scheduled_events import payload
from adapters.discord.transport import marker
from bot.events import Events
from bot.events.mirror import INTEREST_ACTION, NativeEvent, native_event
from bot.help import Help
from bot.model import Action, UserRef
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.test_discord_surface import _endpoints_restored, channel_of, env_for  # noqa: F401

START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)  # the test clock starts 2026-11-23 09:00
MODERATOR = str(discord.Permissions(manage_guild=True).value)
MEMBER = 4242
WAIT = 5.0


@asynccontextmanager
async def discord_bot(
    make_app: Any, fake: FakeDiscord, clock: Any, db: str = "bot.db", **discord_cfg: Any
) -> AsyncIterator[Any]:
    """An app with events on the fake, connected to its gateway; Discord's "now" is the
    test clock's."""
    fake.guild_events.now = clock.now
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0, **discord_cfg}}
    app = await make_app([Help, Events], config=config, db=db)
    surface = create(app, app.config.section("discord"), env_for(fake), guild_ready_timeout=0.1)
    await asyncio.wait_for(surface.start(), WAIT)
    try:
        yield app
    finally:
        await surface.stop()


def command(fake: FakeDiscord, sub: str, **values: Any) -> dict[str, Any]:
    """INTERACTION_CREATE for `/event SUB key=value…` from a moderator."""
    options = [
        {"name": k, "type": 4 if isinstance(v, int) else 3, "value": v} for k, v in values.items()
    ]
    return fake.slash_payload(
        "event", [{"type": 1, "name": sub, "options": options}], permissions=MODERATOR
    )


async def run(fake: FakeDiscord, payload: dict[str, Any]) -> str:
    """Send a command through the gateway; what the bot answered."""
    await fake.send_interaction(payload)
    body = await fake.wait_interaction_response(payload["id"], timeout=WAIT)
    data = body.get("data") or {}
    texts = [data.get("content") or ""]
    texts += [e.get("description") or "" for e in data.get("embeds") or []]
    return "\n".join(texts)


async def mirrored(app: Any) -> list[str]:
    """A second later, run what is due (the mirror's job among it); the outcomes."""
    app.clock.advance(1)
    return [outcome for _, outcome in await app.scheduler.run_due()]


async def until(check: Callable[[], Any], what: str) -> None:
    """Wait for the bot to have handled a gateway event (no timing is asserted)."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def add_seminar(app: Any, fake: FakeDiscord, **extra: Any) -> None:
    said = await run(fake, command(
        fake, "add", title="ITSM Seminar", start="2026-12-05 09:00", end="2026-12-05 12:30",
        tz="UTC", location="Manchester Central", url="https://example.org/book",
        description="Practices and people.", **extra,
    ))  # fmt: skip
    assert "#1" in said, said
    assert await app.outbox.drain() == 1


async def test_an_event_is_mirrored_on_announce_edited_and_cancelled(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)
        assert await mirrored(app) == ["done"]
        (native,) = fake.scheduled_events
        assert native["entity_type"] == 3 and native["privacy_level"] == 2
        assert native["entity_metadata"] == {"location": "Manchester Central"}
        assert native["name"] == "ITSM Seminar" and native["channel_id"] is None
        assert datetime.fromisoformat(native["scheduled_start_time"]) == START
        end = datetime.fromisoformat(native["scheduled_end_time"])
        assert end == START + timedelta(hours=3, minutes=30)
        assert "Practices and people." in native["description"]
        assert "Booking: https://example.org/book" in native["description"]
        # The announcement is untouched by it: posted once, in the channel.
        assert len(fake.posts(fake.channel_id)) == 1

        said = await run(fake, command(fake, "edit", id=1, title="ITSM Seminar (moved)",
                                       location="Leeds", start="2026-12-06 10:00",
                                       end="2026-12-06 13:00"))  # fmt: skip
        assert "#1" in said, said
        assert await mirrored(app) == ["done"]
        (edited,) = fake.scheduled_events
        assert edited["id"] == native["id"] and edited["name"] == "ITSM Seminar (moved)"
        assert edited["entity_metadata"] == {"location": "Leeds"}
        assert datetime.fromisoformat(edited["scheduled_start_time"]) == datetime(
            2026, 12, 6, 10, 0, tzinfo=UTC
        )
        assert edited["status"] == 1

        await run(fake, command(fake, "cancel", id=1))
        assert await mirrored(app) == ["done"]
        (cancelled,) = fake.scheduled_events
        assert cancelled["id"] == native["id"] and cancelled["status"] == 4
        # Nothing more to do: another run changes nothing on Discord.
        await app.features["event"].service.mirror.request(1)
        writes = len(fake.requests_to("PATCH", f"/guilds/{fake.guild_id}/scheduled-events/*"))
        assert await mirrored(app) == ["done"]
    patches = fake.requests_to("PATCH", f"/guilds/{fake.guild_id}/scheduled-events/*")
    assert len(patches) == writes == 2 and patches[1].json == {"status": 4}
    assert len(fake.requests_to("POST", f"/guilds/{fake.guild_id}/scheduled-events")) == 1


async def test_interested_on_discord_is_an_rsvp_and_taking_it_back_removes_it(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)
        await mirrored(app)
        (native,) = fake.scheduled_events
        store = app.features["event"].service.store

        async def interested() -> int:
            return (await store.counts(1)).interested

        await fake.guild_events.interested(native["id"], fake.bot_user_id)  # the bot: ignored
        await fake.guild_events.interested(native["id"], MEMBER)
        await until(lambda: _is(interested, 1), "the member to be interested")
        (rsvp,) = await store.rsvps(1)
        assert rsvp.member == UserRef("discord", str(fake.guild_id), str(MEMBER), "User 4242")
        assert rsvp.status == "interested"

        async def shown() -> bool:  # the announcement's edit is queued once it is counted
            clock.advance(5)
            await app.outbox.drain()
            message = fake.posts(fake.channel_id)[0]
            return "0 going · 1 interested" in message["embeds"][0]["description"]

        await until(shown, "the announcement to count the member")

        await fake.guild_events.interested(native["id"], MEMBER, added=False)
        await until(lambda: _is(interested, 0), "the interest to be taken back")
        assert await store.rsvps(1) == []

        # A member going stays going: Discord's "Interested" says less.
        going = UserRef("discord", str(fake.guild_id), "77", "Going member")
        event = await store.get(1)
        await app.features["event"].service.answer(event, going, "going", notify=True)
        await fake.guild_events.interested(native["id"], 77)
        await fake.guild_events.interested(native["id"], MEMBER)  # then one that counts
        await until(lambda: _is(interested, 1), "the second member to be interested")
        assert {r.member.user: r.status for r in await store.rsvps(1)} == {
            "77": "going",
            str(MEMBER): "interested",
        }
        await fake.guild_events.interested(native["id"], 77, added=False)
        await fake.guild_events.interested(native["id"], MEMBER, added=False)
        await until(lambda: _is(interested, 0), "the second interest to be taken back")
        assert [(r.member.user, r.status) for r in await store.rsvps(1)] == [("77", "going")]


async def _is(read: Callable[[], Any], wanted: Any) -> bool:
    return await read() == wanted


async def test_without_manage_events_the_announcement_posts_and_the_mirror_is_skipped(
    fake_discord: FakeDiscord, make_app: Any, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_discord
    fake.guild_events.manage_events = False
    caplog.set_level(logging.INFO, logger="bot.events.mirror")
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)
        assert await mirrored(app) == ["done"]  # the job itself does not fail
        assert fake.scheduled_events == []
        assert len(fake.posts(fake.channel_id)) == 1
        refused = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(refused) == 1 and "not mirrored" in refused[0].getMessage()
        assert "50013" in refused[0].getMessage() or "403" in refused[0].getMessage()
        assert await app.scheduler.pending("event-mirror:") == []  # no retrying a refusal

        # Granted later: the next edit makes the mirror.
        fake.guild_events.manage_events = True
        await run(fake, command(fake, "edit", id=1, location="Leeds"))
        assert await mirrored(app) == ["done"]
        (native,) = fake.scheduled_events
        assert native["entity_metadata"] == {"location": "Leeds"}


async def test_a_lost_create_answer_is_looked_up_after_a_restart_not_made_twice(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    fake.lose_answer("POST", f"/guilds/{fake.guild_id}/scheduled-events")
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)
        assert await mirrored(app) == ["done"]  # in doubt: tried again later
        assert len(fake.scheduled_events) == 1  # Discord made it; the bot did not hear
        (retry,) = await app.scheduler.pending("event-mirror:")
    clock.set(retry.due_at)
    async with discord_bot(make_app, fake, clock) as again:  # a new process, same database
        # At its start the job came before the connection to Discord, so it waits for it.
        (retry,) = await again.scheduler.pending("event-mirror:")
        clock.set(retry.due_at)
        assert await mirrored(again) == ["done"]
        (native,) = fake.scheduled_events
        mirror = (await again.features["event"].service.mirror.store.of_event(1))[0]
        assert mirror.native_id == native["id"]
    assert len(fake.requests_to("POST", f"/guilds/{fake.guild_id}/scheduled-events")) == 1


async def test_a_lost_create_is_found_by_name_and_start_where_the_marker_was_dropped(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    fake.guild_events.keeps_invisible = False
    fake.lose_answer("POST", f"/guilds/{fake.guild_id}/scheduled-events")
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)
        await mirrored(app)
        (retry,) = await app.scheduler.pending("event-mirror:")
        clock.set(retry.due_at)
        assert await mirrored(app) == ["done"]
        (native,) = fake.scheduled_events
        assert marker("x")[0] not in native["description"]
        (mirror,) = await app.features["event"].service.mirror.store.of_event(1)
        assert mirror.native_id == native["id"]
    assert len(fake.requests_to("POST", f"/guilds/{fake.guild_id}/scheduled-events")) == 1


async def test_a_stop_before_the_mirror_ran_mirrors_once_when_connected_again(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)  # the announcement is out, the mirror's job not run
    async with discord_bot(make_app, fake, clock) as again:
        # At start the job ran before Discord was connected: it waits for it.
        assert fake.scheduled_events == []
        (retry,) = await again.scheduler.pending("event-mirror:")
        clock.set(retry.due_at)
        assert await mirrored(again) == ["done"]
        assert len(fake.scheduled_events) == 1
        assert await again.scheduler.pending("event-mirror:") == []
    async with discord_bot(make_app, fake, clock) as third:
        assert await mirrored(third) == []
    assert len(fake.requests_to("POST", f"/guilds/{fake.guild_id}/scheduled-events")) == 1
    assert len(fake.posts(fake.channel_id)) == 1


async def test_a_series_mirrors_the_date_it_shows_and_moves_on_to_the_next(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake, repeat="weekly", count=3)
        assert await mirrored(app) == ["done"]
        (first,) = fake.scheduled_events
        assert datetime.fromisoformat(first["scheduled_start_time"]) == START
        clock.set(START)  # the first date begins: the announcement moves on
        assert "done" in await mirrored(app)
        assert await mirrored(app) == ["done"]  # the mirror job asked by the move
        first_now, second = fake.scheduled_events
        assert first_now["id"] == first["id"] and first_now["status"] == 1
        assert datetime.fromisoformat(second["scheduled_start_time"]) == START + timedelta(days=7)
        # "Interested" in the second date's event answers that date only.
        await fake.guild_events.interested(second["id"], MEMBER)
        store = app.features["event"].service.store
        dates = await store.occurrences(1, (await store.get(1)).series_uid)

        async def second_interested() -> int:
            return (await store.counts(dates[1].id)).interested

        await until(lambda: _is(second_interested, 1), "the second date's interest")
        assert (await store.counts(dates[0].id)).interested == 0


async def test_off_by_setting_no_mirror_and_no_scheduled_events_intent(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake, clock, scheduled_events=False) as app:
        await add_seminar(app, fake)
        assert await mirrored(app) == []
        assert fake.intents == discord.Intents(guilds=True).value
    assert fake.scheduled_events == []
    assert intents(True).guild_scheduled_events and not intents(False).guild_scheduled_events


def test_the_payload_keeps_to_discords_limits_and_ends_with_the_whole_marker() -> None:
    start = datetime(2030, 1, 1, 9, tzinfo=UTC)
    long = NativeEvent("k", "n" * 300, "d" * 5000, "l" * 300, start, start + timedelta(hours=1))
    body = payload(long, marker("k"))
    assert len(body["name"]) == 100 and body["name"].endswith("…")
    assert len(body["entity_metadata"]["location"]) == 100
    assert len(body["description"]) <= 1000 and body["description"].endswith(marker("k"))
    from bot.events.store import Event
    from bot.model import ChannelRef

    bare = Event(1, 1, "u", ChannelRef("discord", "1", "2"), "Talk", start, None, "UTC")
    made = native_event(bare, "discord:1")
    assert made.end == start + timedelta(hours=1)  # no end: an hour, as calendars show it
    assert made.location == "See the announcement" and made.description == ""


async def test_cancelling_a_date_of_a_series_cancels_its_mirror_and_mirrors_the_next(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake, repeat="weekly", count=3)
        await mirrored(app)
        said = await run(fake, command(fake, "cancel", id=1, date="2026-12-05"))
        assert "cancelled" in said, said
        assert await mirrored(app) == ["done"]
        first, second = fake.scheduled_events
        assert first["status"] == 4 and second["status"] == 1
        assert datetime.fromisoformat(second["scheduled_start_time"]) == START + timedelta(days=7)

        await run(fake, command(fake, "cancel", id=1))  # the whole series
        await mirrored(app)
        assert [e["status"] for e in fake.scheduled_events] == [4, 4]
    assert len(fake.requests_to("POST", f"/guilds/{fake.guild_id}/scheduled-events")) == 2


async def test_an_event_started_on_discord_is_removed_when_cancelled(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    """Discord cancels only a scheduled event; a started (active) one is deleted."""
    fake = fake_discord
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)
        await mirrored(app)
        (native,) = fake.scheduled_events
        native["status"] = 2  # a moderator started it in Discord
        await run(fake, command(fake, "cancel", id=1))
        assert await mirrored(app) == ["done"]
        assert fake.scheduled_events == []
        (mirror,) = await app.features["event"].service.mirror.store.of_event(1)
        assert mirror.state == "cancelled"
    (refused,) = fake.requests_to("PATCH", f"/guilds/{fake.guild_id}/scheduled-events/*")
    assert refused.status == 400
    (deleted,) = fake.requests_to("DELETE", f"/guilds/{fake.guild_id}/scheduled-events/*")
    assert deleted.path.endswith(native["id"]) and deleted.status == 204


async def test_interest_in_an_event_the_bot_did_not_make_changes_nothing(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake, clock) as app:
        await add_seminar(app, fake)
        await mirrored(app)
        mirror = app.features["event"].service.mirror
        stranger = UserRef("discord", str(fake.guild_id), "9", "Nine")
        done = await mirror.interest(f"discord:{fake.guild_id}", "123", stranger, True)
        assert done == "ignored: not a live mirror"
        assert await app.features["event"].service.store.rsvps(1) == []

        channel = channel_of(fake)
        bad = Action(INTEREST_ACTION, "sideways:123", stranger, channel)
        (reply,) = await app.act(bad)
        assert "Not a change of interest" in reply.post.text
