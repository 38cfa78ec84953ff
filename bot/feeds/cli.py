"""`itsm-bot feeds import FILE` and `itsm-bot feeds export`: OPML in and out of the store."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli_options import config_option, db_option
from bot.feeds.schema import MIGRATIONS
from bot.feeds.store import FeedStore
from bot.model import ChannelRef
from bot.store import Database

if TYPE_CHECKING:
    # Imported by the commands that read or write OPML: the bot itself never does, and
    # opml brings xml.etree and expat (about 0.5 MB of an idle bot).
    from bot.feeds import opml


def _config(config_path: str | None) -> Any:
    from bot.cli import load_config  # the composition root; imported late to avoid a cycle

    return load_config(config_path)


def _db_path(config_path: str | None, db_path: str | None) -> str:
    return db_path or _config(config_path).bot.database


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
@db_option
@config_option
def import_opml(
    file: str, channel: str | None, backlog: int, db_path: str | None, config_path: str | None
) -> None:
    """Add every feed of an OPML FILE (and subscribe --channel to each).

    The addresses /feed add refuses are refused here too (private and loopback ones unless
    [feeds] allow_private), at most [feeds] import_max feeds are taken from one file, and
    every entry left out is listed with its reason before the summary."""
    from bot.feeds import opml

    config = _config(config_path)
    settings = config.section("feeds")
    try:
        reading = opml.parse(
            Path(file).read_bytes(),
            allow_private=settings.allow_private,
            limit=settings.import_max,
        )
    except ValueError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    target = None
    if channel:
        try:
            target = ChannelRef.parse(channel)
        except ValueError:
            raise click.BadParameter("write it as platform:workspace:channel", param_hint="--channel") from None  # fmt: skip
    outlines = reading.outlines
    added = asyncio.run(_import(db_path or config.bot.database, outlines, target, backlog))
    for line in skipped_lines(reading.skipped):
        click.echo(line)
    where = f" for {target.key}" if target else " (no channel: subscribe one with /feed add)"
    summary = f"{len(outlines)} feed(s) read, {added} new subscription(s){where}"
    if reading.skipped:
        count = len(reading.skipped)
        summary += f"; {count} {'entry' if count == 1 else 'entries'} skipped (see above)"
    click.echo(summary + ".")


SKIPPED_SHOWN = 20  # lines; the rest are counted
SHOWN_CHARS = 200  # of an address or title in a line


def skipped_lines(skipped: list[opml.Skipped]) -> list[str]:
    """One line per skipped entry, at most SKIPPED_SHOWN of them, then a count of the rest."""
    lines = []
    for entry in skipped[:SKIPPED_SHOWN]:
        url = _shown(entry.url) if entry.url else "(no address)"
        title = f' "{_shown(entry.title)}"' if entry.title and entry.title != entry.url else ""
        lines.append(f"skipped {url}{title}: {entry.reason}")
    rest = len(skipped) - SKIPPED_SHOWN
    if rest > 0:
        lines.append(f"…and {rest} more skipped entries, not listed")
    return lines


def _shown(text: str) -> str:
    """What the file says, safe on a terminal: control characters escaped, long text cut."""
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return safe if len(safe) <= SHOWN_CHARS else safe[: SHOWN_CHARS - 1] + "…"


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
@db_option
@config_option
def export_opml(db_path: str | None, config_path: str | None) -> None:
    """Write every feed the bot knows as OPML to standard output."""
    sys.stdout.buffer.write(asyncio.run(_export(_db_path(config_path, db_path))))


async def _export(path: str) -> bytes:
    from bot.feeds import opml

    store = await _store(path)
    try:
        sources = await store.all_sources()
    finally:
        await store.db.close()
    return opml.write([opml.Outline(s.url, s.title) for s in sources])
