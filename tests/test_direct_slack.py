"""Direct messages on Slack: the IM is opened once, then posted, edited and searched as a
channel; a member who cannot be written to fails that one post, nothing else."""

from __future__ import annotations

from datetime import timedelta

from adapters.slack.manifest import BOT_SCOPES
from adapters.slack.transport import EVENT_TYPE
from bot.model import ChannelRef, Post, UserRef
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_slack_outbox import _app

ANA = ChannelRef.direct(UserRef("slack", "T1", "U1", "ana"))
BEN = ChannelRef.direct(UserRef("slack", "T1", "U2", "ben"))


def test_the_manifest_asks_to_open_and_read_back_direct_messages() -> None:
    assert {"im:write", "im:history"} <= set(BOT_SCOPES)


async def test_a_dm_opens_the_conversation_once_and_posts_there(
    make_app, fake_slack: FakeSlack, clock
) -> None:
    app, _ = await _app(make_app, fake_slack)
    await app.outbox.enqueue(ANA, Post(text="first"), "dm:1")
    await app.outbox.drain()
    clock.advance(timedelta(seconds=5))
    await app.outbox.enqueue(ANA, Post(text="second"), "dm:2")
    await app.outbox.drain()

    (opened,) = fake_slack.calls_to("conversations.open")
    assert opened["users"] == "U1"
    posted = fake_slack.calls_to("chat.postMessage")
    assert [p["channel"] for p in posted] == ["DU1", "DU1"]
    assert [m["text"] for m in fake_slack.messages["DU1"]] == ["first", "second"]
    assert posted[0]["metadata"] == {"event_type": EVENT_TYPE, "event_payload": {"key": "dm:1"}}
    assert await app.outbox.message_id("dm:1") == fake_slack.messages["DU1"][0]["ts"]


async def test_a_dm_is_edited_in_its_conversation(make_app, fake_slack: FakeSlack, clock) -> None:
    app, _ = await _app(make_app, fake_slack)
    await app.outbox.enqueue(ANA, Post(text="v1"), "dm:1")
    await app.outbox.drain()
    await app.outbox.edit("dm:1", Post(text="v2"))
    clock.advance(timedelta(seconds=5))
    await app.outbox.drain()

    (update,) = fake_slack.calls_to("chat.update")
    assert update["channel"] == "DU1"
    assert fake_slack.messages["DU1"][0]["text"] == "v2"


async def test_a_dm_in_doubt_after_a_restart_is_found_in_the_conversation(
    make_app, fake_slack: FakeSlack
) -> None:
    app, surface = await _app(make_app, fake_slack, db="doubt.db")
    await app.outbox.enqueue(ANA, Post(text="once"), "dm:once")
    await app.db.execute("UPDATE outbox SET state = 'sending' WHERE key = 'dm:once'")
    # The platform took it before the crash: put it there with its key, as send() would.
    await surface.transport.send(ANA, Post(text="once"), "dm:once")

    restarted, _ = await _app(make_app, fake_slack, db="doubt.db")
    await restarted.outbox.drain()

    assert len(fake_slack.messages["DU1"]) == 1
    assert await restarted.outbox.state("dm:once") == "sent"


async def test_a_member_who_cannot_be_written_to_fails_only_their_dm(
    make_app, fake_slack: FakeSlack
) -> None:
    app, _ = await _app(make_app, fake_slack)
    fake_slack.users["U1"] = {"deleted": True}
    await app.outbox.enqueue(ANA, Post(text="to ana"), "dm:ana")
    await app.outbox.enqueue(BEN, Post(text="to ben"), "dm:ben")
    await app.outbox.drain()

    assert await app.outbox.state("dm:ana") == "failed"
    assert await app.outbox.state("dm:ben") == "sent"
    assert "DU1" not in fake_slack.messages
    assert [m["text"] for m in fake_slack.messages["DU2"]] == ["to ben"]


async def test_a_passing_failure_to_open_is_retried(make_app, fake_slack: FakeSlack, clock) -> None:
    app, _ = await _app(make_app, fake_slack)
    fake_slack.fail_next("conversations.open", status=500)
    await app.outbox.enqueue(ANA, Post(text="later"), "dm:1")
    await app.outbox.drain()
    assert await app.outbox.state("dm:1") == "pending"

    clock.advance(timedelta(minutes=10))
    await app.outbox.drain()
    assert await app.outbox.state("dm:1") == "sent"
    assert [m["text"] for m in fake_slack.messages["DU1"]] == ["later"]
