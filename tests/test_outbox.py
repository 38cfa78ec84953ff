"""The outbox: posted once across crashes, retried on passing failures, paced, coalesced."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.errors import DeliveryError, Failure
from bot.help import Help
from bot.model import ChannelRef, Post
from tests.databases import died

GENERAL = ChannelRef("test", "w1", "general")
NEWS = ChannelRef("test", "w1", "news")


class Crash(BaseException):
    """The process dying mid-delivery (not an Exception, so nothing handles it)."""


class Platform:
    """A transport that keeps what it was sent and can be told to fail."""

    platform = "test"

    def __init__(self, pace: float = 0.0) -> None:
        self.pace = pace
        self.posted: dict[str, tuple[ChannelRef, Post]] = {}  # message id -> post
        self.keys: dict[str, str] = {}  # idempotency key -> message id, as a platform remembers
        self.edits: list[tuple[str, str]] = []
        self.failures: list[DeliveryError] = []
        self.crash_after_send = False
        self.lookups: list[str] = []

    async def send(self, channel, post, key):
        if self.failures:
            raise self.failures.pop(0)
        message_id = f"m{len(self.posted) + 1}"
        self.posted[message_id] = (channel, post)
        self.keys[key] = message_id
        if self.crash_after_send:
            raise Crash("process died after the platform accepted the post")
        return message_id

    async def edit(self, channel, message_id, post):
        if self.failures:
            raise self.failures.pop(0)
        self.edits.append((message_id, post.title))

    async def find(self, channel, key, since):
        self.lookups.append(key)
        return self.keys.get(key)


async def start(make_app, platform, **kw):
    app = await make_app(features=[Help], **kw)
    app.outbox.attach(platform)
    return app


async def test_same_key_is_queued_and_posted_once(make_app):
    platform = Platform()
    app = await start(make_app, platform)
    assert await app.outbox.enqueue(GENERAL, Post(title="a"), "item-1") is True
    assert await app.outbox.enqueue(GENERAL, Post(title="a again"), "item-1") is False
    assert await app.outbox.drain() == 1
    assert await app.outbox.drain() == 0
    assert [p.title for _, p in platform.posted.values()] == ["a"]
    assert await app.outbox.message_id("item-1") == "m1"


async def crash_after_the_platform_took_it(make_app, platform):
    """Post item-1, and die after the platform accepted it but before it was recorded."""
    app = await start(make_app, platform, db="crash.db")
    await app.outbox.enqueue(GENERAL, Post(title="once"), "item-1")
    platform.crash_after_send = True
    try:
        await app.outbox.drain()
    except Crash:
        pass
    platform.crash_after_send = False
    return app


async def test_crash_after_the_platform_accepted_does_not_post_twice(make_app):
    platform = Platform()
    app = await crash_after_the_platform_took_it(make_app, platform)
    assert await app.outbox.state("item-1") == "sending"  # in doubt
    restarted = await start(make_app, platform, db="crash.db")
    assert await restarted.outbox.drain() == 0  # attaching settled the row first
    assert len(platform.posted) == 1
    assert await restarted.outbox.state("item-1") == "sent"
    assert await restarted.outbox.message_id("item-1") == "m1"


async def test_crash_before_the_platform_accepted_posts_after_restart(make_app):
    platform = Platform()
    app = await start(make_app, platform, db="crash.db")
    await app.outbox.enqueue(GENERAL, Post(title="once"), "item-1")
    # Simulate a crash between marking the row `sending` and the platform call.
    await app.db.execute("UPDATE outbox SET state = 'sending' WHERE key = 'item-1'")
    restarted = await start(make_app, platform, db="crash.db")
    assert await restarted.outbox.drain() == 1
    assert len(platform.posted) == 1


async def test_passing_failures_are_retried_with_backoff_then_delivered(make_app, clock):
    platform = Platform()
    app = await start(make_app, platform)
    platform.failures = [
        DeliveryError("HTTP 500", Failure.IN_DOUBT),
        DeliveryError("rate limited", Failure.RATE_LIMITED, retry_after=30),
    ]
    await app.outbox.enqueue(GENERAL, Post(title="later"), "item-1")
    assert await app.outbox.drain() == 0  # 500: backs off ~2 s
    assert await app.outbox.drain() == 0  # not due yet
    clock.advance(3)
    assert await app.outbox.drain() == 0  # 429: waits its Retry-After
    clock.advance(10)
    assert await app.outbox.drain() == 0
    clock.advance(25)
    assert await app.outbox.drain() == 1
    assert len(platform.posted) == 1
    # The 500 may have posted it: it is looked up before every later try until it is settled.
    assert platform.lookups == ["item-1", "item-1"]
    # The rate limit was not counted as a try.
    assert await app.db.fetchval("SELECT attempts FROM outbox WHERE key = 'item-1'") == 1


async def test_a_permanent_failure_stops_without_losing_the_row(make_app):
    platform = Platform()
    app = await start(make_app, platform)
    platform.failures = [DeliveryError("channel_not_found", Failure.PERMANENT)]
    await app.outbox.enqueue(GENERAL, Post(title="x"), "item-1")
    await app.outbox.drain()
    assert await app.outbox.state("item-1") == "failed"
    row = await app.db.fetchone("SELECT last_error, payload FROM outbox WHERE key = 'item-1'")
    assert row["last_error"] == "channel_not_found" and '"x"' in row["payload"]


async def test_passing_failures_never_give_up_before_give_up_after(make_app, clock):
    platform = Platform()
    app = await start(make_app, platform, config={"outbox": {"give_up_after": "2h"}})
    platform.failures = [DeliveryError("HTTP 503", Failure.TRANSIENT) for _ in range(500)]
    await app.outbox.enqueue(GENERAL, Post(title="x"), "item-1")
    for _ in range(20):  # 100 minutes of outage: the backoff is capped at 5 minutes
        await app.outbox.drain()
        clock.advance(300)
        assert await app.outbox.state("item-1") == "pending"
    tries = 500 - len(platform.failures)
    # The capped backoff is 4 to 6 minutes (5 with its jitter): a try every one or two of
    # the clock's 5-minute steps, never more than one a step (no flood), never none.
    assert 10 <= tries <= 21
    clock.advance(3600)
    await app.outbox.drain()
    assert await app.outbox.state("item-1") == "failed"
    error = await app.db.fetchval("SELECT last_error FROM outbox WHERE key = 'item-1'")
    assert error.startswith("still failing after") and "HTTP 503" in error


async def test_pacing_sends_one_post_per_channel_per_interval(make_app, clock):
    platform = Platform(pace=1.0)
    app = await start(make_app, platform)
    for n in range(3):
        await app.outbox.enqueue(GENERAL, Post(title=f"g{n}"), f"g{n}")
    await app.outbox.enqueue(NEWS, Post(title="n0"), "n0")
    assert await app.outbox.deliver_due() == 2  # one per channel
    assert await app.outbox.deliver_due() == 0  # general must wait its pace
    clock.advance(1)
    assert await app.outbox.deliver_due() == 1
    clock.advance(1)
    assert await app.outbox.deliver_due() == 1
    assert [p.title for _, p in platform.posted.values()] == ["g0", "n0", "g1", "g2"]


async def test_a_burst_of_edits_becomes_one_platform_call(make_app, clock):
    platform = Platform()
    app = await start(make_app, platform)
    await app.outbox.enqueue(GENERAL, Post(title="tally 0"), "poll")
    await app.outbox.drain()
    for n in range(1, 20):
        await app.outbox.edit("poll", Post(title=f"tally {n}"))
    assert await app.outbox.drain() == 0  # debounced
    clock.advance(1)
    assert await app.outbox.drain() == 1
    assert platform.edits == [("m1", "tally 19")]
    await app.outbox.edit("poll", Post(title="tally 20"))
    clock.advance(1)
    await app.outbox.drain()
    assert platform.edits[-1] == ("m1", "tally 20")


async def test_an_edit_before_the_post_went_out_just_replaces_it(make_app):
    platform = Platform()
    app = await start(make_app, platform)
    await app.outbox.enqueue(GENERAL, Post(title="v1"), "poll")
    await app.outbox.edit("poll", Post(title="v2"))
    await app.outbox.drain()
    assert [p.title for _, p in platform.posted.values()] == ["v2"] and platform.edits == []


async def test_posts_wait_for_a_platform_that_is_not_connected(make_app):
    app = await make_app(features=[Help])
    await app.outbox.enqueue(GENERAL, Post(title="x"), "item-1")
    assert await app.outbox.drain() == 0
    assert await app.outbox.state("item-1") == "pending"
    platform = Platform()
    app.outbox.attach(platform)
    assert await app.outbox.drain() == 1


async def test_the_sender_loop_delivers_work_queued_while_it_sleeps(make_app):
    import asyncio

    platform = Platform()
    app = await start(make_app, platform)
    delivered = asyncio.Event()
    send = platform.send

    async def send_and_signal(channel, post, key):
        message_id = await send(channel, post, key)
        delivered.set()
        return message_id

    platform.send = send_and_signal
    sender = asyncio.create_task(app.outbox.run())
    try:
        await asyncio.sleep(0)  # the loop looks, finds nothing, and goes to sleep for 60 s
        await app.outbox.enqueue(GENERAL, Post(title="wake up"), "item-1")
        await asyncio.wait_for(delivered.wait(), timeout=5)
        assert [p.title for _, p in platform.posted.values()] == ["wake up"]
    finally:
        sender.cancel()


async def test_the_sender_sleeps_exactly_until_the_next_post_may_go(make_app, clock):
    platform = Platform(pace=2.5)
    app = await start(make_app, platform)
    assert await app.outbox.next_due() is None  # nothing waits
    await app.outbox.enqueue(GENERAL, Post(title="a"), "a")
    await app.outbox.enqueue(GENERAL, Post(title="b"), "b")
    assert await app.outbox.next_due() == 0.0
    await app.outbox.deliver_due()
    assert await app.outbox.next_due() == 2.5  # b waits for the channel's pace
    later = clock.now() + timedelta(seconds=40)
    await app.outbox.enqueue(NEWS, Post(title="c"), "c", not_before=later)
    clock.advance(2.5)
    await app.outbox.deliver_due()
    assert await app.outbox.next_due() == 37.5  # only c is left, not due for 37.5 s
    await app.outbox.enqueue(ChannelRef("elsewhere", "w", "x"), Post(title="d"), "d")
    assert await app.outbox.next_due() == 37.5  # a platform with no connection is not a wake-up


async def mid_call(make_app, platform):
    """Two workers on one database, the first in the middle of its call posting item-1,
    its claim good for a day."""
    first = await start(make_app, platform, db="shared.db")
    await first.outbox.enqueue(GENERAL, Post(title="once"), "item-1")
    await first.db.execute(
        "UPDATE outbox SET state = 'sending', claimed_by = ?, claimed_until = ?",
        (first.db.worker, first.clock.now().timestamp() + 86400),
    )
    return first, await start(make_app, platform, db="shared.db", alongside=True)


@pytest.mark.shared_only
async def test_a_live_workers_claim_is_left_alone_and_taken_over_the_moment_it_dies(make_app):
    platform = Platform()
    first, second = await mid_call(make_app, platform)
    assert await second.outbox.recover() == 0 and await second.outbox.drain() == 0
    assert not platform.posted and platform.lookups == []
    await died(first.db)  # killed: the server lets go of its liveness lock
    assert await second.outbox.drain() == 1
    assert platform.lookups == ["item-1"]  # in doubt: looked for before it was sent
    assert len(platform.posted) == 1 and await second.outbox.state("item-1") == "sent"


@pytest.mark.shared_only
async def test_a_worker_waiting_on_anothers_call_looks_again_within_seconds(make_app, clock):
    """Behind a live worker's call (its claim good for a day), the lane's task waits a few
    seconds at a time, so it sees that worker killed seconds after, not a claim later."""
    from bot.lanes import Lane

    platform = Platform()
    first, second = await mid_call(make_app, platform)
    lane = Lane(GENERAL.key, "post")
    assert (await second.outbox.lanes._step(lane)).wait == 5.0  # not a day
    await died(first.db)
    clock.advance(5)
    assert (await second.outbox.lanes._step(lane)).sent == 1
    assert platform.lookups == ["item-1"] and len(platform.posted) == 1


async def test_a_worker_looks_for_lanes_nobody_serves_within_seconds_on_a_shared_database(
    make_app, clock
):
    """Alone on its database a worker is told of each post it queues; on a shared one, work
    comes from the others too (and is left by those that die), so it looks every 5 s."""
    import asyncio

    platform = Platform()
    first = await start(make_app, platform, db="shared.db")
    second = await start(make_app, platform, db="shared.db", alongside=True)
    runner = second.outbox.lanes
    wait = await runner._dispatch()
    assert wait == (5.0 if second.db.shared else 60.0)
    await first.outbox.enqueue(GENERAL, Post(title="queued by the first"), "item-1")
    clock.advance(wait)
    await runner._dispatch()  # the look it was waiting for: it serves the first's lane
    await asyncio.gather(*runner._workers.values())
    assert [p.title for _, p in platform.posted.values()] == ["queued by the first"]
    assert await second.outbox.state("item-1") == "sent"


async def test_the_sender_started_before_the_platform_connects_posts_nothing_twice(make_app):
    """In production the sender loop runs before the adapters attach their transports."""
    import asyncio

    platform = Platform()
    await crash_after_the_platform_took_it(make_app, platform)
    restarted = await make_app(features=[Help], db="crash.db")
    sender = asyncio.create_task(restarted.outbox.run())
    try:
        await restarted.outbox.deliver_due()  # a round with no connection yet
        restarted.outbox.attach(platform)
        await restarted.outbox.drain()
    finally:
        sender.cancel()
    assert len(platform.posted) == 1
    assert await restarted.outbox.state("item-1") == "sent"


async def test_withdraw_takes_back_only_waiting_posts_under_the_exact_prefix(make_app):
    platform = Platform()
    app = await start(make_app, platform)
    await app.outbox.enqueue(GENERAL, Post(title="sent"), "feed:1:sent")
    await app.outbox.drain()
    for key in ("feed:1:a", "feed:1:b", "feed:12:c", "feed:1x", "feed_1:d", "feedX1:e"):
        await app.outbox.enqueue(GENERAL, Post(title=key), key)
    assert await app.outbox.withdraw("feed:1:") == ["feed:1:a", "feed:1:b"]
    # `_` and `%` are not wildcards here.
    assert await app.outbox.withdraw("feed_1:") == ["feed_1:d"]
    assert await app.outbox.withdraw("feed%") == []
    assert await app.outbox.withdraw("feed:1:") == []  # nothing left to take back
    await app.outbox.drain()
    titles = [p.title for _, p in platform.posted.values()]
    assert titles == ["sent", "feed:12:c", "feed:1x", "feedX1:e"]
    assert await app.outbox.state("feed:1:sent") == "sent"
    assert await app.outbox.state("feed:1:a") == "failed"
    # The key stays spent: the same post is not queued again.
    assert await app.outbox.enqueue(GENERAL, Post(title="again"), "feed:1:a") is False
    assert await app.outbox.pending_count() == 0


async def test_withdraw_refuses_an_empty_prefix_and_changes_nothing(make_app):
    import pytest

    app = await start(make_app, Platform())
    await app.outbox.enqueue(GENERAL, Post(title="x"), "item-1")
    with pytest.raises(ValueError, match="every post"):
        await app.outbox.withdraw("")
    assert await app.outbox.state("item-1") == "pending"


async def test_withdraw_leaves_a_post_in_flight_alone(make_app):
    import asyncio

    platform = Platform()
    app = await start(make_app, platform)
    in_flight, release = asyncio.Event(), asyncio.Event()
    send = platform.send

    async def slow_send(channel, post, key):
        in_flight.set()
        await release.wait()
        return await send(channel, post, key)

    platform.send = slow_send
    await app.outbox.enqueue(GENERAL, Post(title="going"), "feed:1:a")
    delivery = asyncio.create_task(app.outbox.drain())
    await asyncio.wait_for(in_flight.wait(), timeout=5)
    assert await app.outbox.withdraw("feed:1:") == []  # handed over: not ours to take back
    release.set()
    assert await asyncio.wait_for(delivery, timeout=5) == 1
    assert await app.outbox.state("feed:1:a") == "sent"


async def test_withdraw_leaves_a_post_in_doubt_after_a_crash_alone(make_app):
    platform = Platform()
    app = await crash_after_the_platform_took_it(make_app, platform)
    assert await app.outbox.state("item-1") == "sending"
    assert await app.outbox.withdraw("item-") == []
    restarted = await start(make_app, platform, db="crash.db")
    await restarted.outbox.drain()
    assert await restarted.outbox.state("item-1") == "sent" and len(platform.posted) == 1


async def test_a_post_withdrawn_while_a_delivery_round_holds_it_is_not_sent(make_app):
    platform = Platform()
    app = await start(make_app, platform)
    await app.outbox.enqueue(GENERAL, Post(title="x"), "feed:1:a")
    heads = app.outbox.lanes._head

    async def heads_then_withdraw(lane, now):
        found = await heads(lane, now)
        await app.outbox.withdraw("feed:1:")  # lands between reading the row and claiming it
        await app.outbox.enqueue(GENERAL, Post(title="new"), "other")
        return found

    app.outbox.lanes._head = heads_then_withdraw
    assert await app.outbox.deliver_due() == 0
    app.outbox.lanes._head = heads
    await app.outbox.drain()
    assert [p.title for _, p in platform.posted.values()] == ["new"]
    assert platform.keys == {"other": "m1"}


async def test_withdraw_takes_any_character_as_the_prefix_end(make_app):
    app = await start(make_app, Platform())
    for key in ("café:1", "cafë:2", "k\ud7ffa", "k\ue000b", "z\U0010fffe1", "z\U0010ffff2"):
        await app.outbox.enqueue(GENERAL, Post(title=key), key)
    assert await app.outbox.withdraw("café") == ["café:1"]
    assert await app.outbox.withdraw("k\ud7ff") == ["k\ud7ffa"]  # the next one is a surrogate
    assert await app.outbox.withdraw("z\U0010fffe") == ["z\U0010fffe1"]


async def test_moderators_see_in_help_what_could_not_be_delivered_and_why(make_app):
    from bot.model import Invocation, UserRef

    platform = Platform()
    app = await start(make_app, platform)
    platform.failures = [DeliveryError("channel_not_found", Failure.PERMANENT)]
    await app.outbox.enqueue(GENERAL, Post(title="x"), "item-1")
    await app.outbox.enqueue(NEWS, Post(title="y"), "item-2")
    await app.outbox.drain()
    platform.failures = [DeliveryError("token_revoked: set TEST_TOKEN", Failure.CREDENTIALS)]
    await app.outbox.enqueue(GENERAL, Post(title="z"), "item-3")
    await app.outbox.drain()
    assert await app.outbox.state("item-3") == "pending"  # kept while the platform is paused
    mod, member = UserRef("test", "w1", "mod"), UserRef("test", "w1", "ann")

    async def delivery(user, is_moderator):
        [reply] = await app.invoke(Invocation(("help",), user, GENERAL, is_moderator, text=""))
        return next((f.value for f in reply.post.fields if f.name == "Delivery"), None)

    shown = await delivery(mod, True)
    assert "Test is paused" in shown and "TEST_TOKEN" in shown
    assert "1 post(s) waiting" in shown
    assert "1 post(s) could not be delivered" in shown and "channel_not_found" in shown
    assert await delivery(member, False) is None
