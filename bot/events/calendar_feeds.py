"""Calendar feeds: a community's events, or one channel's, at an .ics URL that Google
Calendar, Outlook and Apple Calendar subscribe to and read again every hour or so.

The URL's token is its only key (no session), so it is unguessable and revocable: made on
the first ask and kept (a subscription must keep working), and once revoked its URL answers
404 and the next ask makes a new one. A feed holds every event not yet over and those over
in the last 30 days, cancelled ones marked CANCELLED (a subscribed calendar then drops
them rather than keep a stale copy); each edit raises SEQUENCE and LAST-MODIFIED, so a
calendar app knows its copy is old. The events are written by `ical` as for the .ics
attached to an announcement; a series typed in chat is one VEVENT with its RRULE and an
EXDATE for each cancelled date (and an override for each date edited on its own).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bot.events import ical, render
from bot.events.series_store import Series, SeriesStore
from bot.events.service import EventService
from bot.events.store import Event, EventStore
from bot.model import ChannelRef, Post
from bot.store import Database

if TYPE_CHECKING:
    import icalendar
    from aiohttp import web

    from bot.app import App
    from bot.communities import Community

log = logging.getLogger(__name__)

ROUTE = "/calendar/{token}.ics"
PAST = timedelta(days=30)  # events over this recently stay in the feed
REFRESH = timedelta(hours=1)  # how often calendar apps are asked to read it again
MAX_AGE = 300  # seconds a browser, proxy or calendar app may keep one reading
MAX_ZONES_KEPT = 256  # VTIMEZONEs kept written (one per zone and span of days)


@dataclass(frozen=True)
class Feed:
    token: str
    community_id: int
    channel: ChannelRef | None  # None: every event of the community


def _feed(row: Any) -> Feed:
    channel = ChannelRef.parse(row["channel"]) if row["channel"] else None
    return Feed(row["token"], row["community_id"], channel)


class FeedTokens:
    """The feeds' tokens: at most one live token per community and per channel (a unique
    index makes two first asks at once end with the same one)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def live(self, community_id: int, channel: ChannelRef | None, now: datetime) -> Feed:
        """The live token of the community (or the channel), made now if it has none."""
        found = await self._live(community_id, channel)
        if found is not None:
            return found
        await self.db.insert(
            "INSERT INTO event_calendar_feeds (token, community_id, channel, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (secrets.token_urlsafe(32), community_id, _key(channel), now.timestamp()),
        )
        found = await self._live(community_id, channel)
        assert found is not None
        return found

    async def _live(self, community_id: int, channel: ChannelRef | None) -> Feed | None:
        row = await self.db.fetchone(
            "SELECT * FROM event_calendar_feeds WHERE community_id = ?"
            " AND coalesce(channel, '') = ? AND revoked_at IS NULL",
            (community_id, _key(channel) or ""),
        )
        return None if row is None else _feed(row)

    async def revoke(self, community_id: int, channel: ChannelRef | None, now: datetime) -> bool:
        changed = await self.db.execute(
            "UPDATE event_calendar_feeds SET revoked_at = ? WHERE community_id = ?"
            " AND coalesce(channel, '') = ? AND revoked_at IS NULL",
            (now.timestamp(), community_id, _key(channel) or ""),
        )
        return bool(changed)

    async def find(self, token: str) -> Feed | None:
        """The live feed a URL's token opens, or None (unknown or revoked)."""
        row = await self.db.fetchone(
            "SELECT * FROM event_calendar_feeds WHERE token = ? AND revoked_at IS NULL",
            (token,),
        )
        return None if row is None else _feed(row)


def _key(channel: ChannelRef | None) -> str | None:
    return None if channel is None else channel.key


class CalendarFeeds:
    """The feeds' URLs while the web server is on, and the documents they serve."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.tokens = FeedTokens(app.db)
        self.store = EventStore(app.db)
        self.series = SeriesStore(app.db)
        self.writer = FeedWriter()

    @property
    def base_url(self) -> str | None:
        """The web server's public address, or None while it is off (no feed is served)."""
        web = self.app.features.get("web")
        return getattr(web, "base_url", None)

    async def url(self, community_id: int, channel: ChannelRef | None = None) -> str | None:
        """The https (or http) URL of the community's feed (or the channel's); None while
        the web server is off."""
        base = self.base_url
        if base is None:
            return None
        feed = await self.tokens.live(community_id, channel, self.app.clock.now())
        return base + ROUTE.format(token=feed.token)

    async def revoke(self, community_id: int, channel: ChannelRef | None = None) -> bool:
        return await self.tokens.revoke(community_id, channel, self.app.clock.now())

    # --- Serving ---------------------------------------------------------------------------

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET /calendar/{token}.ics: the feed, or 404 for a token unknown or revoked."""
        from aiohttp import web

        feed = await self.tokens.find(request.match_info["token"])
        community = await self._community(feed)
        if feed is None or community is None:
            return web.Response(status=404, text="There is no calendar at this address.")
        body, etag = await self.document(feed, community)
        headers = {"ETag": etag, "Cache-Control": f"max-age={MAX_AGE}"}
        if etag in _etags(request.headers.get("If-None-Match", "")):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=body, headers=headers, content_type="text/calendar", charset="utf-8"
        )

    async def _community(self, feed: Feed | None) -> Community | None:
        if feed is None:
            return None
        try:
            return await self.app.communities.get(feed.community_id)
        except KeyError:
            return None

    async def document(self, feed: Feed, community: Community) -> tuple[bytes, str]:
        """The feed's iCalendar body and its ETag (a digest of the body: the same events
        give the same bytes, so an unchanged feed answers 304 even after a restart)."""
        now = self.app.clock.now()
        events = await self.store.for_calendar(feed.community_id, now - PAST, now, feed.channel)
        singles, series = await self._series_apart(feed.community_id, events)
        name = calendar_name(community.name, feed.channel)
        body = self.writer.document(singles, name, now, series)
        return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    async def _series_apart(
        self, community_id: int, events: list[Event]
    ) -> tuple[list[Event], list[tuple[Series, list[Event]]]]:
        """The events that are not dates of a series typed in chat, and those series with
        every date they have stored (a cancelled one long past is still an EXDATE)."""
        if not any(e.series_uid for e in events):
            return events, []
        known = await self.series.of_community(community_id)
        singles = [e for e in events if e.series_uid not in known]
        uids = dict.fromkeys(e.series_uid for e in events if e.series_uid in known)
        series = [(known[uid], await self.store.occurrences(community_id, uid)) for uid in uids]
        return singles, series


def _etags(header: str) -> set[str]:
    """The ETags an If-None-Match names (weak ones compare as strong: the body is the same)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def calendar_name(community: str, channel: ChannelRef | None) -> str:
    return f"{community} events" if channel is None else f"{community} events (#{channel.channel})"


@dataclass
class Written:
    """One event's VEVENT as it goes into a feed, and the zones it names."""

    made_from: tuple
    data: bytes
    zones: dict[str, tuple[date, date]]  # TZID -> the local dates it spans


class FeedWriter:
    """Writes feed documents. Writing iCalendar text is slow in `icalendar` (it folds lines
    a character at a time: about 0.5 ms an event), so each event's lines, and each zone's VTIMEZONE,
    are kept and written again only when they change; a document joins them."""

    def __init__(self) -> None:
        self._events: dict[int, Written] = {}
        self._series_written: dict[str, Written] = {}
        self._zones: dict[tuple[str, date, date], bytes] = {}

    def document(
        self,
        events: list[Event],
        name: str,
        now: datetime,
        series: list[tuple[Series, list[Event]]] | None = None,
    ) -> bytes:
        """A VCALENDAR for subscribing: named, with its refresh interval, one VEVENT per
        event (one per series, with its overrides) and a VTIMEZONE for every zone they use,
        covering the days they span."""
        written = [self._event(event, now) for event in events]
        written += [self._series(one, dates, now) for one, dates in series or []]
        spans: dict[str, tuple[date, date]] = {}
        for item in written:
            for tzid, (first, last) in item.zones.items():
                known = spans.get(tzid, (first, last))
                spans[tzid] = (min(known[0], first), max(known[1], last))
        zones = [self._zone(tzid, *span) for tzid, span in sorted(spans.items())]
        head, end = _frame(name)
        return b"".join([head, *zones, *(item.data for item in written), end])

    def _event(self, event: Event, now: datetime) -> Written:
        made_from = (event.sequence, event.state, event.updated_at)
        kept = self._events.get(event.id)
        if kept is None or kept.made_from != made_from:
            vevent = _feed_event(event, now)
            kept = Written(made_from, vevent.to_ical(), _zones_named(vevent))
            self._events[event.id] = kept
        return kept

    def _series(self, series: Series, dates: list[Event], now: datetime) -> Written:
        made_from = (series.state, *((e.id, e.sequence, e.state, e.updated_at) for e in dates))
        key = f"series:{series.uid}"
        kept = self._series_written.get(key)
        if kept is None or kept.made_from != made_from:
            vevents = [_for_feed(v, dates) for v in ical.series_vevents(series, dates, now)]
            zones = {series.tz: ical.series_span(series, dates)}
            for vevent in vevents[1:]:  # dates edited on their own may name another zone
                for tzid, (first, last) in _zones_named(vevent).items():
                    known = zones.get(tzid, (first, last))
                    zones[tzid] = (min(known[0], first), max(known[1], last))
            kept = Written(made_from, b"".join(v.to_ical() for v in vevents), zones)
            self._series_written[key] = kept
        return kept

    def _zone(self, tzid: str, first: date, last: date) -> bytes:
        key = (tzid, first - ical.ZONE_MARGIN, last + ical.ZONE_MARGIN)
        if key not in self._zones:
            import icalendar

            if len(self._zones) >= MAX_ZONES_KEPT:  # spans move on as time does
                self._zones.clear()

            try:
                zone = icalendar.Timezone.from_tzid(tzid, first_date=key[1], last_date=key[2])
            except ValueError:  # a zone the library cannot describe: the TZID alone
                log.warning("calendar feed: no VTIMEZONE for %s", tzid)
                self._zones[key] = b""
            else:
                self._zones[key] = zone.to_ical()
        return self._zones[key]


def _frame(name: str) -> tuple[bytes, bytes]:
    """The VCALENDAR's own lines, cut where its components go."""
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", ical.PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", icalendar.vText(name))
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", icalendar.vDuration(REFRESH))
    text = cal.to_ical()
    end = b"END:VCALENDAR\r\n"
    assert text.endswith(end)
    return text[: -len(end)], end


def _feed_event(event: Event, now: datetime) -> icalendar.Event:
    vevent = ical._vevent(event, now)
    # No alarms: a subscriber takes in every event of the community, not only those they
    # answered, and an alarm for each would be noise (the one-event .ics keeps them).
    vevent.subcomponents = [c for c in vevent.subcomponents if c.name != "VALARM"]
    if event.updated_at is not None:
        vevent.add("last-modified", event.updated_at)
    if event.created_at is not None:
        vevent.add("created", event.created_at)
    return vevent


def _for_feed(vevent: icalendar.Event, dates: list[Event]) -> icalendar.Event:
    """A series' VEVENT as a feed carries it: no alarms (as `_feed_event`), and when its
    dates were made and last changed."""
    vevent.subcomponents = [c for c in vevent.subcomponents if c.name != "VALARM"]
    changed = [e.updated_at for e in dates if e.updated_at is not None]
    made = [e.created_at for e in dates if e.created_at is not None]
    if changed:
        vevent.add("last-modified", max(changed))
    if made:
        vevent.add("created", min(made))
    return vevent


def _zones_named(vevent: icalendar.Event) -> dict[str, tuple[date, date]]:
    """The TZIDs the VEVENT's times are written in, each with the local dates it spans."""
    zones: dict[str, tuple[date, date]] = {}
    for name in ("dtstart", "dtend"):
        tzid = vevent[name].params.get("TZID") if name in vevent else None
        if tzid:
            day = vevent.decoded(name).date()
            first, last = zones.get(tzid, (day, day))
            zones[tzid] = (min(first, day), max(last, day))
    return zones


# --- Links -----------------------------------------------------------------------------


def webcal(url: str) -> str:
    """The webcal:// form of a feed's URL: Apple Calendar and Outlook subscribe on opening it."""
    return "webcal://" + url.partition("://")[2]


def google_link(url: str) -> str:
    """Google Calendar's page that adds a calendar by URL."""
    return "https://calendar.google.com/calendar/render?cid=" + quote(webcal(url), safe="")


class LinkedEventService(EventService):
    """The events' service whose announcements also offer the community's calendar feed,
    while the web server is on (without it, an announcement is as it always was)."""

    def __init__(self, app: App, calendars: CalendarFeeds) -> None:
        super().__init__(app)
        self.calendars = calendars

    async def announcement(self, event: Event) -> Post:
        post = await super().announcement(event)
        url = await self.calendars.url(event.community_id)
        return render.with_subscribe_link(post, event, url) if url else post
