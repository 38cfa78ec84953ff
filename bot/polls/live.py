"""Coalesced redraws of live messages: a burst of votes becomes a few redraws per run.

A vote only marks its run dirty and returns, so the member's confirmation never waits on
the outbox. One background task redraws dirty runs, at most once per `every` seconds
while votes keep coming; votes landing meanwhile fold into the next round. The outbox
then debounces the platform edits themselves; `every` is its edit debounce, because a
redraw more often than edits go out only rewrites a row nobody has sent yet, and each
redraw costs tally queries and a write on the shared connection that votes also need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Refresher:
    def __init__(self, redraw: Callable[[int], Awaitable[None]], every: float) -> None:
        self._redraw = redraw
        self.every = every
        self._dirty: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()

    def touch(self, run_id: int) -> None:
        self._dirty.add(run_id)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="poll-redraw")

    async def _run(self) -> None:
        while self._dirty:
            await asyncio.sleep(0)  # let the rest of a burst land first
            batch, self._dirty = self._dirty, set()
            for run_id in sorted(batch):
                try:
                    await self._redraw(run_id)
                except Exception:  # a redraw that fails must not stop the next ones
                    log.exception("redraw of run %s failed", run_id)
            if self._dirty and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self.every)

    async def flush(self) -> None:
        """Redraw everything pending now, without the pause (tests, closing, shutdown)."""
        self._hurry.set()
        try:
            while self._task is not None and not self._task.done():
                await asyncio.shield(self._task)
        finally:
            self._hurry.clear()
