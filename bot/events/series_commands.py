"""What members type for series and capacity: `repeat=`, `until=`, `count=` and
`capacity=` on /event add, `capacity=` on /event edit, `/event cancel ID date=…`, and the
series' "every date" menu. Each reads the input, then hands it to `series` or the service;
every bad input is a UsageError naming the option, raised before anything is stored.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot import commands as cmd
from bot import timeutil
from bot.errors import UsageError, UserError
from bot.events import render, render_series, rules
from bot.events.drafts import CLEAR, Draft
from bot.events.service import Outcome
from bot.events.store import Event
from bot.model import ChannelRef, Ephemeral, Post, UpdateMessage, inert

if TYPE_CHECKING:
    from bot.app import Context
    from bot.events import Events
    from bot.model import Action

log = logging.getLogger(__name__)

K = cmd.Kind
SERIES = [
    cmd.Option(
        "repeat",
        description='weekly, monthly or an iCalendar rule ("RRULE:FREQ=…")',
        max_length=rules.RULE_MAX,
    ),
    cmd.Option("until", description="with repeat: the last day it may fall on (2027-06-30)"),
    cmd.Option("count", K.INT, "with repeat: how many dates in all", min_value=1, max_value=1000),
]
CAPACITY = cmd.Option(
    "capacity", K.INT, "how many may go; then a waiting list", min_value=1, max_value=100_000
)
CAPACITY_MAX_DIGITS = 6


async def add_series(
    feature: Events,
    ctx: Context,
    where: ChannelRef,
    draft: Draft,
    repeat: str,
    until: str | None,
    count: int | None,
    announce: datetime | None,
) -> Outcome:
    """/event add with `repeat=`: the draft (already checked) becomes a series."""
    rule, first = rules.parse(repeat, until, count, draft.start, draft.tz, ctx.now)
    moved = first != draft.start
    if moved:  # the rule's first date comes after the start typed (BYDAY=1TH…)
        length = draft.end - draft.start if draft.end else None
        draft = replace(draft, start=first, end=first + length if length else None)
    outcome = await feature.series.create(
        ctx.community.id, where, draft, rule, ctx.user.key, announce
    )
    note = f"repeats {render.repeat_words(rule) or 'as its rule says'}"
    if moved:
        note += f"; its first date is {render.own_time(first, draft.tz)}, the rule's first"
    outcome.notes.insert(0, note)
    return outcome


def refuse_ends_alone(until: str | None, count: int | None) -> None:
    """`until` or `count` without `repeat`: nothing to end."""
    if until is None and count is None:
        return
    option = "until" if until is not None else "count"
    raise UsageError(f"`{option}` goes with `repeat`.", option,
                     "Example: repeat=weekly until=2027-06-30, or repeat=monthly count=6.")  # fmt: skip


async def cancel_date(feature: Events, ctx: Context, event: Event, text: str) -> Ephemeral:
    """/event cancel ID date=…: one date of the series `event` belongs to."""
    if not event.series_uid:
        raise UsageError(f"Event #{event.id} does not repeat.", "date",
                         f"/event cancel {event.id} cancels it.")  # fmt: skip
    try:
        day = timeutil.local(timeutil.parse_when(text, event.tz, ctx.now), event.tz).date()
    except ValueError as exc:
        raise UsageError(f"`date`: {inert(str(exc))}", "date",
                         "Give the day, like date=2026-12-17.") from None  # fmt: skip
    cancelled = await feature.series.cancel_date(event, day)
    return Ephemeral(Post(text=f"**{inert(cancelled.title)}** of "
                               f"{render.own_time(cancelled.start, cancelled.tz)} is cancelled:"
                               " its reminders are off, and the series' announcement lists it"
                               " as cancelled. The other dates stand."))  # fmt: skip


async def cancel_series(feature: Events, event: Event) -> Ephemeral:
    """/event cancel ID on a date of a series: the whole series."""
    if not await feature.series.cancel_all(event):
        raise UsageError(f"The series of event #{event.id} has no date ahead to cancel.", "id")
    return Ephemeral(Post(text=f"The series **{inert(event.title)}** is cancelled: every date"
                               " ahead and its reminders are off, and its announcement says"
                               " so."))  # fmt: skip


async def rsvp_all(feature: Events, ctx: Context, action: Action) -> list[Any]:
    """The series' menu: one answer for every date ahead, and those stored later."""
    service = feature.service
    answer = action.values[0] if action.values else ""
    if not action.value.isdigit() or answer not in render_series.EVERY_DATE:
        raise UserError("That choice is not one I know.")
    event = await service.store.get(int(action.value), ctx.community.id)
    if event is None or not event.series_uid:
        raise UserError("That series no longer exists.")
    status, _, notify = answer.partition("+")
    answered = await feature.series.answer_all(event, ctx.user, status, bool(notify))
    if not answered:
        raise UserError(f"**{inert(event.title)}** has no date ahead to answer.")
    replies: list[Any] = []
    post = await service.refresh(event.id)
    if post and await service.is_announcement(event.id, ctx.channel, ctx.message_id):
        replies.append(UpdateMessage(post))
    replies.append(Ephemeral(render_series.answered_all(event, answer, answered)))
    return replies


def capacity(text: str | None, current: int | None) -> int | None:
    """`capacity=` on /event edit: a number, or none (or -) for no limit."""
    if text is None:
        return current
    if text.strip().lower() in ("none", CLEAR):
        return None
    digits = text.strip()
    if not digits.isdigit() or len(digits) > CAPACITY_MAX_DIGITS:
        raise UsageError(f"`capacity`: `{inert(text)}` is not a number of places.", "capacity",
                         "Give a number like capacity=40, or capacity=none for no limit.")  # fmt: skip
    return int(digits)
