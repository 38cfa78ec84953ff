"""Durable intake: what the bot acknowledges to a platform is on disk first.

An adapter journals a request (the platform's own payload, under the platform's id for it)
before it acknowledges it, and marks it done once the core has handled it; at the next
start every request still held is handled again. Journaling goes through the group commit,
so a burst of a thousand clicks costs a few commits, not a thousand.

A request applied twice must change nothing: the writes that are not idempotent by
themselves (a vote button toggles) `consume` the request id in the same transaction as
their effect, so a request handled again after a crash finds its effect already there.
The same id seen twice at the door (a platform delivering a request again) is refused by
`hold`, so it is acknowledged and handled once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bot.clock import Clock
from bot.groupcommit import GroupCommit
from bot.store import Database

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE intake (
        request_id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL,
        done_at REAL
    );
    CREATE INDEX intake_held ON intake (platform, received_at) WHERE done_at IS NULL;
    CREATE INDEX intake_done ON intake (done_at) WHERE done_at IS NOT NULL
    """,
    # The worker handling a request: when it dies, another gives its requests back at once.
    "ALTER TABLE intake ADD COLUMN claimed_by TEXT",
]

ORPHANED_AFTER = 300.0  # seconds after which a held request's worker is taken to be gone
KEEP_DONE = 86400.0  # seconds a handled request is remembered, to refuse it if it comes again


async def consume(tx: Any, request_id: str, now: float) -> bool:
    """Inside a write: True the first time `request_id`'s effect is applied, False if it
    was applied before (the request is being handled again after a crash)."""
    changed = (
        await tx.execute(
            "INSERT INTO intake (request_id, platform, body, received_at, done_at)"
            " VALUES (?, '', '{}', ?, ?) ON CONFLICT(request_id) DO UPDATE"
            " SET done_at = excluded.done_at WHERE intake.done_at IS NULL",
            (request_id, now, now),
        )
    ).rowcount
    return changed == 1


class Intake:
    def __init__(self, db: Database, writer: GroupCommit, clock: Clock) -> None:
        self.db = db
        self.writer = writer
        self.clock = clock

    async def hold(self, platform: str, request_id: str, body: dict[str, Any]) -> bool:
        """Journal a request before it is acknowledged. False if that request id is known
        already: a repeated delivery, to acknowledge and drop."""
        now = self._now()
        text = json.dumps(body, separators=(",", ":"))

        async def write(tx: Any) -> bool:
            cursor = await tx.execute(
                "INSERT INTO intake (request_id, platform, body, received_at, claimed_by)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(request_id) DO NOTHING",
                (request_id, platform, text, now, self.db.worker),
            )
            return cursor.rowcount == 1

        return await self.writer.run(write)

    async def done(self, request_id: str) -> None:
        """The core has handled the request: it is not handled again at the next start."""
        now = self._now()

        async def write(tx: Any) -> None:
            await tx.execute(
                "UPDATE intake SET done_at = ? WHERE request_id = ? AND done_at IS NULL",
                (now, request_id),
            )

        await self.writer.run(write)

    async def held(self, platform: str) -> list[tuple[str, dict[str, Any]]]:
        """Requests acknowledged but not handled when the bot last stopped, oldest first.

        On a shared database another live worker may be handling the newest, so only those
        of workers that died, or older than `ORPHANED_AFTER`, are given back, each to one
        worker: taking one makes it this worker's, and should this worker die too another
        takes it then."""
        now = self._now()
        before = now - ORPHANED_AFTER if self.db.shared else now + 1
        claimers = await self.db.fetchall(
            "SELECT DISTINCT claimed_by FROM intake WHERE platform = ? AND done_at IS NULL",
            (platform,),
        )
        dead = sorted(await self.db.dead(r[0] for r in claimers))
        among = f" OR claimed_by IN ({', '.join('?' * len(dead))})" if dead else ""
        rows = await self.db.fetchall(
            "SELECT request_id, body, received_at FROM intake WHERE platform = ?"
            f" AND done_at IS NULL AND (received_at < ?{among}) ORDER BY received_at, rowid",
            (platform, before, *dead),
        )
        taken = []
        for r in rows:
            if self.db.shared and not await self.db.execute(
                "UPDATE intake SET received_at = ?, claimed_by = ? WHERE request_id = ?"
                " AND received_at = ? AND done_at IS NULL",
                (now, self.db.worker, r["request_id"], r["received_at"]),
            ):
                continue  # another worker took it first
            taken.append((r["request_id"], json.loads(r["body"])))
        return taken

    async def prune(self) -> int:
        """Forget requests handled more than a day ago."""
        return await self.db.execute(
            "DELETE FROM intake WHERE done_at IS NOT NULL AND done_at < ?",
            (self._now() - KEEP_DONE,),
        )

    def _now(self) -> float:
        return self.clock.now().timestamp()
