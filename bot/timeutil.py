"""Reading times and durations the way members type them.

Everything is stored in UTC; a zone is only used to read what a member typed and to show
a time back. Natural phrases ("tomorrow 14:00", "next tuesday 9am") go to dateparser, but
what it only guesses at (a bare number such as "-1", a lone word, a month with no day) is
refused with the guess named, rather than taken as a date nobody meant.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.errors import UsageError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[wdhms]\s*)+$", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def is_duration(text: str) -> bool:
    return bool(_DURATION.match(text))


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '1h30m', '2d', '1w' -> timedelta."""
    if not is_duration(text):
        raise ValueError(f"`{text}` is not a duration; write it like 15m, 1h30m, 2d or 1w")
    seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    parts = []
    for unit in ("w", "d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


_WORD_UNITS = ((604800, "week", "weeks"), (86400, "day", "days"), (3600, "h", "h"), (60, "min", "min"), (1, "s", "s"))  # fmt: skip


def duration_words(delta: timedelta) -> str:
    """A duration as a person reads it: '10 s', '30 min', '2 h', '1 day', '1 h 30 min'.

    At most the two largest units are shown (a duration shown to a member is a rough one);
    under a second reads as 'under 1 s'. `format_duration` is the typed, exact form."""
    seconds = round(delta.total_seconds())
    if seconds <= 0:
        return "under 1 s" if delta.total_seconds() > 0 else "0 s"
    parts = []
    for size, one, many in _WORD_UNITS:
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    return " ".join(parts[:2])


def zone(name: str, option: str = "tz") -> ZoneInfo:
    """An IANA zone, or a UsageError naming it and the closest zone to what was typed."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        close = closest_zone(name)
        meant = f"Did you mean {close}? " if close else ""
        raise UsageError(
            f"`{name}` is not a time zone I know.",
            option=option,
            hint=meant + "Use an IANA name such as Europe/London, America/New_York or UTC.",
        ) from exc


@functools.cache
def _zone_names() -> dict[str, str]:
    """Every IANA zone name, by its lower-case form (what a typo is compared with)."""
    return {name.lower(): name for name in available_timezones()}


def closest_zone(typed: str) -> str | None:
    """The zone name nearest to a mistyped one ('europe/olso' -> 'Europe/Oslo'), or None.

    A wrong case or spaces for underscores is matched exactly; otherwise the whole name is
    compared, then the part after the last slash (a bare city: 'Osloo')."""
    names = _zone_names()
    key = typed.strip().lower().replace(" ", "_")
    if not key:
        return None
    if key in names:
        return names[key]
    import difflib  # only for a mistyped zone: not part of every bot's memory

    found = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    if found:
        return names[found[0]]
    cities = {name.rsplit("/", 1)[-1]: name for name in names if "/" in name}
    found = difflib.get_close_matches(key.rsplit("/", 1)[-1], cities, n=1, cutoff=0.75)
    return names[cities[found[0]]] if found else None


def parse_when(text: str, tz: str, now: datetime) -> datetime:
    """A moment from what a member typed, read in zone `tz`; returned in UTC.

    Accepts a duration from now ('2d', '1h30m'), ISO forms ('2026-12-05 09:00',
    '2026-12-01T17:00', with or without an offset) and natural phrases.
    """
    text = text.strip()
    if not text:
        raise ValueError("no date or time given")
    if is_duration(text):
        return (now + parse_duration(text)).astimezone(UTC)
    local = zone(tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = _natural(text, tz, now)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local)
    return moment.astimezone(UTC)


_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
)
_WEEKDAYS = (
    "monday tuesday wednesday thursday friday saturday sunday "
    "mon tue tues wed thu thur thurs fri sat sun"
)
_DAY_WORDS = "today tomorrow yesterday tonight now noon midnight"
_UNITS = (
    "second seconds sec secs minute minutes min mins hour hours hr hrs day days "
    "week weeks wk wks fortnight fortnights month months year years yr yrs"
)
_VOCABULARY = frozenset(f"{_MONTHS} {_WEEKDAYS} {_DAY_WORDS} {_UNITS}".split())
_RELATIVE = re.compile(r"\b(?:next|last|this|in|ago|from|after|before)\b")
_WORD = re.compile(r"[a-z]+")
_ANCHORS = (
    re.compile(r"\b\d{1,2}:\d{2}\b"),  # a clock time: 9:00, 17:30
    re.compile(r"\b\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)"),  # 9am, 3 pm
    re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b"),  # 12/05/2026, 05.12.2026
    re.compile(r"\b\d{1,2}/\d{1,2}\b"),  # 12/05
)
_SHORT_UNIT = re.compile(r"\d\s*(?:h|d|w|m)\b")  # 3h, 2d: only with in / ago
_NUMBERS_ONLY = re.compile(  # "-1", "1.5", "7 8", "1700000000"
    r"^[\s+\-.,0-9]*[0-9][\s+\-.,0-9]*$"
)
_TRY = "write it like 2026-12-05 09:00, next tuesday 9am, tomorrow 14:00 or 2d"


def _unrecognised(text: str) -> str | None:
    """Why `text` names no date or time a person would mean, or None if it does.

    dateparser reads almost anything as some date ("-1" is 23 January, "a" is January,
    "friday 99" is 2099): only text with something date-like in it goes to it at all, a
    month name, a weekday, a day word (today, noon...), a unit after next / in / ago, a
    clock time or a numeric date."""
    lower = text.lower()
    if any(a.search(lower) for a in _ANCHORS):
        return None
    if _NUMBERS_ONLY.match(lower):
        return "a bare number is not enough"
    if set(_WORD.findall(lower)) & _VOCABULARY:
        return None
    if _RELATIVE.search(lower) and _SHORT_UNIT.search(lower):
        return None
    return "it names no day, month, weekday, time or relative phrase I know"


def _natural(text: str, tz: str, now: datetime) -> datetime:
    from dateparser.date import DateDataParser  # imported late: slow, and only needed here

    base = now.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    parser = DateDataParser(
        languages=["en"],
        settings={
            "RELATIVE_BASE": base,
            "PREFER_DATES_FROM": "future",
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    data = parser.get_date_data(text)
    found = data.date_obj
    if found is None:
        raise ValueError(f"I can't read `{text}` as a date; {_TRY}")
    why = _unrecognised(text)
    if why is None and data.period in ("month", "year") and not _RELATIVE.search(text.lower()):
        why = "it gives a month or a year but no day"  # "March 2027": the day was today's
    if why is not None:
        guess = found.strftime("%a %d %b %Y %H:%M")
        raise ValueError(
            f"`{text}` is not a date: {why} (the date reader would guess {guess} from it); {_TRY}"
        )
    return found


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


def format_local(moment: datetime, tz: str, style: str = "f") -> str:
    """A readable local time for surfaces that cannot localise per reader."""
    t = local(moment, tz)
    formats = {
        "d": "%d %b %Y",
        "D": "%A %d %B %Y",
        "t": "%H:%M",
        "f": "%a %d %b %Y %H:%M %Z",
        "F": "%A %d %B %Y %H:%M %Z",
    }
    if style == "R":
        return t.strftime("%d %b %Y %H:%M %Z")
    return t.strftime(formats.get(style, formats["f"]))


def utc_from_ts(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
