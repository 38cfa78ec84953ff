"""`itsm-bot db copy SOURCE TARGET`: a SQLite database a real bot filled with every kind of
state, copied through the real CLI into a new PostgreSQL schema (and a new SQLite file),
holds the same rows, every column and rowid, value for value and type for type; the bot
started on the copy reposts nothing and loses nothing. Refusals: a target with data, a
missing or foreign source, one a running bot holds, one of an older or newer bot, all
before writing a row. Values, counters and rollback: tests/test_db_copy_values.py.

PostgreSQL runs skip, saying why, without ITSM_BOT_TEST_POSTGRES (tests/databases.py)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from click.testing import CliRunner

from adapters.slack import installations
from bot.app import App
from bot.cli import main
from bot.features import all_features
from bot.model import Post
from bot.store import Database
from tests.conftest import make_config
from tests.databases import own_schema
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.test_polls_support import COMMUNITY, SLACK, Recorder, click, member, only_post, say

feed_server = fake_feeds.feed_server  # the fixture
Contents = tuple[set[str], dict[str, list[Any]]]  # tables keeping a rowid; rows by table

CONFIG = {
    **COMMUNITY,
    "feeds": {"allow_private": True},
    "web": {"enabled": True, "listen": "127.0.0.1:0"},
}
MOD, ANA, BOB, CY = member("mod"), member("ana"), member("bob"), member("cy")
SEMINAR = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)  # its reminder: a day before
# Tables the bot reads in rowid order (insertion order): their rowids must survive.
READ_BY_ROWID = {"intake", "vote_answers", "vote_channels", "feed_items", "event_posts", "event_series_rsvps"}  # fmt: skip
PASSWORD = "hunter2"  # put into PostgreSQL targets' URLs: the output must never show it


@pytest.fixture(params=["sqlite", "postgresql"])
async def target(request, tmp_path):
    """Where a copy goes: a new SQLite file, or a new PostgreSQL schema (with a password
    in its URL, which the server's trust authentication ignores)."""
    if request.param == "sqlite":
        yield str(tmp_path / "copy.db")
        return
    async with own_schema("itsm_copy") as url:
        parts = urlsplit(url)
        yield url if parts.password else url.replace(f"//{parts.username}@", f"//{parts.username}:{PASSWORD}@", 1)  # fmt: skip


def read(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


async def copy_cli(source: Path, target: str) -> Any:
    """`itsm-bot db copy` in a thread: it runs its own event loop, as from a shell."""
    result = await asyncio.to_thread(cli, "db", "copy", str(source), target)
    secret = urlsplit(target).password if target.startswith("postgresql") else None
    assert not secret or secret not in result.output
    return result


# --- A database holding every kind of state ------------------------------------------------


@asynccontextmanager
async def start(path: str, clock: Any) -> AsyncIterator[tuple[App, Recorder, Recorder]]:
    """The bot with every feature on `path`, its posts recorded per platform."""
    config = make_config(CONFIG)
    async with App.running(config, all_features(), clock=clock, db_path=path, background=False) as app:  # fmt: skip
        slack, discord = Recorder("slack"), Recorder("discord")
        app.outbox.attach(slack)
        app.outbox.attach(discord)
        yield app, slack, discord


async def settle(app: App) -> None:
    await app.scheduler.run_due()
    await app.outbox.drain()


async def fill(app: App, feed_url: str) -> dict[str, Any]:
    """A feed with items seen, a poll with votes, a survey answer, an event with RSVPs
    and a reminder to come, the daily prompt with an answer, a member's zone, a weekly
    digest, a web sign-in link, journaled requests, and outbox rows sent and pending."""
    await say(app, MOD, f"/feed add {feed_url}", mod=True)
    await say(app, MOD, '/poll create "Which framework?" ITIL COBIT', mod=True)
    poll = await app.db.fetchval("SELECT max(id) FROM vote_runs")
    for voter, option in ((ANA, 0), (BOB, 1), (CY, 0)):
        await click(app, voter, "poll.vote", f"{poll}:{option}")
    await say(app, MOD, "/survey start community", mod=True)
    survey = await app.db.fetchval("SELECT max(id) FROM vote_runs WHERE kind = 'survey'")
    card = only_post(await click(app, ANA, "survey.take", str(survey)))
    yes = next(b for b in card.buttons if b.label == "Yes")
    await click(app, ANA, yes.action, yes.value)
    await say(app, MOD, '/event add title=Seminar start="2026-12-05 09:00" remind=1d', mod=True)
    event = await app.db.fetchval("SELECT max(id) FROM events")
    await click(app, ANA, "event.rsvp", f"{event}:going")
    await click(app, BOB, "event.rsvp", f"{event}:interested")
    await say(app, MOD, "/justdoit schedule time=08:30", mod=True)
    await say(app, MOD, "/justdoit today", mod=True)
    await say(app, ANA, '/justdoit answer "Asked a stakeholder what keeps them up"')
    await say(app, ANA, "/my timezone Europe/Oslo")
    await say(app, MOD, "/digest schedule day=mon time=09:00", mod=True)
    await say(app, MOD, "/web", mod=True)
    # Two requests journaled in one instant, the later key first: only rowid orders them.
    await app.intake.hold("slack", "req-b", {"text": "first"})
    await app.intake.hold("slack", "req-a", {"text": "second"})
    await settle(app)
    await app.outbox.enqueue(SLACK, Post(text="waiting to go"), "waiting:1")
    return {"poll": poll, "event": event}


async def build(path: Path, clock: Any, feed_url: str) -> tuple[dict[str, Any], set[str]]:
    """The source database; the ids in it, and the keys of every post already sent."""
    async with start(str(path), clock) as (app, slack, discord):
        ids = await fill(app, feed_url)
        ids["tally"] = await app.features["poll"].store.tallies(ids["poll"])
    return ids, {key for _, _, key in slack.sent + discord.sent}


async def contents(location: str) -> Contents:
    """The tables that keep a rowid, and every table's rows (its rowid first, None where
    it keeps none), each value with its type, in a stable order."""
    db = await Database.open(location, lock=False)
    try:
        with_rowid, found = set(), {}
        for table in await db.tables():
            columns = ", ".join(f'"{c}"' for c in sorted(await db.columns(table)))
            try:
                rows = await db.fetchall(f'SELECT rowid, {columns} FROM "{table}"')
                with_rowid.add(table)
            except (sqlite3.OperationalError, asyncpg.UndefinedColumnError):  # WITHOUT ROWID
                rows = await db.fetchall(f'SELECT NULL AS no_rowid, {columns} FROM "{table}"')
            typed = [tuple((type(v).__name__, v) for v in row) for row in rows]
            found[table] = sorted(typed, key=repr)
        return with_rowid, found
    finally:
        await db.close()


def same_rows(source: Contents, copied: Contents) -> None:
    """Every table's rows equal, rowids too wherever both sides keep one."""
    (had, before), (kept, after) = source, copied
    assert after.keys() == before.keys()
    for table, rows in before.items():
        if table in had & kept:
            assert after[table] == rows, table
        else:  # a value's type and value, column by column, without the rowid
            assert sorted((r[1:] for r in after[table]), key=repr) == sorted((r[1:] for r in rows), key=repr), table  # fmt: skip


# --- The copy and the bot on it --------------------------------------------------------------


async def test_the_copy_holds_every_row_and_the_bot_on_it_reposts_and_loses_nothing(
    target: str, tmp_path: Path, clock: Any, feed_server: FeedServer
) -> None:
    source = tmp_path / "bot.db"
    url = feed_server.set("f.xml", body=rss(entries(5)))
    ids, sent_before = await build(source, clock, url)
    source_rows = await contents(str(source))
    before = source_rows[1]
    full = {t for t, rows in before.items() if rows}
    assert full >= {
        "communities", "feed_sources", "feed_subscriptions", "feed_items", "vote_runs",
        "vote_questions", "vote_answers", "events", "event_rsvps", "justdoit_schedules",
        "justdoit_days", "justdoit_answers", "member_zones", "digest_schedules", "web_links",
        "intake", "jobs", "outbox",
    }  # fmt: skip
    outbox = read(source, "SELECT key, state FROM outbox")
    assert ("waiting:1", "pending") in outbox and any(s == "sent" for _, s in outbox)
    jobs = read(source, "SELECT key FROM jobs WHERE state = 'pending'")
    assert any(key.startswith(f"event:{ids['event']}:remind") for (key,) in jobs)
    assert sum(key.startswith("feed") for key in sent_before) == 3  # the feed's backlog

    result = await copy_cli(source, target)
    assert result.exit_code == 0, result.output
    rows = sum(len(r) for t, r in before.items() if t != "schema_versions")
    tables = len(before) - 1
    assert re.search(rf"^copied {rows} rows in {tables} tables to ", result.output, re.M)
    assert "  vote_answers: 4\n" in result.output  # three poll votes, one survey answer
    copied = await contents(target)
    same_rows(source_rows, copied)  # every table, schema_versions included
    assert copied[0] >= READ_BY_ROWID
    if target.startswith("postgresql"):
        await identities_past_the_ids_copied(target)

    async with start(target, clock) as (app, slack, discord):
        await settle(app)
        sent = [key for _, _, key in slack.sent + discord.sent]
        assert sent == ["waiting:1"]  # the pending post, once; nothing sent before again
        # The feed checked again posts nothing it posted before; a new item, once.
        clock.advance(timedelta(hours=2))
        await app.features["feeds"].poll_due()
        await app.outbox.drain()
        assert [p.title for _, p, _ in slack.sent[1:]] == []
        feed_server.set("f.xml", body=rss(entries(6)))
        clock.advance(timedelta(hours=2))
        await app.features["feeds"].poll_due()
        await app.outbox.drain()
        assert ["item 6"] == [p.title for _, p, k in slack.sent if k.startswith("feed")]
        # The poll's tally is the same; a new vote lands beside the old ones.
        polls = app.features["poll"].store
        assert await polls.tallies(ids["poll"]) == ids["tally"]
        await click(app, member("dee"), "poll.vote", f"{ids['poll']}:1")
        runs = await app.db.fetchval("SELECT max(id) FROM vote_runs")
        await say(app, MOD, '/poll create "Next meetup?" May June', mod=True)
        assert await app.db.fetchval("SELECT max(id) FROM vote_runs") == runs + 1
        assert ids["tally"] == {"q": {0: 2, 1: 1}}
        assert await polls.tallies(ids["poll"]) == {"q": {0: 2, 1: 2}}
        await settle(app)
        # The reminder still to come fires once, at its time.
        clock.set(SEMINAR - timedelta(days=1))
        await settle(app)
        await settle(app)
        reminders = [p for _, p, _ in slack.sent if p.title.startswith("⏰")]
        assert [p.title for p in reminders] == ["⏰ In 1 day: Seminar"]
        # The journaled requests, in the order they came.
        assert [r for r, _ in await app.intake.held("slack")] == ["req-b", "req-a"]
        assert not {k for _, _, k in slack.sent + discord.sent} & sent_before


async def identities_past_the_ids_copied(url: str) -> None:
    """Every identity's next value is past the largest id in its column."""
    db = await Database.open(url)
    try:
        columns = await db.fetchall(
            "SELECT table_name, column_name FROM information_schema.columns WHERE"
            " table_schema = current_schema() AND is_identity = 'YES'"
        )
        assert len(columns) > 30  # an id or a rowid in nearly every table
        for table, column in columns:
            top = await db.fetchval(f'SELECT max("{column}") FROM "{table}"')
            if top is None:
                continue
            state = await db.fetchone(
                f"SELECT last_value, is_called FROM {await db.fetchval('SELECT pg_get_serial_sequence(?, ?)', (table, column))}"  # fmt: skip
            )
            assert state[0] >= top and state[1], (table, column)
    finally:
        await db.close()


async def test_an_adapters_tables_come_along_where_the_source_has_them(
    target: str, tmp_path: Path, clock: Any
) -> None:
    source = tmp_path / "bot.db"
    await small(source, clock)
    db = await Database.open(source)
    try:
        await db.migrate(installations.FEATURE, installations.MIGRATIONS)
        await db.execute(
            "INSERT INTO slack_installations (team_id, bot_id, bot_user_id, bot_token,"
            " installed_at) VALUES ('T9', 'B9', 'U9', 'sealed-token', 1790000000.5)"
        )
    finally:
        await db.close()
    before = await contents(str(source))
    result = await copy_cli(source, target)
    assert result.exit_code == 0 and "  slack_installations: 1\n" in result.output
    same_rows(before, await contents(target))


# --- Refusals -------------------------------------------------------------------------------


async def small(path: Path, clock: Any) -> None:
    """A database of this bot with a little in it: one poll with one vote."""
    async with start(str(path), clock) as (app, _, _):
        await say(app, MOD, '/poll create "Which framework?" ITIL COBIT', mod=True)
        await click(app, ANA, "poll.vote", "1:0")
        await settle(app)


async def test_a_target_that_holds_data_is_refused_and_left_as_it_was(
    target: str, tmp_path: Path, clock: Any
) -> None:
    await small(tmp_path / "bot.db", clock)
    assert (await copy_cli(tmp_path / "bot.db", target)).exit_code == 0
    async with start(target, clock) as (app, _, _):  # the bot ran on the copy: more data
        await click(app, BOB, "poll.vote", "1:1")
    before = await contents(target)
    other = tmp_path / "other.db"
    await small(other, clock)
    refused = await copy_cli(other, target)
    assert refused.exit_code == 1
    assert "already holds data (communities, " in refused.output
    assert "copy into a new, empty database; nothing was written" in refused.output
    assert "copied" not in refused.output
    assert await contents(target) == before


def test_a_missing_or_foreign_source_is_refused_and_no_target_made(tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    missing = cli("db", "copy", str(tmp_path / "none.db"), str(target))
    assert missing.exit_code == 1 and "none.db: no such database" in missing.output
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, but long enough to have a header" * 20)
    foreign = cli("db", "copy", str(text), str(target))
    assert foreign.exit_code == 1 and "notes.txt: file is not a database" in foreign.output
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()  # a SQLite database, but none of this bot's
    empty = cli("db", "copy", str(other), str(target))
    assert empty.exit_code == 1
    assert "other.db: not a database of this bot (it has no schema_versions table)" in empty.output
    same = cli("db", "copy", str(other), str(other))
    assert same.exit_code == 1 and "SOURCE and TARGET are the same file" in same.output
    server = cli("db", "copy", f"postgresql://u:{PASSWORD}@127.0.0.1:1/x", str(target))
    assert server.exit_code == 1 and "SOURCE must be the bot's SQLite file" in server.output
    assert PASSWORD not in server.output
    assert not target.exists()


async def test_a_source_a_running_bot_holds_is_refused(tmp_path: Path, clock: Any) -> None:
    source, target = tmp_path / "bot.db", tmp_path / "copy.db"
    await small(source, clock)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(source)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = await asyncio.to_thread(cli, "db", "copy", str(source), str(target))
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1
    assert f"another itsm-bot process (pid {holder.pid}) is using it" in result.output
    assert not target.exists()


# Another process holding the database as a running bot does, until killed.
HOLD = """
import sys, time
from bot.store import ProcessLock
ProcessLock.acquire(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


async def test_a_source_of_an_older_or_newer_bot_is_refused(tmp_path: Path, clock: Any) -> None:
    source, target = tmp_path / "bot.db", tmp_path / "copy.db"
    await small(source, clock)
    latest = read(source, "SELECT version FROM schema_versions WHERE feature = 'outbox'")[0][0]
    older = "was last used by an older version of the bot (outbox not up to date): start this version on it once"  # fmt: skip
    newer = "was made by a newer version of the bot (outbox): copy it with that version"
    for version, said in ((latest - 1, older), (latest + 1, newer)):
        conn = sqlite3.connect(source)
        conn.execute("UPDATE schema_versions SET version = ? WHERE feature = 'outbox'", (version,))
        conn.commit()
        conn.close()
        result = await asyncio.to_thread(cli, "db", "copy", str(source), str(target))
        assert result.exit_code == 1 and said in result.output, result.output
    assert not target.exists()


async def test_every_table_keeps_a_rowid_on_postgresql_where_it_does_on_sqlite(tmp_path):
    """Queries that keep insertion order read the rowid: a table SQLite keeps one for must
    have one on PostgreSQL too, whatever the comments around its CREATE TABLE say."""
    from bot.db_copy import has_rowid

    async with own_schema() as url:
        lite = App.running(make_config(), all_features(), db_path=str(tmp_path / "bot.db"), background=False)  # fmt: skip
        shared = App.running(make_config(), all_features(), db_path=url, background=False)
        async with lite as on_sqlite, shared as on_postgresql:
            tables = [
                r[0]
                for r in await on_sqlite.db.fetchall(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%' AND name <> 'schema_versions'"
                )  # the store's own table, read by feature name
            ]
            kept = {t: await has_rowid(on_sqlite.db, t, "sqlite") for t in tables}
            shown = {t: await has_rowid(on_postgresql.db, t, "postgresql") for t in tables}
    assert "vote_turnout" in tables and kept["vote_turnout"]  # the one a comment misled
    assert not kept["vote_turnout_voters"]
    assert shown == kept
