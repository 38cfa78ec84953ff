"""`itsm-bot communities` and `itsm-bot community delete ID`: the operator's view of the
communities one bot hosts, and the erasure of one of them.

The list only reads, so it is safe beside a running bot. Delete writes and needs the bot
stopped: the database is held by one process at a time, and a running bot would keep the
community in its caches. What is erased, table by table, is in bot/erasure.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import click

from bot import communities as community_schema
from bot import erasure
from bot.cli_options import config_option, db_option
from bot.store import missing

COLUMNS = ("id", "name", "state", "workspaces", "feeds", "polls", "events", "answers", "waiting")


def database_path(db_path: str | None, config_path: str | None) -> str:
    from bot.cli import load_config

    path = db_path or load_config(config_path).bot.database
    if missing(path):
        raise click.ClickException(f"{path}: no such database")
    return path


@click.command("communities")
@db_option
@config_option
def communities(db_path: str | None, config_path: str | None) -> None:
    """List the communities this bot hosts: their workspaces, state and size."""
    rows = asyncio.run(_list(database_path(db_path, config_path)))
    if not rows:
        click.echo("No communities yet: one is made when the bot first hears from a workspace.")
        return
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in COLUMNS).rstrip())


async def _list(path: str) -> list[dict[str, Any]]:
    from bot.store import Database

    db = await Database.open(path, lock=False)  # reading only: a running bot may hold it
    try:
        if await db.version("communities") < len(community_schema.MIGRATIONS):
            raise click.ClickException(
                f"{path}: made by an older bot; start this version once first (it updates the tables)"
            )
        found = []
        for community in await db.fetchall("SELECT * FROM communities ORDER BY id"):
            scope = await erasure.scope_of(db, community["id"])
            workspaces = await db.fetchall(
                "SELECT platform, workspace, state FROM community_workspaces"
                " WHERE community_id = ? ORDER BY platform, workspace",
                (community["id"],),
            )
            state = community["state"]
            if community["left_at"] is not None:
                state += f" {_day(community['left_at'])}"
            found.append({
                "id": community["id"], "name": community["name"], "state": state,
                "workspaces": ", ".join(_workspace(w) for w in workspaces) or "-",
                **await erasure.size(db, scope),
            })  # fmt: skip
        return found
    finally:
        await db.close()


def _workspace(row: Any) -> str:
    words = f"{row['platform']}:{row['workspace']}"
    return words if row["state"] == "active" else f"{words} (left)"


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


@click.group("community")
def community() -> None:
    """One hosted community: erase its data."""


@community.command("delete")
@click.argument("community_id", type=click.IntRange(min=1), metavar="ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
@config_option
def delete(community_id: int, yes: bool, db_path: str | None, config_path: str | None) -> None:
    """Erase every row of community ID (see `itsm-bot communities`), in every feature.

    Stop the bot first. There is no undo: keep a copy of the database if in doubt."""
    path = database_path(db_path, config_path)
    name = asyncio.run(_name(path, community_id))
    if not yes:
        click.confirm(f"Erase community {community_id} ({name}) and all its data?", abort=True)
    deleted = asyncio.run(_erase(path, community_id))
    total = sum(deleted.values())
    click.echo(f"Erased community {community_id} ({name}): {total} rows from {len(deleted)} tables.")  # fmt: skip
    for table, count in sorted(deleted.items()):
        click.echo(f"  {table}: {count}")


async def _name(path: str, community_id: int) -> str:
    from bot.store import Database

    db = await Database.open(path, lock=False)
    try:
        name = await db.fetchval("SELECT name FROM communities WHERE id = ?", (community_id,))
    finally:
        await db.close()
    if name is None:
        raise click.ClickException(
            f"no community {community_id} in {path} (`itsm-bot communities` lists them)"
        )
    return str(name)


async def _erase(path: str, community_id: int) -> dict[str, int]:
    from bot.store import Database

    db = await Database.open(path)  # held: refused, in one line, while the bot runs
    try:
        return await erasure.erase(db, community_id)
    finally:
        await db.close()
