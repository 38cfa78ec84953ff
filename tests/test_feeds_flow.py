"""The whole path through the console: /feed commands, polling, dedupe, health, restarts.

A real App on a real SQLite file, feeds from a local server, time from the FakeClock.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from adapters.console import Console
from bot.feeds import Feeds
from bot.help import Help
from bot.model import ChannelRef
from tests.conftest import ConsoleRun
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import Entry, FeedServer, entries, rss

feed_server = fake_feeds.feed_server  # the fixture

CONFIG = {"feeds": {"allow_private": True, "timeout": 0.5, "max_failures": 3, "per_channel_cap": 50}}  # fmt: skip
LATER = timedelta(hours=1)  # past any interval + jitter


@pytest.fixture
def start(make_app):
    async def start(config: dict | None = None, db: str = "bot.db") -> ConsoleRun:
        merged = {**(config or {}), "feeds": {**CONFIG["feeds"], **(config or {}).get("feeds", {})}}
        app = await make_app(features=[Help, Feeds], config=merged, db=db)
        out: list[str] = []
        return ConsoleRun(Console(app, write=out.append), out)

    return start


def feeds(run: ConsoleRun) -> Feeds:
    return run.app.features["feeds"]  # type: ignore[return-value]


async def tick(run: ConsoleRun, clock, by: timedelta = LATER) -> str:
    """Let time pass, poll what is due, deliver: return what appeared."""
    clock.advance(by)
    before = len(run.out)
    await feeds(run).poll_due()
    await run.app.outbox.drain()
    return "\n".join(run.out[before:])


async def test_add_posts_backlog_newest_items_oldest_first(start, feed_server: FeedServer):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(10)))
    out = await run.say(f"@mod! /feed add {url}")
    assert "now follows Test feed (subscription #1)" in out
    assert "latest 3 items now" in out
    posted = [line for line in run.out if "** item" in line]
    assert [p.split("**")[1].strip() for p in posted] == ["item 8", "item 9", "item 10"]


async def test_backlog_zero_posts_nothing_until_new_items(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(5)))
    out = await run.say(f"@mod! /feed add {url} backlog=0")
    assert "** item" not in out
    feed_server.set("f.xml", body=rss(entries(6)))
    assert "item 6" in await tick(run, clock)
    assert "item 5" not in run.text


async def test_304_posts_nothing_and_is_not_parsed(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(2)))
    await run.say(f"@mod! /feed add {url}")
    parsed = []
    original = feeds(run).poller.parse

    async def counting(result, want=None):
        parsed.append(result.url)
        return await original(result, want)

    feeds(run).poller.parse = counting  # type: ignore[method-assign]
    assert await tick(run, clock) == ""
    assert feed_server.requests[-1].headers.get("If-None-Match")
    assert parsed == []
    feed_server.set("f.xml", body=rss(entries(2)), validators=False)  # same bytes, no ETag
    assert await tick(run, clock) == ""
    assert parsed == []  # same content hash: not parsed either


async def test_new_item_posted_once_in_every_channel_with_one_fetch(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(2)))
    await run.say(f"@mod! /feed add {url} backlog=0", f"@mod! /feed add {url} #ops backlog=0")
    fetches = len(feed_server.hits("f.xml"))
    feed_server.set("f.xml", body=rss(entries(3)))
    out = await tick(run, clock)
    assert len(feed_server.hits("f.xml")) == fetches + 1  # one fetch for both channels
    assert out.count("** item 3 **") == 2 and "[public in #ops]" in out
    assert await tick(run, clock) == ""


async def test_repeated_guids_and_links_do_not_repost(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(2)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    # The same items come back reordered, retitled, re-dated: same guid, same item.
    shuffled = [Entry("item 1 (updated)", guid="item-1", date="Tue, 24 Nov 2026 09:00:00 +0000"), *entries(2)]  # fmt: skip
    feed_server.set("f.xml", body=rss(shuffled))
    assert "** item" not in await tick(run, clock)
    # An item without a guid is known by its link.
    by_link = [Entry("linked", link="https://example.org/l")]
    feed_server.set("f.xml", body=rss(by_link))
    assert "linked" in await tick(run, clock)
    feed_server.set("f.xml", body=rss([Entry("linked again", link="https://example.org/l")]))
    assert "linked again" not in await tick(run, clock)


async def test_nothing_reposted_after_a_restart(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(3)))
    await run.say(f"@mod! /feed add {url}")
    first = len([line for line in run.out if "** item" in line])
    assert first == 3
    again = await start(db="bot.db")  # same database: a restart
    feed_server.set("f.xml", body=rss(entries(4)), validators=False)
    out = await tick(again, clock)
    assert out.count("** item") == 1 and "item 4" in out


async def test_items_queued_but_not_marked_seen_are_not_queued_again(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(3)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("f.xml", body=rss(entries(4)))
    assert "item 4" in await tick(run, clock)
    # As if the bot stopped after queueing item 4 but before noting it as seen.
    await run.app.db.execute(
        "DELETE FROM feed_items WHERE first_seen = (SELECT max(first_seen) FROM feed_items)"
    )
    feed_server.set("f.xml", body=rss(entries(5)))
    out = await tick(run, clock)
    assert "item 5" in out and out.count("** item") == 1


async def test_include_and_exclude(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss([]))
    await run.say(f'@mod! /feed add {url} include="incident, /^change/" exclude=draft backlog=0')
    feed_server.set("f.xml", body=rss([
        Entry("Major incident review", guid="1"),
        Entry("Change freeze", guid="2"),
        Entry("Incident draft", guid="3"),
        Entry("Lunch menu", guid="4", categories=("food",)),
    ]))  # fmt: skip
    out = await tick(run, clock)
    assert "Major incident review" in out and "Change freeze" in out
    assert "Incident draft" not in out and "Lunch menu" not in out


async def test_bad_options_are_clear_errors_and_store_nothing(start, feed_server: FeedServer):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    assert "not a valid regular expression" in await run.say(f"@mod! /feed add {url} include=/[a/")
    assert "unknown placeholder {nope}" in await run.say(f'@mod! /feed add {url} template="{{nope}}"')  # fmt: skip
    assert "only http:// and https://" in await run.say("@mod! /feed add ftp://example.org/x")
    assert "at most 50" in await run.say(f"@mod! /feed add {url} backlog=99")
    assert "for moderators only" in await run.say(f"@someone /feed add {url}")
    missing = feed_server.url("missing.xml")
    assert "HTTP 404" in await run.say(f"@mod! /feed add {missing}")
    page = feed_server.set("page.html", body=b"<html><body>hi</body></html>", content_type="text/html")  # fmt: skip
    assert "announces no feed" in await run.say(f"@mod! /feed add {page}")
    assert "No feeds yet" in await run.say("/feed list")


async def test_add_by_site_page_discovers_the_feed(start, feed_server: FeedServer):
    run = await start()
    feed_server.set("blog/feed.xml", body=rss(entries(1)))
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="feed.xml"></head></html>'  # fmt: skip
    site = feed_server.set("blog/", body=page, content_type="text/html")
    out = await run.say(f"@mod! /feed add {site}")
    assert "now follows" in out and "item 1" in out
    source = (await feeds(run).store.all_sources())[0]
    assert source.url == feed_server.url("blog/feed.xml")


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream", "text/plain"])
async def test_feed_with_the_wrong_content_type_is_still_a_feed(
    start, feed_server: FeedServer, content_type: str
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)), content_type=content_type)
    assert "now follows Test feed" in await run.say(f"@mod! /feed add {url}")


async def test_template_and_list_and_preview(start, feed_server: FeedServer):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(2), title="ITSM news"))
    await run.say(
        f'@mod! /feed add {url} backlog=1 template="New on {{source}}: {{title}} {{link}}"'
    )
    assert "New on ITSM news: item 2 https://example.org/item/2" in run.text
    listing = await run.say("@member /feed list")
    assert "#1 ITSM news" in listing and "✅ running" in listing and "custom template" in listing
    assert "last new item:" in listing and "next check:" in listing
    preview = await run.say(f"@mod! /feed preview {url}")
    assert "Preview of the latest item of ITSM news" in preview
    assert "** item 2 **" in preview and "[public]" not in preview
    assert len(await feeds(run).store.all_sources()) == 1  # preview subscribed nothing


async def test_pause_and_resume(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    assert "Paused subscription #1" in await run.say("@mod! /feed pause 1")
    assert "already paused" in await run.say("@mod! /feed pause 1")
    feed_server.set("f.xml", body=rss(entries(2)))
    assert await tick(run, clock) == ""  # nothing posted while paused
    assert "resumed" in await run.say("@mod! /feed resume 1")
    feed_server.set("f.xml", body=rss(entries(3)))
    out = await tick(run, clock)
    assert "item 3" in out and "item 2" not in out  # what came while paused is skipped
    assert "There is no feed subscription #9 here" in await run.say("@mod! /feed pause 9")


async def test_backoff_then_disable_with_exactly_one_notice_then_resume(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0", f"@mod! /feed add {url} #ops backlog=0")
    feed_server.set("f.xml", status=500)
    store = feeds(run).store
    waits = []
    for _ in range(3):
        source = (await store.all_sources())[0]
        clock.set(max(clock.now(), _dt(source.next_check_at + 1)))
        await feeds(run).poll_due()
        await run.app.outbox.drain()
        after = (await store.all_sources())[0]
        waits.append(after.next_check_at - clock.now().timestamp())
    assert waits[1] > waits[0] * 1.5  # exponential backoff (with jitter)
    assert after.state == "disabled" and after.failures == 3
    notices = [block for block in run.out if "eeds paused" in block]
    assert len(notices) == 1  # one post to the moderator who subscribed both channels
    assert "[direct to mod]" in notices[0]
    assert "(#1 in #general)" in notices[0] and "(#2 in #ops)" in notices[0]
    assert "2 feeds paused after repeated failures" in notices[0]
    assert await tick(run, clock, timedelta(days=3)) == ""  # disabled: not fetched, no notice
    listing = await run.say("/feed list")
    assert "⛔ disabled" in listing and "failed 3 times in a row (last: HTTP 500" in listing
    feed_server.set("f.xml", body=rss(entries(2)))
    assert "switched the feed back on" in await run.say("@mod! /feed resume 1")
    assert run.text.count("** item 2 **") == 2  # checked at once, in both channels
    assert (await store.all_sources())[0].failures == 0


async def test_410_disables_at_once(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("f.xml", status=410)
    out = await tick(run, clock)
    assert out.count("Feed paused") == 1 and "gone for good (HTTP 410)" in out
    assert (await feeds(run).store.all_sources())[0].state == "disabled"


async def test_permanent_redirect_updates_stored_url(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("old.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("new.xml", body=rss(entries(2)))
    feed_server.set("old.xml", status=301, location="/new.xml")
    assert "item 2" in await tick(run, clock)
    assert (await feeds(run).store.all_sources())[0].url == feed_server.url("new.xml")
    await tick(run, clock)
    assert feed_server.hits("new.xml")[-1].headers.get("If-None-Match")


async def test_timeout_and_oversized_count_as_failures(start, feed_server: FeedServer, clock):
    run = await start({"feeds": {"max_bytes": 50_000}})
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("f.xml", hang=True)
    await tick(run, clock)
    source = (await feeds(run).store.all_sources())[0]
    assert source.failures == 1 and "within 0.5 s" in (source.last_error or "")
    feed_server.set("f.xml", huge=1_000_000)
    await tick(run, clock, timedelta(hours=3))
    source = (await feeds(run).store.all_sources())[0]
    assert source.failures == 2 and "larger than 50,000 bytes" in (source.last_error or "")


async def test_private_address_refused_without_the_allowance(start, feed_server: FeedServer):
    run = await start({"feeds": {"allow_private": False}})
    url = feed_server.set("f.xml", body=rss(entries(1)))
    out = await run.say(f"@mod! /feed add {url}")
    assert "refused: 127.0.0.1 is a loopback address" in out
    assert not feed_server.requests


async def test_per_channel_cap_queues_the_rest(start, feed_server: FeedServer, clock):
    run = await start({"feeds": {"per_channel_cap": 2, "per_channel_window": "10m"}})
    url = feed_server.set("f.xml", body=rss(entries(5)))
    await run.say(f"@mod! /feed add {url} backlog=5")
    shown = lambda: [line.split("**")[1].strip() for line in run.out if "** item" in line]  # noqa: E731
    assert shown() == ["item 1", "item 2"]
    clock.advance(timedelta(minutes=10))
    await run.app.outbox.drain()
    assert shown() == ["item 1", "item 2", "item 3", "item 4"]
    clock.advance(timedelta(minutes=10))
    await run.app.outbox.drain()
    assert shown() == [f"item {i}" for i in range(1, 6)]  # queued, never dropped


async def test_remove(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    assert "no longer follows Test feed" in await run.say("@mod! /feed remove 1")
    feed_server.set("f.xml", body=rss(entries(2)))
    assert await tick(run, clock) == ""
    assert await feeds(run).store.all_sources() == []


async def test_feed_ttl_stretches_the_interval(start, feed_server: FeedServer, clock):
    run = await start({"feeds": {"interval": "10m", "jitter": 0}})
    url = feed_server.set("f.xml", body=rss(entries(1), ttl=120))
    await run.say(f"@mod! /feed add {url}")
    source = (await feeds(run).store.all_sources())[0]
    assert source.next_check_at - clock.now().timestamp() == pytest.approx(7200)


async def test_poll_job_is_registered(start):
    run = await start()
    job = run.app.scheduler.timers.get_job("feeds.poll_due")
    assert job is not None and job.trigger.interval == timedelta(seconds=30)


async def test_demo_seed_posts_sample_items_and_is_idempotent(start, clock):
    run = await start({"feeds": {"allow_private": False}})
    channel = ChannelRef("console", "demo", "general")
    await feeds(run).seed_demo(channel)
    await run.app.outbox.drain()
    first = run.text.count("[public]")
    assert first == 5 and "itSMF Norway" in run.text
    await feeds(run).seed_demo(channel)
    await run.app.outbox.drain()
    assert run.text.count("[public]") == first


def _dt(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


async def test_backlog_with_a_filter_takes_the_newest_matching_items(start, feed_server: FeedServer):  # fmt: skip
    run = await start()
    items = [Entry(f"{'ITIL' if i % 3 == 0 else 'Other'} {i}", guid=str(i)) for i in range(9, 0, -1)]  # fmt: skip
    url = feed_server.set("f.xml", body=rss(items))
    await run.say(f"@mod! /feed add {url} include=itil backlog=2")
    shown = re.findall(r"\*\* (\w+ \d) \*\*", run.text)
    assert shown == ["ITIL 6", "ITIL 9"]  # oldest first
