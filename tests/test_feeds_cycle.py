"""A poll round: fetch first, the feeds that failed or took longest first, parsing behind
the fetches through a queue bounded by bytes, and the writes of answers that change
nothing made together.

A real App on a real SQLite file, feeds from a local server, time from the FakeClock.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.console import Console
from bot.feeds import Feeds
from bot.feeds.stages import BodyQueue
from bot.feeds.store import FetchedOk
from bot.fetch import FetchResult
from bot.help import Help
from tests.conftest import ConsoleRun
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import FeedServer, entries, rss

feed_server = fake_feeds.feed_server  # the fixture

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"feeds": {"allow_private": True, "timeout": 5, "per_channel_cap": 1000}}
LATER = timedelta(days=1)  # past any interval, backoff and jitter


@pytest.fixture
def start(make_app):
    async def start(feeds: dict | None = None) -> ConsoleRun:
        config = {"feeds": {**CONFIG["feeds"], **(feeds or {})}}
        app = await make_app(features=[Help, Feeds], config=config)
        out: list[str] = []
        return ConsoleRun(Console(app, write=out.append), out)

    return start


def feeds(run: ConsoleRun) -> Feeds:
    return run.app.features["feeds"]  # type: ignore[return-value]


async def subscribe(run: ConsoleRun, server: FeedServer, names: list[str]) -> dict[str, int]:
    """One feed per name, each in its own channel; return each name's source id."""
    ids = {}
    for n, name in enumerate(names):
        url = server.set(f"{name}.xml", body=rss(entries(2, prefix=name)))
        await run.say(f"@mod! /feed add {url} #c{n} backlog=0")
        source = await feeds(run).store.source_by_url(url)
        assert source is not None
        ids[name] = source.id
    return ids


def order(server: FeedServer, since: int) -> list[str]:
    """The feeds requested since request number `since`, in the order asked."""
    return [r.path.removesuffix(".xml") for r in server.requests[since:]]


# --- Order -------------------------------------------------------------------------------


async def test_a_feed_that_failed_last_time_is_asked_first(start, feed_server, clock):
    run = await start({"concurrency": 1})
    await subscribe(run, feed_server, ["a", "b", "c", "d"])
    feed_server.set("c.xml", status=500)
    clock.advance(LATER)
    await feeds(run).poll_due()
    feed_server.set("c.xml", body=rss(entries(2, prefix="c")))
    clock.advance(LATER)
    before = len(feed_server.requests)
    outcomes = await feeds(run).poll_due()
    assert order(feed_server, before)[0] == "c"
    assert sorted(order(feed_server, before)) == ["a", "b", "c", "d"]
    assert len(outcomes) == 4


async def test_the_slowest_feed_last_time_is_asked_first(start, feed_server, clock):
    run = await start({"concurrency": 1})
    await subscribe(run, feed_server, ["a", "b", "c"])
    feed_server.set("b.xml", body=rss(entries(2, prefix="b")), delay=0.3)
    clock.advance(LATER)
    await feeds(run).poll_due()
    clock.advance(LATER)
    before = len(feed_server.requests)
    await feeds(run).poll_due()
    assert order(feed_server, before)[0] == "b"


# --- Fetch first ----------------------------------------------------------------------------


async def test_fetching_goes_on_while_a_body_waits_for_its_parse(start, feed_server, clock):
    """One fetch worker: while the first changed body is held in its parse, every other
    feed is still fetched (none waits behind it), and nothing is lost once it goes on."""
    run = await start({"concurrency": 1})
    await subscribe(run, feed_server, ["a", "b", "c", "d"])
    for name in "abcd":
        feed_server.set(f"{name}.xml", body=rss(entries(3, prefix=name)))
    poller = feeds(run).poller
    parse = poller.parse
    fetched_while_held: list[int] = []
    round_start = len(feed_server.requests)

    async def held(result, want=None):
        if not fetched_while_held:  # the first parse of the round waits for the fetches
            fetched_while_held.append(0)
            for _ in range(300):
                if len(feed_server.requests) - round_start >= 4:
                    break
                await asyncio.sleep(0.01)
            fetched_while_held[0] = len(feed_server.requests) - round_start
        return await parse(result, want)

    poller.parse = held  # type: ignore[method-assign]
    clock.advance(LATER)
    outcomes = await poller.poll_due()
    assert fetched_while_held == [4]  # all four were fetched while the first parse was held
    assert sorted(outcomes.values()) == ["new"] * 4
    await run.app.outbox.drain()
    for name in "abcd":
        assert f"** {name} 3 **" in run.text


async def test_a_body_queue_holds_at_most_its_bytes_but_always_one_body():
    def job(size: int) -> tuple:
        return (None, False, FetchResult("u", 200, body=b"x" * size))

    queue = BodyQueue(limit=100)
    big = job(500)
    await asyncio.wait_for(queue.put(big), 1)  # over the limit, but the queue was empty
    second = asyncio.ensure_future(queue.put(job(10)))
    await asyncio.sleep(0.05)
    assert not second.done()  # waits: the first body is still held
    assert await queue.get() is big
    await asyncio.sleep(0.05)
    assert not second.done()  # taken out but still being parsed: still held
    await queue.done(big)
    await asyncio.wait_for(second, 1)
    assert queue.held == 10
    await queue.close()
    assert (await queue.get())[2].body == b"x" * 10
    assert await queue.get() is None  # closed and empty


# --- Answers that change nothing -------------------------------------------------------


async def test_many_good_answers_are_written_as_one_would_be(start, feed_server, clock):
    run = await start()
    ids = await subscribe(run, feed_server, ["a", "b"])
    store = feeds(run).store
    a, b = ids["a"], ids["b"]
    await store.fetch_failed(a, 5.0, "boom", 6.0)
    await store.fetch_failed(b, 5.0, "boom", 6.0)
    hashes = {i: (await store.source(i)).content_hash for i in (a, b)}  # type: ignore[union-attr]
    await store.fetched_ok(a, 100.0, 200.0, etag='"e1"', last_modified=None)
    written = await store.fetched_ok_many([FetchedOk(b, 100.0, 200.0, etag='"e1"')])
    assert written == 1
    one, many = await store.source(a), await store.source(b)
    assert one is not None and many is not None
    fields = ("failures", "last_error", "last_fetch_at", "last_ok_at", "next_check_at", "etag", "last_modified", "title", "last_new_at")  # fmt: skip
    assert {f: getattr(many, f) for f in fields} == {f: getattr(one, f) for f in fields}
    assert many.failures == 0 and many.etag == '"e1"' and many.last_modified is not None
    assert (one.content_hash, many.content_hash) == (hashes[a], hashes[b])  # kept


async def test_a_round_of_304s_records_every_answer(start, feed_server, clock):
    run = await start()
    names = [f"f{i}" for i in range(12)]
    ids = await subscribe(run, feed_server, names)
    clock.advance(LATER)
    now = clock.now().timestamp()
    outcomes = await feeds(run).poll_due()
    assert set(outcomes.values()) == {"not_modified"}
    for source_id in ids.values():
        source = await feeds(run).store.source(source_id)
        assert source is not None
        assert source.last_fetch_at == now and source.next_check_at > now
    assert not feeds(run).poller._in_flight  # every write was made, nothing left waiting
    clock.advance(LATER)
    assert len(await feeds(run).poll_due()) == 12  # each is due again, checked again


async def test_a_round_cut_short_leaves_its_feeds_to_the_next(start, feed_server, clock):
    run = await start({"timeout": 30})
    ids = await subscribe(run, feed_server, ["a", "b", "h"])
    feed_server.set("h.xml", hang=True)
    clock.advance(LATER)
    poller = feeds(run).poller
    round_ = asyncio.ensure_future(poller.poll_due())
    for _ in range(500):
        if feed_server.hits("h.xml")[1:]:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # a and b answered 304; their writes may wait in the batch
    round_.cancel()
    with pytest.raises(asyncio.CancelledError):
        await round_
    assert not poller._in_flight
    feed_server.set("h.xml", body=rss(entries(2, prefix="h")))
    outcomes = await poller.poll_due()
    assert ids["h"] in outcomes  # the hung feed is checked again, not stuck in flight


# --- Several workers on one database ----------------------------------------------------


async def until(predicate, timeout: float = 5.0) -> bool:
    """Poll an async `predicate` until it holds; False after `timeout` seconds."""
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.shared_only
async def test_a_round_longer_than_its_claim_keeps_its_feeds(start, make_app, feed_server, clock):
    """A worker's round holds a body waiting for its parse (as hundreds wait behind each
    other on a busy machine) for longer than the claim it took on the feed: the claim is
    renewed while the round runs, so another worker does not fetch that feed again."""
    run = await start({"timeout": 1})  # a claim stands 4 fetch timeouts: 4 s
    ids = await subscribe(run, feed_server, ["a"])
    feed_server.set("a.xml", body=rss(entries(3, prefix="a")))
    config = {"feeds": {**CONFIG["feeds"], "timeout": 1}}
    other = await make_app(features=[Help, Feeds], config=config, alongside=True)
    poller, store = feeds(run).poller, feeds(run).store
    parse, release = poller.parse, asyncio.Event()

    async def held(result, want=None):
        await release.wait()
        return await parse(result, want)

    poller.parse = held  # type: ignore[method-assign]
    clock.advance(LATER)
    claimed_until = clock.now().timestamp() + 4
    fetched = len(feed_server.hits("a.xml"))
    round_ = asyncio.ensure_future(poller.poll_due())

    async def asked() -> bool:
        return len(feed_server.hits("a.xml")) > fetched

    async def renewed() -> bool:
        source = await store.source(ids["a"])
        return source is not None and source.next_check_at > claimed_until

    try:
        assert await until(asked)
        clock.advance(3)  # past half the claim, still within it
        await until(renewed)
        clock.advance(2)  # past the claim first taken
        assert await other.features["feeds"].poll_due() == {}  # type: ignore[attr-defined]
        assert len(feed_server.hits("a.xml")) == fetched + 1  # fetched once, by the first
    finally:
        release.set()
        outcomes = await round_
    assert outcomes == {ids["a"]: "new"}


# --- Parsing without a pool ------------------------------------------------------------


async def test_a_round_with_parser_processes_posts_like_the_thread(start, feed_server, clock):
    run = await start({"parse_workers": 1})
    await subscribe(run, feed_server, ["a", "b"])
    assert feeds(run).poller._pool is None  # /feed add parsed in the thread
    for name in "ab":
        feed_server.set(f"{name}.xml", body=rss(entries(3, prefix=name)))
    clock.advance(LATER)
    outcomes = await feeds(run).poll_due()
    assert sorted(outcomes.values()) == ["new", "new"]
    assert feeds(run).poller._pool is not None  # the round parsed in the pool
    await run.app.outbox.drain()
    assert "** a 3 **" in run.text and "** b 3 **" in run.text


def test_importing_the_parser_brings_neither_the_app_nor_aiohttp_nor_msgspec():
    code = (
        "import sys, bot.feeds.parse, bot.feeds.worker;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'msgspec', 'apscheduler'}),"
        " sorted(m for m in sys.modules if m.startswith('bot.') and m not in"
        " ('bot.feeds', 'bot.feeds.parse', 'bot.feeds.first_pass', 'bot.feeds.text',"
        " 'bot.feeds.worker')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] []"


def test_the_package_still_names_the_feature():
    import bot.feeds

    assert bot.feeds.Feeds is Feeds
    assert "allow_private" in bot.feeds.PRIVATE_HINT
    with pytest.raises(AttributeError):
        bot.feeds.NoSuchThing  # noqa: B018
