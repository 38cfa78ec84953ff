"""Events: the community's events as a list and as a month calendar, and one event with its
RSVPs, an edit form and a Cancel button.

Members may read the list, the calendar and an event with its RSVP counts (`/event list`
is theirs too); who answered, and every change, are the moderators'. An edit or a cancel
runs `/event edit` or `/event cancel` as the signed-in moderator, so the announcements are
edited on every platform exactly as when it is typed in chat, and a bad value is refused
with the command's own message.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from bot import timeutil
from bot.events.drafts import CLEAR
from bot.events.render import RSVP_LABELS, own_time
from bot.events.store import Counts, Event, Rsvp
from bot.events.store import _event as event_from_row

if TYPE_CHECKING:
    from bot.events import Events
    from bot.web.server import Visit, WebServer

# What the edit form offers: every option of `/event edit` but the id, in its order.
EDITABLE = ("title", "start", "end", "tz", "location", "url", "organiser", "description", "remind")  # fmt: skip
# An emptied field, as `/event edit` is told so: reminders off, any other value removed.
EMPTIED = {"remind": "none"}
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
LONGEST_SPAN = 62  # days an event is drawn over in the calendar, at most


@dataclass
class Row:
    """One event and its RSVP counts, as the list and the calendar show it."""

    event: Event
    counts: Counts
    now: datetime

    @property
    def state(self) -> str:
        if self.event.cancelled:
            return "cancelled"
        if (self.event.end or self.event.start) <= self.now:
            return "over"
        return "happening" if self.event.start <= self.now else "scheduled"

    @property
    def past(self) -> bool:
        return (self.event.end or self.event.start) <= self.now

    @property
    def start(self) -> float:
        return self.event.start.timestamp()

    @property
    def end(self) -> float | None:
        return self.event.end.timestamp() if self.event.end else None


@dataclass
class Entry:
    """An event on one day of the calendar: from its start time, or continued."""

    row: Row
    time: str  # the start, HH:MM in the community's zone; "" on the days after

    @property
    def continued(self) -> bool:
        return not self.time


@dataclass
class Day:
    day: date
    in_month: bool
    today: bool
    entries: list[Entry] = field(default_factory=list)

    @property
    def css(self) -> str:
        return " ".join(n for n, on in (("other-month", not self.in_month), ("today", self.today)) if on)  # fmt: skip


@dataclass
class Month:
    first: date
    weeks: list[list[Day]]

    @property
    def key(self) -> str:
        return f"{self.first:%Y-%m}"

    @property
    def previous(self) -> str:
        return f"{self.first - timedelta(days=1):%Y-%m}"

    @property
    def next(self) -> str:
        return f"{self.first + timedelta(days=31):%Y-%m}"


def add(server: WebServer) -> None:
    server.page("/events", "Events", show, members=True)
    server.get("/events/{id:\\d+}", detail, members=True)
    server.post("/events/{id:\\d+}/edit", edit)
    server.post("/events/{id:\\d+}/cancel", cancel)


def _events(visit: Visit) -> Events:
    return visit.app.features["event"]  # type: ignore[return-value]


# --- Reading ---------------------------------------------------------------------------------


async def rows(visit: Visit) -> list[Row]:
    """Every event of the community with its counts: two queries, however many events."""
    db = visit.app.db
    community_id = visit.community.id
    found = await db.fetchall(
        "SELECT * FROM events WHERE community_id = ? ORDER BY start_at, id", (community_id,)
    )
    tallies = await db.fetchall(
        "SELECT r.event_id, r.status, count(*) AS n FROM event_rsvps r"
        " JOIN events e ON e.id = r.event_id WHERE e.community_id = ?"
        " GROUP BY r.event_id, r.status",
        (community_id,),
    )
    counts: dict[int, Counts] = {}
    for tally in tallies:
        setattr(counts.setdefault(tally["event_id"], Counts()), tally["status"], tally["n"])
    now = visit.app.clock.now()
    return [Row(e, counts.get(e.id, Counts()), now) for e in map(event_from_row, found)]


async def owned_event(visit: Visit) -> Event:
    """The event the path names, if it is this community's; 404 otherwise."""
    event_id = int(visit.request.match_info["id"])
    event = await _events(visit).service.store.get(event_id, visit.community.id)
    if event is None or not visit.owns(event.channel):
        raise web.HTTPNotFound(text="There is no such event here.")
    return event


def month_asked(visit: Visit, today: date) -> date:
    """The first day of the month `?month=YYYY-MM` names; this month when none is (or a
    month that is no month)."""
    match = _MONTH.match(visit.request.query.get("month", ""))
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 1971 <= year <= 9998 and 1 <= month <= 12:
            return date(year, month, 1)
    return today.replace(day=1)


def calendar(found: list[Row], first: date, today: date, zone: str) -> Month:
    """The weeks (Monday first) that hold the month, each day with the events on it in the
    community's zone; an event over several days is on each of them."""
    start = first - timedelta(days=first.weekday())
    last = first.replace(day=monthrange(first.year, first.month)[1])
    end = last + timedelta(days=6 - last.weekday())
    days = {
        start + timedelta(days=n): Day(start + timedelta(days=n), False, False)
        for n in range((end - start).days + 1)
    }
    for day in days.values():
        day.in_month = day.day.month == first.month
        day.today = day.day == today
    for row in found:
        local_start = timeutil.local(row.event.start, zone)
        begins = local_start.date()
        # An event ending at midnight does not spill into the next day.
        finish = row.event.end - timedelta(microseconds=1) if row.event.end else row.event.start
        ends = max(begins, timeutil.local(finish, zone).date())
        if ends < start or begins > end:
            continue
        for n in range(min((ends - begins).days, LONGEST_SPAN) + 1):
            day = days.get(begins + timedelta(days=n))
            if day is not None:
                day.entries.append(Entry(row, "" if n else f"{local_start:%H:%M}"))
    ordered = list(days.values())
    return Month(first, [ordered[i : i + 7] for i in range(0, len(ordered), 7)])


async def show(visit: Visit) -> web.StreamResponse:
    found = await rows(visit)
    zone = visit.zone
    today = timeutil.local(visit.app.clock.now(), zone).date()
    month = calendar(found, month_asked(visit, today), today, zone)
    upcoming = [r for r in found if not r.past]
    past = sorted((r for r in found if r.past), key=lambda r: (-r.start, -r.event.id))
    return visit.render("events.html", upcoming=upcoming, past=past, month=month, zone=zone)


def form_values(event: Event) -> dict[str, str]:
    """The event as the edit form shows it: start and end in the event's own zone, as
    `/event edit` reads them."""
    moment = "%Y-%m-%d %H:%M"
    return {
        "title": event.title,
        "start": timeutil.local(event.start, event.tz).strftime(moment),
        "end": timeutil.local(event.end, event.tz).strftime(moment) if event.end else "",
        "tz": event.tz,
        "location": event.location,
        "url": event.url,
        "organiser": event.organiser,
        "description": event.description,
        "remind": ",".join(timeutil.format_duration(o) for o in event.remind),
    }


def own_span(event: Event) -> str:
    """'Sat 05 Dec 2026, 09:00–17:00 Europe/London': the event in its organisers' zone."""
    if event.end is None:
        return own_time(event.start, event.tz)
    begins, ends = timeutil.local(event.start, event.tz), timeutil.local(event.end, event.tz)
    same_day = ends.date() == begins.date()
    until = f"–{ends:%H:%M}" if same_day else f" – {ends:%a %d %b %Y, %H:%M}"
    return f"{begins:%a %d %b %Y, %H:%M}{until} {event.tz}"


def names(rsvps: list[Rsvp]) -> dict[str, list[Rsvp]]:
    by_status: dict[str, list[Rsvp]] = {"going": [], "interested": [], "not_going": []}
    for rsvp in rsvps:
        by_status.setdefault(rsvp.status, []).append(rsvp)
    return by_status


async def detail(visit: Visit) -> web.StreamResponse:
    event = await owned_event(visit)
    service = _events(visit).service
    counts = await service.store.counts(event.id)
    # Who answered is the moderators' (as /event rsvps is): a member's page never reads it.
    answered = names(await service.store.rsvps(event.id)) if visit.moderator else None
    return visit.render(
        "events_detail.html",
        event=event,
        row=Row(event, counts, visit.app.clock.now()),
        own=own_span(event),
        answered=answered,
        labels=RSVP_LABELS,
        posted=await service.store.posts(event.id),
        announcement=await service.announcement(event),
        values=form_values(event),
    )


# --- Changing (through the bot's own commands) -----------------------------------------------


def changes(current: dict[str, str], typed: dict[str, str]) -> dict[str, str]:
    """The options of `/event edit` for what the moderator changed in the form: a field
    left as it was, or not in the form, is not sent (so an unchanged start in the past
    stays allowed), and an emptied one is sent as the command's way of removing it."""
    out = {}
    for name in EDITABLE:
        if name not in typed:
            continue
        value = typed[name].replace("\r\n", "\n").strip()
        if value == current[name].strip():
            continue
        out[name] = value or EMPTIED.get(name, CLEAR)
    return out


async def edit(visit: Visit) -> web.StreamResponse:
    event = await owned_event(visit)
    options = changes(form_values(event), await visit.form())
    await visit.command(("event", "edit"), event.channel, id=event.id, **options)
    return visit.back(f"/events/{event.id}")


async def cancel(visit: Visit) -> web.StreamResponse:
    event = await owned_event(visit)
    await visit.command(("event", "cancel"), event.channel, id=event.id)
    return visit.back(f"/events/{event.id}")
