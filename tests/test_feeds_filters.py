"""A moderator's catastrophic expression never stalls the bot, and never silently drops an
item or posts one it should not: the item is held back, logged and shown in /feed list."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from bot.feeds import filters
from bot.feeds.filters import compile_terms, make_filter, stalling_pattern
from bot.feeds.parse import Item
from bot.model import ChannelRef
from tests import test_feeds_flow as flow
from tests.fakes.feed_server import Entry, FeedServer, entries, rss
from tests.test_feeds_flow import feeds, tick

start, feed_server = flow.start, flow.feed_server  # the fixtures
CATASTROPHIC = "/(a+)+$/"
LONG_RUN = "a" * 5000 + "!"


def item(text: str, n: int = 1) -> Item:
    return Item(key=str(n), key_hash=str(n), index=n, title=text)


def test_the_screen_flags_nested_repetition_and_passes_ordinary_expressions():
    assert stalling_pattern(compile_terms(CATASTROPHIC)) == "(a+)+$"
    assert stalling_pattern(compile_terms(r"/(\w+\s?)+$/")) == r"(\w+\s?)+$"
    for fine in ("incident, change", "/^(major|change)/", "/.*foo.*bar/", "/\\bitil\\b/"):
        assert stalling_pattern(compile_terms(fine)) is None, fine


def test_a_stuck_expression_leaves_items_undecided_and_gives_up_after_a_few():
    chosen = make_filter("", CATASTROPHIC)
    tried = []
    search = filters._search

    def counting(pattern, text):
        tried.append(text)
        return search(pattern, text)

    batch = [item("Major incident review", 1)] + [item(LONG_RUN, n) for n in range(2, 8)]
    original, filters._search = filters._search, counting
    try:
        selection = chosen.select(batch)
    finally:
        filters._search = original
    assert [i.key for i in selection.kept] == ["1"]
    assert [i.key for i in selection.undecided] == [str(n) for n in range(2, 8)]
    assert selection.stuck == "(a+)+$"
    assert len(tried) == 1 + filters.MAX_TIMEOUTS  # the rest were not even tried


def test_select_stops_at_the_limit():
    batch = [item(f"incident {n}", n) for n in range(5)] + [item("other", 9)]
    kept = make_filter("incident", "").select(batch, limit=2).kept
    assert [i.key for i in kept] == ["0", "1"]


async def test_add_refuses_a_catastrophic_expression_and_stores_nothing(
    start, feed_server: FeedServer
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    out = await run.say(f"@mod! /feed add {url} exclude={CATASTROPHIC}")
    assert "`exclude`: the expression `/(a+)+$/` takes too long" in out
    assert await feeds(run).store.all_sources() == []
    assert not feed_server.requests  # refused before anything was fetched


async def test_a_stuck_filter_holds_the_item_back_without_stalling_the_bot(
    start, feed_server: FeedServer, clock, caplog: pytest.LogCaptureFixture
):
    # The longest summary a filter sees: the expression takes seconds over it. (Over the
    # default 300 characters it takes about its time limit, and sometimes finishes.)
    run = await start({"feeds": {"summary_chars": 2000}})
    url = feed_server.set("f.xml", body=rss(entries(1)))
    # As if stored before /feed add screened expressions: nothing stops it but the limit.
    await feeds(run).subscribe(url, ChannelRef("console", "demo", "general"), exclude=CATASTROPHIC, backlog=0)  # fmt: skip
    await tick(run, clock)
    feed_server.set("f.xml", body=rss([
        Entry("Run of a", guid="a-run", summary=LONG_RUN),
        Entry("Major incident review", guid="ok"),
    ]))  # fmt: skip

    matching = threading.Event()  # set while a worker thread is inside an expression
    search = filters._search

    def watched(pattern, text):
        matching.set()
        try:
            return search(pattern, text)
        finally:
            matching.clear()

    seen_running_during_a_match = False

    async def heartbeat() -> None:
        nonlocal seen_running_during_a_match
        while True:
            seen_running_during_a_match |= matching.is_set()
            await asyncio.sleep(0)

    filters._search = watched
    beating = asyncio.create_task(heartbeat())
    try:
        with caplog.at_level(logging.WARNING, logger="bot.feeds.poller"):
            out = await asyncio.wait_for(tick(run, clock), timeout=30)
    finally:
        beating.cancel()
        filters._search = search
    assert seen_running_during_a_match  # the event loop ran while the expression did
    assert "Major incident review" in out  # decided quickly: posted
    assert "Run of a" not in out  # could not be decided: held back...
    assert "could not decide 1 item(s)" in caplog.text and "Run of a" in caplog.text  # ...logged
    health = await run.say("/feed list")  # ...and shown to moderators
    assert "filter problem" in health and "(a+)+$: 1 item(s) could not be checked" in health


async def test_a_stored_expression_that_no_longer_compiles_holds_items_back_only_there(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await feeds(run).subscribe(url, ChannelRef("console", "demo", "general"), include="/(/", backlog=0)  # fmt: skip
    await feeds(run).subscribe(url, ChannelRef("console", "demo", "ops"), backlog=0)
    await tick(run, clock)
    feed_server.set("f.xml", body=rss(entries(2)))
    out = await tick(run, clock)
    assert "[public in #ops]" in out and "item 2" in out  # the other channel still gets it
    assert "[public]" not in out
    health = await run.say("/feed list")
    assert "✅ running" in health and "filter problem" in health
    assert "not a valid regular expression" in health
