"""What a moderator typed, checked before anything is stored.

One set of checks for the command, the form and an imported calendar, so each way in
gives the same clear errors; each error names the option it is about.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from bot import timeutil
from bot.errors import UsageError
from bot.model import inert

log = logging.getLogger(__name__)

TITLE_MAX = 200
CLEAR = "-"  # `location=-` empties an optional field in /event edit


@dataclass
class Draft:
    title: str
    start: datetime
    tz: str
    end: datetime | None = None
    location: str = ""
    url: str = ""
    organiser: str = ""
    description: str = ""
    remind: list[timedelta] = field(default_factory=list)
    capacity: int | None = None  # how many may be going (then a waiting list); None: no limit


def check(draft: Draft, now: datetime, max_remind: timedelta, allow_past: bool = False) -> Draft:
    """Raise UsageError for the first problem; return the draft with tidied values."""
    title = " ".join(draft.title.split())
    if not title:
        raise UsageError("An event needs a title.", option="title")
    if len(title) > TITLE_MAX:
        raise UsageError(f"The title is too long (at most {TITLE_MAX} characters).", "title")
    timeutil.zone(draft.tz)
    if not allow_past and draft.start <= now:
        shown = timeutil.format_local(draft.start, draft.tz, "f")
        raise UsageError(
            f"The start ({shown}) is in the past.",
            option="start",
            hint="Give a future date, like 2026-12-05 09:00 or next tuesday 9am.",
        )
    if draft.end is not None and draft.end <= draft.start:
        raise UsageError(
            "The end is before the start.",
            option="end",
            hint=f"The event starts {timeutil.format_local(draft.start, draft.tz, 'f')}.",
        )
    url = draft.url.strip()
    if url:
        check_url(url)
    for offset in draft.remind:
        if offset <= timedelta(0) or offset > max_remind:
            raise UsageError(
                f"`{timeutil.format_duration(offset)}` is not a reminder offset I can use.",
                option="remind",
                hint=f"Give offsets before the start between 1m and "
                f"{timeutil.format_duration(max_remind)}, like remind=7d,1d,1h.",
            )
    if draft.capacity is not None and draft.capacity < 1:
        raise UsageError("`capacity` must be at least 1.", option="capacity",
                         hint="Leave it out (or capacity=none on /event edit) for no limit.")  # fmt: skip
    return replace(draft, title=title, url=url, remind=sorted(set(draft.remind), reverse=True))


def check_url(url: str, option: str = "url") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"`{inert(url)}` is not a web address.", option=option, hint="Use https://…"
        )
    return url


def parse_offsets(text: str) -> list[timedelta]:
    """'7d,1d,1h' -> offsets; a clear error names the bad one."""
    out = []
    for part in text.replace("|", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(timeutil.parse_duration(part))
        except ValueError:
            raise UsageError(
                f"`{inert(part)}` is not a reminder offset.",
                option="remind",
                hint="Write offsets like remind=7d,1d,1h (w, d, h, m).",
            ) from None
    return out


def same_wall_time(moment: datetime, old_tz: str, new_tz: str) -> datetime:
    """The same local clock time in another zone (a moderator correcting the zone)."""
    wall = moment.astimezone(timeutil.zone(old_tz)).replace(tzinfo=None)
    return wall.replace(tzinfo=timeutil.zone(new_tz)).astimezone(moment.tzinfo)


def parse_moment(text: str, tz: str, now: datetime, option: str) -> datetime:
    try:
        return timeutil.parse_when(text, tz, now)
    except ValueError as exc:
        raise UsageError(f"`{option}`: {inert(str(exc))}", option=option) from None
