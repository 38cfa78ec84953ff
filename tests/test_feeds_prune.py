"""The item memory (`feed_items`) is pruned, but never of an item the feed still lists."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.feeds import store as feed_store
from bot.feeds.schema import MIGRATIONS
from tests import test_feeds_flow as flow
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.test_feeds_flow import tick

start, feed_server = flow.start, flow.feed_server  # the fixtures
DAY = timedelta(days=1)


async def remembered(run) -> int:
    return await run.app.db.fetchval("SELECT count(*) FROM feed_items")


async def test_an_item_gone_from_the_feed_for_long_is_forgotten(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(3)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    assert await remembered(run) == 3
    feed_server.set("f.xml", body=rss(entries(2, start=2)))  # item 1 drops out
    await tick(run, clock)
    await tick(run, clock, 89 * DAY)
    feed_server.set("f.xml", body=rss(entries(3, start=2)))  # parsed again: item 4 is new
    assert "item 4" in await tick(run, clock, 2 * DAY)
    assert await remembered(run) == 3  # items 2, 3, 4: item 1 was gone for 91 days


async def test_an_unchanged_feed_keeps_its_items_however_long(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(3)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    for _ in range(4):  # 200 days of 304s: nothing is parsed, nothing is forgotten
        await tick(run, clock, 50 * DAY)
    feed_server.set("f.xml", body=rss(entries(4)))
    out = await tick(run, clock)
    assert "item 4" in out and out.count("** item") == 1
    assert await remembered(run) == 4


async def test_an_item_that_comes_back_restarts_its_clock(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(2)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    for listed in (entries(1, start=2), entries(2), entries(1, start=2)):
        feed_server.set("f.xml", body=rss(listed))  # item 1 out 60 days, back, out again
        await tick(run, clock, 60 * DAY)
    feed_server.set("f.xml", body=rss(entries(2)))
    out = await tick(run, clock, 20 * DAY)  # 80 days out this time, 120 in all
    assert "** item" not in out
    assert await remembered(run) == 2


async def test_pruning_is_bounded_per_fetch(
    start, feed_server: FeedServer, clock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(feed_store, "PRUNE_BATCH", 2)
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(6)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("f.xml", body=rss(entries(1, start=6)))  # five items drop out
    await tick(run, clock)
    feed_server.set("f.xml", body=rss(entries(2, start=6)))
    await tick(run, clock, 91 * DAY)
    assert await remembered(run) == 7 - 2
    feed_server.set("f.xml", body=rss(entries(3, start=6)))
    await tick(run, clock)
    assert await remembered(run) == 8 - 4


@pytest.mark.sqlite_only("a SQLite file written by an older bot")
async def test_a_database_from_before_pruning_is_upgraded_and_keeps_its_items(make_app, tmp_path):
    from bot.feeds import Feeds
    from bot.help import Help
    from bot.store import Database

    old = await Database.open(tmp_path / "old.db")
    await old.migrate("feeds", MIGRATIONS[:1])
    await old.execute(
        "INSERT INTO feed_sources (url, next_check_at) VALUES ('https://example.org/f', 0)"
    )
    await old.execute("INSERT INTO feed_items (source_id, key, first_seen) VALUES (1, 'k', 0)")
    await old.close()
    app = await make_app(features=[Help, Feeds], db="old.db")
    assert await app.db.version("feeds") == len(MIGRATIONS)
    row = await app.db.fetchone("SELECT key, gone_since FROM feed_items")
    assert (row["key"], row["gone_since"]) == ("k", None)  # listed until a parse says not
