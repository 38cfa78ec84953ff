"""Event announcements on Discord through the fake: the `.ics` stays put when an RSVP click
edits the post, and is replaced (never the message duplicated) when the event changes."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from adapters.discord.surface import DiscordSurface
from adapters.discord.transport import files_for_edit
from bot.events import Events
from bot.events.drafts import Draft
from bot.help import Help
from bot.model import Attachment
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    Req,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.test_discord_surface import (  # noqa: F401
    _endpoints_restored,
    answer,
    channel_of,
    logged_in,
)

START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@asynccontextmanager
async def announced(make_app: Any, fake: FakeDiscord) -> Any:
    """An app with events, logged in to the fake, with event #1 announced in its channel."""
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0}}
    app = await make_app([Help, Events], config=config)
    async with logged_in(app, fake) as surface:
        channel = channel_of(fake)
        community = await app.communities.of(channel)
        draft = Draft("Seminar", START, "Europe/London", location="Manchester")
        await app.features["event"].service.create(community.id, channel, draft, "mod")
        assert await app.outbox.drain() == 1
        yield surface


async def message_of(surface: DiscordSurface, fake: FakeDiscord) -> dict[str, Any]:
    message_id = await surface.app.outbox.message_id(f"event:1:{channel_of(fake).key}")
    return fake.messages[int(message_id)]


def calendar_of(fake: FakeDiscord, message: dict[str, Any]) -> bytes:
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "event-1.ics"
    return fake.attachments[int(attachment["id"])].data


def ids(attachments: list[dict[str, Any]]) -> list[str]:
    return [str(a["id"]) for a in attachments]


def uploads(requests: list[Req]) -> list[str]:
    return [f.filename or "" for r in requests for f in r.files]


async def test_an_rsvp_click_keeps_the_calendar_file_instead_of_uploading_it_again(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with announced(make_app, fake) as surface:
        message = await message_of(surface, fake)
        (original,) = message["attachments"]
        click = fake.component_payload("itsm:event.rsvp:1:going", int(message["id"]))
        body = await answer(fake, surface, click)
        assert body["type"] == 7  # the announcement itself, edited in place
        assert ids(body["data"]["attachments"]) == [original["id"]]
        await fake.wait_for_request("POST", f"/webhooks/{fake.application_id}/*")  # "Noted"
        # The counts also reach every announcement through the outbox, debounced.
        clock.advance(5)
        assert await surface.app.outbox.drain() == 1

    callbacks = fake.requests_to("POST", "/interactions/*/*/callback")
    edits = fake.requests_to("PATCH", f"/channels/{fake.channel_id}/messages/*")
    assert len(callbacks) == 1 and len(edits) == 1
    assert uploads(callbacks + edits) == []  # nothing sent twice
    assert fake.attachment_reads == []  # nor read back: the bot sent that file itself
    assert ids(edits[0].json["attachments"]) == [original["id"]]
    assert message["attachments"] == [original]
    assert message["embeds"][0]["description"].startswith("**RSVP:** 1 going")


async def test_a_changed_calendar_replaces_the_file_on_an_in_place_edit(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    """The kept-or-uploaded choice compares the bytes, not only the name and size."""
    fake = fake_discord
    async with announced(make_app, fake) as surface:
        message = await message_of(surface, fake)
        current = await surface.transport._channel(channel_of(fake)).fetch_message(
            int(message["id"])
        )
        same = Attachment("event-1.ics", calendar_of(fake, message), "text/calendar")
        flipped = bytes(reversed(same.data))  # same name and size, other content
        changed = Attachment("event-1.ics", flipped, "text/calendar")
        kept = await files_for_edit(current.attachments, [same])
        replaced = await files_for_edit(current.attachments, [changed])
    assert [getattr(item, "id", None) for item in kept] == [current.attachments[0].id]
    assert [type(item).__name__ for item in replaced] == ["File"]


async def test_an_edited_event_replaces_the_calendar_file_on_the_same_message(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with announced(make_app, fake) as surface:
        service = surface.app.features["event"].service
        message = await message_of(surface, fake)
        (original,) = message["attachments"]
        event = await service.store.get(1)
        event.start = START + timedelta(hours=2)
        await service.update(event)
        clock.advance(5)
        assert await surface.app.outbox.drain() == 1

    (edit,) = fake.requests_to("PATCH", f"/channels/{fake.channel_id}/messages/*")
    assert uploads([edit]) == ["event-1.ics"]
    (attachment,) = message["attachments"]
    assert attachment["id"] != original["id"]
    (vevent,) = icalendar.Calendar.from_ical(calendar_of(fake, message)).walk("VEVENT")
    assert vevent.decoded("dtstart").astimezone(UTC) == START + timedelta(hours=2)
    assert len(fake.requests_to("POST", f"/channels/{fake.channel_id}/messages")) == 1
