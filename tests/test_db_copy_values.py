"""`itsm-bot db copy` value by value: bytes, JSON text, timestamps to the last bit, 64-bit
integers and NULLs come across with their types; rowids with gaps stay as they were; ids
that deleted rows had are not handed out again (SQLite's AUTOINCREMENT counter, and
PostgreSQL's identities); a row the target will not take rolls the whole copy back.

The schema is a test's own, migrated and copied by the same code as the bot's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.db_copy import CopyRefused, copy
from bot.store import Database
from tests import test_db_copy as base
from tests.databases import own_schema

target = base.target  # the fixture: a new SQLite file, or a new PostgreSQL schema
contents, same_rows = base.contents, base.same_rows

KINDS = """
    CREATE TABLE things (
        id INTEGER PRIMARY KEY, data BLOB, doc TEXT, at REAL, n INTEGER, label TEXT
    );
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        thing_id INTEGER NOT NULL REFERENCES things (id), note TEXT NOT NULL
    );
    CREATE TABLE lines (line TEXT NOT NULL);
    CREATE TABLE tags (
        thing_id INTEGER NOT NULL REFERENCES things (id), tag TEXT NOT NULL,
        PRIMARY KEY (thing_id, tag)
    ) WITHOUT ROWID
"""  # children named before their parent ("tags" < "things" < "tickets")
THINGS = [
    (1, bytes(range(256)), json.dumps({"é": [1, 2.5, None], "s": "a\nb"}, ensure_ascii=False),
     1_790_000_000.123456, 2**63 - 1, "emoji 🎉 and ñ"),
    (2, b"", "[]", 0.1 + 0.2, -(2**63), ""),
    (10, None, None, 5e-324, 0, None),
]  # fmt: skip


async def test_values_of_every_kind_rowids_and_counters_survive_the_copy(
    target: str, tmp_path: Path
) -> None:
    """Bytes, JSON text, timestamps to the last bit, 64-bit integers, NULLs; a table's
    rowids with gaps; and ids that deleted rows had are not handed out again."""
    source = tmp_path / "kinds.db"
    db = await Database.open(source)
    try:
        await db.migrate("kinds", [KINDS])
        for row in THINGS:
            await db.execute("INSERT INTO things VALUES (?, ?, ?, ?, ?, ?)", row)
        for thing, note in ((1, "a"), (2, "b"), (10, "c")):
            await db.execute("INSERT INTO tickets (thing_id, note) VALUES (?, ?)", (thing, note))
        await db.execute("DELETE FROM tickets WHERE id = 3")  # its id is not to come back
        for n in range(1, 6):
            await db.execute("INSERT INTO lines VALUES (?)", (f"line {n}",))
        await db.execute("DELETE FROM lines WHERE line IN ('line 2', 'line 5')")  # rowids 1, 3, 4
        await db.execute("INSERT INTO tags VALUES (10, 'z'), (1, 'a')")
    finally:
        await db.close()
    before = await contents(str(source))

    copied = await copy(str(source), target, [("kinds", [KINDS])])
    assert list(copied.items()) == [("lines", 3), ("things", 3), ("tags", 2), ("tickets", 2)]
    after = await contents(target)
    assert {"lines", "things", "tickets"} <= after[0] and "tags" not in after[0]
    same_rows(before, after)  # every value, with its type; every rowid
    assert [r[0] for r in after[1]["lines"]] == [("int", 1), ("int", 3), ("int", 4)]

    db = await Database.open(target)
    try:
        assert await db.insert("INSERT INTO tickets (thing_id, note) VALUES (1, 'd')") == 4
        assert await db.insert("INSERT INTO things (label) VALUES ('new')") == 11
        await db.execute("INSERT INTO lines VALUES ('line 6')")
        assert await db.fetchval("SELECT rowid FROM lines WHERE line = 'line 6'") > 4
    finally:
        await db.close()


async def test_a_row_the_target_refuses_rolls_the_whole_copy_back(tmp_path: Path) -> None:
    """PostgreSQL takes no NUL character in text, SQLite does: the copy stops at that
    table, names it, and leaves every table empty, so it can run again once mended."""
    source = tmp_path / "kinds.db"
    db = await Database.open(source)
    try:
        await db.migrate("kinds", [KINDS])
        await db.execute("INSERT INTO things (id, label) VALUES (1, 'one')")
        await db.execute("INSERT INTO tickets (thing_id, note) VALUES (1, ?)", ("a\x00b",))
    finally:
        await db.close()
    async with own_schema("itsm_copy") as url:
        with pytest.raises(CopyRefused, match=r"^copying tickets failed after 0 rows: "):
            await copy(str(source), url, [("kinds", [KINDS])])
        _, rows = await contents(url)
        assert rows["things"] == [] and rows["tickets"] == []
        db = await Database.open(source)
        await db.execute("UPDATE tickets SET note = 'ab'")
        await db.close()
        assert await copy(str(source), url, [("kinds", [KINDS])]) == {"lines": 0, "things": 1, "tags": 0, "tickets": 1}  # fmt: skip
