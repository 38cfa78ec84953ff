"""Events as iCalendar, both ways, with the `icalendar` library.

Export gives each event a stable UID, its start in its own zone (TZID plus a VTIMEZONE),
and one VALARM per reminder offset, so a calendar app reminds members as the bot does.
Import reads a chapter's calendar (a file or an http(s) URL, size-capped, no private
addresses unless allowed) into drafts checked like any typed event.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import icalendar

from bot import timeutil
from bot.errors import UserError
from bot.events.drafts import Draft
from bot.events.store import Event
from bot.fetch import Fetcher

log = logging.getLogger(__name__)

PRODID = "-//ITSM Community Bot//events//EN"
ZONE_MARGIN = timedelta(days=2)  # a UTC date is at most a day from its local date


def export(events: list[Event], now: datetime) -> bytes:
    """An iCalendar document with one VEVENT per event."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    for event in events:
        cal.add_component(_vevent(event, now))
    if events:
        # Zone rules only for the days the events span: the library's default range
        # (1970 onwards) costs ~10x the time and size for a calendar nobody reads back then.
        first = min(e.start for e in events).date() - ZONE_MARGIN
        last = max(e.end or e.start for e in events).date() + ZONE_MARGIN
        cal.add_missing_timezones(first_date=first, last_date=last)
    return cal.to_ical()


def _vevent(event: Event, now: datetime) -> icalendar.Event:
    zone = timeutil.zone(event.tz)
    vevent = icalendar.Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", (event.updated_at or now).astimezone(UTC))
    vevent.add("dtstart", event.start.astimezone(zone))
    if event.end:
        vevent.add("dtend", event.end.astimezone(zone))
    vevent.add("summary", event.title)
    if event.location:
        vevent.add("location", event.location)
    if event.url:
        vevent.add("url", event.url)
    if event.description:
        vevent.add("description", event.description)
    if event.organiser:
        vevent.add("contact", event.organiser)
    vevent.add("sequence", event.sequence)
    vevent.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    for offset in event.remind:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", -offset)
        alarm.add("description", f"{event.title} starts soon")
        vevent.add_component(alarm)
    return vevent


# --- Import --------------------------------------------------------------------------------


@dataclass
class Imported:
    uid: str
    draft: Draft


def parse(data: bytes, default_tz: str) -> list[Imported]:
    """Every confirmed VEVENT as a draft (not yet checked); cancelled ones are left out.

    A floating time (no zone) is read in `default_tz`; a date without a time starts at
    00:00 there. Repeating events are read as their first occurrence.
    """
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise UserError("That is not an iCalendar file I can read.", hint=str(exc)[:200]) from None
    found = []
    for vevent in cal.walk("VEVENT"):
        if str(vevent.get("status", "")).upper() == "CANCELLED":
            continue
        if "dtstart" not in vevent:
            log.warning("ical import: VEVENT without DTSTART skipped")
            continue
        start, tz = _moment(vevent, "dtstart", default_tz)
        end = None
        if "dtend" in vevent:
            end, _ = _moment(vevent, "dtend", tz)
        elif "duration" in vevent:
            end = start + vevent.decoded("duration")
        summary = str(vevent.get("summary", "")).strip()
        draft = Draft(
            title=summary,
            start=start,
            tz=tz,
            end=end,
            location=str(vevent.get("location", "")).strip(),
            url=str(vevent.get("url", "")).strip(),
            organiser=_organiser(vevent),
            description=str(vevent.get("description", "")).strip(),
            remind=_offsets(vevent),
        )
        found.append(Imported(_uid(vevent, draft), draft))
    return found


def _moment(vevent: icalendar.Event, name: str, default_tz: str) -> tuple[datetime, str]:
    value = vevent.decoded(name)
    tzid = vevent[name].params.get("TZID", "")
    if not isinstance(value, datetime):  # an all-day date
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        tz = _known_zone(tzid) or default_tz
        return value.replace(tzinfo=timeutil.zone(tz)).astimezone(UTC), tz
    key = getattr(value.tzinfo, "key", "") or _known_zone(tzid)
    if not key and value.utcoffset() == timedelta(0):
        key = "UTC"
    return value.astimezone(UTC), key or default_tz


def _known_zone(name: str) -> str:
    if not name:
        return ""
    try:
        timeutil.zone(name)
    except UserError:
        return ""
    return name


def _organiser(vevent: icalendar.Event) -> str:
    if "contact" in vevent:
        return str(vevent["contact"]).strip()
    organizer = vevent.get("organizer")
    if organizer is not None:
        return str(organizer.params.get("CN", "")).strip()
    return ""


def _offsets(vevent: icalendar.Event) -> list[timedelta]:
    offsets = []
    for alarm in vevent.walk("VALARM"):
        if "trigger" not in alarm:
            continue
        trigger = alarm.decoded("trigger")
        related_end = str(alarm["trigger"].params.get("RELATED", "START")).upper() == "END"
        if isinstance(trigger, timedelta) and trigger < timedelta(0) and not related_end:
            offsets.append(-trigger)
    return offsets


def _uid(vevent: icalendar.Event, draft: Draft) -> str:
    uid = str(vevent.get("uid", "")).strip()
    if uid:
        return uid
    seed = f"{draft.title}|{draft.start.isoformat()}".encode()
    return f"import-{hashlib.sha256(seed).hexdigest()[:16]}"


# --- Fetching ------------------------------------------------------------------------------


async def fetch(url: str, max_bytes: int, timeout: float, allow_private: bool = False) -> bytes:
    """Download a calendar through the bot's one safe fetcher (http(s) only, size cap, every
    redirect hop and the very addresses connected to checked)."""
    fetcher = Fetcher(
        timeout=timeout,
        max_bytes=max_bytes,
        allow_private=allow_private,
        accept="text/calendar, */*;q=0.1",
    )
    try:
        result = await fetcher.fetch(url)
    finally:
        await fetcher.close()
    if not result.ok:
        raise UserError(f"I could not fetch that calendar: {result.error}.")
    return result.body
