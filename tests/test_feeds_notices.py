"""Notices (a feed switched off) never flood a channel (issue 15): they are gathered into one
post per destination, paced by its cap like feed items, and posted once across restarts.

Here the community's moderators' channel is the members' channel itself, so that notices and
feed items share one cap."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.feeds.poller import NOTICE_GATHER
from bot.model import ChannelRef
from tests import test_feeds_flow as flow
from tests.conftest import ConsoleRun
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.test_feeds_flow import feeds

start, feed_server = flow.start, flow.feed_server  # the fixtures

GENERAL = ChannelRef("console", "demo", "general")
SHARED = {
    "community": [{"name": "Demo", "workspaces": ["console:demo"], "moderators": GENERAL.key}]
}
DYING = {
    "feeds": {"max_failures": 2, "jitter": 0, "interval": "30m", "per_channel_cap": 5},
    **SHARED,
}


def notices(*runs: ConsoleRun) -> list[str]:
    """Every notice post the runs showed."""
    blocks = [b for run in runs for b in run.out]
    return [b for b in blocks if "[public]" in b and re.search(r"[Ff]eeds? paused", b)]


def named(post: str) -> list[int]:
    return [int(n) for n in re.findall(r"\bDead (\d+)\b", post)]


async def minute(run: ConsoleRun, clock, n: int = 1) -> None:
    """Let n minutes pass one by one, polling and delivering each minute."""
    for _ in range(n):
        clock.advance(timedelta(minutes=1))
        await feeds(run).poll_due()
        await run.app.outbox.drain()


async def test_fifty_dead_feeds_make_a_handful_of_notices_each_posted_once(
    start, feed_server: FeedServer, clock
):
    run = await start(DYING)
    # Five batches of ten feeds, subscribed three minutes apart: they die in five rounds.
    for batch in range(5):
        for i in range(batch * 10, batch * 10 + 10):
            url = feed_server.set(f"d{i}.xml", body=rss(entries(1), title=f"Dead {i}"))
            await feeds(run).subscribe(url, GENERAL, backlog=0)
        await minute(run, clock, 3)
    for i in range(50):
        feed_server.set(f"d{i}.xml", status=500)
    await minute(run, clock, 50)  # the first batch is switched off about now
    assert notices(run), "no feed was switched off yet"
    again = await start(DYING, db="bot.db")  # a restart in the middle of it all
    await minute(again, clock, 60)
    assert all(s.state == "disabled" for s in await feeds(again).store.all_sources())

    posts = notices(run, again)
    assert 1 < len(posts) <= 5
    assert all(len(named(p)) >= 5 for p in posts)  # each post tells of several feeds
    told = sorted(n for p in posts for n in named(p))
    assert told == list(range(50))  # every feed named, none twice
    assert "feeds paused after repeated failures" in posts[-1]
    assert "/feed resume ID" in posts[-1]

    third = await start(DYING, db="bot.db")  # and nothing again after another restart
    await minute(third, clock, 30)
    assert notices(third) == []


async def test_a_crash_before_a_group_is_marked_queued_does_not_post_it_twice(
    start, feed_server: FeedServer, clock
):
    run = await start(DYING)
    for i in range(3):
        url = feed_server.set(f"d{i}.xml", body=rss(entries(1), title=f"Dead {i}"))
        await feeds(run).subscribe(url, GENERAL, backlog=0)
    await feeds(run).poll_due()
    for i in range(3):
        feed_server.set(f"d{i}.xml", status=410)
    store = feeds(run).store

    async def crash(*args, **kwargs):
        raise RuntimeError("the process stops here")

    store.mark_notice_group = crash  # type: ignore[method-assign]
    clock.advance(timedelta(hours=1))
    with pytest.raises(RuntimeError):
        await feeds(run).poll_due()  # queued the post, never noted that it did
    again = await start(DYING, db="bot.db")
    await minute(again, clock, 2)
    posts = notices(again)
    assert len(posts) == 1 and sorted(named(posts[0])) == [0, 1, 2]
    assert "3 feeds paused because their sites say they are gone" in posts[0]


async def test_notices_wait_for_room_under_the_channel_cap(start, feed_server: FeedServer, clock):
    run = await start({"feeds": {"per_channel_cap": 2, "per_channel_window": "10m"}, **SHARED})
    busy = feed_server.set("busy.xml", body=rss(entries(2)))
    dying = feed_server.set("dying.xml", body=rss(entries(1, prefix="d"), title="Dead 1"))
    await run.say(f"@mod! /feed add {dying} backlog=0", f"@mod! /feed add {busy} backlog=0")
    feed_server.set("dying.xml", status=410)
    feed_server.set("busy.xml", body=rss(entries(4)))  # two new items take the cap's room
    out = await flow.tick(run, clock)
    assert out.count("** item") == 2 and "paused" not in out  # the notice waits its turn
    clock.advance(timedelta(minutes=10))
    await run.app.outbox.drain()
    assert notices(run) and named(notices(run)[0]) == [1]


async def test_notices_of_a_round_are_one_post(start, feed_server: FeedServer, clock):
    run = await start(SHARED)
    for i in range(4):
        url = feed_server.set(f"d{i}.xml", body=rss(entries(1), title=f"Dead {i}"))
        await run.say(f"@mod! /feed add {url} backlog=0")
        feed_server.set(f"d{i}.xml", status=410)
    await flow.tick(run, clock)
    posts = notices(run)
    assert len(posts) == 1 and sorted(named(posts[0])) == [0, 1, 2, 3]
    assert "(#1)" in posts[0] and "(#4)" in posts[0]


async def test_notices_that_come_soon_after_one_wait_and_go_together(
    start, feed_server: FeedServer, clock
):
    run = await start(SHARED)
    for i in range(3):
        url = feed_server.set(f"d{i}.xml", body=rss(entries(1), title=f"Dead {i}"))
        await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("d0.xml", status=410)
    await flow.tick(run, clock)
    assert len(notices(run)) == 1
    for i in (1, 2):  # each dies in a round of its own, soon after
        feed_server.set(f"d{i}.xml", status=410)
        await feeds(run).poller.refresh((await feeds(run).store.all_sources())[i])
        await minute(run, clock)
    assert len(notices(run)) == 1  # gathered, not yet posted
    await minute(run, clock, int(NOTICE_GATHER // 60))
    posts = notices(run)
    assert len(posts) == 2 and sorted(named(posts[1])) == [1, 2]


async def test_removing_one_feed_of_a_waiting_notice_leaves_the_others(
    start, feed_server: FeedServer, clock
):
    run = await start({"feeds": {"per_channel_cap": 1, "per_channel_window": "10m"}, **SHARED})
    busy = feed_server.set("busy.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {busy} backlog=0")
    for i in range(2):
        url = feed_server.set(f"d{i}.xml", body=rss(entries(1), title=f"Dead {i}"))
        await run.say(f"@mod! /feed add {url} backlog=0")
        feed_server.set(f"d{i}.xml", status=410)
    feed_server.set("busy.xml", body=rss(entries(2)))  # a new item takes the channel's room
    out = await flow.tick(run, clock)  # both gone: one notice, waiting for the cap
    assert "** item 2 **" in out and notices(run) == []
    assert "Withdrew" not in await run.say("@mod! /feed remove 2")  # the other still waits
    clock.advance(timedelta(minutes=10))
    await run.app.outbox.drain()
    posts = notices(run)
    assert len(posts) == 1 and named(posts[0]) == [1] and "Feed paused: Dead 1" in posts[0]
