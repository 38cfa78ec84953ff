"""Event posts in the listing shape the community knows: WHAT / WHERE / WHEN / WHO / BOOKING.

Times go in as `time_tag` markers, so every reader sees them in their own zone; the
event's own local time is written out beside them, so nobody has to guess where the
organisers are. Everything a moderator typed is passed through `inert()`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta

from bot import timeutil
from bot.events import rules
from bot.events.store import Counts, Event, Rsvp
from bot.model import (
    Attachment,
    Button,
    Field,
    Post,
    UserRef,
    inert,
    link,
    time_tag,
)

log = logging.getLogger(__name__)

EVENT_COLOR = 0x2E86AB
CANCELLED_COLOR = 0x888888
REMINDER_COLOR = 0xF18F01
RSVP_LABELS = {
    "going": "Going",
    "going+notify": "Going + remind me",
    "interested": "Interested",
    "not_going": "Not going",
}
_UNITS = {"w": "week", "d": "day", "h": "hour", "m": "minute", "s": "second"}
_FREQUENCIES = {
    "DAILY": ("daily", "days"),
    "WEEKLY": ("weekly", "weeks"),
    "MONTHLY": ("monthly", "months"),
    "YEARLY": ("yearly", "years"),
}
NEXT_DATES = 3  # how many of a series' following dates its announcement names
SUBSCRIBE = "Subscribe to the calendar"


def humanise(offset: timedelta) -> str:
    """timedelta(days=1, hours=2) -> '1 day 2 hours'."""
    words = []
    number = ""
    for ch in timeutil.format_duration(offset):
        if ch.isdigit():
            number += ch
            continue
        unit = _UNITS[ch]
        words.append(f"{number} {unit}" + ("" if number == "1" else "s"))
        number = ""
    return " ".join(words)


def own_time(moment: datetime, tz: str) -> str:
    """'Thu 05 Nov 2031, 09:00 Europe/London' — the event's local time, zone written out."""
    local = timeutil.local(moment, tz)
    return f"{local:%a %d %b %Y, %H:%M} {tz}"


def when(event: Event) -> str:
    """Reader-local start (absolute and relative), then the event's own local time."""
    lines = [f"{time_tag(event.start, 'F')} ({time_tag(event.start, 'R')})"]
    if event.end:
        lines.append(f"until {time_tag(event.end, 'F')}")
    local_start = timeutil.local(event.start, event.tz)
    own = f"{local_start:%a %d %b %Y, %H:%M}"
    if event.end:
        local_end = timeutil.local(event.end, event.tz)
        same_day = local_end.date() == local_start.date()
        own += f"–{local_end:%H:%M}" if same_day else f" – {local_end:%a %d %b %Y, %H:%M}"
    lines.append(f"_Local time: {own} {event.tz}_")
    return "\n".join(lines)


def repeat_words(rule: str) -> str:
    """A series' RRULE in words: 'FREQ=MONTHLY;BYDAY=1TH' -> 'monthly', 'FREQ=WEEKLY;
    INTERVAL=2' -> 'every 2 weeks'; '' for no rule or one without a frequency named here.
    The rule came from a calendar: only these fixed words ever reach a post."""
    parts = {}
    for part in rule.upper().split(";"):
        name, _, value = part.partition("=")
        parts[name.strip()] = value.strip()
    names = _FREQUENCIES.get(parts.get("FREQ", ""))
    if names is None:
        return ""
    interval = parts.get("INTERVAL", "1")
    if re.fullmatch(r"[0-9]{1,3}", interval) and int(interval) > 1:
        return f"every {int(interval)} {names[1]}"
    return names[0]


def series_line(event: Event, following: list[Event], cancelled: list[Event] | None = None) -> str:
    """'Repeats monthly · next: ⟦5 Jan⟧, ⟦2 Feb⟧, ⟦2 Mar⟧ and 2 more · until ⟦30 Jun⟧ ·
    cancelled: ⟦12 Jan⟧' (dates in each reader's zone); '' when there is nothing to say."""
    words = repeat_words(event.series_rule)
    if not words and not following and not cancelled:
        return ""
    line = f"Repeats {words}" if words else "Repeats"
    if following:
        dates = ", ".join(time_tag(e.start, "d") for e in following[:NEXT_DATES])
        more = len(following) - NEXT_DATES
        line += f" · next: {dates}" + (f" and {more} more" if more > 0 else "")
    until, count = rules.ends(event.series_rule)
    if until is not None:
        line += f" · until {time_tag(until, 'd')}"
    elif count is not None:
        line += f" · {count} date{'s' if count > 1 else ''} in all"
    if cancelled:
        line += " · cancelled: " + ", ".join(time_tag(e.start, "d") for e in cancelled)
    return line


def listing_fields(event: Event) -> list[Field]:
    what = f"**{inert(event.title)}**"
    if event.description:
        what += f"\n{inert(event.description)}"
    fields = [Field("WHAT", what, inline=False)]
    if event.location:
        fields.append(Field("WHERE", inert(event.location), inline=False))
    fields.append(Field("WHEN", when(event), inline=False))
    if event.organiser:
        fields.append(Field("WHO", inert(event.organiser), inline=False))
    if event.url:
        fields.append(Field("BOOKING", link("Booking & further details", event.url), inline=False))
    return fields


def rsvp_buttons(event: Event) -> list[Button]:
    styles = {"going": "success", "going+notify": "primary"}
    return [
        Button(label, "event.rsvp", f"{event.id}:{status}", styles.get(status, "secondary"))
        for status, label in RSVP_LABELS.items()
    ]


def counts_line(counts: Counts, capacity: int | None = None, waiting: int = 0) -> str:
    """'3 going · 1 interested · 0 not going'; with a capacity '12/20 going · 3 waiting · …'."""
    going = f"{counts.going} going" if capacity is None else f"{counts.going}/{capacity} going"
    if waiting:
        going += f" · {waiting} waiting"
    return f"{going} · {counts.interested} interested · {counts.not_going} not going"


def announcement(
    event: Event,
    counts: Counts,
    zone: str,
    ics: bytes | None = None,
    following: list[Event] | None = None,
    waiting: int = 0,
    cancelled: list[Event] | None = None,
) -> Post:
    """The post announcing an event; edited in place as the event or its RSVPs change.

    An occurrence of a repeating event is the one announcement of its series while it is
    the next: WHEN also says how it repeats and names the `following` dates (and the
    `cancelled` ones); `series_announcement` adds the rest."""
    attachments = [Attachment(f"event-{event.id}.ics", ics, "text/calendar")] if ics else []
    if event.cancelled:
        # The calendar stays, marked cancelled: whoever added the event can open it again
        # to update their calendar, and no stale copy is left confirming it.
        return Post(
            title=f"CANCELLED: {inert(event.title)}",
            text="**This event has been cancelled.** Its reminders are cancelled too.",
            fields=listing_fields(event),
            footer=f"Event #{event.id} · In your calendar? Open the attached .ics to mark it"
            " cancelled",
            attachments=attachments,
            color=CANCELLED_COLOR,
            zone=zone,
        )
    fields = listing_fields(event)
    repeats = series_line(event, following or [], cancelled) if event.series_uid else ""
    if repeats:
        fields = [
            Field(f.name, f"{f.value}\n{repeats}", f.inline) if f.name == "WHEN" else f
            for f in fields
        ]
    return Post(
        title=f"📅 {inert(event.title)}",
        url=event.url,
        text=f"**RSVP:** {counts_line(counts, event.capacity, waiting)}",
        fields=fields,
        footer=f"Event #{event.id} · Add to calendar: open the attached .ics",
        buttons=rsvp_buttons(event),
        attachments=attachments,
        color=EVENT_COLOR,
        zone=zone,
    )


def with_subscribe_link(post: Post, event: Event, url: str) -> Post:
    """The announcement with a link to the community's calendar feed (a cancelled event's
    announcement offers nothing more)."""
    if event.cancelled:
        return post
    return replace(post, buttons=[*post.buttons, Button(SUBSCRIBE, style="link", url=url)])


def calendar_links(feeds: list[tuple[str, str, str]], google_url: str, revoked: bool) -> Post:
    """The answer to /event calendar: each feed (what it holds, as markup; its https and
    webcal URLs), then how each calendar app takes one."""
    lines = []
    if revoked:
        lines += ["The old URL no longer works; calendars subscribed to it must subscribe to"
                  " the new one.", ""]  # fmt: skip
    for holds, url, webcal_url in feeds:
        lines += [f"**{holds}**", f"`{url}`", f"`{webcal_url}`", ""]
    lines += [
        "- Google Calendar: paste the https URL in Other calendars → From URL"
        " (or press Add to Google Calendar).",
        "- Outlook: Add calendar → Subscribe from web, and paste the https URL.",
        "- Apple Calendar: File → New Calendar Subscription, and paste the URL"
        " (on an iPhone or a Mac, opening the webcal:// one subscribes).",
        "Calendar apps read it again about every hour (Google Calendar can take up to a day).",
    ]
    return Post(
        title="Subscribe to the events calendar",
        text="\n".join(lines),
        footer="Anyone with the URL can read these events: share it within the community."
        " Moderators: /event calendar revoke replaces it.",
        buttons=[Button("Add to Google Calendar", style="link", url=google_url)],
        color=EVENT_COLOR,
    )


def reminder(event: Event, offset: timedelta, zone: str) -> Post:
    """The reminder in the event's channels; it pings nobody (those who asked to be reminded
    get `direct_reminder` instead)."""
    return Post(
        title=f"⏰ In {humanise(offset)}: {inert(event.title)}",
        url=event.url,
        text=f"**{inert(event.title)}** starts {time_tag(event.start, 'R')}.",
        fields=listing_fields(event)[1:],
        footer=f"Event #{event.id}",
        buttons=rsvp_buttons(event),
        color=REMINDER_COLOR,
        zone=zone,
    )


def direct_reminder(event: Event, offset: timedelta, zone: str) -> Post:
    """The reminder sent privately to a member going who asked for it. No buttons: an answer
    is changed on the announcement, where everyone's count is."""
    return Post(
        title=f"⏰ In {humanise(offset)}: {inert(event.title)}",
        url=event.url,
        text=f"**{inert(event.title)}** starts {time_tag(event.start, 'R')}."
        "\nYou said you're going and asked to be reminded.",
        fields=listing_fields(event),
        footer=f"Event #{event.id} · Plans changed? Change your answer on the announcement.",
        color=REMINDER_COLOR,
        zone=zone,
    )


def upcoming(events: list[Event], zone: str) -> Post:
    """One line per event, soonest first; a repeating event once, at its next date."""
    if not events:
        return Post(title="Upcoming events", text="No upcoming events yet.", zone=zone)
    shown: list[list[Event]] = []
    by_series: dict[str, list[Event]] = {}
    for event in events:
        if event.series_uid in by_series:
            by_series[event.series_uid].append(event)
            continue
        shown.append([event])
        if event.series_uid:
            by_series[event.series_uid] = shown[-1]
    lines = []
    for event, *later in shown:
        line = f"- **#{event.id} {inert(event.title)}** — {time_tag(event.start, 'f')}"
        line += f" ({own_time(event.start, event.tz)})"
        if event.location:
            line += f" — {inert(event.location)}"
        if event.series_uid:
            words = repeat_words(event.series_rule)
            line += f" — repeats {words}" if words else " — repeats"
            if later:
                line += f", {len(later)} more date{'s' if len(later) > 1 else ''}"
        lines.append(line)
    return Post(
        title="Upcoming events",
        text="\n".join(lines),
        footer="Moderators: /event rsvps ID shows who is coming.",
        color=EVENT_COLOR,
        zone=zone,
    )


def rsvp_list(
    event: Event, rsvps: list[Rsvp], zone: str, waiting: list[UserRef] | None = None
) -> Post:
    fields = []
    for status in ("going", "interested", "not_going"):
        people = [r for r in rsvps if r.status == status]
        names = ", ".join(
            inert(r.member.name or r.member.user) + (" 🔔" if r.notify else "") for r in people
        )
        label = RSVP_LABELS[status]
        if status == "going" and event.capacity is not None:
            label += f" ({len(people)} of {event.capacity})"
        else:
            label += f" ({len(people)})"
        fields.append(Field(label, names or "—", False))
    if waiting:
        names = ", ".join(f"{n}. {inert(m.name or m.user)}" for n, m in enumerate(waiting, 1))
        fields.insert(1, Field(f"Waiting list ({len(waiting)})", names, False))
    return Post(
        title=f"RSVPs for #{event.id} {inert(event.title)}",
        fields=fields,
        footer="🔔 going and asked to be mentioned in the final reminder",
        zone=zone,
    )


def mine(
    pairs: list[tuple[Event, Rsvp]], zone: str, waiting: list[tuple[Event, int]] | None = None
) -> Post:
    """A member's answers, and their places on full events' waiting lists, soonest first."""
    if not pairs and not waiting:
        return Post(title="Your RSVPs", text="You have not answered any upcoming event.")
    rows = []
    for event, rsvp in pairs:
        answer = "going + remind me" if rsvp.notify and rsvp.status == "going" else rsvp.status
        rows.append((event, answer.replace("_", " ")))
    rows += [(event, f"waiting list, number {place}") for event, place in waiting or []]
    lines = [
        f"- **#{event.id} {inert(event.title)}** — {time_tag(event.start, 'f')}: {answer}"
        for event, answer in sorted(rows, key=lambda row: (row[0].start, row[0].id))
    ]
    return Post(title="Your RSVPs", text="\n".join(lines), zone=zone)
