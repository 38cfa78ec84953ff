"""Driving the web console in tests: a real App with its real web server on 127.0.0.1 (a
free port), a console to type `/web` in, and an HTTP client that signs in the way a member
does (open the link, press Sign in) and keeps the session cookie.

    run = await start_web(make_app)
    client = await run.sign_in("mia", moderator=True)
    page = await client.get("/feeds")
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from adapters.console import Console
from bot.app import App
from bot.web.feature import Web
from bot.web.server import WebServer
from tests.conftest import ConsoleRun

WEB = {"enabled": True, "listen": "127.0.0.1:0"}
_LINK = re.compile(r"https?://[^\s<>)\]]+/signin/[\w-]+")
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def sign_in_link(text: str) -> str:
    """The (last) sign-in link in what the console printed."""
    found = _LINK.findall(text)
    assert found, f"no sign-in link in:\n{text}"
    return found[-1]


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@dataclass
class WebRun:
    app: App
    console: ConsoleRun
    stack: AsyncExitStack
    clients: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def server(self) -> WebServer:
        web: Web = self.app.features["web"]  # type: ignore[assignment]
        assert web.server is not None
        return web.server

    @property
    def base(self) -> str:
        return self.server.base_url

    def client(self) -> aiohttp.ClientSession:
        """A browser with no session yet (cookies kept, redirects not followed by default
        on POST so tests see them: pass allow_redirects as needed)."""
        client = aiohttp.ClientSession(
            base_url=self.base, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        self.stack.push_async_callback(client.close)
        return client

    async def link(self, name: str = "mia", moderator: bool = True) -> str:
        said = await self.console.say(f"@{name}{'!' if moderator else ''} /web")
        return sign_in_link(said)

    async def sign_in(self, name: str = "mia", moderator: bool = True) -> aiohttp.ClientSession:
        client = self.client()
        path = (await self.link(name, moderator)).removeprefix(self.base)
        async with client.post(path, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        return client

    async def page(self, client: aiohttp.ClientSession, path: str) -> str:
        async with client.get(path) as response:
            assert response.status == 200, (path, response.status, await response.text())
            return await response.text()

    async def post(
        self, client: aiohttp.ClientSession, path: str, data: dict[str, Any] | None = None,
        csrf_from: str = "",
    ) -> aiohttp.ClientResponse:  # fmt: skip
        """POST a form with the CSRF token of the page `csrf_from` (default: `path`'s page)."""
        html = await self.page(client, csrf_from or path.rsplit("/", 2)[0] or "/")
        form = {"csrf": csrf_of(html), **(data or {})}
        async with client.post(path, data=form, allow_redirects=False) as response:
            await response.read()
            return response


async def start_web(make_app: Any, config: dict[str, Any] | None = None, db: str = "bot.db") -> WebRun:  # fmt: skip
    """An App (every feature) with the web console on, and a console on it."""
    app = await make_app(config={**(config or {}), "web": {**WEB, **(config or {}).get("web", {})}}, db=db)  # fmt: skip
    out: list[str] = []
    console = ConsoleRun(Console(app, write=out.append), out)
    stack = AsyncExitStack()
    run = WebRun(app, console, stack)
    return run
