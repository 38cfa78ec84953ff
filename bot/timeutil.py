"""Reading times and durations the way members type them.

Everything is stored in UTC; a zone is only used to read what a member typed and to show
a time back. Natural phrases ("tomorrow 14:00", "next tuesday 9am") go to dateparser.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def zone(name: str) -> ZoneInfo:
    """An IANA zone, or a UsageError naming it."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"`{name}` is not a time zone I know.",
            option="tz",
            hint="Use an IANA name such as Europe/London, America/New_York or UTC.",
        ) from exc


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


def _natural(text: str, tz: str, now: datetime) -> datetime:
    import dateparser  # imported late: it is slow to import and only needed here

    base = now.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    found = dateparser.parse(
        text,
        languages=["en"],
        settings={
            "RELATIVE_BASE": base,
            "PREFER_DATES_FROM": "future",
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    if found is None:
        raise ValueError(
            f"I can't read `{text}` as a date; try 2026-12-05 09:00, tomorrow 14:00 or 2d"
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
