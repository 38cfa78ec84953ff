"""The persistent outbox: every post the bot makes on its own goes through here.

A row is written with an idempotency key before anything is sent, so a crash or an outage
loses nothing; the UNIQUE key makes a second enqueue of the same item a no-op. A row is
marked `sending` before the platform call; after a crash such a row is in doubt, and the
transport is asked whether the platform already has it (by the key it was posted with)
before it is sent again. Edits of one message coalesce into one row, which also debounces
bursts (a poll's live tally).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.clock import Clock
from bot.errors import DeliveryError
from bot.model import ChannelRef, Post
from bot.postcodec import dump_post, load_post
from bot.store import Database

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ('post', 'edit')),
        channel TEXT NOT NULL,
        target TEXT,
        payload TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL NOT NULL,
        message_id TEXT,
        last_error TEXT,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_due ON outbox (state, not_before)
    """
]


class Transport(Protocol):
    """What an adapter gives the outbox: send, edit, and find a post by its key."""

    platform: str
    pace: float  # seconds between two posts in one channel

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str: ...

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None: ...

    async def find(self, channel: ChannelRef, key: str) -> str | None: ...


@dataclass
class OutboxSettings:
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    edit_debounce: float = 1.0


@dataclass
class Row:
    id: int
    key: str
    kind: str
    channel: ChannelRef
    target: str | None
    post: Post
    version: int
    attempts: int


class Outbox:
    def __init__(self, db: Database, clock: Clock, settings: OutboxSettings | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings or OutboxSettings()
        self.transports: dict[str, Transport] = {}
        self._last_sent: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._warned: set[str] = set()
        self._unsettled: set[str] = set()  # platforms whose in-doubt rows are not settled yet

    def attach(self, transport: Transport) -> None:
        """Deliver a platform's posts through `transport`, once its in-doubt rows are settled
        (only a connected transport can tell whether a crash interrupted a post before or
        after the platform took it)."""
        self.transports[transport.platform] = transport
        self._unsettled.add(transport.platform)
        self._wake.set()

    # --- Writing -------------------------------------------------------------------------

    async def enqueue(
        self, channel: ChannelRef, post: Post, key: str, not_before: datetime | None = None
    ) -> bool:
        """Queue a post once; False if this key was queued before (nothing changes)."""
        now = self._now()
        at = not_before.timestamp() if not_before else now
        created = await self.db.execute(
            "INSERT INTO outbox (key, kind, channel, payload, not_before, created_at) "
            "VALUES (?, 'post', ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
            (key, channel.key, dump_post(post), at, now),
        )
        self._wake.set()
        return bool(created)

    async def edit(self, target_key: str, post: Post) -> None:
        """Show `post` in place of the message queued as `target_key`.

        If the original is still waiting, it is simply replaced. Otherwise one edit row per
        target collects the newest content; it is held back `edit_debounce` seconds so a
        burst of changes becomes one platform call.
        """
        now = self._now()
        payload = dump_post(post)
        async with self.db.transaction() as tx:
            target = await tx.fetchone(
                "SELECT channel, state FROM outbox WHERE key = ? AND kind = 'post'", (target_key,)
            )
            if target is None:
                raise KeyError(f"no post queued as {target_key}")
            if target["state"] == "pending":
                await tx.execute(
                    "UPDATE outbox SET payload = ?, version = version + 1 WHERE key = ?",
                    (payload, target_key),
                )
            else:
                await tx.execute(
                    "INSERT INTO outbox (key, kind, channel, target, payload, not_before,"
                    " created_at) VALUES (?, 'edit', ?, ?, ?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET payload = excluded.payload,"
                    " version = version + 1, attempts = 0, last_error = NULL,"
                    " not_before = CASE WHEN state = 'pending' THEN not_before"
                    " ELSE excluded.not_before END,"
                    " state = CASE WHEN state = 'sending' THEN state ELSE 'pending' END",
                    (
                        f"edit:{target_key}",
                        target["channel"],
                        target_key,
                        payload,
                        now + self.settings.edit_debounce,
                        now,
                    ),
                )
        self._wake.set()

    async def withdraw(self, prefix: str) -> list[str]:
        """Take back the queued posts whose key starts with `prefix`; return their keys.

        Only `pending` posts without a message id are withdrawn: the outbox itself treats
        them as not on the platform (it sends them again without asking). A `sending` row is
        in flight, or in doubt after a crash, and is left alone. A withdrawn row is kept,
        marked failed, rather than deleted: its key stays spent and its id is never reused
        by a new post while a delivery round still holds the old row.
        """
        if not prefix:
            raise ValueError("an empty prefix would withdraw every post")
        successor = ord(prefix[-1]) + 1
        if 0xD800 <= successor <= 0xDFFF:  # surrogates cannot be stored: skip past them
            successor = 0xE000
        if successor > 0x10FFFF:
            raise ValueError("the prefix cannot end in the last Unicode character")
        upper = prefix[:-1] + chr(successor)
        async with self.db.transaction() as tx:
            # A key range, not LIKE: no wildcards to escape, and the key's index is used.
            rows = await tx.fetchall(
                "UPDATE outbox SET state = 'failed', last_error = 'withdrawn' "
                "WHERE key >= ? AND key < ? AND kind = 'post' AND state = 'pending'"
                " AND message_id IS NULL RETURNING key",
                (prefix, upper),
            )
        keys = sorted(r[0] for r in rows)
        if keys:
            log.info("outbox: withdrew %d queued post(s) under %r", len(keys), prefix)
        return keys

    # --- Reading -------------------------------------------------------------------------

    async def message_id(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT message_id FROM outbox WHERE key = ?", (key,))

    async def state(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT state FROM outbox WHERE key = ?", (key,))

    async def pending_count(self) -> int:
        return await self.db.fetchval(
            "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')"
        )

    # --- Delivering ----------------------------------------------------------------------

    def detach(self, transport: Transport) -> None:
        """Stop delivering through `transport` (its platform's posts wait for the next one)."""
        if self.transports.get(transport.platform) is transport:
            del self.transports[transport.platform]

    async def settle(self) -> None:
        """Settle the in-doubt rows of every platform attached since the last delivery."""
        while self._unsettled:
            await self._settle(self._unsettled.pop())

    async def _settle(self, platform: str) -> None:
        """After a restart: settle the rows a crash left in `sending` on one platform."""
        transport = self.transports[platform]
        rows = await self.db.fetchall(
            "SELECT * FROM outbox WHERE state = 'sending' AND channel LIKE ?", (platform + ":%",)
        )
        for raw in rows:
            row = _row(raw)
            found = None
            if row.kind == "post":
                found = await transport.find(row.channel, row.key)
            if found:
                await self._mark_sent(row, found)
                log.info("outbox: %s was already delivered as %s", row.key, found)
            else:
                await self.db.execute("UPDATE outbox SET state = 'pending' WHERE id = ?", (row.id,))

    async def deliver_due(self) -> int:
        """Send what is due now, at most one post per channel per pace; return how many."""
        await self.settle()
        now = self._now()
        ready = [
            row
            for row, ready_at in await self._heads(due_by=now)
            if ready_at is not None and ready_at <= now
        ]
        results = await asyncio.gather(*(self._deliver(_row(row)) for row in ready))
        return sum(results)

    async def next_due(self) -> float | None:
        """Seconds until something may be sent (pacing included), or None if nothing waits."""
        times = [at for _, at in await self._heads() if at is not None]
        return max(0.0, min(times) - self._now()) if times else None

    async def _heads(self, due_by: float | None = None) -> list[tuple[Any, float | None]]:
        """Each channel's oldest waiting row, with when it may go (None: no connection).

        Only the head of each channel's line is read: rows behind it, or for a platform
        that is not connected, are not decoded round after round."""
        rows = await self.db.fetchall(
            "SELECT * FROM (SELECT *, row_number() OVER"
            " (PARTITION BY channel ORDER BY not_before, id) AS place"
            " FROM outbox WHERE state = 'pending' AND not_before <= ?) WHERE place = 1",
            (due_by if due_by is not None else float("inf"),),
        )
        heads = []
        for row in rows:
            transport = self.transports.get(row["channel"].split(":", 1)[0])
            if transport is None:
                self._warn_once(row["channel"].split(":", 1)[0])
                heads.append((row, None))
                continue
            paced = self._last_sent.get(row["channel"], float("-inf")) + transport.pace
            heads.append((row, max(row["not_before"], paced)))
        return heads

    async def drain(self, rounds: int = 1000) -> int:
        """Deliver until nothing is due right now (used by the console and tests)."""
        total = 0
        for _ in range(rounds):
            sent = await self.deliver_due()
            total += sent
            if not sent:
                break
        return total

    async def run(self) -> None:
        """The sender loop: deliver, then sleep until something is due or new work arrives."""
        while True:
            # Cleared before looking, so work queued while we look still wakes the loop.
            self._wake.clear()
            try:
                await self.deliver_due()
                wait = await self.next_due()
            except Exception:  # keep the sender alive whatever one round did
                log.exception("outbox: delivery round failed")
                wait = 5.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait if wait is not None else 60)
            except TimeoutError:
                pass

    async def _deliver(self, row: Row) -> int:
        transport = self.transports[row.channel.platform]
        claimed = await self.db.execute(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1 "
            "WHERE id = ? AND state = 'pending'",
            (row.id,),
        )
        if not claimed:
            return 0
        self._last_sent[row.channel.key] = self._now()
        try:
            if row.kind == "post":
                message_id = await transport.send(row.channel, row.post, row.key)
            else:
                message_id = await self._send_edit(transport, row)
        except DeliveryError as exc:
            await self._failed(row, str(exc), exc.transient, exc.retry_after)
            return 0
        except Exception as exc:  # an unknown failure is treated as passing
            log.exception("outbox: unexpected error delivering %s", row.key)
            await self._failed(row, repr(exc), True, None)
            return 0
        await self._mark_sent(row, message_id)
        return 1

    async def _send_edit(self, transport: Transport, row: Row) -> str:
        message_id = await self.message_id(row.target or "")
        if not message_id:
            state = await self.state(row.target or "")
            if state == "failed":
                raise DeliveryError("the message to edit was never posted", transient=False)
            raise DeliveryError("the message to edit is not posted yet", transient=True)
        await transport.edit(row.channel, message_id, row.post)
        return message_id

    async def _mark_sent(self, row: Row, message_id: str) -> None:
        # Only if nobody queued newer content meanwhile; otherwise it goes out again.
        now = self._now()
        done = await self.db.execute(
            "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, last_error = NULL "
            "WHERE id = ? AND version = ?",
            (message_id, now, row.id, row.version),
        )
        if not done:
            await self.db.execute(
                "UPDATE outbox SET state = 'pending', message_id = ?, attempts = 0 WHERE id = ?",
                (message_id, row.id),
            )
            self._wake.set()

    async def _failed(
        self, row: Row, error: str, transient: bool, retry_after: float | None
    ) -> None:
        attempts = row.attempts + 1
        if not transient or attempts >= self.settings.max_attempts:
            log.error("outbox: giving up on %s after %d attempts: %s", row.key, attempts, error)
            await self.db.execute(
                "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?",
                (error[:500], row.id),
            )
            return
        delay = self._backoff(attempts)
        if retry_after is not None:
            delay = max(delay, retry_after)
        log.warning("outbox: %s failed (%s); retry in %.1fs", row.key, error, delay)
        await self.db.execute(
            "UPDATE outbox SET state = 'pending', not_before = ?, last_error = ? WHERE id = ?",
            (self._now() + delay, error[:500], row.id),
        )

    def _backoff(self, attempts: int) -> float:
        base = min(self.settings.backoff_base * 2 ** (attempts - 1), self.settings.backoff_max)
        return base * random.uniform(0.8, 1.2)

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _warn_once(self, platform: str) -> None:
        if platform not in self._warned:
            self._warned.add(platform)
            log.warning("outbox: no %s connection; its posts wait", platform)


def _row(raw: Any) -> Row:
    return Row(
        id=raw["id"],
        key=raw["key"],
        kind=raw["kind"],
        channel=ChannelRef.parse(raw["channel"]),
        target=raw["target"],
        post=load_post(raw["payload"]),
        version=raw["version"],
        attempts=raw["attempts"],
    )
