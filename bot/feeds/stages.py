"""The two hand-offs of a poll round (bot/feeds/poller.py): good answers that change
nothing, written together (`OkBatch`), and fetched bodies waiting for their parse, bounded
by their bytes (`BodyQueue`), so fetching goes on while parsing catches up. And, on a
shared database, the round's claim on its feeds, kept while it runs (`Claim`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from bot.feeds.store import FeedStore, FetchedOk, Source
from bot.fetch import FetchResult

log = logging.getLogger(__name__)

# Good answers that change nothing (304, an unchanged body) are written this many or this
# often together.
OK_BATCH = 200
OK_BATCH_AGE = 0.5  # seconds


class OkBatch:
    """Good answers that change nothing (304, an unchanged body), written together in one
    transaction (`FeedStore.fetched_ok_many`): each write means what it meant alone. A
    source stays in flight until its write is made."""

    def __init__(self, store: FeedStore, in_flight: set[int]) -> None:
        self.store = store
        self.in_flight = in_flight
        self.waiting: list[FetchedOk] = []
        self.since = 0.0

    def __contains__(self, source_id: int) -> bool:
        return any(ok.source_id == source_id for ok in self.waiting)

    async def add(self, ok: FetchedOk) -> None:
        if not self.waiting:
            self.since = time.monotonic()
        self.waiting.append(ok)
        if len(self.waiting) >= OK_BATCH or time.monotonic() - self.since >= OK_BATCH_AGE:
            await self.flush()

    async def flush(self) -> None:
        taken, self.waiting = self.waiting, []
        try:
            await self.store.fetched_ok_many(taken)
        finally:
            for ok in taken:
                self.in_flight.discard(ok.source_id)

    def drop(self) -> None:
        """Forget what waits (a round cut short): those sources are checked again later."""
        for ok in self.waiting:
            self.in_flight.discard(ok.source_id)
        self.waiting = []


Job = tuple[Source, bool, FetchResult]


class BodyQueue:
    """Fetched bodies waiting to be parsed, bounded by their bytes (queued or being parsed):
    a put waits while they would exceed `limit`, except that one body always gets in."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.jobs: deque[Job] = deque()
        self.closed = False
        self._changed = asyncio.Condition()

    async def put(self, job: Job) -> None:
        size = len(job[2].body)
        async with self._changed:
            await self._changed.wait_for(lambda: not self.held or self.held + size <= self.limit)
            self.jobs.append(job)
            self.held += size
            self._changed.notify_all()

    async def get(self) -> Job | None:
        """The next body to parse; None once the queue is closed and empty."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self.jobs) or self.closed)
            return self.jobs.popleft() if self.jobs else None

    async def done(self, job: Job) -> None:
        async with self._changed:
            self.held -= len(job[2].body)
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()


CLAIM_LOOK = 1.0  # seconds between two looks at whether a round's claim is due for renewal


class Claim:
    """The feeds a poll round took on a shared database (each one's next check moved to
    `until`: FeedStore.due_sources), kept for as long as the round runs: halfway through
    the claim, the feeds not yet recorded (`unrecorded()`) are claimed for another
    `length`. A round that takes longer than one claim (hundreds of new bodies waiting for
    their parse on a busy machine) so keeps its last feeds, instead of another worker
    fetching them again; a worker that dies stops renewing, and its feeds are due again
    one claim after it last did. Times are the App's clock, looked at every CLAIM_LOOK."""

    def __init__(
        self, store: FeedStore, now: Callable[[], float], until: float, length: float
    ) -> None:
        self.store = store
        self.now = now
        self.until = until
        self.length = length

    async def keep(self, unrecorded: Callable[[], list[Source]]) -> None:
        """Renew the claim until cancelled (at the round's end)."""
        while True:
            await asyncio.sleep(min(CLAIM_LOOK, self.length / 4))
            if self.now() < self.until - self.length / 2:
                continue
            until = self.now() + self.length
            try:
                await self.store.renew_claims([s.id for s in unrecorded()], self.until, until)
            except Exception:  # the store was busy: the next look tries again
                log.exception("feeds: renewing the claim on this round's feeds failed")
                continue
            self.until = until
