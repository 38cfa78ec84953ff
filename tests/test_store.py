"""Migrations from empty and re-run; the connection's settings; opening only a usable file,
and only in one process at a time."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading

import pytest

from bot import communities, outbox, scheduler
from bot.errors import StartupError
from bot.store import Database, lock_path

SCRIPTS = [
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
    "ALTER TABLE notes ADD COLUMN author TEXT; CREATE INDEX notes_author ON notes (author)",
]


async def test_migrations_run_once_and_in_order(tmp_path):
    db = await Database.open(tmp_path / "m.db")
    assert await db.migrate("notes", SCRIPTS[:1]) == 1
    assert await db.migrate("notes", SCRIPTS) == 1  # only the new script runs
    assert await db.migrate("notes", SCRIPTS) == 0  # re-running is a no-op
    assert await db.version("notes") == 2
    await db.execute("INSERT INTO notes (text, author) VALUES ('hi', 'ann')")
    await db.close()
    db = await Database.open(tmp_path / "m.db")  # and after a restart too
    assert await db.migrate("notes", SCRIPTS) == 0
    assert await db.fetchval("SELECT author FROM notes") == "ann"
    await db.close()


async def test_a_failing_script_leaves_the_version_where_it_was(tmp_path):
    db = await Database.open(tmp_path / "m.db")
    await db.migrate("notes", SCRIPTS[:1])
    broken = [SCRIPTS[0], "ALTER TABLE notes ADD COLUMN x TEXT; CREATE TABLE notes (id INT)"]
    try:
        await db.migrate("notes", broken)
    except sqlite3.OperationalError:
        pass
    else:
        raise AssertionError("the broken script should fail")
    assert await db.version("notes") == 1
    columns = [r["name"] for r in await db.fetchall("PRAGMA table_info(notes)")]
    assert "x" not in columns  # the half-run script was rolled back
    await db.close()


async def test_wal_and_foreign_keys_are_on(tmp_path):
    db = await Database.open(tmp_path / "m.db")
    assert (await db.fetchval("PRAGMA journal_mode")).lower() == "wal"
    assert await db.fetchval("PRAGMA foreign_keys") == 1
    await db.close()


async def test_every_core_schema_migrates_from_empty(make_app):
    app = await make_app()
    core = {"communities": communities, "outbox": outbox, "scheduler": scheduler}
    for name, module in core.items():
        assert await app.db.version(name) == len(module.MIGRATIONS)
    for name, feature in app.features.items():
        assert await app.db.version(name) == len(feature.migrations)


# --- The id an insert gives back ----------------------------------------------------------

NUMBERED = ["CREATE TABLE numbered (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)"]


async def test_an_insert_gives_back_its_own_rows_id_after_an_id_given_by_hand(places):
    db = await Database.open(await places.url("numbered.db"))
    try:
        await db.migrate("numbered", NUMBERED)
        await db.execute("INSERT INTO numbered (id, text) VALUES (100, 'by hand')")
        new = await db.insert("INSERT INTO numbered (text) VALUES ('next')")
        assert new == await db.fetchval("SELECT id FROM numbered WHERE text = 'next'")
    finally:
        await db.close()


async def test_inserts_at_once_each_give_back_their_own_rows_id(places):
    """Eight writers at once (on PostgreSQL, eight connections): every id given back is
    that of the row the insert made, never a neighbour's."""
    db = await Database.open(await places.url("numbered.db"))
    wrong: list[tuple[str, int | None, int]] = []

    async def writer(name: str) -> None:
        for n in range(250):
            text = f"{name}-{n}"
            new = await db.insert("INSERT INTO numbered (text) VALUES (?)", (text,))
            row = await db.fetchval("SELECT id FROM numbered WHERE text = ?", (text,))
            if new != row:
                wrong.append((text, new, row))

    try:
        await db.migrate("numbered", NUMBERED)
        await asyncio.gather(*(writer(f"w{k}") for k in range(8)))
        assert wrong == []
        assert await db.fetchval("SELECT count(*) FROM numbered") == 2000
    finally:
        await db.close()


# --- Opening: a usable file, one process ---------------------------------------------------


def _workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


async def test_a_file_that_is_not_a_database_is_one_line_and_leaves_no_thread(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("meeting notes\n")
    before = _workers()
    with pytest.raises(StartupError) as refused:
        await Database.open(path)
    assert str(refused.value) == f"cannot use the database {path}: file is not a database"
    for worker in _workers() - before:  # a worker left running would keep the process up
        worker.join(timeout=30)
        assert not worker.is_alive()
    assert path.read_text() == "meeting notes\n"


async def test_a_directory_in_place_of_the_file_is_named_as_such(tmp_path):
    (tmp_path / "db").mkdir()
    with pytest.raises(StartupError, match="it is a directory, not a database file"):
        await Database.open(tmp_path / "db")


async def test_the_write_probe_changes_nothing(tmp_path):
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    db = await Database.open(path)
    assert await db.fetchval("PRAGMA user_version") == 7
    assert await db.fetchval("SELECT count(*) FROM sqlite_master") == 0
    await db.close()


def _taken_elsewhere(db_path) -> bool:
    """Whether another process could lock the file now (a fresh descriptor stands for one:
    flock locks belong to the open file, not the process)."""
    fd = os.open(lock_path(str(db_path)), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


async def test_the_lock_is_held_while_open_shared_in_process_and_gone_on_close(tmp_path):
    path = tmp_path / "m.db"
    first = await Database.open(path)
    assert _taken_elsewhere(path)
    second = await Database.open(path)  # a restart in the same process, the first still open
    await first.close()
    assert _taken_elsewhere(path)  # the second still holds it
    await second.close()
    await second.close()  # closing twice is harmless
    assert not _taken_elsewhere(path)


async def test_a_database_another_process_holds_is_refused_naming_its_pid(tmp_path):
    path = tmp_path / "m.db"
    fd = os.open(lock_path(str(path)), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"4242\n")
        with pytest.raises(StartupError) as refused:
            await Database.open(path)
        message = str(refused.value)
        assert str(path) in message and "pid 4242" in message and "\n" not in message
        db = await Database.open(path, lock=False)  # a look alongside the holder is allowed
        await db.close()
    finally:
        os.close(fd)
    db = await Database.open(path)  # and once it has let go, the file is ours
    await db.close()


async def test_memory_needs_no_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = await Database.open(":memory:")
    await db.close()
    assert not os.path.exists(lock_path(":memory:"))
