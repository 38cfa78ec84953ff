"""The posts of series and capacity: a series' one announcement (its next date, the dates
after it and those cancelled, a menu answering every date), a series cancelled or over,
the private replies to an answer (noted, or a place on the waiting list) and the direct
message to a member moved up. Built on `render`'s listing, so both read alike.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.events.render import (
    CANCELLED_COLOR,
    EVENT_COLOR,
    RSVP_LABELS,
    announcement,
    counts_line,
    listing_fields,
)
from bot.events.store import Counts, Event
from bot.model import Attachment, Post, Select, SelectOption, inert, time_tag

if TYPE_CHECKING:
    from bot.events.waitlist import Answer

log = logging.getLogger(__name__)

# A series' menu: the same answers, for every date ahead (and those stored later).
EVERY_DATE = {
    "going": "Going to every date",
    "going+notify": "Going to every date + remind me",
    "interested": "Interested in every date",
    "not_going": "Not going to any date",
}


def series_announcement(
    event: Event,
    counts: Counts,
    zone: str,
    ics: bytes,
    following: list[Event],
    cancelled: list[Event],
    waiting: int = 0,
) -> Post:
    """A series' one post, showing its next date `event`: the buttons answer that date,
    the menu every date (those stored later too)."""
    post = announcement(event, counts, zone, ics, following, waiting, cancelled)
    post.text = (
        f"**RSVP for {time_tag(event.start, 'D')}:** {counts_line(counts, event.capacity, waiting)}"
        "\n_The buttons answer this date; the menu answers every date._"
    )
    post.selects = [every_date_select(event)]
    return post


def every_date_select(event: Event) -> Select:
    options = [SelectOption(label, answer) for answer, label in EVERY_DATE.items()]
    return Select("event.rsvp_all", options, "Answer for every date…", value=str(event.id))


def series_over(last: Event, zone: str, ics: bytes) -> Post:
    """A series with no date ahead: cancelled (as a whole, or every date left), or over."""
    if last.cancelled:
        post = announcement(last, Counts(), zone, ics)
        post.text = "**This series has been cancelled.** Its reminders are cancelled too."
        return post
    return Post(
        title=f"📅 {inert(last.title)}",
        url=last.url,
        text="**This series is over.** Thank you to everyone who came.",
        fields=listing_fields(last),
        footer=f"Event #{last.id} · the series' calendar: open the attached .ics",
        attachments=[Attachment(f"event-{last.id}.ics", ics, "text/calendar")],
        color=CANCELLED_COLOR,
        zone=zone,
    )


def answered(event: Event, answer: str, said: Answer) -> Post:
    """The private reply to an RSVP button: noted, or on the waiting list with the place."""
    title = inert(event.title)
    on = f" on {time_tag(event.start, 'D')}" if event.series_uid else ""
    if said.status == "waiting":
        return Post(text=f"**{title}**{on} is full ({event.capacity} going): you're on the"
                         f" waiting list, number {said.place}. If a place comes free you move"
                         " up, and I'll tell you by direct message.")  # fmt: skip
    label = RSVP_LABELS[answer].lower()
    extra = " I'll send you the last reminder as a direct message." if "+" in answer else ""
    return Post(text=f"Noted: {label} for **{title}**{on}.{extra} "
                     "Change it any time; /event mine lists yours.")  # fmt: skip


def answered_all(event: Event, answer: str, answered: list[tuple[Event, Answer]]) -> Post:
    """The private reply to a series' menu: every date noted, the full ones' places."""
    lines = [f"Noted: {EVERY_DATE[answer].lower()} of **{inert(event.title)}**:"
             f" {len(answered)} date{'s' if len(answered) > 1 else ''} ahead, and the dates"
             " added later get the same answer."]  # fmt: skip
    for date_ahead, said in answered:
        if said.status == "waiting":
            lines.append(f"- {time_tag(date_ahead.start, 'D')} is full: you're number"
                         f" {said.place} on its waiting list (I'll tell you by direct message"
                         " if you move up).")  # fmt: skip
    lines.append("One date at a time: the buttons on the announcement or on a reminder.")
    return Post(text="\n".join(lines))


def moved_up(event: Event, zone: str) -> Post:
    """The direct message to a member moved up from the waiting list."""
    return Post(
        title=f"🎟️ You have a place: {inert(event.title)}",
        url=event.url,
        text=f"A place came free at **{inert(event.title)}** ({time_tag(event.start, 'F')})"
        " and you were next on the waiting list: you're now going."
        "\nCan't make it after all? Answer Not going on the announcement, so the next one"
        " moves up.",
        fields=listing_fields(event)[1:],
        footer=f"Event #{event.id}",
        color=EVENT_COLOR,
        zone=zone,
    )
