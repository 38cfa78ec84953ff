"""Migrations from empty and re-run; the connection's settings."""

from __future__ import annotations

import sqlite3

from bot.store import Database

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
    for feature in ("communities", "outbox", "scheduler", *app.features):
        assert await app.db.version(feature) == (
            len(app.features[feature].migrations) if feature in app.features else 1
        )
