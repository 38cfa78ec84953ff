"""A discussion thread per event announcement (issue 20): reminders are posted in the
announcement's thread, so the channel stays quiet, while the announcement stays in the
channel and is still edited in place.

Through the real slack-sdk against the fake Slack (the reminder carries `thread_ts`, is
found again among the replies when its answer was lost), through discord.py against the fake
Discord (one thread created on the announcement, reminders in it, "already exists" after a
restart, the channel when threads are refused), and on the console (a reply to #N). The
outbox's own rules — a parent not known or not delivered, a transport without threads —
are checked on the console and with a transport that has no threads.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.console import Console
from adapters.discord.transport import marker
from adapters.slack import create as create_slack
from bot.events import Events
from bot.events.drafts import Draft
from bot.help import Help
from bot.model import ChannelRef, Post
from bot.postcodec import dump_post, load_post
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_discord_surface import (  # noqa: F401
    _endpoints_restored,
    channel_of,
    logged_in,
)

FEATURES = [Help, Events]
START = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
SLACK = ChannelRef("slack", "T1", "C1")
TITLE = "ITIL 4 ~~draft~~ > review " + "x" * 120


async def announce(app: Any, channel: ChannelRef, title: str = "Seminar") -> None:
    """Event #1, reminded a day and an hour before, announced in `channel` and delivered."""
    community = await app.communities.of(channel)
    draft = Draft(title, START, "Europe/London", location="Manchester", remind=[DAY, HOUR])
    await app.features["event"].service.create(community.id, channel, draft, "mod")
    assert await app.outbox.drain() == 1


async def remind(app: Any, clock: Any, before: timedelta) -> None:
    """The clock at the reminder `before` the start; it runs and is delivered."""
    clock.set(START - before)
    assert [outcome for _, outcome in await app.scheduler.run_due()] == ["done"]
    await app.outbox.drain()


def announcement_key(channel: ChannelRef) -> str:
    return f"event:1:{channel.key}"


def reminder_key(channel: ChannelRef, before: str, due: datetime) -> str:
    return f"event:1:remind:{before}@{int(due.timestamp())}:{channel.key}"


def test_a_reply_keeps_its_parent_in_the_outbox_and_an_older_row_loads_without_one():
    stored = json.loads(dump_post(Post(text="reminder", thread_of="event:1:console:demo:general")))
    assert load_post(json.dumps(stored)).thread_of == "event:1:console:demo:general"
    del stored["thread_of"]  # a row queued before threads existed
    assert load_post(json.dumps(stored)) == Post(text="reminder")


# --- Console ----------------------------------------------------------------------------


async def test_on_the_console_a_reminder_is_a_reply_to_the_announcement(make_app, clock):
    app = await make_app(features=FEATURES)
    out: list[str] = []
    console = Console(app, write=out.append)
    await console.handle('@mod! /event add title=Seminar start="2026-12-05 09:00" remind=1d')
    (announced,) = [n for n, s in console.screen.messages.items() if s.post.title == "📅 Seminar"]
    assert "(reply to" not in out[-1]

    await remind(app, clock, DAY)
    assert out[-1].splitlines()[0] == f"#{announced + 1} [public] (reply to #{announced})"
    assert console.screen.messages[announced + 1].post.title == "⏰ In 1 day: Seminar"
    assert console.screen.messages[announced + 1].reply_to == announced

    # The announcement itself stays in the channel and is still edited in place.
    await console.handle(f"@sam click {announced} Going")
    clock.advance(5)
    await app.outbox.drain()
    assert out[-1].startswith(f"#{announced} (edited) [public]")
    assert "1 going" in console.screen.messages[announced].post.text


async def test_a_reminder_of_a_later_date_of_a_series_replies_to_the_one_announcement(
    make_app, clock
):
    app = await make_app(features=FEATURES)
    console = Console(app, write=lambda _: None)
    await console.handle('@mod! /event add title=SIG start="2026-12-01 18:00" tz=Europe/London'
                         " repeat=weekly count=2 remind=1d")  # fmt: skip
    await app.outbox.drain()
    (announced,) = [n for n, s in console.screen.messages.items() if s.post.title == "📅 SIG"]
    for start in (
        datetime(2026, 11, 30, 18, 0, tzinfo=UTC),
        datetime(2026, 12, 7, 18, 0, tzinfo=UTC),
    ):
        clock.set(start)
        await app.scheduler.run_due()
        await app.outbox.drain()
    replies = [s for s in console.screen.messages.values() if s.post.title.startswith("⏰")]
    assert [s.reply_to for s in replies] == [announced, announced]


async def test_a_reply_whose_parent_is_unknown_or_undelivered_goes_in_the_channel(
    make_app, clock, caplog
):
    app = await make_app(features=FEATURES)
    console = Console(app, write=lambda _: None)
    channel = ChannelRef("console", "demo", "general")
    caplog.set_level(logging.WARNING, logger="bot.outbox")
    await app.outbox.enqueue(channel, Post(text="orphan", thread_of="no:such:post"), "r1")
    later = clock.now() + DAY
    await app.outbox.enqueue(channel, Post(text="tomorrow"), "p2", not_before=later)
    await app.outbox.enqueue(channel, Post(text="early", thread_of="p2"), "r2")
    await app.outbox.drain()

    shown = {s.post.text: s.reply_to for s in console.screen.messages.values()}
    assert shown == {"orphan": 0, "early": 0}
    said = [r.getMessage() for r in caplog.records]
    assert any("r1 goes in the channel" in m and "no post was queued" in m for m in said)
    assert any("r2 goes in the channel" in m and "not delivered yet" in m for m in said)
    # Decided once: where a reply went is kept with its row.
    threads = await app.db.fetchall("SELECT key, thread FROM outbox WHERE key LIKE 'r%'")
    assert {r["key"]: r["thread"] for r in threads} == {"r1": "", "r2": ""}


class NoThreads:
    """A platform transport as it was before threads: no `threads`, no `thread` keyword."""

    platform = "plain"
    pace = 0.0

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str:
        self.sent.append((key, post.text))
        return str(len(self.sent))

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None:
        raise AssertionError("no edit expected")

    async def find(self, channel: ChannelRef, key: str, since: float) -> str | None:
        return None


async def test_a_transport_without_threads_gets_replies_in_the_channel(make_app, caplog):
    app = await make_app(features=FEATURES)
    transport = NoThreads()
    app.outbox.attach(transport)
    channel = ChannelRef("plain", "w", "c")
    caplog.set_level(logging.INFO, logger="bot.outbox")
    await app.outbox.enqueue(channel, Post(text="parent"), "p")
    await app.outbox.enqueue(channel, Post(text="reply", thread_of="p"), "r")
    assert await app.outbox.drain() == 2
    assert transport.sent == [("p", "parent"), ("r", "reply")]
    assert any("plain posts have no threads" in r.getMessage() for r in caplog.records)


# --- Slack ------------------------------------------------------------------------------


async def slack_app(make_app: Any, fake: FakeSlack, db: str = "bot.db") -> Any:
    app = await make_app(FEATURES, db=db)
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test",
           "SLACK_API_URL": fake.base_url}  # fmt: skip
    surface = create_slack(app, app.config.section("slack"), env)
    app.outbox.attach(surface.transport)
    return app


async def test_on_slack_reminders_are_replies_to_the_announcement(
    make_app, fake_slack: FakeSlack, clock
):
    app = await slack_app(make_app, fake_slack)
    await announce(app, SLACK)
    (announcement,) = fake_slack.posts("C1")
    assert announcement["ts"] == await app.outbox.message_id(announcement_key(SLACK))

    await remind(app, clock, DAY)
    await remind(app, clock, HOUR)
    reminders = [c for c in fake_slack.calls_to("chat.postMessage") if "thread_ts" in c]
    assert [c["thread_ts"] for c in reminders] == [announcement["ts"], announcement["ts"]]
    assert fake_slack.posts("C1") == [announcement]  # the channel itself stays quiet
    calendar, *thread = fake_slack.replies("C1", announcement["ts"])
    assert [f["name"] for f in calendar["files"]] == ["event-1.ics"]  # its file, as before
    assert [m["metadata"]["event_payload"]["key"] for m in thread] == [
        reminder_key(SLACK, "1d", START - DAY),
        reminder_key(SLACK, "1h", START - HOUR),
    ]
    assert announcement["reply_count"] == 3
    # Read back through the SDK as Slack shows it: the parent first, then its replies.
    page = await app.outbox.transports["slack"].client.conversations_replies(
        channel="C1", ts=announcement["ts"]
    )
    shown = [m["ts"] for m in page["messages"]]
    assert shown == [announcement["ts"], calendar["ts"], *(m["ts"] for m in thread)]


async def test_on_slack_a_restart_between_announcement_and_reminder_still_threads_it(
    make_app, fake_slack: FakeSlack, clock
):
    app = await slack_app(make_app, fake_slack)
    await announce(app, SLACK)
    (announcement,) = fake_slack.posts("C1")

    again = await slack_app(make_app, fake_slack)  # the same database: a restart
    await remind(again, clock, DAY)
    _, reply = fake_slack.replies("C1", announcement["ts"])  # after the calendar file
    assert reply["metadata"]["event_payload"]["key"] == reminder_key(SLACK, "1d", START - DAY)
    assert fake_slack.posts("C1") == [announcement]


async def test_on_slack_a_reply_whose_answer_was_lost_is_found_in_the_thread_not_sent_twice(
    make_app, fake_slack: FakeSlack, clock
):
    app = await slack_app(make_app, fake_slack)
    await announce(app, SLACK)
    (announcement,) = fake_slack.posts("C1")
    key = reminder_key(SLACK, "1d", START - DAY)
    fake_slack.lose_answer("chat.postMessage")
    await remind(app, clock, DAY)
    assert await app.outbox.state(key) == "pending"  # in doubt: Slack may have it

    clock.advance(60)
    await app.outbox.drain()
    _, reply = fake_slack.replies("C1", announcement["ts"])  # after the calendar file
    assert await app.outbox.state(key) == "sent"
    assert await app.outbox.message_id(key) == reply["ts"]
    (lookup,) = fake_slack.calls_to("conversations.replies")
    assert lookup["ts"] == announcement["ts"] and lookup["include_all_metadata"] in (True, "1")
    assert len([c for c in fake_slack.calls_to("chat.postMessage") if "thread_ts" in c]) == 1


# --- Discord ----------------------------------------------------------------------------


@asynccontextmanager
async def discord_app(make_app: Any, fake: FakeDiscord, db: str = "bot.db") -> Any:
    # Threads only: the scheduled-event mirror's own job is tested on its own.
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0, "scheduled_events": False}}
    app = await make_app(FEATURES, config=config, db=db)
    async with logged_in(app, fake):
        yield app


def thread_requests(fake: FakeDiscord, parent: str) -> list[Any]:
    return fake.requests_to("POST", f"/channels/{fake.channel_id}/messages/{parent}/threads")


async def test_on_discord_one_thread_is_made_on_the_announcement_and_reminders_go_in_it(
    make_app, fake_discord: FakeDiscord, clock
):
    fake = fake_discord
    channel = channel_of(fake)
    async with discord_app(make_app, fake) as app:
        await announce(app, channel, title=TITLE)
        parent = await app.outbox.message_id(announcement_key(channel))
        await remind(app, clock, DAY)
        await remind(app, clock, HOUR)

    (made,) = thread_requests(fake, parent)  # once: the second reminder reuses it
    assert made.status == 200
    # The announcement's title as plain text (Discord shows a thread's name as typed),
    # without the embed's backslash escapes, cut to 100 characters.
    assert "\\~" in fake.messages[int(parent)]["embeds"][0]["title"]
    name = made.json["name"]
    assert name == ("📅 " + TITLE)[:99] + "…" and len(name) == 100
    assert made.json["auto_archive_duration"] == 10080
    thread = fake.thread_of(int(parent))
    assert thread is not None and thread["id"] == parent and thread["parent_id"] == channel.channel
    in_thread = fake.posts(int(parent))
    assert [m["embeds"][0]["title"][:16] for m in in_thread] == [
        "⏰ In 1 day: ITIL",
        "⏰ In 1 hour: ITI",
    ]
    assert len(in_thread) == 2 and thread["message_count"] == 2
    assert [m["id"] for m in fake.posts(fake.channel_id)] == [parent]  # the channel: quiet
    key = reminder_key(channel, "1h", START - HOUR)
    assert in_thread[1]["embeds"][0]["description"].endswith(marker(key))


async def test_on_discord_after_a_restart_the_existing_thread_is_posted_into(
    make_app, fake_discord: FakeDiscord, clock
):
    fake = fake_discord
    channel = channel_of(fake)
    async with discord_app(make_app, fake) as app:
        await announce(app, channel)
        parent = await app.outbox.message_id(announcement_key(channel))
        await remind(app, clock, DAY)
    async with discord_app(make_app, fake) as again:  # the same database, a new process
        await remind(again, clock, HOUR)

    # The new process asks again; "already exists" (400, code 160004) means post into it.
    assert [r.status for r in thread_requests(fake, parent)] == [200, 400]
    assert len(fake.posts(int(parent))) == 2
    assert [m["id"] for m in fake.posts(fake.channel_id)] == [parent]


async def test_on_discord_without_thread_permission_reminders_go_in_the_channel_logged_once(
    make_app, fake_discord: FakeDiscord, clock, caplog
):
    fake = fake_discord
    fake.threads_allowed = False
    channel = channel_of(fake)
    caplog.set_level(logging.WARNING, logger="adapters.discord.transport")
    async with discord_app(make_app, fake) as app:
        await announce(app, channel)
        parent = await app.outbox.message_id(announcement_key(channel))
        await remind(app, clock, DAY)
        await remind(app, clock, HOUR)
        states = {await app.outbox.state(reminder_key(channel, o, START - d))
                  for o, d in (("1d", DAY), ("1h", HOUR))}  # fmt: skip

    assert states == {"sent"}
    assert [r.status for r in thread_requests(fake, parent)] == [403]  # tried once
    assert fake.thread_of(int(parent)) is None
    titles = [m["embeds"][0]["title"] for m in fake.posts(fake.channel_id)]
    assert titles == ["📅 Seminar", "⏰ In 1 day: Seminar", "⏰ In 1 hour: Seminar"]
    said = [r.getMessage() for r in caplog.records if "go in the channel" in r.getMessage()]
    assert len(said) == 1 and "403" in said[0]


async def test_on_discord_a_reply_in_doubt_is_found_in_the_thread_and_edited_there(
    make_app, fake_discord: FakeDiscord, clock
):
    fake = fake_discord
    channel = channel_of(fake)
    async with discord_app(make_app, fake) as app:
        await app.outbox.enqueue(channel, Post(title="Parent"), "parent")
        await app.outbox.drain()
        parent = await app.outbox.message_id("parent")
        fake.lose_answer("POST", f"/channels/{parent}/messages")
        await app.outbox.enqueue(channel, Post(text="first", thread_of="parent"), "reply")
        await app.outbox.drain()
        assert await app.outbox.state("reply") == "pending"  # the answer was lost
        clock.advance(60)
        await app.outbox.drain()
        (posted,) = fake.posts(int(parent))
        assert await app.outbox.message_id("reply") == posted["id"]

        await app.outbox.edit("reply", Post(text="second", thread_of="parent"))
        clock.advance(5)
        await app.outbox.drain()

    assert len(fake.requests_to("POST", f"/channels/{parent}/messages")) == 1
    (edit,) = fake.requests_to("PATCH", f"/channels/*/messages/{posted['id']}")
    assert edit.path == f"/channels/{parent}/messages/{posted['id']}"
    assert fake.messages[int(posted["id"])]["embeds"][0]["description"] == "second"
