"""Repeat rules of a series typed in chat: `repeat=weekly|monthly|"RRULE:…"` with
`until=DATE` or `count=N`, checked into one iCalendar RRULE, and the dates it gives.

The recurrence itself is python-dateutil's `rrule` (RFC 5545), evaluated from the series'
first start in the event's own zone, so a weekly 18:00 in London stays 18:00 local across
the clock changes. The rule is stored as iCalendar writes it for a start with a TZID:
UNTIL in UTC. Each occurrence is named by its slot (the UTC moment the rule gave it), which
stays its UID suffix and, in calendars, its RECURRENCE-ID, even if the date is moved.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from bot import timeutil
from bot.errors import UsageError
from bot.model import inert

log = logging.getLogger(__name__)

WORDS = {"weekly": "FREQ=WEEKLY", "monthly": "FREQ=MONTHLY"}
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")  # nothing more often than a day
CLOCK_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")  # the start gives the time of day
RULE_MAX = 300
SLOT_FORMAT = "%Y%m%dT%H%M%SZ"
_RULE_TEXT = re.compile(r"^[A-Za-z0-9=;,+-]+$")
_HINT = ('Use repeat=weekly, repeat=monthly or an iCalendar rule such as '
         'repeat="RRULE:FREQ=WEEKLY;INTERVAL=2" or repeat="RRULE:FREQ=MONTHLY;BYDAY=1TH".')  # fmt: skip


def parse(
    repeat: str,
    until: str | None,
    count: int | None,
    start: datetime,
    tz: str,
    now: datetime,
) -> tuple[str, datetime]:
    """The RRULE to store and the series' first start (the rule's first date at or after
    `start`); a UsageError naming the option for anything wrong."""
    parts = _parts(repeat)
    if ("UNTIL" in parts and until is not None) or ("COUNT" in parts and count is not None):
        raise UsageError("The rule already says when it ends; give until or count once.",
                         "repeat")  # fmt: skip
    if until is not None:
        parts["UNTIL"] = _until_option(until, start, tz, now)
    elif "UNTIL" in parts:
        parts["UNTIL"] = _until_in_rule(parts["UNTIL"], tz)
    if count is not None:
        parts["COUNT"] = str(count)
    if "UNTIL" in parts and "COUNT" in parts:
        raise UsageError("Give either `until` or `count`, not both.", "until",
                         "until=2027-06-30 ends on a date; count=10 after ten dates.")  # fmt: skip
    if "COUNT" in parts and (not parts["COUNT"].isdigit() or int(parts["COUNT"]) < 1):
        raise UsageError("`count` must be at least 1.", "count")
    if "UNTIL" in parts and _utc(parts["UNTIL"]) < start:
        shown = timeutil.format_local(_utc(parts["UNTIL"]), tz, "d")
        raise UsageError(f"`until` ({shown}) is before the start.", "until",
                         f"The series starts {timeutil.format_local(start, tz, 'f')}.")  # fmt: skip
    text = ";".join(f"{name}={value}" for name, value in parts.items())
    first = _first(text, start, tz)
    if first is None:
        raise UsageError("That rule gives no date from the start on.", "repeat", _HINT)
    return text, first


def _parts(repeat: str) -> dict[str, str]:
    """The rule's NAME=VALUE parts, FREQ first, checked for what a series may be."""
    text = repeat.strip()
    if text.lower() in WORDS:
        text = WORDS[text.lower()]
    elif text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    if len(text) > RULE_MAX or not _RULE_TEXT.match(text) or "=" not in text:
        raise UsageError(f"`{inert(repeat[:80])}` is not a repeat rule I can read.", "repeat",
                         _HINT)  # fmt: skip
    parts: dict[str, str] = {}
    for part in text.strip(";").split(";"):
        name, _, value = part.partition("=")
        name = name.upper()
        if not value or name in parts:
            raise UsageError(f"`{inert(part)}` in the rule is not a part I can read.", "repeat",
                             _HINT)  # fmt: skip
        parts[name] = value.upper()
    freq = parts.pop("FREQ", "")
    if freq not in FREQUENCIES:
        raise UsageError(f"A series repeats daily, weekly, monthly or yearly, not `{inert(freq)}`"
                         " (FREQ).", "repeat", _HINT)  # fmt: skip
    for name in CLOCK_PARTS:
        if name in parts:
            raise UsageError(f"`{name}` is not for a series: the time of day is the start's.",
                             "repeat")  # fmt: skip
    return {"FREQ": freq, **parts}


def _until_option(text: str, start: datetime, tz: str, now: datetime) -> str:
    """`until=2027-06-30` (or a phrase): the last day that may hold a date, in the zone."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        try:
            day = timeutil.local(timeutil.parse_when(text, tz, now), tz).date()
        except ValueError as exc:
            raise UsageError(f"`until`: {inert(str(exc))}", "until",
                             "Give the last day, like until=2027-06-30.") from None  # fmt: skip
    return _end_of_day(day, tz)


def _until_in_rule(value: str, tz: str) -> str:
    """The rule's own UNTIL in UTC: a date (its whole day), a local time, or already UTC."""
    try:
        if len(value) == 8:
            return _end_of_day(datetime.strptime(value, "%Y%m%d").date(), tz)
        if value.endswith("Z"):
            return datetime.strptime(value, SLOT_FORMAT).strftime(SLOT_FORMAT)
        local = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=timeutil.zone(tz))
        return local.astimezone(UTC).strftime(SLOT_FORMAT)
    except ValueError:
        raise UsageError(f"`UNTIL={inert(value)}` in the rule is not a date I can read.",
                         "repeat", "Or give until=2027-06-30 beside the rule.") from None  # fmt: skip


def _end_of_day(day: date, tz: str) -> str:
    last = datetime.combine(day, time(23, 59, 59), timeutil.zone(tz))
    return last.astimezone(UTC).strftime(SLOT_FORMAT)


def _utc(value: str) -> datetime:
    return datetime.strptime(value, SLOT_FORMAT).replace(tzinfo=UTC)


def _first(rule: str, start: datetime, tz: str) -> datetime | None:
    try:
        found = _rrule(rule, start, tz).after(timeutil.local(start, tz), inc=True)
    except ValueError as exc:
        raise UsageError(f"That repeat rule does not work: {inert(str(exc))}.", "repeat",
                         _HINT) from None  # fmt: skip
    return None if found is None else found.astimezone(UTC)


def _rrule(rule: str, start: datetime, tz: str):  # -> dateutil.rrule.rrule
    from dateutil.rrule import rrulestr  # imported where used, like icalendar

    return rrulestr(rule, dtstart=timeutil.local(start, tz), forceset=False)


def dates(
    rule: str, start: datetime, tz: str, after: datetime, until: datetime
) -> Iterator[datetime]:
    """The rule's dates (UTC) after `after`, up to `until`, soonest first."""
    recurrence = _rrule(rule, start, tz)
    for moment in recurrence.xafter(timeutil.local(after, tz), inc=False):
        found = moment.astimezone(UTC)
        if found > until:
            return
        yield found


def last(rule: str, start: datetime, tz: str, cap: datetime) -> datetime:
    """The rule's last date up to `cap` (a rule without an end: about `cap`)."""
    found = _rrule(rule, start, tz).before(timeutil.local(cap, tz), inc=True)
    return start if found is None else found.astimezone(UTC)


def on_day(rule: str, start: datetime, tz: str, day: date) -> datetime | None:
    """The rule's date on local `day`, if it gives one."""
    zone = timeutil.zone(tz)
    begin = datetime.combine(day, time(), zone) - timedelta(seconds=1)
    end = datetime.combine(day + timedelta(days=1), time(), zone) - timedelta(seconds=1)
    return next(dates(rule, start, tz, begin.astimezone(UTC), end.astimezone(UTC)), None)


def occurrence_uid(series_uid: str, slot: datetime) -> str:
    return f"{series_uid}/{slot.astimezone(UTC).strftime(SLOT_FORMAT)}"


def slot_of(uid: str) -> datetime | None:
    """The slot an occurrence's UID names; None for an occurrence of an imported series."""
    _, _, suffix = uid.rpartition("/")
    try:
        return _utc(suffix)
    except ValueError:
        return None


def ends(rule: str) -> tuple[datetime | None, int | None]:
    """The stored rule's UNTIL (UTC) and COUNT, for saying when a series ends."""
    parts = dict(p.partition("=")[::2] for p in rule.upper().split(";"))
    try:
        until = _utc(parts["UNTIL"]) if "UNTIL" in parts else None
    except ValueError:  # an imported calendar's own form: not said
        until = None
    count = int(parts["COUNT"]) if parts.get("COUNT", "").isdigit() else None
    return until, count
