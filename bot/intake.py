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
import sqlite3
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
    """
]

KEEP_DONE = 86400.0  # seconds a handled request is remembered, to refuse it if it comes again


def consume(conn: sqlite3.Connection, request_id: str, now: float) -> bool:
    """Inside a write: True the first time `request_id`'s effect is applied, False if it
    was applied before (the request is being handled again after a crash)."""
    changed = conn.execute(
        "INSERT INTO intake (request_id, platform, body, received_at, done_at)"
        " VALUES (?, '', '{}', ?, ?) ON CONFLICT(request_id) DO UPDATE"
        " SET done_at = excluded.done_at WHERE intake.done_at IS NULL",
        (request_id, now, now),
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

        def write(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute(
                    "INSERT INTO intake (request_id, platform, body, received_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT(request_id) DO NOTHING",
                    (request_id, platform, text, now),
                ).rowcount
                == 1
            )

        return await self.writer.run(write)

    async def done(self, request_id: str) -> None:
        """The core has handled the request: it is not handled again at the next start."""
        now = self._now()
        await self.writer.run(
            lambda conn: conn.execute(
                "UPDATE intake SET done_at = ? WHERE request_id = ? AND done_at IS NULL",
                (now, request_id),
            )
        )

    async def held(self, platform: str) -> list[tuple[str, dict[str, Any]]]:
        """Requests acknowledged but not handled when the bot last stopped, oldest first."""
        rows = await self.db.fetchall(
            "SELECT request_id, body FROM intake WHERE platform = ? AND done_at IS NULL"
            " ORDER BY received_at, rowid",
            (platform,),
        )
        return [(r["request_id"], json.loads(r["body"])) for r in rows]

    async def prune(self) -> int:
        """Forget requests handled more than a day ago."""
        return await self.db.execute(
            "DELETE FROM intake WHERE done_at IS NOT NULL AND done_at < ?",
            (self._now() - KEEP_DONE,),
        )

    def _now(self) -> float:
        return self.clock.now().timestamp()
