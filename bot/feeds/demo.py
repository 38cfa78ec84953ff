"""The offline demo's feed server: `config/feeds/*.xml` on 127.0.0.1, with ETag and 304s."""

from __future__ import annotations

import hashlib
import logging
import tomllib
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

CONFIG = Path(__file__).resolve().parents[2] / "config"


@dataclass
class DemoFeed:
    file: str
    title: str


def demo_feeds(config: Path = CONFIG) -> list[DemoFeed]:
    """The sample feeds `config/feeds.toml` lists."""
    data = tomllib.loads((config / "feeds.toml").read_text(encoding="utf-8"))
    return [DemoFeed(f["file"], f.get("title", "")) for f in data.get("feed", [])]


class DemoFeedServer:
    def __init__(self, folder: Path = CONFIG / "feeds") -> None:
        self.folder = folder
        self._runner: web.AppRunner | None = None
        self.base = ""
        self._started = formatdate(usegmt=True)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"
        log.info("demo feeds served at %s", self.base)
        return self.base

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.folder / name
        if "/" in name or not name.endswith(".xml") or not path.is_file():
            raise web.HTTPNotFound()
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=body,
            content_type="application/rss+xml" if b"<rss" in body[:500] else "application/atom+xml",
            headers={"ETag": etag, "Last-Modified": self._started},
        )
