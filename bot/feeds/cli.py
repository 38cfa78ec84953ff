"""`itsm-bot feeds import FILE` and `itsm-bot feeds export`: OPML in and out of the store."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from bot.feeds import opml
from bot.feeds.schema import MIGRATIONS
from bot.feeds.store import FeedStore
from bot.model import ChannelRef
from bot.store import Database


def _db_path(config_path: str | None, db_path: str | None) -> str:
    if db_path:
        return db_path
    from bot.cli import load_config  # the composition root; imported late to avoid a cycle

    return load_config(config_path).bot.database


async def _store(path: str) -> FeedStore:
    db = await Database.open(path)
    await db.migrate("feeds", MIGRATIONS)
    return FeedStore(db)


@click.group("feeds")
def feeds_cli() -> None:
    """Move feed subscriptions in and out as OPML."""


@feeds_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--channel", help="Subscribe this channel (platform:workspace:channel).")
@click.option("--backlog", type=click.IntRange(0, 50), default=3, show_default=True)
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="SQLite file.")
@click.option("--config", "config_path", envvar="ITSM_BOT_CONFIG", type=click.Path(dir_okay=False))
def import_opml(
    file: str, channel: str | None, backlog: int, db_path: str | None, config_path: str | None
) -> None:
    """Add every feed of an OPML FILE (and subscribe --channel to each)."""
    try:
        outlines = opml.read(Path(file).read_bytes())
    except ValueError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    target = None
    if channel:
        try:
            target = ChannelRef.parse(channel)
        except ValueError:
            raise click.BadParameter("write it as platform:workspace:channel", param_hint="--channel") from None  # fmt: skip
    added = asyncio.run(_import(_db_path(config_path, db_path), outlines, target, backlog))
    where = f" for {target.key}" if target else " (no channel: subscribe one with /feed add)"
    click.echo(f"{len(outlines)} feed(s) read, {added} new subscription(s){where}.")


async def _import(
    path: str, outlines: list[opml.Outline], channel: ChannelRef | None, backlog: int
) -> int:
    store = await _store(path)
    added = 0
    try:
        now = time.time()
        for outline in outlines:
            origin = "" if channel else "opml"
            source = await store.ensure_source(outline.url, now, outline.title, origin=origin)
            if channel is not None:
                sub_id = await store.subscribe(
                    source.id, channel, include="", exclude="", template="",
                    backlog=backlog, created_by="opml", now=now,
                )  # fmt: skip
                added += sub_id is not None
    finally:
        await store.db.close()
    return added


@feeds_cli.command("export")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="SQLite file.")
@click.option("--config", "config_path", envvar="ITSM_BOT_CONFIG", type=click.Path(dir_okay=False))
def export_opml(db_path: str | None, config_path: str | None) -> None:
    """Write every feed the bot knows as OPML to standard output."""
    sys.stdout.buffer.write(asyncio.run(_export(_db_path(config_path, db_path))))


async def _export(path: str) -> bytes:
    store = await _store(path)
    try:
        sources = await store.all_sources()
    finally:
        await store.db.close()
    return opml.write([opml.Outline(s.url, s.title) for s in sources])
