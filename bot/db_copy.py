"""`itsm-bot db copy SOURCE TARGET`: everything a bot keeps, from its SQLite file into a new
database (a PostgreSQL server, or another SQLite file), so a chapter moves house without
reposting or losing anything.

The work, in this order; no row reaches TARGET before every check has passed:
1. SOURCE is a SQLite file that exists, that no bot is using (its process lock), and whose
   every schema is at the version this bot's code has. Older: start this bot on it once
   (it migrates), stop it, then copy. Newer: copy with the bot that made it.
2. TARGET holds no row in any table, and no schema newer than the code's.
3. TARGET is migrated the normal way (`Database.migrate`, each schema's own scripts), so
   its tables are exactly what the bot would have made there.
4. One transaction on TARGET: every table, parents before children (foreign keys), every
   column as stored, with SQLite's rowid (some queries keep insertion order by it; on
   PostgreSQL it is the hidden column bot/postgres.py adds); then every identity
   (PostgreSQL) or AUTOINCREMENT counter (SQLite) past the ids copied, so a new row never
   takes an old row's id. A failure rolls back every row: TARGET is left migrated and
   empty, and the copy can run again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from bot.app import schemas
from bot.features import all_features
from bot.store import Database, Tx, is_server, missing, redacted

Schema = tuple[str, list[str]]  # a name in schema_versions, and its migration scripts
BATCH = 500  # rows read and written at a time: a large table never sits in memory whole
VERSIONS = "schema_versions"  # made by migrating TARGET, never copied


class CopyRefused(Exception):
    """Why the copy did not start, or did not finish: one line for the operator."""


async def copy(
    source: str, target: str, required: Sequence[Schema], optional: Sequence[Schema] = ()
) -> dict[str, int]:
    """Copy SOURCE into TARGET; return the rows copied per table, in the order copied.

    `required` are the schemas every database of this bot has (the core's and the
    features'); `optional` those an adapter makes only where it is used."""
    _check_locations(source, target)
    src = await Database.open(source)  # held: refused, in one line, while a bot runs on it
    try:
        wanted = await _source_schemas(src, required, optional)
        dst = await Database.open(target)
        try:
            await _check_target(dst, target, [*required, *optional])
            for name, scripts in wanted:
                await dst.migrate(name, scripts)
            return await _copy_tables(src, dst)
        finally:
            await dst.close()
    finally:
        await src.close()


def _check_locations(source: str, target: str) -> None:
    if is_server(source):
        raise CopyRefused(
            f"{redacted(source)}: SOURCE must be the bot's SQLite file (the copy goes from "
            "SQLite to a new database)"
        )
    if missing(source):
        raise CopyRefused(f"{source}: no such database")
    if not is_server(target) and Path(target).resolve() == Path(source).resolve():
        raise CopyRefused(f"{source}: SOURCE and TARGET are the same file")


# --- Checks -------------------------------------------------------------------------------


async def _versions(db: Database) -> dict[str, int]:
    """How far each schema of a database got (none at all: not a database of this bot)."""
    if VERSIONS not in await db.tables():
        return {}
    return {r[0]: r[1] for r in await db.fetchall(f"SELECT feature, version FROM {VERSIONS}")}


async def _source_schemas(
    src: Database, required: Sequence[Schema], optional: Sequence[Schema]
) -> list[Schema]:
    """The schemas to make on TARGET: the required ones and the optional ones SOURCE has,
    once SOURCE is known to be at the code's version of each."""
    versions = await _versions(src)
    if not versions:
        raise CopyRefused(f"{src.path}: not a database of this bot (it has no {VERSIONS} table)")
    present = [s for s in optional if s[0] in versions]
    latest = {name: len(scripts) for name, scripts in [*required, *present]}
    newer = sorted(n for n, v in versions.items() if v > latest.get(n, 0))
    if newer:
        raise CopyRefused(
            f"{src.path} was made by a newer version of the bot ({', '.join(newer)}): "
            "copy it with that version"
        )
    older = sorted(n for n, v in latest.items() if versions.get(n, 0) < v)
    if older:
        raise CopyRefused(
            f"{src.path} was last used by an older version of the bot ({', '.join(older)} "
            "not up to date): start this version on it once (it updates the tables), stop "
            "it, then copy"
        )
    return [*required, *present]


async def _check_target(dst: Database, target: str, known: Sequence[Schema]) -> None:
    """Refuse, before anything is written, a TARGET with data or a newer bot's schema."""
    latest = {name: len(scripts) for name, scripts in known}
    newer = sorted(n for n, v in (await _versions(dst)).items() if v > latest.get(n, 0))
    if newer:
        raise CopyRefused(
            f"{redacted(target)} was made by a newer version of the bot ({', '.join(newer)})"
        )
    full = [t for t in await dst.tables() if t != VERSIONS and await _has_rows(dst, t)]
    if full:
        named = ", ".join(full[:5]) + (f" and {len(full) - 5} more" if len(full) > 5 else "")
        raise CopyRefused(
            f"{redacted(target)} already holds data ({named}): copy into a new, empty "
            "database; nothing was written"
        )


async def _has_rows(db: Database, table: str) -> bool:
    return await db.fetchval(f'SELECT 1 FROM "{table}" LIMIT 1') is not None


# --- Copying ------------------------------------------------------------------------------


async def _copy_tables(src: Database, dst: Database) -> dict[str, int]:
    tables = [t for t in await src.tables() if t != VERSIONS]
    absent = sorted(set(tables) - set(await dst.tables()))
    if absent:
        raise CopyRefused(
            f"{src.path} has tables this bot does not make ({', '.join(absent)}): "
            "copy it with the bot that made them"
        )
    copied: dict[str, int] = {}
    async with src.transaction() as read, dst.transaction() as write:
        for table in parents_first(tables, await _parents(read, tables)):
            copied[table] = await _copy_table(read, write, table, dst.dialect)
        await _move_counters(read, write, dst.dialect, copied)
    return copied


async def _parents(read: Tx, tables: list[str]) -> dict[str, set[str]]:
    """Each table's parents: the tables its foreign keys point to (SQLite's catalogue)."""
    found = {}
    for table in tables:
        rows = await read.fetchall(f"PRAGMA foreign_key_list({table})")
        found[table] = {r["table"] for r in rows} - {table}  # a self-reference waits for no one
    return found


def parents_first(tables: list[str], parents: dict[str, set[str]]) -> list[str]:
    """The tables in an order where each comes after the tables it refers to (by name where
    the keys leave a choice, so every copy goes the same way)."""
    order: list[str] = []
    waiting = sorted(tables)
    while waiting:
        ready = [t for t in waiting if not parents.get(t, set()) & set(waiting)]
        if not ready:
            raise CopyRefused(f"foreign keys go round in a circle among: {', '.join(waiting)}")
        order.extend(ready)
        waiting = [t for t in waiting if t not in ready]
    return order


async def _copy_table(read: Tx, write: Any, table: str, dialect: str) -> int:
    """Every row of one table, batch by batch, with its rowid where both sides keep one."""
    columns = await read.columns(table)
    theirs = await write.columns(table)
    if set(theirs) != set(columns):
        raise CopyRefused(
            f"table {table} has columns {', '.join(columns)} here and {', '.join(theirs)} "
            "there: the two were not made by the same version of the bot"
        )
    with_rowid = await has_rowid(read, table, "sqlite") and await has_rowid(write, table, dialect)
    names = (["rowid"] if with_rowid else []) + [f'"{c}"' for c in columns]
    listed = ", ".join(names)
    insert = f'INSERT INTO "{table}" ({listed}) VALUES ({", ".join("?" for _ in names)})'
    cursor = await read.execute(
        f'SELECT {listed} FROM "{table}"' + (" ORDER BY rowid" if with_rowid else "")
    )
    count = 0
    try:
        while batch := await cursor.fetchmany(BATCH):
            await write.executemany(insert, [tuple(row) for row in batch])
            count += len(batch)
    except Exception as exc:  # a row TARGET will not take: say which table, roll back all
        raise CopyRefused(f"copying {table} failed after {count} rows: {exc}") from exc
    finally:
        await cursor.close()
    return count


async def has_rowid(db: Any, table: str, dialect: str) -> bool:
    """Whether a table keeps a rowid: SQLite's own (not a WITHOUT ROWID table), or the
    hidden column bot/postgres.py gives a table on PostgreSQL."""
    if dialect == "sqlite":
        wr = await db.fetchval(
            "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", (table,)
        )
        return wr == 0
    return bool(
        await db.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = ? AND column_name = 'rowid'",
            (table,),
        )
    )


async def _move_counters(read: Tx, write: Any, dialect: str, copied: dict[str, int]) -> None:
    """Every id counter past the ids copied. An AUTOINCREMENT table's counter may be past
    its largest id (rows deleted since): an id it handed out is never handed out again."""
    handed_out = await _sqlite_counters(read)
    if dialect == "sqlite":
        for table, seq in handed_out.items():
            if table in copied:
                await _raise_counter(write, table, seq)
        return
    identities = await write.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND is_identity = 'YES' ORDER BY table_name, column_name"
    )
    for table, column in ((r[0], r[1]) for r in identities):
        if table not in copied:
            continue
        top = await write.fetchval(f'SELECT max("{column}") FROM "{table}"') or 0
        last = max(top, handed_out.get(table, 0))
        if last > 0:  # the next one is last + 1
            await write.fetchval(
                "SELECT setval(pg_get_serial_sequence(?, ?), ?)", (f'"{table}"', column, last)
            )


async def _sqlite_counters(read: Tx) -> dict[str, int]:
    """SQLite's AUTOINCREMENT counters, by table (there are none without such a table)."""
    if not await read.fetchval(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ):
        return {}
    return {r[0]: r[1] for r in await read.fetchall("SELECT name, seq FROM sqlite_sequence")}


async def _raise_counter(write: Tx, table: str, seq: int) -> None:
    cursor = await write.execute(
        "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, table)
    )
    if cursor.rowcount == 0:  # no row copied into the table: it has no counter yet
        await write.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))


# --- The command --------------------------------------------------------------------------


@click.group("db")
def db() -> None:
    """The bot's database as a whole: copy it into a new one."""


@db.command("copy")
@click.argument("source", metavar="SOURCE")
@click.argument("target", metavar="TARGET")
def copy_command(source: str, target: str) -> None:
    """Copy all the bot keeps in SOURCE (its SQLite file) into TARGET (a postgresql:// URL,
    or a new SQLite file), which must hold no data yet.

    Stop the bot first. SOURCE is left as it was: keep it until the bot runs well on
    TARGET."""
    from bot.cli import adapter_schemas  # the composition root knows the adapters

    started = time.monotonic()
    try:
        copied = asyncio.run(copy(source, target, schemas(all_features()), adapter_schemas()))
    except CopyRefused as exc:
        raise click.ClickException(str(exc)) from None
    for table, count in sorted(copied.items()):
        click.echo(f"  {table}: {count}")
    seconds = time.monotonic() - started
    click.echo(
        f"copied {sum(copied.values())} rows in {len(copied)} tables to {redacted(target)}"
        f" ({seconds:.1f} s)"
    )
