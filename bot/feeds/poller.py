"""The fetch -> parse -> dedupe -> outbox path, and each feed's health and schedule.

One fetch per source however many channels subscribe. A 304 or an unchanged body is never
parsed (its write joins the round's others); a new body is parsed off the loop, in a
thread (or in `parse_workers` processes), while the round's fetches go on. New items go
to every running subscription oldest first, through the outbox with a key per
(subscription, item), paced by a per-channel cap.
Failures back off exponentially; after `max_failures` in a row (or a 410 at once) the
feed is disabled and the moderators are told once, per subscription, why and how to resume it.

Notices are for moderators, not members: each goes to the community's moderators' channel,
else by direct message to the moderator who subscribed the channel (`created_by`), else
(neither known: an imported or demo feed in a community without one) to the subscribed
channel itself (`Communities.for_moderators`). They are gathered, per destination, into one
post: at the end of each poll round, and then at most one post per `NOTICE_GATHER` for the
notices that came meanwhile. A notice post takes its place under its destination's cap like
an item; its outbox key is its group's id, so a restart never posts a group twice (see
`flush_notices`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from bot.feeds.filters import Selection, make_filter
from bot.feeds.parse import Item, ParsedFeed, Want, discover, parse_feed
from bot.feeds.render import item_post, notices_post
from bot.feeds.settings import FeedSettings
from bot.feeds.stages import BodyQueue, Claim, OkBatch
from bot.feeds.store import FeedStore, FetchedOk, NoticeGroup, Source, Subscription
from bot.fetch import Fetcher, FetchResult
from bot.model import ChannelRef

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from bot.app import App

log = logging.getLogger(__name__)
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, text/html;q=0.5, */*;q=0.1"
)
T = TypeVar("T")
NOTICE_GATHER = 10 * 60.0  # seconds: one channel gets at most one notice post this often
# A poll round: bodies fetched and waiting for their parse hold at most this many bytes
# (fetching waits beyond it; one body is always let in; see bot/feeds/stages.py).
QUEUE_BYTES = 4_000_000
PARSE_TASKS = 2  # bodies parsed, their items queued, at once
# A shared database: a worker holds the feeds it took for this many fetch timeouts, renewed
# while its round runs (bot/feeds/stages.py, Claim); then another worker may take them.
CLAIM_TIMEOUTS = 4
IN_ROUND: ContextVar[bool] = ContextVar("feeds_in_round", default=False)


def post_prefix(sub_id: int) -> str:
    """The outbox key prefix of one subscription's items (the colon: #1 never matches #12)."""
    return f"feed:{sub_id}:"


def post_key(sub_id: int, item_key_hash: str) -> str:
    return post_prefix(sub_id) + item_key_hash


def notice_key(group_id: int) -> str:
    """The outbox key of one notice group's post (the colon: #1 never matches #12)."""
    return f"feed-notices:{group_id}:"


def slot(times: list[float], now: float, cap: int, window: float) -> float:
    """When the next feed post of a channel may go out, given when its recent and queued
    ones go (`times`, in order): after the last of them, and at most `cap` per `window`."""
    at = max([now, *times[-1:]])
    if len(times) >= cap:
        at = max(at, times[-cap] + window)
    return at


class Poller:
    def __init__(self, app: App, store: FeedStore, settings: FeedSettings) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.fetcher = Fetcher(
            timeout=settings.timeout,
            max_bytes=settings.max_bytes,
            concurrency=settings.concurrency,
            user_agent=settings.user_agent,
            allow_private=settings.allow_private,
            accept=ACCEPT,
        )
        self._pool: ProcessPoolExecutor | None = None
        self._thread: ThreadPoolExecutor | None = None
        # Held while queueing a subscription's items, and while pausing or removing one, so
        # that nothing is queued for a subscription after it stopped.
        self.posting = asyncio.Lock()
        self._pool_lock = asyncio.Lock()
        self._in_flight: set[int] = set()
        self._rounds = 0  # poll rounds running: notices wait for the round's end
        self._took: dict[int, float] = {}  # seconds each source's last fetch took

    def now(self) -> float:
        return self.app.clock.now().timestamp()

    async def close(self) -> None:
        await self.fetcher.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None

    # --- Parsing off the loop --------------------------------------------------------------
    #
    # Bodies are parsed in a thread of the bot's own process: the parser is fast enough
    # that a whole round's parsing fits in the time its fetches take, and a thread costs no
    # memory of its own (a process pool costs a forkserver and a Python per worker). With
    # `parse_workers` set, poll rounds parse in that many processes instead, started with
    # the first round that needs them; each dies with the bot. A command (/feed add,
    # /feed preview) always parses in the thread, so it never waits for processes to start.

    def _parse_thread(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-parse")
        return self._thread

    async def _executor(self) -> ProcessPoolExecutor:
        """The parser pool, started in a thread: starting processes blocks, the loop must not."""
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncio.to_thread(self._start_pool)
            return self._pool

    def _start_pool(self) -> ProcessPoolExecutor:
        # Imported here, with the first pool: a bot that parses in its thread (the default)
        # never loads multiprocessing's process machinery.
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from bot.feeds import worker

        workers = self.settings.parse_workers  # only asked for when it is set
        context = multiprocessing.get_context("forkserver")
        # The forkserver imports the parsers and nothing else (bot.feeds.parse loads them
        # only when it first parses: named here, so every worker shares the forkserver's
        # copy); `worker` says how it and the workers die with the bot.
        context.set_forkserver_preload(
            ["bot.feeds.parse", "bot.feeds.first_pass", "feedparser", "nh3", "bot.feeds.worker"]
        )
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=worker.start,
            initargs=(os.getpid(),),
        )  # fmt: skip
        for started in [pool.submit(os.getpid) for _ in range(workers)]:
            started.result()  # every worker is up before the loop submits anything
        return pool

    async def parse(self, result: FetchResult, want: Want | None = None) -> ParsedFeed:
        """Parse a fetched body off the loop: in the parse thread, or in a poll round's
        parse task (`IN_ROUND`) in the pool when `parse_workers` asks for one."""
        parsed = await self._off_loop(
            result.url, IN_ROUND.get(), parse_feed, result.body, result.url, result.content_type,
            self.settings.summary_chars, want,
        )  # fmt: skip
        return parsed or ParsedFeed(error="the parser crashed on this feed")

    async def discover(self, result: FetchResult) -> list[str]:
        """The feeds a web page announces: parsing a large page takes a while, so not here."""
        return await self._off_loop(result.url, False, discover, result.body, result.url) or []

    async def _off_loop(self, url: str, pooled: bool, work: Callable[..., T], *args: Any) -> T | None:  # fmt: skip
        """Run CPU-heavy work on downloaded bytes off the loop; None if a pool worker died."""
        loop = asyncio.get_running_loop()
        if not (pooled and self.settings.parse_workers):
            return await loop.run_in_executor(self._parse_thread(), work, *args)
        pool = await self._executor()
        from concurrent.futures.process import BrokenProcessPool  # loaded by the pool

        try:
            return await loop.run_in_executor(pool, work, *args)
        except BrokenProcessPool:
            log.error("feeds: the parser process died on %s; restarting the pool", url)
            if self._pool is pool:
                self._pool = None
            return None

    # --- Polling ---------------------------------------------------------------------------

    def first(self, source: Source) -> tuple[bool, float]:
        """Which sources a round starts with (its sort key, greatest first): those that
        failed last time (a feed that hangs then overlaps the rest of the round instead of
        ending it), then those whose last fetch took longest (a feed never fetched by this
        process counts as taking the whole timeout if it failed, else nothing)."""
        took = self._took.get(source.id)
        if took is None:
            took = self.settings.timeout if source.failures else 0.0
        return bool(source.failures), took

    async def poll_due(self) -> dict[int, str]:
        """Check every feed that is due; return what happened to each (source id -> outcome).

        Fetching and parsing are separate stages: `concurrency` fetch workers take the due
        sources, those that failed or were slowest last time first (`first`); an answer
        that changes nothing is settled at once (its write gathered with others',
        `OkBatch`); a new body waits in a queue bounded by its bytes (`BodyQueue`) for one
        of `PARSE_TASKS` tasks that parse it, queue its new items and record it. So
        fetching never waits for parsing while the queue has room."""
        now, claim_for = self.now(), CLAIM_TIMEOUTS * self.settings.timeout
        due = [
            (s, prime)
            for s, prime in await self.store.due_sources(now, self.default_every(), claim_for)
            if s.id not in self._in_flight
        ]
        due.sort(key=lambda pair: self.first(pair[0]), reverse=True)  # stable: ties keep order
        todo = deque(due)
        outcomes: dict[int, str] = {}
        batch = OkBatch(self.store, self._in_flight)
        bodies = BodyQueue(QUEUE_BYTES)
        internal = "an internal error (see the bot's log)"

        async def fetch_worker() -> None:
            while todo:
                source, prime = todo.popleft()
                self._in_flight.add(source.id)
                queued = False
                try:
                    result = await self._fetch(source, prime)
                    outcome = await self.settle(source, result, prime, batch)
                    if outcome is None:
                        await bodies.put((source, prime, result))
                        queued = True
                    else:
                        outcomes[source.id] = outcome
                except Exception:
                    log.exception("feeds: checking %s failed", source.url)
                    outcomes[source.id] = await self.failed(source, internal)
                finally:
                    if not queued and source.id not in batch:
                        self._in_flight.discard(source.id)

        async def parse_worker() -> None:
            IN_ROUND.set(True)  # this task's own context: its parses may use the pool
            while (job := await bodies.get()) is not None:
                source, prime, result = job
                try:
                    outcomes[source.id] = await self.changed(source, result, force=prime)
                except Exception:
                    log.exception("feeds: checking %s failed", source.url)
                    try:
                        outcomes[source.id] = await self.failed(source, internal)
                    except Exception:  # the queue must keep draining, or fetching stops
                        log.exception("feeds: recording the failure of %s failed", source.url)
                finally:
                    await bodies.done(job)
                    self._in_flight.discard(source.id)

        def unrecorded() -> list[Source]:
            return [s for s, _ in due if s.id not in outcomes or s.id in batch]

        self._rounds += 1
        claim = Claim(self.store, self.now, now + claim_for, claim_for)
        kept = [asyncio.create_task(claim.keep(unrecorded))] if due and self.store.db.shared else []
        parsers = [asyncio.create_task(parse_worker()) for _ in range(PARSE_TASKS)]
        fetchers: list[asyncio.Task[None]] = []
        try:
            # A fixed set of workers, started one loop turn apart: hundreds of due feeds
            # never become hundreds of tasks stepping through the loop in the same turn.
            for _ in range(min(self.settings.concurrency, len(due))):
                fetchers.append(asyncio.create_task(fetch_worker()))
                await asyncio.sleep(0)
            await asyncio.gather(*fetchers)
            await batch.flush()
            await bodies.close()
            await asyncio.gather(*parsers)
        except BaseException:
            for task in [*fetchers, *parsers, *kept]:
                task.cancel()
            await asyncio.gather(*fetchers, *parsers, *kept, return_exceptions=True)
            # Checks not recorded are handed back (on a shared database), so the next
            # round takes them, not a round after the claim runs out.
            unfinished = unrecorded()
            batch.drop()
            for source, _, _ in bodies.jobs:
                self._in_flight.discard(source.id)
            await asyncio.shield(self.store.give_back(unfinished, claim.until))
            raise
        finally:
            self._rounds -= 1
            for task in kept:
                task.cancel()
            await asyncio.gather(*kept, return_exceptions=True)
        if not self._rounds:
            await self.flush_notices()  # what this round switched off, told per channel
        return outcomes

    async def _fetch(self, source: Source, prime: bool) -> FetchResult:
        started = time.monotonic()
        result = await self.fetcher.fetch(
            source.url,
            None if prime else source.etag,
            None if prime else source.last_modified,
            allow_private=source.allow_private,
        )
        self._took[source.id] = time.monotonic() - started
        return result

    async def refresh(self, source: Source, prime: bool = False) -> str:
        """Fetch one source and act on the answer. `prime` fetches and parses unconditionally."""
        self._in_flight.add(source.id)
        try:
            result = await self._fetch(source, prime)
            return await self.apply(source, result, force=prime)
        except Exception:
            log.exception("feeds: checking %s failed", source.url)
            return await self.failed(source, "an internal error (see the bot's log)")
        finally:
            self._in_flight.discard(source.id)

    async def apply(
        self, source: Source, result: FetchResult, parsed: ParsedFeed | None = None,
        force: bool = False,
    ) -> str:  # fmt: skip
        """Act on one fetch result: update health, parse if changed, post what is new."""
        outcome = await self.settle(source, result, force)
        if outcome is not None:
            return outcome
        return await self.changed(source, result, parsed, force)

    async def settle(
        self, source: Source, result: FetchResult, force: bool = False,
        batch: OkBatch | None = None,
    ) -> str | None:  # fmt: skip
        """Act on an answer that needs no parse (moved, gone, failed, 304, an unchanged
        body) and return its outcome; None if the body is to be parsed (`changed`). With a
        `batch`, a good answer's write joins it instead of being made now."""
        now = self.now()
        if result.moved_to and result.moved_to != source.url:
            if await self.store.move_source(source.id, result.moved_to):
                log.info("feeds: %s moved permanently to %s", source.url, result.moved_to)
                source.url = result.moved_to
        if result.status == 410:
            await self.disable(
                source, "the site says the feed is gone for good (HTTP 410)", kind="gone"
            )
            return "gone"
        if result.not_modified:
            outcome = "not_modified"
        elif not result.ok:
            return await self.failed(source, result.error, result.retry_after)
        elif force or hashlib.sha256(result.body).hexdigest() != source.content_hash:
            return None
        else:
            outcome = "unchanged"
        every = await self.every(source)
        ok = FetchedOk(
            source.id, now, self.next_check(now, source.ttl, result.max_age, every),
            etag=result.etag, last_modified=result.last_modified,
        )  # fmt: skip
        if batch is not None:
            await batch.add(ok)
        else:
            await self.store.fetched_ok(
                ok.source_id, ok.now, ok.next_check, etag=ok.etag, last_modified=ok.last_modified
            )
        return outcome

    async def changed(
        self, source: Source, result: FetchResult, parsed: ParsedFeed | None = None,
        force: bool = False,
    ) -> str:  # fmt: skip
        """Parse a new body (unless `parsed` is given), post what is new, record it."""
        now = self.now()
        digest = hashlib.sha256(result.body).hexdigest()
        subs = [s for s in await self.store.subscriptions_of(source.id) if not s.paused]
        seen = await self.store.seen_keys(source.id)
        parsed = parsed or await self.parse(result, want_for(subs, seen))
        if parsed.error:
            return await self.failed(source, parsed.error)
        new = await self.ingest(source, parsed, subs, seen)
        if parsed.ttl != source.ttl:
            await self.store.set_ttl(source.id, parsed.ttl)  # unchanged answers honour it too
        every = min((s.check_every or self.default_every() for s in subs), default=None)
        forgotten = await self.store.note_listing(source.id, parsed.keys, now)
        if forgotten:
            log.info("feeds: forgot %d item(s) %s no longer lists", forgotten, source.url)
        await self.store.fetched_ok(
            source.id, now, self.next_check(now, parsed.ttl, result.max_age, every),
            etag=result.etag, last_modified=result.last_modified, content_hash=digest,
            title=source.title or parsed.title, new_items=new > 0,
        )  # fmt: skip
        return "new" if new else "unchanged"

    def default_every(self) -> float:
        """Seconds between checks for a subscription that asks for no interval of its own."""
        return self.settings.interval.total_seconds()

    async def every(self, source: Source) -> float:
        """The shortest interval the source's running subscriptions ask for: a feed shared
        by several is checked as often as the most eager of them wants."""
        if source.every is not None:  # read with the due sources
            return source.every
        return await self.store.shortest_every(source.id, self.default_every())

    def next_check(
        self, now: float, ttl: float | None = None, max_age: float | None = None,
        every: float | None = None,
    ) -> float:  # fmt: skip
        """The interval asked for (`every`, default the configured one), stretched (never
        shortened) by the feed's own hints up to `max_interval`, with jitter."""
        interval = every or self.default_every()
        hint = max((h for h in (ttl, max_age) if h), default=0.0)
        if hint > interval:
            interval = min(hint, self.settings.max_interval.total_seconds())
        return now + self._jitter(interval)

    def _jitter(self, seconds: float) -> float:
        spread = self.settings.jitter
        return seconds * random.uniform(1 - spread, 1 + spread)

    async def failed(self, source: Source, error: str, retry_after: float | None = None) -> str:
        now = self.now()
        failures = source.failures + 1
        delay = min(
            self.settings.interval.total_seconds() * 2 ** (failures - 1),
            self.settings.backoff_max.total_seconds(),
        )
        if retry_after:
            delay = max(delay, min(retry_after, self.settings.backoff_max.total_seconds()))
        count = await self.store.fetch_failed(source.id, now, error, now + self._jitter(delay))
        log.warning("feeds: %s failed (%d in a row): %s", source.url, count, error)
        if count >= self.settings.max_failures:
            times = "once" if count == 1 else f"{count} times in a row"
            await self.disable(source, f"it failed {times} (last: {error})")
            return "disabled"
        return "failed"

    async def disable(self, source: Source, reason: str, kind: str = "failing") -> None:
        """Switch a feed off and tell the moderators of each subscription once (see
        `flush_notices`)."""
        now = self.now()
        if not await self.store.disable(source.id, now, reason, kind):
            return
        log.warning("feeds: disabled %s: %s", source.url, reason)
        if not self._rounds:  # outside a poll round (a resume, say): tell it now
            await self.flush_notices()

    # --- Notices ---------------------------------------------------------------------------

    async def flush_notices(self) -> int:
        """Gather the waiting notices of each destination into one post and queue it; return
        how many posts were queued.

        Each notice is routed when it is gathered (`route_notices`). A destination's notices
        are gathered at once the first time, then at most once every `NOTICE_GATHER` after
        the previous post's turn: notices that come meanwhile wait and go out together. The
        post takes the destination's next place under its cap. A group is recorded before
        its post is queued, and queued under its own key, so a crash between the two queues
        it on the next call, and never twice."""
        now = self.now()
        cap = self.settings.per_channel_cap
        window = self.settings.per_channel_window.total_seconds()
        queued = 0
        async with self.posting:
            for told, notice_ids in (await self.route_notices()).items():
                last = await self.store.last_notice_group(told)
                if last and now < max(last.created_at, last.not_before) + NOTICE_GATHER:
                    continue
                times = await self.store.recent_post_times(told, now - window)
                at = slot(times, now, cap, window)
                await self.store.gather_notices(told, notice_ids, now, at)
            for group in await self.store.unqueued_notice_groups():
                notices = await self.store.notices_in(group.id)
                if notices:
                    when = datetime.fromtimestamp(group.not_before, UTC)
                    post = notices_post(notices, group.channel)
                    key = notice_key(group.id)
                    queued += await self.app.outbox.enqueue(group.channel, post, key, not_before=when)  # fmt: skip
                await self.store.mark_notice_group(group.id, queued=bool(notices), withdrawn=not notices)  # fmt: skip
        return queued

    async def route_notices(self) -> dict[ChannelRef, list[int]]:
        """The waiting notices by where they are to be told, each notice once."""
        routes: dict[ChannelRef, list[int]] = {}
        for notice_id, channel, created_by in await self.store.waiting_notices():
            told = await self.app.communities.for_moderators(channel, created_by)
            routes.setdefault(told, []).append(notice_id)
        return routes

    async def withdraw_notices(self, groups: list[NoticeGroup]) -> int:
        """After a subscription is removed, take back the notice posts (`groups`, found
        before removing it) that told only of it and are still waiting; one that also tells
        of others is shown without it, if it is still waiting. Return how many were taken
        back. Call it holding `posting`."""
        withdrawn = 0
        for group in groups:
            key = notice_key(group.id)
            notices = await self.store.notices_in(group.id)
            if not notices:
                if await self.app.outbox.withdraw(key):
                    await self.store.mark_notice_group(group.id, withdrawn=True)
                    withdrawn += 1
            elif await self.app.outbox.state(key) == "pending":
                await self.app.outbox.edit(key, notices_post(notices, group.channel))
        return withdrawn

    # --- New items -------------------------------------------------------------------------

    async def ingest(
        self, source: Source, parsed: ParsedFeed, subs: list[Subscription], seen: set[str]
    ) -> int:
        """Post new items to every running subscription; return how many items were new."""
        now = self.now()
        ordered = parsed.items
        new_keys = [k for k in parsed.keys if k not in seen]
        fresh = set(new_keys)
        new = [i for i in ordered if i.key_hash in fresh]
        name = source.title or parsed.title or urlsplit(source.url).hostname or source.url
        for sub in subs:
            if sub.primed:
                picks = await self.pick(sub, source, new)
            elif sub.backlog and not sub.quiet:  # the newest `backlog` items that pass
                picks = await self.pick(sub, source, ordered[::-1], sub.backlog)
                picks.reverse()
            else:
                picks = []
            zone = (await self.app.communities.of(sub.channel)).timezone
            await self.post(sub, name, picks, zone, now)
            if not sub.primed:
                await self.store.mark_primed(sub.id)
        await self.store.mark_seen(source.id, new_keys, now)
        return len(new_keys)

    async def pick(
        self, sub: Subscription, source: Source, items: list[Item], limit: int | None = None
    ) -> list[Item]:
        """The items (up to `limit`, in the order given) that the subscription's filters let
        through. Matching runs in a worker thread: a moderator's expression can be slow."""
        if not items:
            return []
        try:
            chosen = make_filter(sub.include, sub.exclude)
        except ValueError as exc:  # stored before a rule it now breaks: decide nothing
            selection = Selection(undecided=items, stuck=f"{exc}")
        else:
            if chosen.empty:
                return items[:limit] if limit is not None else items
            selection = await asyncio.to_thread(chosen.select, items, limit)
        if selection.undecided:
            await self.filter_trouble(sub, source, selection)
        return selection.kept

    async def filter_trouble(self, sub: Subscription, source: Source, selection: Selection) -> None:
        """Items a filter could not decide are not posted: say so in the log and in the
        subscription's health (`/feed list`)."""
        count = len(selection.undecided)
        log.warning(
            "feeds: subscription #%d (%s): its filter could not decide %d item(s), which are"
            " not posted (%s): %s",
            sub.id, source.url, count, selection.stuck,
            "; ".join(i.title or i.key for i in selection.undecided[:5]),
        )  # fmt: skip
        trouble = f"{selection.stuck}: {count} item(s) could not be checked and were not posted"
        await self.store.set_filter_trouble(sub.id, trouble, self.now())

    async def post(
        self, sub: Subscription, source: str, items: list[Item], zone: str, now: float
    ) -> int:
        """Queue items (oldest first) for one subscription, paced by the cap.

        The outbox key makes each item go out once per subscription; an item it already
        holds takes no place in the channel's pacing.
        """
        if not items:
            return 0
        cap = self.settings.per_channel_cap
        window = self.settings.per_channel_window.total_seconds()
        async with self.posting:
            current = await self.store.subscription(sub.id)
            if current is None or current.paused:
                return 0  # paused or removed since this fetch began
            times = await self.store.recent_post_times(sub.channel, now - window)
            queued = []
            for item in items:
                at = slot(times, now, cap, window)
                post = item_post(item, source, sub.template, zone)
                post.mention_roles = [sub.ping_role] if sub.ping_role else []  # its one ping
                key = post_key(sub.id, item.key_hash)
                when = datetime.fromtimestamp(at, UTC)
                if await self.app.outbox.enqueue(sub.channel, post, key, not_before=when):
                    times.append(at)
                    queued.append((item.key_hash, at))
            await self.store.record_posts(sub.id, sub.channel, queued)
        return len(queued)

    async def withdraw(self, sub_id: int) -> int:
        """Take back a subscription's queued items; return how many. Call it holding
        `posting`, after pausing or removing the subscription."""
        prefix = post_prefix(sub_id)
        keys = await self.app.outbox.withdraw(prefix)
        # Withdrawn items no longer count against the channel's cap.
        await self.store.forget_posts(sub_id, [k.removeprefix(prefix) for k in keys])
        return len(keys)


def want_for(subs: list[Subscription], seen: set[str]) -> Want:
    """What the parser must fill in: unseen items for running subscriptions, and the
    newest `backlog` items (every item, when filters decide) for new ones."""
    unprimed = [s for s in subs if not s.primed]
    if any(s.include or s.exclude for s in unprimed):
        newest = None
    else:
        newest = max((0 if s.quiet else s.backlog for s in unprimed), default=0)
    return Want(frozenset(seen), unseen=any(s.primed for s in subs), newest=newest)
