"""/feed remove and /feed pause stop the posting at once: queued items are withdrawn."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.model import ChannelRef
from tests import test_feeds_flow as flow
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.test_feeds_flow import feeds, tick

start, feed_server = flow.start, flow.feed_server  # the fixtures

CAPPED = {"feeds": {"per_channel_cap": 2, "per_channel_window": "10m"}}


def shown(text: str, channel: str = "") -> list[str]:
    """Item titles posted, in order (in one channel, if named)."""
    where = rf"\[public in #{channel}\]" if channel else r"\[public\]"
    return re.findall(rf"{where}\s*\*\* (item \d+) \*\*", text)


async def later(run, clock, minutes: int = 30) -> None:
    for _ in range(minutes // 10):
        clock.advance(timedelta(minutes=10))
        await run.app.outbox.drain()


async def test_remove_withdraws_the_queued_items(start, feed_server: FeedServer, clock):
    run = await start(CAPPED)
    url = feed_server.set("f.xml", body=rss(entries(5)))
    await run.say(f"@mod! /feed add {url} backlog=5")
    assert shown(run.text) == ["item 1", "item 2"]  # the cap holds back three
    out = await run.say("@mod! /feed remove 1")
    assert "no longer follows Test feed" in out and "Withdrew 3 queued post(s)" in out
    await later(run, clock)
    assert shown(run.text) == ["item 1", "item 2"]
    assert await run.app.outbox.pending_count() == 0


async def test_removing_subscription_1_leaves_subscription_12_alone(
    start, feed_server: FeedServer, clock
):
    run = await start(CAPPED)
    url = feed_server.set("f.xml", body=rss(entries(5)))
    for n in range(1, 13):
        channel = ChannelRef("console", "demo", f"c{n}")
        await feeds(run).subscribe(url, channel, backlog=5 if n in (1, 12) else 0)
    await feeds(run).poll_due()
    await run.app.outbox.drain()
    assert shown(run.text, "c1") == shown(run.text, "c12") == ["item 1", "item 2"]
    assert "Withdrew 3 queued post(s)" in await run.say("@mod! /feed remove 1")
    await later(run, clock)
    assert shown(run.text, "c1") == ["item 1", "item 2"]
    assert shown(run.text, "c12") == [f"item {i}" for i in range(1, 6)]


async def test_remove_withdraws_a_pending_disabled_notice(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("f.xml", status=410)
    clock.advance(timedelta(hours=1))
    await feeds(run).poll_due()  # queues the notice, not delivered yet
    assert await run.app.outbox.pending_count() == 1
    assert "Withdrew 1 queued post(s)" in await run.say("@mod! /feed remove 1")
    await run.app.outbox.drain()
    assert "gone for good" not in run.text


async def test_pause_withdraws_the_queued_items_and_resume_starts_from_now(
    start, feed_server: FeedServer, clock
):
    run = await start(CAPPED)
    url = feed_server.set("f.xml", body=rss(entries(5)))
    await run.say(f"@mod! /feed add {url} backlog=5")
    out = await run.say("@mod! /feed pause 1")
    assert "Paused subscription #1" in out and "Withdrew 3 queued post(s)" in out
    await later(run, clock)
    assert shown(run.text) == ["item 1", "item 2"]
    await run.say("@mod! /feed resume 1")
    feed_server.set("f.xml", body=rss(entries(6)))
    await tick(run, clock)
    await later(run, clock)
    assert shown(run.text) == ["item 1", "item 2", "item 6"]


async def test_withdrawn_items_no_longer_hold_back_the_channel(
    start, feed_server: FeedServer, clock
):
    run = await start({"feeds": {"per_channel_cap": 2, "per_channel_window": "2h"}})
    a = feed_server.set("a.xml", body=rss(entries(5, prefix="a")))
    b = feed_server.set("b.xml", body=rss(entries(1, prefix="b")))
    await run.say(f"@mod! /feed add {a} backlog=5", "@mod! /feed pause 1")
    await run.say(f"@mod! /feed add {b} backlog=0")
    feed_server.set("b.xml", body=rss(entries(2, prefix="b")))
    # Past the window of a1 and a2; a3-a5 had been given slots 2 h and 4 h after them.
    out = await tick(run, clock, timedelta(hours=2, minutes=30))
    assert "** b 2 **" in out  # now, not behind slots that were withdrawn


async def test_a_pause_during_a_fetch_queues_nothing_after_it(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    poller = feeds(run).poller
    parse = poller.parse
    answers = []

    async def parse_then_pause(result, want=None):
        parsed = await parse(result, want)
        answers.append(await run.say("@mod! /feed pause 1"))  # lands mid-refresh
        return parsed

    poller.parse = parse_then_pause  # type: ignore[method-assign]
    feed_server.set("f.xml", body=rss(entries(2)))
    assert "** item" not in await tick(run, clock)
    assert "Paused subscription #1" in answers[0]
    assert await run.app.outbox.pending_count() == 0
