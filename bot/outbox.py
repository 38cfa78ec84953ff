"""The persistent outbox: every post the bot makes on its own goes through here.

A row is written with an idempotency key before anything is sent, so a crash or an outage
loses nothing; the UNIQUE key makes a second enqueue of the same item a no-op. Edits of one
message coalesce into one row, which also debounces bursts (a poll's live tally).

Rows are delivered by lanes (bot/lanes.py): each destination's posts, and its edits, go
strictly in the order they were queued, each lane on its own, so one channel waiting on a
retry, a rate limit or a hung call holds back no other. A post that answers another
(`Post.thread_of`, queued after it in the same channel) goes in that post's thread. A post is never given up for a
passing failure before `give_up_after`; one whose answer was lost is looked up on the
platform before it is sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.lanes import Lane, LaneRunner, Transport
from bot.model import ChannelRef, Post
from bot.postcodec import dump_post
from bot.store import Database

log = logging.getLogger(__name__)

__all__ = ["MIGRATIONS", "Health", "Outbox", "OutboxSettings", "Transport"]

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
    """,
    # Lanes and leases: a failed row waits in its lane (retry_at) instead of moving its own
    # due time, so nothing behind it overtakes it; `attempted_at` (wall clock) bounds the
    # lookup of a post whose answer was lost; a claim is a lease that a crash lets expire.
    """
    ALTER TABLE outbox ADD COLUMN retry_at REAL;
    ALTER TABLE outbox ADD COLUMN attempted_at REAL;
    ALTER TABLE outbox ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_until REAL;
    UPDATE outbox SET state = 'pending', in_doubt = 1, attempted_at = created_at
        WHERE state = 'sending' AND kind = 'post';
    UPDATE outbox SET state = 'pending' WHERE state = 'sending';
    CREATE INDEX outbox_lane ON outbox (channel, kind, id) WHERE state IN ('pending', 'sending')
    """,
    # Threads: the parent's message id a reply (Post.thread_of) was sent under, written at
    # its first try ('' = in the channel itself), so a retry, an in-doubt lookup and an edit
    # all look where it went.
    """
    ALTER TABLE outbox ADD COLUMN thread TEXT
    """,
    # A sent message found again by its id (`direct_of`: whose DM a press came from).
    """
    CREATE INDEX outbox_message ON outbox (message_id) WHERE message_id IS NOT NULL
    """,
]

DAY = 86400.0


@dataclass
class OutboxSettings:
    give_up_after: float = 3 * DAY  # seconds a post is retried through passing failures
    backoff_base: float = 2.0  # seconds before the first retry; doubles each time
    backoff_max: float = 300.0  # longest wait between two tries
    edit_debounce: float = 1.0  # seconds to gather edits of one message
    call_timeout: float = 30.0  # every platform call is cut off after this long
    concurrency: int = 16  # platform calls at once, per platform


@dataclass
class Health:
    """What moderators are shown of the outbox (in /help)."""

    waiting: int
    oldest_wait: float | None  # seconds the oldest waiting post has waited
    failed: int  # posts that could never be delivered, over the last week
    last_failure: str | None
    paused: dict[str, str]  # platform -> why its posts wait


class Outbox:
    def __init__(self, db: Database, clock: Clock, settings: OutboxSettings | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings or OutboxSettings()
        self.lanes = LaneRunner(db, clock, self.settings)
        # Shows a direct message's times in its member's own zone (set by the App).
        self.for_member: Callable[[ChannelRef, Post], Awaitable[Post]] | None = None

    # --- Connections ---------------------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        """Deliver a platform's posts through `transport` (a new one lifts a pause)."""
        self.lanes.attach(transport)

    def detach(self, transport: Transport) -> None:
        """Stop delivering through `transport` (its platform's posts wait for the next one)."""
        self.lanes.detach(transport)

    @property
    def transports(self) -> dict[str, Transport]:
        return self.lanes.transports

    @property
    def paused(self) -> dict[str, str]:
        return self.lanes.paused

    # --- Writing -------------------------------------------------------------------------

    async def enqueue(
        self, channel: ChannelRef, post: Post, key: str, not_before: datetime | None = None
    ) -> bool:
        """Queue a post once; False if this key was queued before (nothing changes)."""
        now = self._now()
        at = not_before.timestamp() if not_before else now
        if channel.is_direct and self.for_member is not None:
            post = await self.for_member(channel, post)
        if (channel.platform, channel.workspace) in self.lanes.held:
            return await self._spend(channel, post, key, at, now)
        created = await self.db.execute(
            "INSERT INTO outbox (key, kind, channel, payload, not_before, created_at) "
            "VALUES (?, 'post', ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
            (key, channel.key, dump_post(post), at, now),
        )
        if created:
            self.lanes.touch(Lane(channel.key, "post"))
        return bool(created)

    async def _spend(
        self, channel: ChannelRef, post: Post, key: str, at: float, now: float
    ) -> bool:
        """A post for a workspace the bot has left (a feed item, a reminder) is not queued.
        Its key is still spent, as a withdrawn row, so it is not posted late if the bot comes
        back, and an edit of it finds its target."""
        spent = await self.db.execute(
            "INSERT INTO outbox (key, kind, channel, payload, not_before, created_at, state,"
            " last_error) VALUES (?, 'post', ?, ?, ?, ?, 'failed', 'withdrawn')"
            " ON CONFLICT(key) DO NOTHING",
            (key, channel.key, dump_post(post), at, now),
        )
        if spent:
            log.info("outbox: %s not queued: the bot has left %s", key, channel.workspace)
        return False

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
                "SELECT channel, state, in_doubt FROM outbox WHERE key = ? AND kind = 'post'",
                (target_key,),
            )
            if target is None:
                raise KeyError(f"no post queued as {target_key}")
            if target["state"] == "pending" and not target["in_doubt"]:
                await tx.execute(
                    "UPDATE outbox SET payload = ?, version = version + 1 WHERE key = ?",
                    (payload, target_key),
                )
                return
            await tx.execute(
                "INSERT INTO outbox (key, kind, channel, target, payload, not_before,"
                " created_at) VALUES (?, 'edit', ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET payload = excluded.payload,"
                " version = outbox.version + 1, last_error = NULL,"
                " not_before = CASE WHEN outbox.state = 'pending' THEN outbox.not_before"
                " ELSE excluded.not_before END,"
                " state = CASE WHEN outbox.state = 'sending' THEN outbox.state ELSE 'pending' END",
                (
                    f"edit:{target_key}",
                    target["channel"],
                    target_key,
                    payload,
                    now + self.settings.edit_debounce,
                    now,
                ),
            )
        self.lanes.touch(Lane(target["channel"], "edit"))

    async def withdraw(self, prefix: str) -> list[str]:
        """Take back the queued posts whose key starts with `prefix`; return their keys.

        Only posts that surely never reached the platform are withdrawn: `pending`, with no
        message id, and not in doubt. A post in flight, or in doubt after a lost answer or
        a crash, is left alone. A withdrawn row is kept, marked failed, rather than
        deleted: its key stays spent, so the same post is never queued again.
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
                " AND message_id IS NULL AND in_doubt = 0 RETURNING key",
                (prefix, upper),
            )
        keys = sorted(r[0] for r in rows)
        if keys:
            log.info("outbox: withdrew %d queued post(s) under %r", len(keys), prefix)
        return keys

    # --- Reading -------------------------------------------------------------------------

    async def message_id(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT message_id FROM outbox WHERE key = ?", (key,))

    async def direct_of(self, platform: str, message_id: str) -> ChannelRef | None:
        """The member's direct messages a sent message went to, by its id on `platform`:
        a press there may name no workspace (Discord's DMs have no guild), and this does."""
        prefix = f"{platform}:"
        rows = await self.db.fetchall(
            "SELECT channel FROM outbox WHERE message_id = ? AND substr(channel, 1, ?) = ?",
            (message_id, len(prefix), prefix),
        )
        found = [ChannelRef.parse(row[0]) for row in rows]
        return next((ref for ref in found if ref.is_direct), None)

    async def state(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT state FROM outbox WHERE key = ?", (key,))

    async def pending_count(self) -> int:
        return await self.db.fetchval(
            "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')"
        )

    async def health(self) -> Health:
        now = self._now()
        waiting = await self.db.fetchone(
            "SELECT count(*), min(not_before) FROM outbox "
            "WHERE state IN ('pending', 'sending') AND not_before <= ?",
            (now,),
        )
        failed = await self.db.fetchone(
            "SELECT count(*), max(id) FROM outbox WHERE state = 'failed'"
            " AND last_error != 'withdrawn' AND created_at >= ?",
            (now - 7 * DAY,),
        )
        last = None
        if failed[1] is not None:
            last = await self.db.fetchval(
                "SELECT last_error FROM outbox WHERE id = ?", (failed[1],)
            )
        oldest = now - waiting[1] if waiting[1] is not None else None
        return Health(waiting[0], oldest, failed[0], last, dict(self.paused))

    # --- Delivering ----------------------------------------------------------------------

    async def recover(self) -> int:
        """At start: rows a crash left claimed go back to their lanes, posts in doubt (the
        platform may have them). On SQLite one process holds the file, so every claim
        found at start belonged to a process that is gone."""
        return await self.lanes.recover()

    async def deliver_due(self) -> int:
        """One round in the foreground: each lane that may go now sends its head; return
        how many posts and edits reached the platform."""
        return (await self.lanes.round())[0]

    async def drain(self, rounds: int = 1000) -> int:
        """Deliver until every lane waits or is empty at the current time (the console and
        tests, under a clock that only moves when told to)."""
        total = 0
        for _ in range(rounds):
            sent, progressed = await self.lanes.round()
            total += sent
            if not progressed:
                break
        return total

    async def next_due(self) -> float | None:
        """Seconds until some lane may send (pacing included), or None if none waits."""
        return await self.lanes.next_due()

    async def run(self) -> None:
        """In the background: serve every lane on its own until cancelled."""
        await self.lanes.run()

    def _now(self) -> float:
        return self.clock.now().timestamp()
