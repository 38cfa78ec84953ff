"""Events as iCalendar, both ways, with the `icalendar` library.

Export gives each event a stable UID, its start in its own zone (TZID plus a VTIMEZONE),
and one VALARM per reminder offset, so a calendar app reminds members as the bot does.
Import reads a chapter's calendar (a file or an http(s) URL, size-capped, no private
addresses unless allowed) into drafts checked like any typed event; a repeating event
(a monthly SIG) becomes one event per upcoming occurrence, with `recurring-ical-events`,
each marked with the series it belongs to (the series' UID, and its RRULE as written).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from bot import timeutil
from bot.errors import UserError
from bot.events import rules
from bot.events.drafts import Draft
from bot.events.store import Event
from bot.model import inert

if TYPE_CHECKING:
    # Imported where used: icalendar and recurring-ical-events take a while to import, and
    # the fetcher brings aiohttp; a bot that never exports or imports a calendar needs none.
    import icalendar

    from bot.events.series_store import Series

log = logging.getLogger(__name__)

PRODID = "-//ITSM Community Bot//events//EN"
ZONE_MARGIN = timedelta(days=2)  # a UTC date is at most a day from its local date
HORIZON = timedelta(days=180)  # how far ahead a repeating event's occurrences are imported
MAX_OCCURRENCES = 12  # each is stored and reminded (one announcement speaks for the series)
SERIES_ZONE_YEARS = 3  # a series without an end: how far ahead its VTIMEZONE reaches


def export(events: list[Event], now: datetime) -> bytes:
    """An iCalendar document with one VEVENT per event."""
    import icalendar

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


def export_series(series: Series, occurrences: list[Event], now: datetime) -> bytes:
    """A series typed in chat as one calendar event: its RRULE, an EXDATE for each date
    cancelled, and a RECURRENCE-ID override for each date edited on its own."""
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    for vevent in series_vevents(series, occurrences, now):
        cal.add_component(vevent)
    first, last = series_span(series, occurrences)
    cal.add_missing_timezones(first_date=first - ZONE_MARGIN, last_date=last + ZONE_MARGIN)
    return cal.to_ical()


def series_span(series: Series, occurrences: list[Event]) -> tuple[date, date]:
    """The UTC days a series' zone rules must cover: to its rule's last date (a rule
    without an end: SERIES_ZONE_YEARS ahead; the calendar feed is read again long before)."""
    cap = series.start + timedelta(days=365 * SERIES_ZONE_YEARS)
    ends = [rules.last(series.rule, series.start, series.tz, cap)]
    ends += [e.end or e.start for e in occurrences]
    return series.start.date(), max(ends).date()


def series_vevents(series: Series, occurrences: list[Event], now: datetime) -> list:
    """The series' VEVENTs: the rule (with the latest date's details, as later dates are
    made from it), then one per date edited on its own. Its SEQUENCE adds up its dates'
    own, so any edit or cancellation raises it."""
    import icalendar

    template = occurrences[-1] if occurrences else None
    if template is None:
        return []
    zone = timeutil.zone(series.tz)
    length = template.end - template.start if template.end else None
    stamps = [e.updated_at for e in occurrences if e.updated_at is not None]
    master = _vevent(replace(
        template, uid=series.uid, start=series.start,
        end=series.start + length if length is not None else None,
        sequence=sum(e.sequence for e in occurrences), state=series.state,
        updated_at=max(stamps) if stamps else None,
    ), now)  # fmt: skip
    master.add("rrule", icalendar.vRecur.from_ical(series.rule))
    cancelled = [_slot(e).astimezone(zone) for e in occurrences if e.cancelled]
    if cancelled and not series.cancelled:
        master.add("exdate", cancelled)
    found = [master]
    for event in occurrences:
        if event.cancelled or event.sequence == 0 or series.cancelled:
            continue  # a date as the rule made it needs no VEVENT of its own
        override = _vevent(replace(event, uid=series.uid), now)
        override.add("recurrence-id", _slot(event).astimezone(zone))
        found.append(override)
    return found


def _slot(event: Event) -> datetime:
    """The date the rule gave an occurrence (its RECURRENCE-ID), even if moved since."""
    return rules.slot_of(event.uid) or event.start


def _vevent(event: Event, now: datetime) -> icalendar.Event:
    import icalendar

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
    left_out: int = 0  # on the last occurrence kept of a series: how many more were not
    series: str = ""  # an occurrence of a repeating event: the series' UID
    rule: str = ""  # and its RRULE as the calendar wrote it ('' for listed dates: RDATE)


def parse(
    data: bytes,
    default_tz: str,
    now: datetime | None = None,
    horizon: timedelta = HORIZON,
    max_occurrences: int = MAX_OCCURRENCES,
) -> list[Imported]:
    """Every confirmed VEVENT as a draft (not yet checked); cancelled ones are left out.

    A floating time (no zone) is read in `default_tz`; a date without a time starts at
    00:00 there. A repeating event (RRULE, RDATE) gives each occurrence from `now` to
    `now + horizon`, at most `max_occurrences` of them, moved and cancelled ones as the
    calendar says; each has a UID of its own that stays the same from import to import.
    """
    import icalendar

    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        hint = inert(str(exc)[:200])  # the parser quotes the calendar
        raise UserError("That is not an iCalendar file I can read.", hint=hint) from None
    series = {
        _raw_uid(vevent): vevent
        for vevent in cal.walk("VEVENT")
        if _raw_uid(vevent) and ("rrule" in vevent or "rdate" in vevent)
        and "recurrence-id" not in vevent and "dtstart" in vevent
    }  # fmt: skip
    found = []
    for vevent in cal.walk("VEVENT"):
        if _raw_uid(vevent) not in series:
            found += _imported(vevent, default_tz)
    if series:
        start = now or datetime.now(UTC)
        found += _occurrences(cal, series, default_tz, start, start + horizon, max_occurrences)
    return found


def _occurrences(
    cal: icalendar.Calendar,
    series: dict[str, icalendar.Event],
    default_tz: str,
    start: datetime,
    end: datetime,
    max_occurrences: int,
) -> list[Imported]:
    import recurring_ical_events

    by_series: dict[str, list[Imported]] = {uid: [] for uid in series}
    for occurrence in recurring_ical_events.of(cal).between(start, end):
        uid = _raw_uid(occurrence)
        if uid in by_series:
            for item in _imported(
                occurrence, default_tz, _occurrence_uid(uid, occurrence, series[uid])
            ):
                item.series, item.rule = uid, _rule(series[uid])
                by_series[uid].append(item)
    found = []
    for uid, items in by_series.items():
        items.sort(key=lambda item: item.draft.start)
        kept = items[:max_occurrences]
        if len(items) > len(kept):
            kept[-1].left_out = len(items) - len(kept)
            log.info("ical import: %s repeats; %d occurrence(s) past the first %d left out",
                     uid, len(items) - len(kept), len(kept))  # fmt: skip
        found += kept
    return found


def _occurrence_uid(uid: str, occurrence: icalendar.Event, master: icalendar.Event) -> str:
    """The series' own UID for the occurrence at its DTSTART (as an import of the first
    occurrence alone gave it), else the UID with the slot it was planned for."""
    slot = occurrence.decoded("recurrence-id") if "recurrence-id" in occurrence else None
    if slot is None or slot == master.decoded("dtstart"):
        return uid
    if isinstance(slot, datetime):
        moment = slot.astimezone(UTC) if slot.tzinfo else slot
        return f"{uid}/{moment:%Y%m%dT%H%M%S}" + ("Z" if slot.tzinfo else "")
    return f"{uid}/{slot:%Y%m%d}"


def _rule(master: icalendar.Event) -> str:
    """The series' (first) RRULE as text, for its words ("monthly"); never shown as it is."""
    rule = master.get("rrule")
    if isinstance(rule, list):
        rule = rule[0] if rule else None
    if rule is None:
        return ""
    try:
        return rule.to_ical().decode("utf-8", "replace")[:500]
    except (AttributeError, ValueError):
        return ""


def _imported(vevent: icalendar.Event, default_tz: str, uid: str = "") -> list[Imported]:
    """The VEVENT as a draft, or nothing if it is cancelled or has no start."""
    if str(vevent.get("status", "")).upper() == "CANCELLED":
        return []
    if "dtstart" not in vevent:
        log.warning("ical import: VEVENT without DTSTART skipped")
        return []
    start, tz = _moment(vevent, "dtstart", default_tz)
    end = None
    if "dtend" in vevent:
        end, _ = _moment(vevent, "dtend", tz)
    elif "duration" in vevent:
        end = start + vevent.decoded("duration")
    draft = Draft(
        title=str(vevent.get("summary", "")).strip(),
        start=start,
        tz=tz,
        end=end,
        location=str(vevent.get("location", "")).strip(),
        url=str(vevent.get("url", "")).strip(),
        organiser=_organiser(vevent),
        description=str(vevent.get("description", "")).strip(),
        remind=_offsets(vevent),
    )
    return [Imported(uid or _uid(vevent, draft), draft)]


def _raw_uid(vevent: icalendar.Event) -> str:
    return str(vevent.get("uid", "")).strip()


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
    uid = _raw_uid(vevent)
    if uid:
        return uid
    seed = f"{draft.title}|{draft.start.isoformat()}".encode()
    return f"import-{hashlib.sha256(seed).hexdigest()[:16]}"


# --- Fetching ------------------------------------------------------------------------------


async def fetch(url: str, max_bytes: int, timeout: float, allow_private: bool = False) -> bytes:
    """Download a calendar through the bot's one safe fetcher (http(s) only, size cap, every
    redirect hop and the very addresses connected to checked)."""
    from bot.fetch import Fetcher

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
        raise UserError(f"I could not fetch that calendar: {inert(result.error)}.")
    return result.body
