"""Shared fixtures: a real App on a real SQLite file under a fake clock, and the console."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.console import Console
from bot import config as configuration
from bot.app import App, Feature
from bot.cli import sections
from bot.clock import FakeClock
from bot.features import all_features

pytest_plugins = ["tests.databases"]  # the `places` fixture: each backend's databases

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def make_config(data: dict[str, Any] | None = None) -> configuration.CoreConfig:
    """A full configuration (every feature's and adapter's section) from a dict."""
    return configuration.build(sections(), data)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


AppFactory = Callable[..., Awaitable[App]]


@pytest.fixture
async def make_app(places, clock) -> AsyncIterator[AppFactory]:
    """Start Apps on a database of each backend (tests/databases.py); nothing runs in the
    background.

    Calling it again with the same `db` name is a restart on the same database after a
    crash: the Apps started on it before are left open (what they left half done is for
    the new one to find), but count as dead workers from then on (tests/databases.py).
    With `alongside=True` it is a second worker on the database instead.
    """
    from tests.databases import died  # after pytest_plugins has registered it

    stack = AsyncExitStack()
    started: dict[str, list[App]] = {}

    async def make(
        features: list[type[Feature]] | None = None,
        config: dict[str, Any] | None = None,
        db: str = "bot.db",
        alongside: bool = False,
    ) -> App:
        for crashed in [] if alongside else started.get(db, []):
            await died(crashed.db)
        app_cm = App.running(
            make_config(config),
            features if features is not None else all_features(),
            clock=clock,
            db_path=await places.url(db),
            background=False,
        )
        app = await stack.enter_async_context(app_cm)
        started.setdefault(db, []).append(app)
        return app

    yield make
    await stack.aclose()


class ConsoleRun:
    """A console on an App, with what it printed kept as a list of blocks."""

    def __init__(self, console: Console, out: list[str]) -> None:
        self.console = console
        self.out = out
        self.app = console.app

    async def say(self, *lines: str) -> str:
        """Feed lines; return what they printed."""
        start = len(self.out)
        for line in lines:
            await self.console.handle(line)
        return "\n".join(self.out[start:])

    @property
    def text(self) -> str:
        return "\n".join(self.out)


@pytest.fixture
async def console(make_app) -> ConsoleRun:
    app = await make_app()
    out: list[str] = []
    return ConsoleRun(Console(app, write=out.append), out)


@pytest.fixture
async def make_web(make_app) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Start Apps with the web console on (tests/web.py); their HTTP clients close after."""
    from tests.web import start_web

    runs = []

    async def make(config: dict[str, Any] | None = None, db: str = "bot.db") -> Any:
        run = await start_web(make_app, config, db)
        runs.append(run)
        return run

    yield make
    for run in runs:
        await run.stack.aclose()


@pytest.fixture
async def web(make_web) -> Any:
    """The web console on an App with every feature, and a console to type /web in."""
    return await make_web()
