"""`itsm-bot communities` and `itsm-bot community delete ID` through the real CLI, on a
database two communities filled through every feature: the list shows each one's state and
size; delete leaves no row in any table (walked from sqlite_master) that refers to the
erased community or its workspace, and the other community's data whole."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from adapters.console import Console
from bot.app import App
from bot.cli import main
from bot.features import all_features
from bot.model import Action, ChannelRef, Invocation, Post, UserRef
from bot.tenancy import tenancy_of
from tests.conftest import make_config

A_WS, B_WS = "chapter-oslo", "chapter-lyon"  # names found nowhere else in the database
IGNORED = {"sqlite_sequence", "schema_versions"}


async def say(app: App, channel: ChannelRef, line: str, who: str = "mod") -> None:
    top, _, text = line[1:].partition(" ")
    user = UserRef(channel.platform, channel.workspace, who, who)
    await app.invoke(Invocation((top,), user, channel, True, text=text))
    await app.scheduler.run_due()
    await app.outbox.drain()


async def fill(app: App, channel: ChannelRef) -> None:
    """Data of every kind for one community: feeds, a poll and its vote, an event with an
    RSVP, the daily prompt and an answer, a member's zone, a digest, a web link."""
    for feature in app.features.values():
        await feature.seed_demo(channel)
    await say(app, channel, '/poll create "Which framework?" "ITIL" "COBIT"')
    run = await app.db.fetchval("SELECT max(id) FROM vote_runs")
    ana = UserRef(channel.platform, channel.workspace, "ana", "Ana")
    await app.act(Action("poll.vote", f"{run}:0", ana, channel))
    await say(app, channel, '/event add title=Seminar start="2026-12-05 09:00" remind=1d')
    event = await app.db.fetchval("SELECT max(id) FROM events")
    await app.act(Action("event.rsvp", f"{event}:going", ana, channel))
    await say(app, channel, "/justdoit schedule time=08:30")
    await say(app, channel, "/justdoit today")
    await say(app, channel, '/justdoit answer "Asked a stakeholder what keeps them up"', "ana")
    await say(app, channel, "/my timezone Europe/Oslo", "ana")
    await say(app, channel, "/digest schedule day=mon time=09:00")
    await say(app, channel, "/web")
    await app.outbox.enqueue(channel, Post(text="waiting"), f"waiting:{channel.key}")


async def build(path: Path, clock: Any) -> dict[str, Any]:
    config = make_config({"web": {"enabled": True, "listen": "127.0.0.1:0"}})
    async with App.running(config, all_features(), clock=clock, db_path=str(path), background=False) as app:  # fmt: skip
        Console(app, write=lambda _: None)  # a transport for the console platform
        a = ChannelRef("console", A_WS, "general")
        b = ChannelRef("console", B_WS, "general")
        await fill(app, a)
        await fill(app, b)
        await tenancy_of(app).left("console", B_WS)
        return {"a": (await app.communities.of(a)).id, "b": (await app.communities.of(b)).id}


def rows_of(path: Path) -> dict[str, list[dict[str, Any]]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    found = {n: [dict(r) for r in db.execute(f"SELECT * FROM {n}")] for n in names if n not in IGNORED}  # fmt: skip
    db.close()
    return found


def refers(row: dict[str, Any], workspace: str, community: int, ids: dict[str, set[int]]) -> bool:
    for column, value in row.items():
        if column == "community_id" and value == community:
            return True
        if isinstance(value, str | bytes) and workspace in (value if isinstance(value, str) else value.decode(errors="replace")):  # fmt: skip
            return True
        if column in ids and value in ids[column]:
            return True
    return False


def owned_ids(
    tables: dict[str, list[dict[str, Any]]], community: int, workspace: str
) -> dict[str, set[int]]:
    """Ids of the community's parent rows, as child tables name them."""

    def of(table: str) -> set[int]:
        return {r["id"] for r in tables[table] if r["community_id"] == community}

    subscriptions = {r["id"] for r in tables["feed_subscriptions"] if workspace in r["channel"]}
    return {
        "run_id": of("vote_runs"), "event_id": of("events"), "day_id": of("justdoit_days"),
        "series_id": of("event_series"), "subscription_id": subscriptions,
    }  # fmt: skip


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_communities_lists_state_and_size(tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "bot.db"
    ids = asyncio.run(build(path, clock))
    result = cli("communities", "--db", str(path))
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == ["ID", "NAME", "STATE", "WORKSPACES", "FEEDS", "POLLS", "EVENTS", "ANSWERS", "WAITING"]  # fmt: skip
    by_id = {int(line.split()[0]): line for line in lines}
    a, b = by_id[ids["a"]], by_id[ids["b"]]
    assert f"console:{A_WS}" in a and " active " in a
    assert f"console:{B_WS} (left)" in b and " left 2026-11-23 " in b
    cells = a.split()
    feeds, polls, events, answers, waiting = (int(c) for c in cells[-5:])
    assert feeds >= 1 and polls == 1 and events >= 1 and answers == 1 and waiting >= 1


def test_delete_erases_one_community_from_every_table_and_keeps_the_other(
    tmp_path: Path, clock: Any
) -> None:
    path = tmp_path / "bot.db"
    ids = asyncio.run(build(path, clock))
    before = rows_of(path)
    a_ids = owned_ids(before, ids["a"], A_WS)
    assert {t for t, rows in before.items() if any(refers(r, A_WS, ids["a"], a_ids) for r in rows)} >= {
        "communities", "community_workspaces", "feed_subscriptions", "feed_posts", "vote_runs",
        "vote_answers", "events", "event_rsvps", "jobs", "outbox", "justdoit_days",
        "justdoit_answers", "justdoit_schedules", "digest_schedules", "member_zones", "web_links",
    }  # fmt: skip
    b_rows = {t: [r for r in rows if refers(r, B_WS, ids["b"], {})] for t, rows in before.items()}
    assert sum(len(r) for r in b_rows.values()) > 20  # B has data in many tables to keep
    assert any(refers(r, A_WS, ids["a"], a_ids) for rows in before.values() for r in rows)

    result = cli("community", "delete", str(ids["a"]), "--yes", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Erased community {ids['a']} (console:{A_WS}): ")

    after = rows_of(path)
    left_over = {
        table: [r for r in rows if refers(r, A_WS, ids["a"], a_ids)]
        for table, rows in after.items()
    }
    assert {t: r for t, r in left_over.items() if r} == {}
    for table, rows in b_rows.items():
        assert [r for r in after[table] if r in rows] == rows, table  # B's rows, all there
    # Feed sources B still subscribes to stay, with what was seen on them.
    assert after["feed_sources"] and after["feed_items"]
    listed = cli("communities", "--db", str(path)).output
    assert A_WS not in listed and B_WS in listed


def test_delete_asks_first_and_refuses_an_unknown_id(tmp_path: Path, clock: Any) -> None:
    path = tmp_path / "bot.db"
    ids = asyncio.run(build(path, clock))
    refused = CliRunner().invoke(main, ["community", "delete", str(ids["a"]), "--db", str(path)], input="n\n")  # fmt: skip
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert f"console:{A_WS}" in cli("communities", "--db", str(path)).output
    unknown = CliRunner().invoke(main, ["community", "delete", "999", "--yes", "--db", str(path)])
    assert unknown.exit_code == 1
    assert "no community 999" in unknown.output and "itsm-bot communities" in unknown.output
    bad = CliRunner().invoke(main, ["community", "delete", "0", "--db", str(path)])
    assert bad.exit_code == 2 and "Invalid value for 'ID'" in bad.output
    missing = CliRunner().invoke(main, ["communities", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no such database" in missing.output
