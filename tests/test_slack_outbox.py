"""The outbox delivering to Slack: rate limits, failures, pacing, and a crash in doubt.

The surface is built exactly as in production (its client, retry handler and transport);
time is the FakeClock and delivery is driven with `app.outbox.drain()`.
"""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta
from hashlib import sha256

import icalendar
import pytest

from adapters.slack import create
from adapters.slack.transport import EVENT_TYPE, delivery_error
from bot.errors import Failure
from bot.events import Events
from bot.events.drafts import Draft
from bot.help import Help
from bot.model import Attachment, ChannelRef, Post, UserRef
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401

C1 = ChannelRef("slack", "T1", "C1")
C2 = ChannelRef("slack", "T1", "C2")
START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


async def _app(make_app, fake: FakeSlack, db: str = "bot.db", **slack):
    app = await make_app([Help], config={"slack": slack}, db=db)
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_APP_TOKEN": "xapp-test",
        "SLACK_API_URL": fake.base_url,
    }
    surface = create(app, app.config.section("slack"), env)
    app.outbox.attach(surface.transport)
    return app, surface


def _statuses(fake: FakeSlack, method: str) -> list[int]:
    return [c.status for c in fake.calls if c.method == method]


async def test_a_post_carries_its_key_as_metadata_and_is_sent_once(
    make_app, fake_slack: FakeSlack
) -> None:
    app, _ = await _app(make_app, fake_slack)

    assert await app.outbox.enqueue(C1, Post(title="Hello <!here>"), "k1")
    assert not await app.outbox.enqueue(C1, Post(title="Hello again"), "k1")
    assert await app.outbox.drain() == 1
    assert await app.outbox.drain() == 0

    (sent,) = fake_slack.calls_to("chat.postMessage")
    assert sent["metadata"] == {"event_type": EVENT_TYPE, "event_payload": {"key": "k1"}}
    assert sent["text"] == "Hello &lt;!here&gt;"
    assert "link_names" not in sent and "parse" not in sent
    assert await app.outbox.message_id("k1") == fake_slack.messages["C1"][0]["ts"]


async def test_a_rate_limit_is_waited_out_in_its_lane_and_the_post_delivered_once(
    make_app, fake_slack: FakeSlack, clock
) -> None:
    app, _ = await _app(make_app, fake_slack)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=0)

    await app.outbox.enqueue(C1, Post(text="poll results"), "k1")
    assert await app.outbox.drain() == 0  # the outbox's own client never retries in place
    clock.advance(1)  # the channel's pace
    assert await app.outbox.drain() == 1

    assert _statuses(fake_slack, "chat.postMessage") == [429, 200]
    assert len(fake_slack.messages["C1"]) == 1
    assert await app.outbox.state("k1") == "sent"
    assert await app.db.fetchval("SELECT attempts FROM outbox WHERE key = 'k1'") == 0


async def test_a_long_rate_limit_goes_back_to_the_outbox_with_its_retry_after(
    make_app, fake_slack: FakeSlack, clock
) -> None:
    app, _ = await _app(make_app, fake_slack, rate_limit_wait=5)
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=30)

    await app.outbox.enqueue(C1, Post(text="later"), "k1")
    assert await app.outbox.drain() == 0
    assert await app.outbox.state("k1") == "pending"
    clock.advance(20)
    assert await app.outbox.drain() == 0  # Retry-After is honoured, not only the backoff
    clock.advance(15)
    assert await app.outbox.drain() == 1

    assert _statuses(fake_slack, "chat.postMessage") == [429, 200]
    assert len(fake_slack.messages["C1"]) == 1


async def test_server_errors_are_retried_and_a_missing_channel_is_not(
    make_app, fake_slack: FakeSlack, clock
) -> None:
    app, _ = await _app(make_app, fake_slack)
    fake_slack.fail_next("chat.postMessage", status=500)
    await app.outbox.enqueue(C1, Post(text="one"), "k1")
    assert await app.outbox.drain() == 0
    clock.advance(60)
    assert await app.outbox.drain() == 1

    fake_slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    await app.outbox.enqueue(C2, Post(text="two"), "k2")
    await app.outbox.drain()
    clock.advance(3600)
    await app.outbox.drain()

    assert await app.outbox.state("k1") == "sent"
    assert await app.outbox.state("k2") == "failed"
    assert "C2" not in fake_slack.messages
    assert len(fake_slack.calls_to("chat.postMessage")) == 3


async def test_errors_map_to_what_the_outbox_does_next(fake_slack: FakeSlack) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(token="xoxb-test", base_url=fake_slack.base_url, retry_handlers=[])
    cases = [
        (dict(status=429, retry_after=7), Failure.RATE_LIMITED, 7.0),
        (dict(status=503), Failure.IN_DOUBT, None),
        (dict(status=200, error="internal_error"), Failure.IN_DOUBT, None),
        (dict(status=200, error="not_in_channel"), Failure.PERMANENT, None),
        (dict(status=200, error="is_archived"), Failure.PERMANENT, None),
        (dict(status=200, error="invalid_auth"), Failure.CREDENTIALS, None),
        (dict(status=200, error="token_revoked"), Failure.CREDENTIALS, None),
        (dict(status=200, error="account_inactive"), Failure.CREDENTIALS, None),
    ]
    for failure, meaning, retry_after in cases:
        fake_slack.fail_next("chat.postMessage", **failure)
        with pytest.raises(Exception) as raised:
            await client.chat_postMessage(channel="C1", text="x")
        error = delivery_error(raised.value)
        assert (error.failure, error.retry_after) == (meaning, retry_after), failure
    assert "SLACK_BOT_TOKEN" in str(error)  # the last one says which variable to fix
    assert delivery_error(ConnectionResetError("gone")).failure is Failure.IN_DOUBT
    refused = await _refused_connection()
    assert delivery_error(refused).failure is Failure.TRANSIENT  # nothing was sent


async def _refused_connection() -> Exception:
    """What aiohttp raises when nothing listens: the request never left."""
    import socket

    import aiohttp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before anyone connects
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(f"http://127.0.0.1:{port}/")
        except aiohttp.ClientConnectorError as exc:
            return exc
    raise AssertionError("something listens on a port just closed")


async def test_posts_in_one_channel_are_paced(make_app, fake_slack: FakeSlack, clock) -> None:
    app, surface = await _app(make_app, fake_slack, pace=1.0)
    assert surface.transport.pace == 1.0
    for n in range(3):
        await app.outbox.enqueue(C1, Post(text=f"c1 #{n}"), f"c1-{n}")
    await app.outbox.enqueue(C2, Post(text="c2"), "c2")

    assert await app.outbox.drain() == 2  # one per channel now
    clock.advance(1)
    assert await app.outbox.drain() == 1
    clock.advance(1)
    assert await app.outbox.drain() == 1

    assert [m["text"] for m in fake_slack.messages["C1"]] == ["c1 #0", "c1 #1", "c1 #2"]


async def test_a_post_in_doubt_after_a_crash_is_found_not_posted_again(
    make_app, fake_slack: FakeSlack
) -> None:
    app, surface = await _app(make_app, fake_slack)
    await app.outbox.enqueue(C1, Post(text="announced"), "event:7:announce")
    await app.outbox.enqueue(C1, Post(text="never left"), "event:8:announce")
    # The first post reached Slack, then the process died before recording it.
    ts = await surface.transport.send(C1, Post(text="announced"), "event:7:announce")
    await app.db.execute("UPDATE outbox SET state = 'sending', attempts = 1")

    again, _ = await _app(make_app, fake_slack)  # the restart, on the same database
    assert await again.outbox.drain() == 1  # the first is looked up, the second sent

    assert await again.outbox.state("event:7:announce") == "sent"
    assert await again.outbox.message_id("event:7:announce") == ts
    assert [m["text"] for m in fake_slack.messages["C1"]] == ["announced", "never left"]
    history = fake_slack.calls_to("conversations.history")
    assert history and all(h["include_all_metadata"] in (True, "1", "true") for h in history)


async def test_edits_update_the_posted_message(make_app, fake_slack: FakeSlack, clock) -> None:
    app, _ = await _app(make_app, fake_slack)
    await app.outbox.enqueue(C1, Post(text="tally: 0"), "poll:1")
    await app.outbox.drain()
    await app.outbox.edit("poll:1", Post(text="tally: 1"))
    await app.outbox.edit("poll:1", Post(text="tally: 2"))
    clock.advance(2)
    await app.outbox.drain()

    (update,) = fake_slack.calls_to("chat.update")
    assert update["ts"] == await app.outbox.message_id("poll:1")
    assert update["text"] == "tally: 2"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


async def test_an_attached_chart_is_uploaded_under_its_post(
    make_app, fake_slack: FakeSlack
) -> None:
    app, _ = await _app(make_app, fake_slack)
    chart = Attachment("results.png", _png(), "image/png")

    await app.outbox.enqueue(C1, Post(title="Results", attachments=[chart]), "poll:1:results")
    await app.outbox.drain()

    (upload,) = fake_slack.uploads.values()
    assert (upload.filename, upload.data, upload.completed) == ("results.png", chart.data, True)
    assert upload.channel_id == "C1"
    assert upload.thread_ts == await app.outbox.message_id("poll:1:results")


# --- An event's calendar file follows the event -------------------------------------------


def _thread_files(fake: FakeSlack, ts: str) -> list[tuple[str, str]]:
    """(file id, name) of the live files in the thread under `ts`."""
    return [
        (f["id"], f.get("name", ""))
        for m in fake.messages["C1"]
        if m.get("thread_ts") == ts
        for f in m.get("files", [])
        if f.get("mode") != "tombstone"
    ]


def _start_in(data: bytes) -> datetime:
    (vevent,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    return vevent.decoded("dtstart").astimezone(UTC)


async def test_an_edited_event_replaces_its_calendar_file_in_the_thread_once(
    make_app, fake_slack: FakeSlack, clock
) -> None:
    async def boot(db: str = "bot.db"):
        app = await make_app([Help, Events], config={"slack": {}}, db=db)
        env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test"}
        env["SLACK_API_URL"] = fake_slack.base_url
        surface = create(app, app.config.section("slack"), env)
        app.outbox.attach(surface.transport)
        return app, app.features["event"].service

    app, service = await boot()
    community = await app.communities.of(C1)
    draft = Draft("Seminar", START, "Europe/London", location="Manchester")
    await service.create(community.id, C1, draft, "mod")
    await app.outbox.drain()
    ts = await app.outbox.message_id(f"event:1:{C1.key}")
    ((first_id, name),) = _thread_files(fake_slack, ts)
    assert name == "event-1.ics" and _start_in(fake_slack.uploads[first_id].data) == START

    # An RSVP edits the post; its calendar is the same, so nothing is uploaded.
    event = await service.store.get(1)
    await service.rsvp(event, UserRef("slack", "T1", "U9"), "going", False)
    clock.advance(5)
    await app.outbox.drain()
    assert len(fake_slack.uploads) == 1
    assert fake_slack.calls_to("chat.update")[-1]["blocks"]  # the counts did change

    # The time moves: a new copy in the same thread, the old one gone, no second post.
    event.start = START + timedelta(hours=2)
    await service.update(event)
    clock.advance(5)
    await app.outbox.drain()
    ((second_id, _),) = _thread_files(fake_slack, ts)
    replacement = fake_slack.uploads[second_id]
    assert second_id != first_id and fake_slack.uploads[first_id].deleted
    assert _start_in(replacement.data) == START + timedelta(hours=2)
    assert replacement.thread_ts == ts and "replaces the earlier one" in replacement.initial_comment
    top_level = [m for m in fake_slack.messages["C1"] if m.get("thread_ts") in (None, m["ts"])]
    assert [m["ts"] for m in top_level] == [ts]
    files = top_level[0]["metadata"]["event_payload"]["files"]
    assert files == [{"name": "event-1.ics", "sha256": sha256(replacement.data).hexdigest()}]

    # A restarted bot knows the file from the post's metadata: an RSVP uploads nothing.
    app, service = await boot()
    await service.rsvp(await service.store.get(1), UserRef("slack", "T1", "U8"), "going", False)
    clock.advance(5)
    await app.outbox.drain()
    assert len(fake_slack.uploads) == 2
    assert _thread_files(fake_slack, ts) == [(second_id, "event-1.ics")]

    # Cancelled: the thread's one copy now says so, for calendars that imported it.
    await service.cancel(await service.store.get(1))
    clock.advance(5)
    await app.outbox.drain()
    ((last_id, _),) = _thread_files(fake_slack, ts)
    (vevent,) = icalendar.Calendar.from_ical(fake_slack.uploads[last_id].data).walk("VEVENT")
    assert str(vevent["status"]) == "CANCELLED" and fake_slack.uploads[second_id].deleted
