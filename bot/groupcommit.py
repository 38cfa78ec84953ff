"""Group commit: small writes from many coroutines applied in batches.

Each statement through the shared async connection is a round trip to its thread, and a
burst (a thousand votes, each journaled before its ack) needs several per request; under a
burst that, not SQLite, is the limit. Writes are therefore queued and applied in batches by
a connection of our own on one worker thread: one hop and one commit per batch, whatever
its size. Each write runs in its own savepoint, so one that raises changes nothing and its
caller gets the exception, while the rest of the batch still commits. Batches run in
arrival order, so two writes of one member apply one after the other exactly as they came.

A write is written once, as an `async def` over a `Tx` (what bot/store.py's transactions
give), so the same write runs on PostgreSQL (bot/postgres.py batches them the same way, on
the event loop). Here, on SQLite's worker thread, its `Tx` is a plain connection whose
methods never suspend, so each write is driven to its end in one step (`_finish`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Write = Callable[[Any], Coroutine[Any, Any, Any]]


@dataclass
class Raised:
    """The outcome of a write that raised: its own changes were undone."""

    error: BaseException


class GroupCommit:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self._conn: sqlite3.Connection | None = None
        self._queue: list[tuple[Write, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def run(self, write: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """Apply `write` in the next batch; resolve with what it returned once the batch has
        committed (or raise what it raised, its own changes undone)."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((write, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        return await done

    @property
    def busy(self) -> bool:
        """Whether writes are waiting or committing."""
        return bool(self._queue) or (self._task is not None and not self._task.done())

    async def close(self) -> None:
        """Let queued writes commit, then close the connection (safe to call twice)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._pool, conn.close)
        self._pool.shutdown(wait=False)  # idempotent; the one worker is idle by now

    async def commit(self, writes: list[Write]) -> list[Any]:
        """Apply one batch in one transaction: each write's result, or `Raised`."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._apply, writes)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                outcomes = await self.commit([w for w, _ in batch])
            except Exception as exc:  # the commit failed: the whole batch rolled back
                log.exception("group commit: a batch of %d writes failed", len(batch))
                outcomes = [Raised(exc)] * len(batch)
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if done.done():
                    continue
                if isinstance(outcome, Raised):
                    done.set_exception(outcome.error)
                else:
                    done.set_result(outcome)

    # --- On the worker thread --------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # The same pragmas as the shared connection (bot/store.py): foreign keys are
            # off per connection unless asked for.
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Leave checkpoints to the shared connection, which writes after every burst
            # (the redraw's edit): a checkpoint syncs the file to disk, and every ~300th
            # batch paid for it, 12-20 ms that every write waiting behind it paid too.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.row_factory = sqlite3.Row
            self._conn = conn
        return self._conn

    def _apply(self, writes: list[Write]) -> list[Any]:
        conn = self._connection()
        tx = ThreadTx(conn)
        outcomes: list[Any] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                conn.execute("SAVEPOINT one")
                try:
                    outcomes.append(_finish(write(tx)))
                    conn.execute("RELEASE one")
                except Exception as exc:
                    conn.execute("ROLLBACK TO one")
                    conn.execute("RELEASE one")
                    outcomes.append(Raised(exc))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return outcomes


class ThreadTx:
    """The `Tx` of a write on the worker thread: a plain sqlite3 connection, so no call
    ever suspends."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params).fetchone()

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    async def serialise(self, key: str) -> None:
        """A no-op: the batch's transaction already holds the whole SQLite file."""


def _finish(coro: Coroutine[Any, Any, T]) -> T:
    """Run a write that never suspends to its end, here and now."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a batched write waited on something other than its own Tx")
