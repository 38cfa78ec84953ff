"""SQLite through aiosqlite: one connection, WAL, foreign keys, versioned migrations.

Each feature owns its schema as a list of SQL scripts; script N is version N of that
feature. `schema_versions` remembers how far each feature got, so re-running is a no-op.
One lock serialises statements, so two coroutines never interleave inside a transaction.

Opening checks the file is usable (readable, a database, writable, with a WAL beside it)
and takes a process lock on it, so a bad file or a second bot on the same file is a
one-line `StartupError` at start, not a traceback or doubled posts later.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import re
import secrets
import socket
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import StartupError
from bot.groupcommit import GroupCommit

log = logging.getLogger(__name__)

Params = Sequence[Any] | dict[str, Any]
# What every backend raises for a broken UNIQUE, FOREIGN KEY, NOT NULL or CHECK constraint
# (bot/postgres.py raises it too), for code that takes a conflict as an answer.
IntegrityError = sqlite3.IntegrityError
MEMORY = ":memory:"
# Statements that touch the file for real, cheaply (no scan of the data): the header
# (journal mode), the schema, and a write of page 1 rolled back, since BEGIN IMMEDIATE
# alone succeeds on a read-only file in WAL mode. The rollback keeps user_version as it was.
PROBE = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "SELECT count(*) FROM sqlite_master",
    "BEGIN IMMEDIATE",
    "PRAGMA user_version=0",
    "ROLLBACK",
)
# The shared connection's settings, on every open.
PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


# The password in a database URL (postgresql://user:PASSWORD@host/db), wherever it shows.
URL_PASSWORD = re.compile(r"(\bpostgres(?:ql)?://[^:/@\s]*:)[^@\s]+@")


def redacted(text: str) -> str:
    """`text` with every database URL's password replaced by ***, for messages and logs."""
    return URL_PASSWORD.sub(r"\1***@", text)


def is_server(location: str) -> bool:
    """Whether a database location names a server (postgresql://…) rather than a file."""
    return location.startswith(("postgresql://", "postgres://"))


def missing(location: str) -> bool:
    """Whether a database file named for reading is not there (a server is looked up by
    opening it)."""
    return not is_server(location) and not Path(location).exists()


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

    async def serialise(self, key: str) -> None:
        """Hold `key` to the end of the transaction against other workers' transactions
        (a no-op here: a SQLite transaction already holds the whole file)."""

    # The catalogue, the same on every backend (bot/postgres.py reads its own).
    async def tables(self) -> list[str]:
        """The bot's tables, by name."""
        rows = await self.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
        return [r[0] for r in rows]

    async def columns(self, table: str) -> list[str]:
        """A table's columns, in order."""
        return [r[1] for r in await self.fetchall(f"PRAGMA table_info({table})")]


def worker_id() -> str:
    """This process's name in the claims it makes: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def lapsed_claims(db: Any, table: str, state: str, now: float) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause and its parameters for the rows of `table` in `state` claimed
    (`claimed_by`, `claimed_until`) by a worker that is gone: one that died, or whose
    lease ran out. On a SQLite file, which one process holds, every other worker is gone;
    on a shared database, see `dead`."""
    claimers = await db.fetchall(
        f"SELECT DISTINCT claimed_by FROM {table} WHERE state = ?", (state,)
    )
    dead = sorted(await db.dead(r[0] for r in claimers))
    among = f" OR claimed_by IN ({', '.join('?' * len(dead))})" if dead else ""
    return (
        f"state = ? AND (claimed_by IS NULL OR claimed_until < ?{among})",
        (state, now, *dead),
    )


class Database:
    dialect = "sqlite"

    def __init__(
        self, conn: aiosqlite.Connection, path: str, lock: ProcessLock | None = None
    ) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._process_lock = lock
        self.path = path
        self.worker = worker_id()

    @classmethod
    async def open(cls, path: str | Path, *, lock: bool = True) -> Database:
        """Open (creating if need be) and check the database; raise `StartupError` with one
        line naming the file if it cannot be used or another process holds it.

        With `lock=False` no process lock is taken (a read-only look alongside a bot)."""
        path = str(path)
        if is_server(path):
            from bot.postgres import PostgresDatabase

            return await PostgresDatabase.open(path)  # type: ignore[return-value]
        held = None
        if path != MEMORY:
            _make_directory(path)
            held = ProcessLock.acquire(path) if lock else None
        try:
            conn = await _connect(path)
        except BaseException:
            if held is not None:
                held.release()
            raise
        return cls(conn, path, held)

    # One process holds a SQLite file (the process lock), so what a crash left claimed is
    # free at start; a shared database's claims are another live worker's until it dies or
    # they expire.
    shared = False
    # The clause a claiming sub-select ends with to skip rows another worker is claiming.
    skip_locked = ""
    # The clause that makes a SELECT lock its rows to the end of the transaction, where two
    # transactions may run at once (a SQLite transaction already holds the whole file).
    for_update = ""

    async def dead(self, workers: Iterable[str | None]) -> set[str]:
        """Which of these workers no longer run: on a file this process holds, every other."""
        return {w for w in workers if w and w != self.worker}

    def group_commit(self) -> GroupCommit:
        """The batched writer of small writes on this database (bot/groupcommit.py)."""
        return GroupCommit(self.path)

    async def close(self) -> None:
        """Close the connection, then let another process have the file (safe twice)."""
        try:
            await self._conn.close()
        finally:
            if self._process_lock is not None:
                self._process_lock.release()

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

    async def tables(self) -> list[str]:
        async with self._lock:
            return await Tx(self._conn).tables()

    async def columns(self, table: str) -> list[str]:
        async with self._lock:
            return await Tx(self._conn).columns(table)

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


# --- Opening: a file that is really usable ------------------------------------------------


async def _connect(path: str) -> aiosqlite.Connection:
    """Probe the file, then connect. Whatever fails, no aiosqlite worker is left running: it
    is a non-daemon thread, and one left over keeps the process from ever exiting (so a bad
    file used to print a traceback and then hang)."""
    if path != MEMORY:
        await asyncio.to_thread(_probe, path)
    pending = aiosqlite.connect(path, isolation_level=None)
    try:
        conn = await pending
    except sqlite3.Error as exc:  # the file changed since the probe
        await _worker_gone(pending)
        raise _unusable(path, exc) from None
    try:
        conn.row_factory = aiosqlite.Row
        for pragma in PRAGMAS:
            await conn.execute(pragma)
    except BaseException as exc:
        await _close_quietly(conn)
        if isinstance(exc, sqlite3.Error):
            raise _unusable(path, exc) from None
        raise
    return conn


def _probe(path: str) -> None:
    """Touch the file for real, on a plain connection that does not outlive the call."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from None
    try:
        for statement in PROBE:
            conn.execute(statement)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from None
    finally:
        conn.close()


async def _worker_gone(pending: aiosqlite.Connection) -> None:
    """After a failed connect, aiosqlite stops its worker without waiting for it; wait here,
    or the worker reports to a loop that has closed (a thread traceback on the way out)."""
    worker = getattr(pending, "_thread", pending)
    if isinstance(worker, threading.Thread) and worker.is_alive():
        await asyncio.to_thread(worker.join, 10)


async def _close_quietly(conn: aiosqlite.Connection) -> None:
    try:
        await conn.close()
    except Exception:  # already failing: the first error is the one to report
        log.debug("closing a database that failed to open", exc_info=True)


def _make_directory(path: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"cannot use the database {path}: cannot create its directory "
            f"{Path(path).parent} ({exc.strerror or exc})"
        ) from None


def _unusable(path: str, exc: sqlite3.Error) -> StartupError:
    """The one line for a SQLite error at open: what is wrong with the file, in plain words."""
    return StartupError(f"cannot use the database {path}: {_diagnose(path, exc)}")


def _diagnose(path: str, exc: sqlite3.Error) -> str:
    """SQLite says "unable to open" or "readonly"; the file system says which file and why."""
    said = str(exc)
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")) or "unable to open" in said:
        return _file_problem(Path(path), writing=name.startswith("SQLITE_READONLY")) or said
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"another program keeps it locked ({said})"
    return said


def _file_problem(db: Path, writing: bool) -> str | None:
    """The first reason the file system gives for SQLite not opening or writing `db`."""
    directory = db.parent
    if db.is_dir():
        return "it is a directory, not a database file"
    if db.exists() and not os.access(db, os.R_OK):
        return "the file is not readable (permission denied)"
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"its directory {directory} is not writable "
            f"(SQLite needs to create {db.name}-wal and {db.name}-shm there)"
        )
    if db.exists() and not os.access(db, os.W_OK):
        return "the file is read-only"
    for side in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        if side.exists() and (not side.is_file() or not os.access(side, os.R_OK | os.W_OK)):
            return f"SQLite cannot write its {side.name} file beside it"
    if writing:
        return "the file cannot be written (attempt to write a readonly database)"
    return None


# --- One process per database file ----------------------------------------------------------


@dataclass
class _Held:
    fd: int
    users: int


_HELD: dict[tuple[int, int], _Held] = {}
_HELD_GUARD = threading.Lock()


class ProcessLock:
    """An exclusive `flock` on `PATH.lock`, so two processes never serve one database (both
    would deliver every post). The kernel drops it when the process dies, however it dies.

    Within one process the lock is shared: opening the file again while it is open (a test
    restarting an App on the same file) counts one more user; the last close releases it.
    The lock file itself stays: removing it would let two processes lock two different files.
    """

    def __init__(self, key: tuple[int, int]) -> None:
        self._key: tuple[int, int] | None = key

    @classmethod
    def acquire(cls, db_path: str) -> ProcessLock:
        fd = _open_lock_file(db_path)
        with _HELD_GUARD:
            st = os.fstat(fd)
            key = (st.st_dev, st.st_ino)
            held = _HELD.get(key)
            if held is not None:  # this process has it already
                os.close(fd)
                held.users += 1
                return cls(key)
            _lock_or_refuse(fd, db_path)
            _HELD[key] = _Held(fd, 1)
        return cls(key)

    def release(self) -> None:
        """Drop this user; the last one unlocks (safe to call twice)."""
        with _HELD_GUARD:
            key, self._key = self._key, None
            held = _HELD.get(key) if key else None
            if held is None:
                return
            held.users -= 1
            if held.users == 0:
                del _HELD[key]
                os.close(held.fd)  # closing the descriptor releases the flock


def lock_path(db_path: str) -> str:
    return f"{db_path}.lock"


def _open_lock_file(db_path: str) -> int:
    path = lock_path(db_path)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return os.open(path, os.O_RDONLY)  # someone else's lock file: flock needs no write
        problem = _file_problem(Path(db_path), writing=True)
        raise StartupError(
            f"cannot use the database {db_path}: {problem or f'cannot create {path}'}"
        ) from None
    except OSError as exc:
        raise StartupError(
            f"cannot use the database {db_path}: cannot open its lock file {path} "
            f"({exc.strerror or exc})"
        ) from None


def _lock_or_refuse(fd: int, db_path: str) -> None:
    """Lock without waiting, then leave our pid in the file for the next one to name."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StartupError(
                f"cannot use the database {db_path}: cannot lock {lock_path(db_path)} "
                f"({exc.strerror or exc})"
            ) from None
        who = f"another itsm-bot process (pid {holder})" if holder else "another process"
        raise StartupError(
            f"cannot use the database {db_path}: {who} is using it; "
            "stop that one first (two would post everything twice)"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:  # a read-only lock file still locks; it just cannot name us
        pass


def _holder(fd: int) -> int | None:
    """The pid the holder wrote into the lock file, if it could."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
