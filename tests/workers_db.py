"""One PostgreSQL schema shared by worker processes (tests/test_workers.py on Slack,
tests/test_discord_shards.py on Discord): the fixture that makes and drops it, and what the
tests read from outside the workers."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.databases import server_url


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A schema of its own on the test server; its URL (with search_path)."""
    import asyncpg

    url = server_url()
    schema = f"itsm_workers_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(url)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}"
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


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
