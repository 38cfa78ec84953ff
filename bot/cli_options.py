"""The options every operator command shares: where the database is, and the configuration."""

from __future__ import annotations

import click

db_option = click.option(
    "--db", "db_path", type=click.Path(dir_okay=False), default=None,
    help="SQLite file or postgresql:// URL (default: the configuration's bot.database, "
    "or $DATABASE_URL).",
)  # fmt: skip
config_option = click.option(
    "--config", "config_path", envvar="ITSM_BOT_CONFIG", type=click.Path(dir_okay=False),
    default=None, help="TOML configuration file (also ITSM_BOT_CONFIG).",
)  # fmt: skip
