"""Turns shared by every worker on one database: one taker of a named turn per `every`
seconds, wherever the takers run.

For a limit a platform counts per bot across all its connections, not per process: Discord
lets a bot start one gateway session per five seconds, so workers started together (a
Procfile scaled to N) take turns to IDENTIFY instead of being refused and retrying. Real
time, not the App's clock: the platform counts in seconds that pass.
"""

from __future__ import annotations

import asyncio
import time

from bot.store import Database

MIGRATIONS = ["CREATE TABLE turns (name TEXT PRIMARY KEY, next_at REAL NOT NULL)"]


async def take(db: Database, name: str, every: float) -> float:
    """Take the turn `name` if it is free (0.0), the next one `every` seconds on; else
    the seconds until it is free, taking nothing."""
    now = time.time()
    async with db.transaction() as tx:
        await tx.serialise(f"turn:{name}")  # two workers asking at once: one after the other
        next_at = await tx.fetchval("SELECT next_at FROM turns WHERE name = ?", (name,))
        if next_at is not None and next_at > now:
            return next_at - now
        await tx.execute(
            "INSERT INTO turns VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET next_at = excluded.next_at",
            (name, now + every),
        )
    return 0.0


async def wait_turn(db: Database, name: str, every: float) -> None:
    """Wait for the turn `name`, then take it."""
    while (wait := await take(db, name, every)) > 0:
        await asyncio.sleep(wait)
