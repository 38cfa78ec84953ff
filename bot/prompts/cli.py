"""`itsm-bot prompts export`: every answer to the daily prompt as CSV, for operators.

The same CSV is what `/justdoit export` attaches. Cells that a spreadsheet would read as
a formula are prefixed with a quote, since answers are member input.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import click

from bot.cli_options import config_option, db_option
from bot.store import Database, missing

COLUMNS = (
    "day", "channel", "member", "member_name", "competency", "prompt_id", "prompt", "answer",
    "answered_at", "updated_at",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else ""


def answers_csv(rows: Iterable[Any]) -> str:
    """Rows from `PromptStore.export_rows` as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        values = dict(row)
        values["answered_at"] = _iso(values.pop("created_at"))
        values["updated_at"] = _iso(values["updated_at"])
        writer.writerow([_cell(values[c]) for c in COLUMNS])
    return out.getvalue()


@click.group("prompts")
def group() -> None:
    """The daily BRM "just do it" prompt."""


@group.command("export")
@db_option
@config_option
def export(db_path: str | None, config_path: str | None) -> None:
    """Print every answer to the daily prompt as CSV."""
    if db_path is None:
        from bot.cli import load_config

        db_path = load_config(config_path).bot.database
    if missing(db_path):
        raise click.ClickException(f"{db_path}: no such database file")
    click.echo(asyncio.run(_export(db_path)), nl=False)


async def _export(path: str) -> str:
    from bot.prompts.store import PromptStore

    db = await Database.open(path)
    try:
        if await db.version("justdoit") == 0:
            raise click.ClickException(f"{path}: holds no daily prompt data")
        return answers_csv(await PromptStore(db).export_rows())
    finally:
        await db.close()
