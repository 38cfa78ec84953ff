"""A subscription's own check interval (`/feed add … interval=`, `/feed edit ID interval=`):
refused outside its bounds (the configured minimum, the feed's own TTL or max-age, the
configured maximum) with the bounds said; a feed several channels follow is fetched at the
shortest interval any asks for and posts each item once in each; stored across a restart;
shown in /feed list and on the web console. On the console, on Slack (slack-bolt) and on
Discord (discord.py) against the fakes, feeds from a local server, time from the FakeClock.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from adapters.console import Console
from bot.feeds import Feeds
from bot.feeds.schema import MIGRATIONS
from bot.help import Help
from bot.store import Database
from tests.conftest import ConsoleRun
from tests.fakes import feed_server as fake_feeds
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.feeds_platforms import discord_bot, slack_bot

feed_server = fake_feeds.feed_server  # the fixture

CONFIG = {"feeds": {"allow_private": True, "timeout": 1, "per_channel_cap": 50, "jitter": 0}}
HOUR = 3600.0


@pytest.fixture
def start(make_app):
    async def start(db: str = "bot.db") -> ConsoleRun:
        app = await make_app(features=[Help, Feeds], config=CONFIG, db=db)
        out: list[str] = []
        return ConsoleRun(Console(app, write=out.append), out)

    return start


def feeds(run: ConsoleRun) -> Feeds:
    return run.app.features["feeds"]  # type: ignore[return-value]


async def next_check_in(run: ConsoleRun, clock, source_id: int = 1) -> float:
    """Seconds from now to the source's next check."""
    source = await feeds(run).store.source(source_id)
    assert source is not None
    return source.next_check_at - clock.now().timestamp()


async def poll(run: ConsoleRun, clock, by: timedelta) -> tuple[dict[int, str], str]:
    """Let time pass, check what is due, deliver: what was checked and what appeared."""
    clock.advance(by)
    before = len(run.out)
    outcomes = await feeds(run).poll_due()
    await run.app.outbox.drain()
    return outcomes, "\n".join(run.out[before:])


# --- Bounds ----------------------------------------------------------------------------


async def test_an_interval_below_the_configured_minimum_is_refused_with_the_bounds(
    start, feed_server: FeedServer
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(2)))
    out = await run.say(f"@mod! /feed add {url} interval=5m")
    assert "5 min is too often: at least 10 min" in out
    assert "`[feeds] min_interval`" in out and "from 10 min to 1 day" in out
    assert await feeds(run).store.all_sources() == []  # refused before anything was stored


async def test_an_interval_above_the_maximum_is_refused_with_the_bounds(
    start, feed_server: FeedServer
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(2)))
    out = await run.say(f"@mod! /feed add {url} interval=2d")
    assert "2 days is too long: at most 1 day" in out and "from 10 min to 1 day" in out
    assert await feeds(run).store.all_sources() == []  # refused before anything was stored


async def test_an_interval_shorter_than_the_feeds_ttl_is_refused(start, feed_server: FeedServer):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1), ttl=60))  # RSS <ttl>: minutes
    out = await run.say(f"@mod! /feed add {url} interval=10m")
    assert "10 min is too often: at least 1 h" in out and "its TTL or max-age" in out
    assert "from 1 h to 1 day" in out
    out = await run.say(f"@mod! /feed add {url} interval=90m")
    assert "now follows Test feed" in out and "checked about every 1 h 30 min" in out


async def test_an_interval_shorter_than_the_answers_max_age_is_refused(
    start, feed_server: FeedServer
):
    run = await start()
    url = feed_server.set(
        "f.xml", body=rss(entries(1)), headers={"Cache-Control": "public, max-age=7200"}
    )
    out = await run.say(f"@mod! /feed add {url} interval=1h")
    assert "1 h is too often: at least 2 h" in out
    assert "now follows" in await run.say(f"@mod! /feed add {url} interval=2h")


async def test_a_bad_interval_is_a_usage_error(start, feed_server: FeedServer):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    out = await run.say(f"@mod! /feed add {url} interval=often")
    assert "`interval`" in out and "now follows" not in out
    help = await run.say("/help feed add")
    assert "a duration like 2h or 90m, from 10 min to 1 day" in help


# --- Schedule --------------------------------------------------------------------------


async def test_the_feed_is_checked_at_the_subscriptions_interval(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} interval=2h backlog=0")
    assert await next_check_in(run, clock) == pytest.approx(2 * HOUR)
    feed_server.set("f.xml", body=rss(entries(2)))
    checked, shown = await poll(run, clock, timedelta(hours=1))
    assert checked == {} and "item 2" not in shown  # the default 30 min is not used
    checked, shown = await poll(run, clock, timedelta(hours=1))
    assert checked == {1: "new"} and "item 2" in shown
    assert await next_check_in(run, clock) == pytest.approx(2 * HOUR)
    # An unchanged answer keeps to it too.
    checked, _ = await poll(run, clock, timedelta(hours=2))
    assert checked == {1: "not_modified"}
    assert await next_check_in(run, clock) == pytest.approx(2 * HOUR)


async def test_a_shared_feed_is_fetched_at_the_shortest_interval_and_posts_once_each(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(
        f"@mod! /feed add {url} interval=6h backlog=0",
        f"@mod! /feed add {url} #ops interval=1h backlog=0",
    )
    assert await next_check_in(run, clock) == pytest.approx(HOUR)
    fetches = len(feed_server.hits("f.xml"))
    feed_server.set("f.xml", body=rss(entries(2)))
    checked, shown = await poll(run, clock, timedelta(hours=1))
    assert checked == {1: "new"} and len(feed_server.hits("f.xml")) == fetches + 1
    assert shown.count("** item 2 **") == 2 and "[public in #ops]" in shown
    checked, shown = await poll(run, clock, timedelta(hours=1))
    assert checked == {1: "not_modified"} and "item 2" not in shown  # once in each channel
    # With the eager subscription paused, the other one's six hours rule.
    await run.say("@mod! /feed pause 2")
    feed_server.set("f.xml", body=rss(entries(3)))
    checked, _ = await poll(run, clock, timedelta(hours=1))
    assert checked == {1: "new"}  # due since the last check, at 1 h
    assert await next_check_in(run, clock) == pytest.approx(6 * HOUR)


async def test_a_stored_ttl_keeps_unchanged_answers_from_shortening_the_interval(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1), ttl=120))
    await run.say(f"@mod! /feed add {url}")
    assert await next_check_in(run, clock) == pytest.approx(2 * HOUR)
    checked, _ = await poll(run, clock, timedelta(hours=2))
    assert checked == {1: "not_modified"}  # a 304 says no TTL: the stored one still counts
    assert await next_check_in(run, clock) == pytest.approx(2 * HOUR)


# --- /feed edit, /feed list, restart -----------------------------------------------------


async def test_edit_changes_the_interval_within_bounds_and_brings_the_check_forward(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} interval=12h")
    assert await next_check_in(run, clock) == pytest.approx(12 * HOUR)
    out = await run.say("@mod! /feed edit 1 interval=1h")
    assert "Subscription #1: checked about every 1 h." in out
    assert await next_check_in(run, clock) == pytest.approx(HOUR)
    out = await run.say("@mod! /feed edit 1 interval=1m")
    assert "1 min is too often: at least 10 min" in out
    out = await run.say("@mod! /feed edit 1 interval=3d")
    assert "3 days is too long: at most 1 day" in out
    assert (await feeds(run).store.subscription(1)).check_every == HOUR  # type: ignore[union-attr]
    assert "Nothing to change" in await run.say("@mod! /feed edit 1")
    assert "moderators" in await run.say("/feed edit 1 interval=2h")  # a member may not
    assert "no feed subscription #7" in await run.say("@mod! /feed edit 7 interval=2h")


async def test_edit_honours_the_ttl_the_feed_gave_at_its_last_parse(start, feed_server: FeedServer):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1), ttl=180))
    await run.say(f"@mod! /feed add {url}")
    out = await run.say("@mod! /feed edit 1 interval=1h")
    assert "1 h is too often: at least 3 h" in out and "its TTL or max-age" in out
    assert "every 4 h" in await run.say("@mod! /feed edit 1 interval=4h")


async def test_the_interval_is_listed_and_kept_across_a_restart(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} interval=3h", f"@mod! /feed add {url} #ops")
    listed = await run.say("/feed list")
    assert "checked about every 3 h (its own interval)" in listed
    assert "checked about every 30 min" in listed  # the other one asks for none
    again = await start()
    sub = await feeds(again).store.subscription(1)
    assert sub is not None and sub.check_every == 3 * HOUR
    assert "every 3 h (its own interval)" in await again.say("/feed list")


async def test_a_subscription_stored_before_the_migration_keeps_the_defaults(
    start, places, feed_server: FeedServer, clock
):
    db = await Database.open(await places.url("bot.db"))
    await db.migrate("feeds", MIGRATIONS[:4])  # the schema before intervals and pings
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await db.execute(
        "INSERT INTO feed_sources (url, allow_private, next_check_at) VALUES (?, 1, 0)", (url,)
    )
    await db.execute(
        "INSERT INTO feed_subscriptions (source_id, channel, backlog, primed, created_at)"
        " VALUES (1, 'console:demo:general', 0, 1, 0)"
    )
    await db.close()
    run = await start()  # the same file: the feeds' migration 5 runs
    assert await run.app.db.version("feeds") == len(MIGRATIONS)
    sub = await feeds(run).store.subscription(1)
    assert sub is not None and (sub.check_every, sub.ping_role, sub.ping_name) == (None, "", "")
    assert "checked about every 30 min" in await run.say("/feed list")
    assert "every 2 h" in await run.say("@mod! /feed edit 1 interval=2h")


async def test_the_web_console_shows_each_subscriptions_interval(make_web, feed_server):
    web = await make_web(CONFIG)
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await web.console.say(f"@mia! /feed add {url} interval=2h", f"@mia! /feed add {url} #ops")
    client = await web.sign_in("mia")
    html = await web.page(client, "/feeds")
    assert '<td class="every">2 h</td>' in html
    assert '<td class="every">30 min (default)</td>' in html


# --- Slack and Discord -------------------------------------------------------------------


async def test_slack_refuses_an_interval_out_of_bounds_and_takes_one_within(
    make_app, fake_slack: FakeSlack, feed_server: FeedServer, clock
):
    url = feed_server.set("f.xml", body=rss(entries(1), ttl=60))
    async with slack_bot(make_app, fake_slack) as slack:
        small = await slack.command(f"add {url} interval=10m")
        assert small["response_type"] == "ephemeral"
        assert "at least 1 h" in json.dumps(small) and "from 1 h to 1 day" in json.dumps(small)
        large = await slack.command(f"add {url} interval=3d")
        assert "at most 1 day" in json.dumps(large)
        fine = await slack.command(f"add {url} interval=2h backlog=1")
        assert "now follows" in json.dumps(fine)
        await slack.app.outbox.drain()
        assert len(slack.posts()) == 1  # the backlog of one, posted once
        source = await slack.app.features["feeds"].store.source(1)
        assert source is not None
        assert source.next_check_at - clock.now().timestamp() == pytest.approx(2 * HOUR)


async def test_discord_refuses_an_interval_out_of_bounds_and_takes_one_within(
    make_app, fake_discord: FakeDiscord, feed_server: FeedServer, clock
):
    url = feed_server.set("f.xml", body=rss(entries(1)))
    async with discord_bot(make_app, fake_discord) as bot:
        small = await bot.feed("add", url=url, interval="1m")
        assert "1 min is too often: at least 10 min" in small and "from 10 min to 1 day" in small
        assert "'flags': 64" in small  # only the moderator sees it
        assert "at most 1 day" in await bot.feed("add", url=url, interval="25h")
        assert "now follows" in await bot.feed("add", url=url, interval="45m", backlog=0)
        sub = await bot.app.features["feeds"].store.subscription(1)
        assert sub is not None and sub.check_every == 45 * 60
