"""Delivery: what the community's posts are waiting on.

The outbox's rows for the community's channels and members' direct messages (channel keys
under one of its workspaces): posts and edits waiting, and why (a retry after an error, the
platform paused or not connected, not due yet, behind an earlier post of the same lane);
posts in doubt (the platform may have them: they are looked up before being sent again);
and posts given up on over the last week with the outbox's last error. Counts per platform
and state, and the oldest wait. Read only: the outbox delivers on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot import markup
from bot.model import ChannelRef, Post
from bot.postcodec import load_post
from bot.timeutil import format_local

if TYPE_CHECKING:
    from bot.web.server import Visit, WebServer

WEEK = 7 * 86400.0  # given-up posts are shown this long, as /help counts them
LISTED = 200  # rows listed per state; the counts cover every row
HEADLINE = 120  # characters of a post shown to say which one it is
OPEN = "state IN ('pending', 'sending')"
# Withdrawn posts were taken back on purpose (a feed removed): nothing went wrong.
GIVEN_UP = "state = 'failed' AND coalesce(last_error, '') != 'withdrawn' AND created_at >= ?"
STATES = {
    "waiting": f"{OPEN} AND in_doubt = 0",
    "in doubt": f"{OPEN} AND in_doubt = 1",
    "given up": GIVEN_UP,
}
COLUMNS = (
    "id, key, kind, channel, target, state, attempts, not_before, retry_at, in_doubt,"
    " last_error, created_at, attempted_at, payload"
)


@dataclass
class Entry:
    """One outbox row as the page lists it."""

    id: int
    key: str
    kind: str  # 'post' or 'edit'
    channel: ChannelRef
    target: str | None  # the post an edit changes
    state: str  # the outbox's own: pending, sending or failed
    attempts: int
    not_before: float
    retry_at: float | None
    last_error: str | None
    created_at: float
    attempted_at: float | None
    headline: str
    behind: int | None = None  # the id of the earlier row of its lane it waits behind

    @property
    def where(self) -> str:
        if self.channel.is_direct:
            return f"direct to @{self.channel.direct_user}"
        return f"#{self.channel.channel}"


@dataclass
class PlatformLine:
    """One platform's counts, its connection, and its oldest undelivered post."""

    platform: str
    connection: str  # 'connected', 'paused' or 'not connected'
    paused_why: str = ""
    waiting: int = 0
    in_doubt: int = 0
    given_up: int = 0
    oldest_due: float | None = None  # when the oldest undelivered, already due post was due


def add(server: WebServer) -> None:
    server.page("/delivery", "Delivery", show)


async def show(visit: Visit) -> web.StreamResponse:
    now = visit.app.clock.now().timestamp()
    where, params = scope(visit)
    lines = await platform_lines(visit, where, params, now)
    lists = {state: await entries(visit, where, params, state, now) for state in STATES}
    mark_behind([*lists["waiting"], *lists["in doubt"]])
    oldest = min((p.oldest_due for p in lines.values() if p.oldest_due is not None), default=None)
    return visit.render(
        "delivery.html", platforms=list(lines.values()), lists=lists, now=now,
        oldest=oldest, listed=LISTED,
        ago=lambda ts: timedelta(seconds=now - ts), until=lambda ts: timedelta(seconds=ts - now),
    )  # fmt: skip


def scope(visit: Visit) -> tuple[str, list[Any]]:
    """The community's rows: channel keys starting "platform:workspace:" for each of its
    workspaces, as key ranges (no LIKE wildcards to escape in a workspace id)."""
    parts, params = [], []
    for platform, workspace in visit.workspaces:
        prefix = f"{platform}:{workspace}:"
        parts.append("(channel >= ? AND channel < ?)")
        params += [prefix, prefix[:-1] + chr(ord(":") + 1)]
    return ("(" + " OR ".join(parts) + ")" if parts else "0"), params


async def platform_lines(
    visit: Visit, where: str, params: list[Any], now: float
) -> dict[str, PlatformLine]:
    """Counts per platform and state in one query (grouped by channel, summed here)."""
    rows = await visit.app.db.fetchall(
        "SELECT channel, CASE WHEN state = 'failed' THEN 'given up'"
        " WHEN in_doubt = 1 THEN 'in doubt' ELSE 'waiting' END AS bucket, count(*) AS n,"
        " min(CASE WHEN state != 'failed' AND not_before <= ? THEN not_before END) AS oldest"
        f" FROM outbox WHERE {where} AND ({OPEN} OR ({GIVEN_UP})) GROUP BY channel, bucket",
        (now, *params, now - WEEK),
    )
    lines = {p: connection(visit, p) for p, _ in visit.workspaces}
    for row in rows:
        channel = ChannelRef.parse(row["channel"])
        if not visit.owns(channel):
            continue
        line = lines.setdefault(channel.platform, connection(visit, channel.platform))
        attribute = row["bucket"].replace(" ", "_")
        setattr(line, attribute, getattr(line, attribute) + row["n"])
        if row["oldest"] is not None and (
            line.oldest_due is None or row["oldest"] < line.oldest_due
        ):
            line.oldest_due = row["oldest"]
    return dict(sorted(lines.items()))


def connection(visit: Visit, platform: str) -> PlatformLine:
    outbox = visit.app.outbox
    if platform in outbox.paused:
        return PlatformLine(platform, "paused", outbox.paused[platform])
    if platform in outbox.transports:
        return PlatformLine(platform, "connected")
    return PlatformLine(platform, "not connected")


async def entries(
    visit: Visit, where: str, params: list[Any], state: str, now: float
) -> list[Entry]:
    """The rows of one state: waiting ones in the order they go, given-up ones newest first."""
    order = "id DESC" if state == "given up" else "id"
    extra = [now - WEEK] if state == "given up" else []
    rows = await visit.app.db.fetchall(
        f"SELECT {COLUMNS} FROM outbox WHERE {where} AND {STATES[state]} ORDER BY {order} LIMIT ?",
        (*params, *extra, LISTED),
    )
    found = [_entry(r) for r in rows]
    return [e for e in found if visit.owns(e.channel)]


def mark_behind(open_rows: list[Entry]) -> None:
    """Each row that is not the head of its lane (one destination's posts, or its edits)
    waits for the earlier row at the head: strict order inside a lane."""
    heads: dict[tuple[str, str], int] = {}
    for entry in sorted(open_rows, key=lambda e: e.id):
        lane = (entry.channel.key, entry.kind)
        if lane in heads:
            entry.behind = heads[lane]
        else:
            heads[lane] = entry.id


def headline(post: Post) -> str:
    """A line that says which post this is: its title, else the start of its text, as
    plain text (the template escapes it)."""
    text = next((t for t in (post.title, post.text, *(f.name for f in post.fields), post.footer) if t.strip()), "")  # fmt: skip
    text = markup.substitute(
        text,
        time=lambda moment, style: format_local(moment, post.zone, style),
        mention=lambda user: f"@{user}",
    )
    first = " ".join(markup.plain(text).split())
    return markup.truncate(first, HEADLINE) or "(an empty post)"


def _entry(row: Any) -> Entry:
    try:
        shown = headline(load_post(row["payload"]))
    except (ValueError, TypeError, KeyError):  # one unreadable row must not hide the rest
        shown = "(a post this release cannot read)"
    return Entry(
        row["id"], row["key"], row["kind"], ChannelRef.parse(row["channel"]), row["target"],
        row["state"], row["attempts"], row["not_before"], row["retry_at"], row["last_error"],
        row["created_at"], row["attempted_at"], shown,
    )  # fmt: skip
