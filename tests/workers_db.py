"""One PostgreSQL schema shared by worker processes (tests/test_workers.py on Slack,
tests/test_discord_shards.py on Discord): the fixture that makes and drops it, and what the
tests read from outside the workers."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.databases import server_schema

database = server_schema  # a schema of its own on the test server, dropped afterwards


async def query(url: str, sql: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def settled(url: str, timeout: float) -> list[Any]:
    """Wait until the outbox has nothing left to send (so a late second copy would have
    arrived), then a moment more; the rows still open (none, unless it timed out)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await query(
            url, "SELECT key, state FROM outbox WHERE state IN ('pending', 'sending')"
        )
        if not rows or asyncio.get_running_loop().time() > deadline:
            await asyncio.sleep(2)
            return rows
        await asyncio.sleep(0.5)
