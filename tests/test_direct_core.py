"""Direct messages in the core: a member's DMs are addressed like a channel, so the outbox
keys, paces, retries and settles them exactly as it does a channel."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.errors import DeliveryError, Failure
from bot.help import Help
from bot.model import ChannelRef, Post, UserRef
from tests.test_outbox import Crash, Platform

ANA = UserRef("test", "w1", "U123", "ana")
BEN = UserRef("test", "w1", "U456", "ben")


def test_direct_ref_names_the_member_and_round_trips_through_its_key():
    ref = ChannelRef.direct(ANA)
    assert ref == ChannelRef("test", "w1", "@U123")
    assert ref.is_direct and ref.direct_user == "U123"
    assert ChannelRef.parse(ref.key) == ref
    assert ChannelRef.parse(ref.key).is_direct


def test_a_channel_is_not_direct_and_has_no_direct_user():
    general = ChannelRef("test", "w1", "general")
    assert not general.is_direct
    with pytest.raises(ValueError):
        _ = general.direct_user


@pytest.mark.parametrize("user", ["", "@U123"])
def test_direct_refuses_what_is_not_a_member_id(user):
    with pytest.raises(ValueError):
        ChannelRef.direct(UserRef("test", "w1", user))


async def start(make_app, platform, **kw):
    app = await make_app(features=[Help], **kw)
    app.outbox.attach(platform)
    return app


async def test_direct_post_goes_once_and_is_paced_per_member(make_app, clock):
    platform = Platform(pace=1.0)
    app = await start(make_app, platform)
    to_ana, to_ben = ChannelRef.direct(ANA), ChannelRef.direct(BEN)
    await app.outbox.enqueue(to_ana, Post(title="a1"), "dm:a1")
    await app.outbox.enqueue(to_ana, Post(title="a2"), "dm:a2")
    await app.outbox.enqueue(to_ben, Post(title="b1"), "dm:b1")
    assert await app.outbox.enqueue(to_ana, Post(title="a1 again"), "dm:a1") is False
    # One per member now; Ana's second waits for her own pace, not Ben's.
    assert await app.outbox.drain() == 2
    clock.advance(timedelta(seconds=1))
    assert await app.outbox.drain() == 1
    sent = [(c.channel, p.title) for c, p in platform.posted.values()]
    assert sorted(sent) == [("@U123", "a1"), ("@U123", "a2"), ("@U456", "b1")]


async def test_permanent_refusal_fails_that_dm_only(make_app):
    platform = Platform()
    app = await start(make_app, platform)
    platform.failures.append(DeliveryError("member does not accept DMs", Failure.PERMANENT))
    await app.outbox.enqueue(ChannelRef.direct(ANA), Post(title="to ana"), "dm:ana")
    await app.outbox.drain()
    await app.outbox.enqueue(ChannelRef.direct(BEN), Post(title="to ben"), "dm:ben")
    await app.outbox.drain()
    assert await app.outbox.state("dm:ana") == "failed"
    assert await app.outbox.state("dm:ben") == "sent"
    assert [p.title for _, p in platform.posted.values()] == ["to ben"]


async def test_dm_in_doubt_after_a_crash_is_found_not_sent_again(make_app):
    platform = Platform()
    app = await start(make_app, platform, db="crash.db")
    await app.outbox.enqueue(ChannelRef.direct(ANA), Post(title="once"), "dm:once")
    platform.crash_after_send = True
    with pytest.raises(Crash):
        await app.outbox.drain()
    platform.crash_after_send = False
    restarted = await start(make_app, platform, db="crash.db")
    await restarted.outbox.drain()
    assert len(platform.posted) == 1
    assert await restarted.outbox.state("dm:once") == "sent"
