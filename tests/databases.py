"""The databases the feature tests run on: a SQLite file, and a PostgreSQL schema.

`ITSM_BOT_TEST_POSTGRES` names the server (e.g. postgresql://postgres@127.0.0.1:5432/test):
with it, every test on the `places` fixture (through `make_app`) runs on both backends.
Where it names a server that does not answer, the PostgreSQL runs are skipped with the
reason; `ITSM_BOT_REQUIRE_POSTGRES=1` turns that skip into a failure.

Migrating every feature costs PostgreSQL about two seconds, so a test process keeps its
schemas (`itsm_<pid>_<n>`) and hands each test clean ones: every table emptied, identities
restarted, `schema_versions` kept, so migrating again is a no-op. Two runs at once use
schemas of their own; those of a run that no longer exists are dropped at the next start.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

URL_VARIABLE = "ITSM_BOT_TEST_POSTGRES"
REQUIRE_VARIABLE = "ITSM_BOT_REQUIRE_POSTGRES"
# PostgreSQL joins the runs where a server is named (CI names its machine's: .ci/run).
BACKENDS = ["sqlite", "postgresql"] if os.environ.get(URL_VARIABLE) else ["sqlite"]


def server_url() -> str:
    """The test server's URL, or skip (fail where PostgreSQL is required) saying why."""
    url = os.environ.get(URL_VARIABLE, "")
    reason = f"no PostgreSQL to test on: set {URL_VARIABLE}" if not url else _unreachable(url)
    if reason:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(f"{reason} ({REQUIRE_VARIABLE}=1)", pytrace=False)
        pytest.skip(reason)
    return url


_checked: dict[str, str] = {}


def _unreachable(url: str) -> str:
    if url not in _checked:  # asked from inside the tests' event loop: try it on a thread
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as thread:
            _checked[url] = thread.submit(asyncio.run, _try(url)).result()
    return _checked[url]


async def _try(url: str) -> str:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"no PostgreSQL answers at {URL_VARIABLE}: {exc}"
    await conn.close()
    return ""


@asynccontextmanager
async def own_schema(prefix: str = "itsm_own") -> AsyncIterator[str]:
    """A new schema on the test server (skipped without one), dropped afterwards: its URL,
    with search_path. For a database no test has used before, `schema_versions` included."""
    import asyncpg

    url = server_url()
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(url)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}"
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


@pytest.fixture
async def server_schema() -> AsyncIterator[str]:
    """`own_schema` as a fixture."""
    async with own_schema() as url:
        yield url


class Schemas:
    """This process's schemas on the server: leased to one test at a time, emptied first."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.free: list[str] = []
        self.made = 0

    async def lease(self) -> str:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            if self.made == 0:
                await _drop_orphans(conn)
            if self.free:
                schema = self.free.pop()
                await _empty(conn, schema)
            else:
                self.made += 1
                schema = f"itsm_{os.getpid()}_{self.made}"
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                await conn.execute(f"CREATE SCHEMA {schema}")
        finally:
            await conn.close()
        return schema

    def give_back(self, schema: str) -> None:
        self.free.append(schema)

    async def drop_all(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            for n in range(1, self.made + 1):
                await conn.execute(f"DROP SCHEMA IF EXISTS itsm_{os.getpid()}_{n} CASCADE")
        finally:
            await conn.close()


async def _empty(conn, schema: str) -> None:
    """Every row gone and every identity back at 1, in one round trip. DELETE, not TRUNCATE:
    on tables this small it is many times faster; foreign keys are not checked meanwhile."""
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_versions'",
        schema,
    )
    deletes = "".join(f'DELETE FROM {schema}."{t["tablename"]}";' for t in tables)
    await conn.execute(
        f"SET session_replication_role = replica;{deletes}SET session_replication_role = DEFAULT;"
        "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n"
        f" ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname = '{schema}'"
    )


async def _drop_orphans(conn) -> None:
    """Schemas left by test processes that are gone (killed before they cleaned up)."""
    for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'itsm\\_%'"):
        parts = row["nspname"].split("_")
        if len(parts) == 3 and parts[1].isdigit() and not Path(f"/proc/{parts[1]}").exists():
            await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')


_pools: dict[str, Schemas] = {}


class Places:
    """Where one test's databases live, by name: a file under tmp_path, or a schema.

    The same name again is the same database (a restart)."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.leased: dict[str, str] = {}

    async def url(self, name: str) -> str:
        if self.backend == "sqlite":
            return str(self.tmp_path / name)
        url = server_url()
        pool = _pools.setdefault(url, Schemas(url))
        if name not in self.leased:
            self.leased[name] = await pool.lease()
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}search_path={self.leased[name]}"

    def release(self) -> None:
        for schema in self.leased.values():
            _pools[server_url()].give_back(schema)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """A test marked `sqlite_only` is about SQLite itself: its PostgreSQL run is left out
    (deselected, not skipped: there is nothing there for it to test). One marked
    `shared_only` is about workers sharing a database: its SQLite run is left out."""
    kept, left = [], []
    for item in items:
        backend = getattr(item, "callspec", None) and item.callspec.params.get("places")
        unfit = (backend == "postgresql" and item.get_closest_marker("sqlite_only")) or (
            backend == "sqlite" and item.get_closest_marker("shared_only")
        )
        (left if unfit else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


@pytest.fixture(params=BACKENDS)
async def places(request, tmp_path) -> AsyncIterator[Places]:
    found = Places(request.param, tmp_path)
    if request.param == "postgresql":
        server_url()  # skip (or fail) before the test starts, not inside it
    yield found
    found.release()


@pytest.fixture(scope="session", autouse=True)
def _drop_schemas_at_the_end() -> Iterator[None]:
    yield
    import asyncio

    for pool in _pools.values():
        asyncio.run(pool.drop_all())


# --- Reading and bending a database the same way on both backends -------------------------


async def unhandled(db: Any, platform: str) -> list[tuple[str, dict[str, Any]]]:
    """The requests journaled and not yet handled, oldest first: what is on disk, read
    without taking them as `Intake.held` does (on a shared database that is a claim)."""
    import json

    rows = await db.fetchall(
        "SELECT request_id, body FROM intake WHERE platform = ? AND done_at IS NULL"
        " ORDER BY received_at, rowid",
        (platform,),
    )
    return [(r[0], json.loads(r[1])) for r in rows]


async def died(db: Any) -> None:
    """Make the worker on `db` count as dead to the others, as when its process is killed:
    the server drops the connection holding its liveness lock. (A SQLite file's other
    workers count as dead anyway: one process holds the file.)"""
    alive = getattr(db, "alive", None)
    if alive is None:
        return
    if not alive.is_closed():
        await alive.close()
    # The server lets go of the lock when that connection's backend has ended, a moment
    # after the close (longer on a busy machine): until then the worker still looks alive.
    from bot.postgres import LIVENESS

    for _ in range(500):
        held = await db.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = ? AND objsubid = 2 AND objid::bigint = (hashtext(?) & 2147483647)",
            (LIVENESS, db.worker),
        )
        if not held:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the server still holds {db.worker}'s liveness lock")


async def foreign_keys(db: Any, table: str) -> list[tuple[tuple[str, ...], str, tuple[str, ...]]]:
    """A table's foreign keys: (its columns, the parent table, the parent's columns)."""
    if db.dialect == "sqlite":
        keys: dict[int, list[Any]] = {}
        for fk in await db.fetchall(f"PRAGMA foreign_key_list({table})"):
            keys.setdefault(fk["id"], []).append(fk)
        return [
            (tuple(k["from"] for k in fk), fk[0]["table"], tuple(k["to"] for k in fk))
            for fk in keys.values()
        ]
    rows = await db.fetchall(
        "SELECT c.conname, a.attname AS col, p.relname AS parent, pa.attname AS parent_col"
        " FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()"
        " JOIN pg_class p ON p.oid = c.confrelid"
        " CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(a, pa, n)"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.a"
        " JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pa"
        " WHERE c.contype = 'f' AND t.relname = ? ORDER BY c.conname, k.n",
        (table,),
    )
    found: dict[str, list[Any]] = {}
    for r in rows:
        found.setdefault(r["conname"], []).append(r)
    return [
        (tuple(r["col"] for r in fk), fk[0]["parent"], tuple(r["parent_col"] for r in fk))
        for fk in found.values()
    ]


async def refuse_inserts(db: Any, name: str, table: str, message: str, key_like: str = "") -> None:
    """From now on an INSERT into `table` (whose `key` is LIKE `key_like`, if given) fails
    with `message`, as a full disk or a crash at that moment would; `allow_inserts` ends it."""
    if db.dialect == "sqlite":
        when = f" WHEN NEW.key LIKE '{key_like}'" if key_like else ""
        await db.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON {table}{when}"
            f" BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
        return
    test = f"NEW.key LIKE '{key_like}'" if key_like else "true"
    await db.execute(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF {test} THEN RAISE EXCEPTION '{message}'; END IF; RETURN NEW; END $$"
    )
    await db.execute(
        f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
    )


async def allow_inserts(db: Any, name: str, table: str) -> None:
    if db.dialect == "sqlite":
        await db.execute(f"DROP TRIGGER {name}")
        return
    await db.execute(f"DROP TRIGGER {name} ON {table}")
    await db.execute(f"DROP FUNCTION {name}()")
