"""SQLite through aiosqlite: one connection, WAL, foreign keys, versioned migrations.

Each feature owns its schema as a list of SQL scripts; script N is version N of that
feature. `schema_versions` remembers how far each feature got, so re-running is a no-op.
One lock serialises statements, so two coroutines never interleave inside a transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]


class Tx:
    """Statements inside one transaction (the lock is already held)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> aiosqlite.Cursor:
        return await self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: str | Path) -> Database:
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        return cls(conn, path)

    async def close(self) -> None:
        await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    # Single statements, each its own transaction.
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        async with self._lock:
            cur = await self._conn.execute(sql, params)
            changed = cur.rowcount
            await cur.close()
            return changed

    async def insert(self, sql: str, params: Params = ()) -> int | None:
        """Run one INSERT; return the new row's id, or None if it inserted nothing."""
        async with self._lock:
            cur = await self._conn.execute(sql, params)
            new_id = cur.lastrowid if cur.rowcount else None
            await cur.close()
            return new_id

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        async with self._lock:
            return await Tx(self._conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        async with self._lock:
            return await Tx(self._conn).fetchall(sql, params)

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        async with self._lock:
            return await Tx(self._conn).fetchval(sql, params)

    async def migrate(self, feature: str, scripts: Sequence[str]) -> int:
        """Bring one feature's schema up to date; return how many scripts ran."""
        async with self.transaction() as tx:
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions "
                "(feature TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            current = await tx.fetchval(
                "SELECT version FROM schema_versions WHERE feature = ?", (feature,)
            )
        current = current or 0
        ran = 0
        for version, script in enumerate(scripts, start=1):
            if version <= current:
                continue
            async with self.transaction() as tx:
                for statement in _statements(script):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_versions (feature, version) VALUES (?, ?) "
                    "ON CONFLICT(feature) DO UPDATE SET version = excluded.version",
                    (feature, version),
                )
            log.info("migrated %s to version %d", feature, version)
            ran += 1
        return ran

    async def version(self, feature: str) -> int:
        row = await self.fetchone(
            "SELECT version FROM schema_versions WHERE feature = ?", (feature,)
        )
        return row[0] if row else 0


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (our scripts keep ';' out of literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]
