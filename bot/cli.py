"""The composition root: `itsm-bot` and its subcommands.

This is the one place that knows adapters exist; it loads them by name, so the core
(`bot/`) never imports a platform SDK.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import msgspec

from bot import config as configuration
from bot import store
from bot.app import App, freeze_startup_heap
from bot.db_copy import db
from bot.errors import ConfigError, StartupError
from bot.features import all_features
from bot.tenancy_cli import communities, community

log = logging.getLogger("bot")

SECRETS = ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
           "SLACK_CLIENT_SECRET", "ITSM_BOT_SECRET_KEY")  # fmt: skip
# Slack tokens by their form: each installed workspace's bot token is in no variable.
SLACK_TOKEN = re.compile(r"\b(?:xox[a-z]|xapp)-[0-9A-Za-z-]+")
# platform -> (module with create(app, settings, env), settings module, settings class)
ADAPTERS = {
    "slack": ("adapters.slack", "adapters.slack.settings", "SlackSettings"),
    "discord": ("adapters.discord", "adapters.discord.settings", "DiscordSettings"),
}
# Modules of adapters that keep tables in the bot's database (each with FEATURE, its name in
# schema_versions, and MIGRATIONS), migrated only where that adapter's feature is in use.
ADAPTER_SCHEMAS = ("adapters.slack.installations",)
BUNDLED = Path(__file__).resolve().parent.parent / "config"


def sections() -> dict[str, type[configuration.Section]]:
    """Every configuration section: each feature's and each adapter's own."""
    found = {f.name: f.Settings for f in all_features() if f.Settings is not None}
    for name, (_, module, cls) in ADAPTERS.items():
        found[name] = getattr(importlib.import_module(module), cls)
    return found


def adapter_schemas() -> list[tuple[str, list[str]]]:
    """The adapters' own schemas, as `bot.app.schemas` gives the features'."""
    modules = [importlib.import_module(name) for name in ADAPTER_SCHEMAS]
    return [(module.FEATURE, list(module.MIGRATIONS)) for module in modules]


def load_config(path: str | None) -> configuration.CoreConfig:
    try:
        return configuration.load(path, sections())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


class RedactSecrets(logging.Filter):
    """Never let a token reach a log line, whatever code logged it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__()
        self.secrets = [env[k] for k in SECRETS if env.get(k)]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = store.redacted(SLACK_TOKEN.sub("***", message))
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(os.environ))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class Main(click.Group):
    """`itsm-bot`: any subcommand, a feature's own included, that meets a set-up problem while
    starting (a bad configuration value, an unusable or busy database, a refused token)
    prints one line saying what to fix and exits 1, instead of a traceback. By then every
    `asyncio.run` has returned, with the database closed, so the process really ends."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (StartupError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    envvar="ITSM_BOT_LOG_LEVEL",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="How much to log to stderr (also ITSM_BOT_LOG_LEVEL).",
)
def main(log_level: str) -> None:
    """An ITSM community bot: feeds, survey polls, events and a daily BRM prompt."""
    setup_logging(log_level)


config_option = click.option(
    "--config",
    "config_path",
    envvar="ITSM_BOT_CONFIG",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML configuration file (also ITSM_BOT_CONFIG). Defaults apply without one.",
)


@main.command()
@config_option
@click.option(
    "--db",
    "db_path",
    # No checks here: opening the database says in one line what is wrong with the file.
    type=click.Path(readable=False),
    default=None,
    help="SQLite file, or postgresql:// URL, to keep state in (default: [bot] database of "
    "the configuration, or $DATABASE_URL).",
)
def run(config_path: str | None, db_path: str | None) -> None:
    """Run the bot on Discord and/or Slack, from the tokens in the environment."""
    platforms = [p for p in ("discord", "slack") if _has_tokens(p, os.environ)]
    if not platforms:
        raise click.ClickException(
            "No platform tokens found. Set DISCORD_TOKEN for Discord, and/or SLACK_BOT_TOKEN "
            "with SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode) for Slack. "
            "To try the bot without any, run: itsm-bot demo"
        )
    config = load_config(config_path)
    asyncio.run(_run(config, platforms, os.environ, db_path=db_path))


def _has_tokens(platform: str, env: Mapping[str, str]) -> bool:
    if platform == "discord":
        return bool(env.get("DISCORD_TOKEN"))
    # Installed by link ([slack] distribution), each workspace's token is in the database.
    return bool(env.get("SLACK_BOT_TOKEN") or env.get("SLACK_CLIENT_SECRET")) and bool(
        env.get("SLACK_APP_TOKEN") or env.get("SLACK_SIGNING_SECRET")
    )


async def _run(
    config: configuration.CoreConfig,
    platforms: list[str],
    env: Mapping[str, str],
    stop: asyncio.Event | None = None,
    db_path: str | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `stop`), connected to every platform named; `db_path`
    (from --db) wins over the configuration's [bot] database."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    async with App.running(config, all_features(), db_path=db_path) as app:
        surfaces = []
        try:
            for platform in platforms:
                module = importlib.import_module(ADAPTERS[platform][0])
                surface = module.create(app, config.section(platform), env)
                await surface.start()
                surfaces.append(surface)
                log.warning("connected to %s", platform)
            freeze_startup_heap()
            _return_free_heap()
            await stop.wait()
        finally:
            for surface in reversed(surfaces):
                await surface.stop()


def _return_free_heap() -> None:
    """Once connected: give back to the system the heap that start-up used and freed
    (configuration, schemas, migrations). glibc keeps freed pages for later otherwise;
    an idle bot holds about 1 MB less (bench/idle_memory.py)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # a C library without malloc_trim (musl): nothing to do
        pass


@main.command()
@config_option
@click.option(
    "--db",
    "db_path",
    # No checks here: opening the database says in one line what is wrong with the file.
    type=click.Path(readable=False),
    default=None,
    help="SQLite file to keep state between runs (default: a fresh temporary one).",
)
@click.option(
    "--script",
    type=click.File("r"),
    default=None,
    help="Read console lines from this file instead of the terminal.",
)
@click.option(
    "--files",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder to save the files the bot sends (default: a new temporary one, printed).",
)
@click.option(
    "--web",
    "web",
    metavar="[HOST:]PORT",
    default=None,
    help="Also serve the web console on PORT (host 127.0.0.1 unless given), print a "
    "moderator's sign-in link, and keep serving after the script until interrupted.",
)
def demo(
    config_path: str | None, db_path: str | None, script: Any, files: str | None, web: str | None
) -> None:
    """Try the bot offline in this terminal, with bundled content and no tokens."""
    config = load_config(config_path)
    if web is not None:
        config = _with_web(config, web)
    asyncio.run(_demo(config, db_path, script, Path(files) if files else None))


def _with_web(config: configuration.CoreConfig, listen: str) -> configuration.CoreConfig:
    from bot.web.settings import WebSettings

    if ":" not in listen:
        listen = f"127.0.0.1:{listen}"
    current = msgspec.structs.asdict(config.section("web"))
    try:
        web = configuration.convert(WebSettings, {**current, "enabled": True, "listen": listen})
    except ConfigError:
        raise click.BadParameter(f"{listen!r} is not [HOST:]PORT", param_hint="--web") from None
    return msgspec.structs.replace(config, web=web)


async def _demo(
    config: configuration.CoreConfig, db_path: str | None, script: Any, files: Path | None
) -> None:
    from adapters.console import Console

    with tempfile.TemporaryDirectory(prefix="itsm-bot-") as tmp:
        path = db_path or str(Path(tmp) / "demo.db")
        async with App.running(config, all_features(), db_path=path) as app:
            files = files or Path(tempfile.mkdtemp(prefix="itsm-bot-files-"))
            click.echo(f"Files the bot sends (charts, exports, calendars) go to {files}", err=True)
            console = Console(app, files=files)
            stream = script or sys.stdin
            interactive = script is None and sys.stdin.isatty()
            if interactive:
                click.echo(BANNER)
            for feature in app.features.values():
                await feature.seed_demo(console.channel)
            await console.settle()
            web = app.features["web"]
            if web.server is not None:
                url = await web.sign_in_url(console.user(DEMO_MODERATOR), (await app.communities.of(console.channel)).id, True)  # fmt: skip
                click.echo(f"Web console: {web.base_url}/ ; sign in as the demo's moderator: {url}", err=True)  # fmt: skip
            if interactive:
                await console.run_interactive()
            else:
                await console.run_script(stream)
                if web.server is not None:
                    click.echo("Serving the web console until interrupted (Ctrl-C).", err=True)
                    await _until_interrupted()


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


DEMO_MODERATOR = "moderator"  # the name the demo's sign-in link is for

BANNER = """ITSM community bot: offline demo (console). Commands start with '/'; try /help.
Act as someone else with '@name /cmd', as a moderator with '@name! /cmd';
press a button with '@name click N LABEL'; submit a form with '@name form key=value'.
'quit' or Ctrl-D leaves."""


@main.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
def check_config(path: str | None) -> None:
    """Check a configuration file and print the settings in force."""
    config = load_config(path)
    click.echo(f"{path or 'defaults'}: OK")
    for name, value in configuration.plain(config).items():
        click.echo(f"[{name}] {value}")


@main.command("slack-manifest")
@config_option
@click.option(
    "--request-url",
    default="",
    help="For HTTP mode: the public URL Slack sends requests to (…/slack/events). "
    "Without it the manifest is for Socket Mode.",
)
@click.option(
    "--distribution",
    metavar="URL",
    default="",
    help="Install by link: the bot's public address (https://bot.example.org); the "
    "manifest gets its OAuth redirect URL/slack/oauth_redirect and the uninstall events.",
)
def slack_manifest(config_path: str | None, request_url: str, distribution: str) -> None:
    """Print a Slack app manifest (JSON) to paste into api.slack.com/apps."""
    from adapters.slack import manifest

    config = load_config(config_path)
    commands = manifest.registry(config, all_features())
    try:
        data = manifest.manifest(config.bot.name, commands, request_url, distribution)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--distribution") from None
    click.echo(manifest.render_json(data))


@main.command("discord-invite")
@config_option
def discord_invite(config_path: str | None) -> None:
    """Print the link that adds the bot to a Discord server (DISCORD_CLIENT_ID or DISCORD_TOKEN)."""
    from adapters.discord import invite

    load_config(config_path)  # a bad file is reported here as everywhere
    try:
        app_id = invite.application_id(os.environ)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(invite.invite_url(app_id))


for feature in all_features():
    if getattr(feature, "cli", None) is not None:
        main.add_command(feature.cli)

main.add_command(communities)  # the operator's view of hosted communities
main.add_command(community)
main.add_command(db)  # moving the database: `db copy`
