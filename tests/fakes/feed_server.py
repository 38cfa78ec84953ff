"""A local feed server for tests: feeds on 127.0.0.1, each route with its own behaviour.

Honours If-None-Match / If-Modified-Since with 304; a route can also be slow, fail with a
status, hang, cut its body short, send the wrong content type, redirect, gzip its body or
send a huge one. Every request is recorded (path and headers).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import formatdate
from html import escape

import pytest
from aiohttp import web


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml"
    status: int = 200
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer
    truncate: bool = False  # promise more bytes than sent, then close
    location: str = ""  # with status 301/302/307/308
    gzip: bool = False
    huge: int = 0  # stream this many bytes of padding inside the feed
    validators: bool = True  # send ETag / Last-Modified and honour them
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: str = field(default_factory=lambda: formatdate(1_700_000_000, usegmt=True))

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self._hangs = asyncio.Event()
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def set(self, path: str, **route: object) -> str:
        self.routes[path.lstrip("/")] = Route(**route)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path.lstrip("/")]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"

    async def stop(self) -> None:
        self._hangs.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.requests.append(Seen(path, dict(request.headers)))
        route = self.routes.get(path)
        if route is None:
            raise web.HTTPNotFound()
        if route.hang:
            await self._hangs.wait()
        if route.delay:
            await asyncio.sleep(route.delay)
        headers = dict(route.headers)
        if route.location:
            headers["Location"] = route.location
            return web.Response(status=route.status, headers=headers)
        if route.status != 200:
            return web.Response(status=route.status, text="error", headers=headers)
        if route.validators:
            headers.update(ETag=route.etag, **{"Last-Modified": route.last_modified})
            if request.headers.get("If-None-Match") == route.etag or (
                "If-None-Match" not in request.headers
                and request.headers.get("If-Modified-Since") == route.last_modified
            ):
                return web.Response(status=304, headers=headers)
        if route.huge:
            return await self._stream_huge(request, route, headers)
        body = route.body
        if route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        if route.truncate:
            response = web.StreamResponse(headers=headers)
            response.content_type = route.content_type
            response.content_length = len(body) * 2
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        return web.Response(body=body, headers=headers, content_type=route.content_type)

    async def _stream_huge(
        self, request: web.Request, route: Route, headers: dict[str, str]
    ) -> web.StreamResponse:
        """A feed with `huge` bytes of padding, streamed without a Content-Length."""
        response = web.StreamResponse(headers=headers)
        response.content_type = route.content_type
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"<?xml version='1.0'?><rss version='2.0'><channel><!-- ")
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < route.huge:
                await response.write(chunk)
                sent += len(chunk)
            await response.write(b" --></channel></rss>")
        except (ConnectionResetError, RuntimeError):
            pass  # the client hung up, as it should
        return response


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    await server.start()
    yield server
    await server.stop()


# --- Building feeds ---------------------------------------------------------------------


@dataclass
class Entry:
    title: str
    guid: str = ""
    link: str = ""
    summary: str = ""
    date: str = "Mon, 23 Nov 2026 08:00:00 +0000"
    author: str = ""
    categories: tuple[str, ...] = ()
    image: str = ""


def rss(entries: list[Entry], title: str = "Test feed", ttl: int | None = None) -> bytes:
    """An RSS 2.0 document; `entries` newest first, as feeds usually list them."""
    items = []
    for e in entries:
        parts = [f"<title>{escape(e.title)}</title>"]
        if e.guid:
            parts.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        if e.link:
            parts.append(f"<link>{escape(e.link)}</link>")
        if e.summary:
            parts.append(f"<description>{escape(e.summary)}</description>")
        if e.date:
            parts.append(f"<pubDate>{e.date}</pubDate>")
        if e.author:
            parts.append(f"<author>{escape(e.author)}</author>")
        parts += [f"<category>{escape(c)}</category>" for c in e.categories]
        if e.image:
            parts.append(f'<enclosure url="{escape(e.image)}" length="1" type="image/png"/>')
        items.append("<item>" + "".join(parts) + "</item>")
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.org/</link>{ttl_tag}"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def entries(n: int, start: int = 1, prefix: str = "item") -> list[Entry]:
    """n entries numbered start..start+n-1, newest (highest number) first, dated hourly."""
    out = []
    for i in range(start + n - 1, start - 1, -1):
        out.append(
            Entry(
                title=f"{prefix} {i}",
                guid=f"{prefix}-{i}",
                link=f"https://example.org/{prefix}/{i}",
                summary=f"<p>Summary of {prefix} {i}.</p>",
                date=formatdate(1_790_000_000 + i * 3600, usegmt=True),
            )
        )
    return out
