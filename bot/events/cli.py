"""`itsm-bot events ics` and `itsm-bot events import`: calendars from the command line.

`ics` only reads the database (no job runs, nothing is posted), so it is safe beside a
running bot. `import` adds events as `/event import` does; their announcements wait in
the outbox for the bot to post them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from bot.cli_options import config_option, db_option
from bot.model import ChannelRef
from bot.store import missing

log = logging.getLogger(__name__)


@click.group()
def events() -> None:
    """Event calendars: export upcoming events, import a chapter's calendar."""


@events.command()
@db_option
@config_option
def ics(db_path: str | None, config_path: str | None) -> None:
    """Print an iCalendar (.ics) of the upcoming events."""
    from bot.cli import load_config

    config = load_config(config_path)
    path = db_path or config.bot.database
    if missing(path):
        raise click.ClickException(f"{path}: no such database")
    click.echo(asyncio.run(_ics(path)).decode(), nl=False)


async def _ics(path: str) -> bytes:
    from bot.clock import SystemClock
    from bot.events import ical, store
    from bot.store import Database

    db = await Database.open(path)
    try:
        await db.migrate("event", store.MIGRATIONS)
        now = SystemClock().now()
        upcoming = await store.EventStore(db).upcoming(now)
        return ical.export(upcoming, now)
    finally:
        await db.close()


@events.command("import")
@click.argument("source")
@click.option(
    "--channel", required=True, help="Where to announce them: platform:workspace:channel."
)
@click.option("--allow-private", is_flag=True, help="Allow a URL on a private or local address.")
@db_option
@config_option
def import_(
    source: str, channel: str, allow_private: bool, db_path: str | None, config_path: str | None
) -> None:
    """Add the events of an iCalendar file or http(s) URL (a chapter's calendar)."""
    from bot.cli import load_config

    config = load_config(config_path)
    try:
        where = ChannelRef.parse(channel)
    except ValueError:
        raise click.BadParameter(
            "write it as platform:workspace:channel", param_hint="--channel"
        ) from None
    summary = asyncio.run(_import(config, source, where, allow_private, db_path))
    click.echo(summary)


async def _import(config, source: str, where: ChannelRef, allow_private: bool, db_path) -> str:
    from bot.app import App
    from bot.errors import UserError
    from bot.events import ical
    from bot.features import all_features

    settings = config.section("event")
    try:
        if source.startswith(("http://", "https://")):
            data = await ical.fetch(
                source,
                settings.import_max_bytes,
                settings.import_timeout.total_seconds(),
                allow_private or settings.import_allow_private,
            )
        else:
            data = _read_file(source, settings.import_max_bytes)
        async with App.running(config, all_features(), db_path=db_path, background=False) as app:
            community = await app.communities.of(where)
            report = await app.features["event"].service.import_calendar(
                data, community.id, where, "cli", community.timezone,
                settings.max_remind, list(settings.default_remind),
                settings.import_horizon, settings.import_max_occurrences,
            )  # fmt: skip
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    return report.summary()


def _read_file(source: str, max_bytes: int) -> bytes:
    path = Path(source)
    if not path.is_file():
        raise click.ClickException(f"{source}: no such file (or give an http(s) URL)")
    if path.stat().st_size > max_bytes:
        raise click.ClickException(f"{source}: larger than the {max_bytes} byte limit")
    return path.read_bytes()
