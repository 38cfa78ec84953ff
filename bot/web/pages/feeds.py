"""Feeds: every subscription of the community with its health; pause, resume, remove, and
add with a live preview of the next post as it will look in the channel.

Members may read this page (`/feed list` is theirs too); changes are the moderators'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from bot.errors import UserError
from bot.feeds.feature import PREVIEW
from bot.feeds.render import item_post
from bot.feeds.store import Source, Subscription
from bot.model import ChannelRef, Post
from bot.web.render import post_html

if TYPE_CHECKING:
    from bot.feeds import Feeds
    from bot.web.server import Visit, WebServer


@dataclass
class Row:
    sub: Subscription
    source: Source

    @property
    def state(self) -> str:
        if self.source.state == "disabled":
            return "disabled"
        if self.sub.paused:
            return "paused"
        return "failing" if self.source.failures else "running"

    @property
    def every(self) -> timedelta | None:
        """The subscription's own check interval, if it asks for one."""
        return timedelta(seconds=self.sub.check_every) if self.sub.check_every else None


def add(server: WebServer) -> None:
    server.page("/feeds", "Feeds", show, members=True)
    server.get("/feeds/preview", preview)
    server.post("/feeds/add", add_feed)
    for verb in ("pause", "resume", "remove"):
        server.post(f"/feeds/{{id:\\d+}}/{verb}", change(verb))


def _feeds(visit: Visit) -> Feeds:
    return visit.app.features["feeds"]  # type: ignore[return-value]


async def rows(visit: Visit) -> list[Row]:
    store = _feeds(visit).store
    sources = {s.id: s for s in await store.all_sources()}
    found: list[Row] = []
    for platform, workspace in visit.workspaces:
        for sub in await store.subscriptions_in(platform, workspace):
            found.append(Row(sub, sources[sub.source_id]))
    return found


def channels(visit: Visit, found: list[Row]) -> list[ChannelRef]:
    """Where a new feed can go: the community's channels and those that follow feeds."""
    known = {c for c in visit.community.channels if not c.is_direct and visit.owns(c)}
    known.update(r.sub.channel for r in found)
    return sorted(known, key=lambda c: c.key)


async def show(visit: Visit) -> web.StreamResponse:
    found = await rows(visit)
    return visit.render(
        "feeds.html", rows=found, channels=channels(visit, found),
        every=_feeds(visit).settings.interval,
    )  # fmt: skip


async def preview(visit: Visit) -> web.StreamResponse:
    """The next post of a feed as the channel will see it (a fragment for htmx)."""
    url = visit.request.query.get("url", "").strip()
    template = visit.request.query.get("template", "")
    if not url:
        return web.Response(text="", content_type="text/html")
    feeds = _feeds(visit)
    try:
        feed_url, _, parsed = await feeds.resolve(url, PREVIEW)
        items = parsed.chronological()
        if not items:
            raise UserError("This is a feed, but it has no items yet.")
        post = item_post(items[-1], parsed.title or feed_url, template, zone=visit.community.timezone)  # fmt: skip
    except UserError as exc:
        post = Post(text=f"**{exc.message}**\n{exc.hint}".strip())
    return web.Response(text=str(post_html(post)), content_type="text/html")


async def add_feed(visit: Visit) -> web.StreamResponse:
    form = await visit.form()
    try:
        channel = ChannelRef.parse(form.get("channel", ""))
    except ValueError:
        raise web.HTTPBadRequest(text="Choose a channel.") from None
    options = {k: form[k] for k in ("url", "include", "exclude", "template", "interval") if form.get(k)}  # fmt: skip
    if form.get("backlog", "").strip():
        options["backlog"] = form["backlog"].strip()
    await visit.command(("feed", "add"), channel, channel=channel, **options)
    return visit.back("/feeds")


def change(verb: str):  # noqa: ANN201 - a handler factory
    async def handle(visit: Visit) -> web.StreamResponse:
        sub_id = int(visit.request.match_info["id"])
        sub = await _feeds(visit).store.subscription(sub_id)
        if sub is None or not visit.owns(sub.channel):
            raise web.HTTPNotFound(text="There is no such feed subscription here.")
        await visit.command(("feed", verb), sub.channel, id=sub_id)
        return visit.back("/feeds")

    return handle
