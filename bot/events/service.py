"""What happens to an event: created, announced, edited, cancelled, answered, reminded.

Commands, forms, the calendar import and the demo all come through here, so an event is
announced, edited in place and reminded the same way whichever door it came in by.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.errors import UserError
from bot.events import ical, render, render_series
from bot.events.drafts import Draft, check
from bot.events.mirror import EventMirror
from bot.events.series_store import Series, SeriesStore
from bot.events.store import Event, EventStore
from bot.events.waitlist import Answer, Waitlist
from bot.model import ChannelRef, Post, UserRef, inert
from bot.scheduler import ANY_LATENESS, Job
from bot.timeutil import format_duration

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

REMIND_KIND = "event.remind"
ANNOUNCE_KIND = "event.announce"
NEXT_KIND = "event.next"  # a series' date begins: its announcement moves on to the next


def post_key(event_id: int, channel: ChannelRef) -> str:
    return f"event:{event_id}:{channel.key}"


def remind_job_key(event_id: int, offset: timedelta) -> str:
    return f"event:{event_id}:remind:{format_duration(offset)}"


@dataclass
class Outcome:
    """What a change did, for the moderator's confirmation."""

    event: Event
    notes: list[str] = field(default_factory=list)


class EventService:
    def __init__(self, app: App) -> None:
        self.app = app
        self.store = EventStore(app.db)
        self._locks: dict[int, asyncio.Lock] = {}
        self._ics_cache: dict[int, tuple[int, bytes]] = {}
        self.waitlist = Waitlist(app)
        self.series_store = SeriesStore(app.db)
        self._series_ics: dict[str, tuple[tuple, bytes]] = {}
        self.mirror = EventMirror(app, self)  # the platforms' own calendar events

    def register_jobs(self, reminder_grace: timedelta) -> None:
        self.app.scheduler.handle(REMIND_KIND, self._remind, grace=reminder_grace)
        # However long the bot was down, an event not yet started is still worth announcing
        # (the job itself declines once the event has started).
        self.app.scheduler.handle(ANNOUNCE_KIND, self._announce_job, grace=ANY_LATENESS)
        self.app.scheduler.handle(NEXT_KIND, self._next_job, grace=ANY_LATENESS)

    # --- Changes -------------------------------------------------------------------------

    async def create(
        self,
        community_id: int,
        channel: ChannelRef,
        draft: Draft,
        created_by: str,
        announce_at: datetime | None = None,
        uid: str = "",
        series: tuple[str, str] = ("", ""),
        announce: bool = True,
    ) -> Outcome | None:
        """Store, arm reminders, announce (now or later). None if `uid` already exists.

        `series` (its UID and RRULE) marks an occurrence of a repeating event; only one
        occurrence of a series is announced (`announce`), the others are reminded in turn."""
        now = self.app.clock.now()
        event = Event(
            id=0, community_id=community_id, uid=uid or _new_uid(), channel=channel,
            title=draft.title, start=draft.start, end=draft.end, tz=draft.tz,
            location=draft.location, url=draft.url, organiser=draft.organiser,
            description=draft.description, remind=draft.remind, announce_at=announce_at,
            series_uid=series[0], series_rule=series[1], capacity=draft.capacity,
        )  # fmt: skip
        stored = await self.store.create(event, created_by, now)
        if stored is None:
            return None
        outcome = Outcome(stored, await self._arm_reminders(stored))
        await self.arm_next(stored)
        if announce:  # one occurrence of a series: the series is announced once, by the caller
            outcome.notes += await self.announce_when(stored, announce_at)
        log.info("event %d created by %s: %s", stored.id, created_by, stored.title)
        return outcome

    async def announce_when(self, event: Event, announce_at: datetime | None) -> list[str]:
        """Announce now, or schedule the announcement for `announce_at`."""
        if announce_at is not None and announce_at > self.app.clock.now():
            await self.app.scheduler.schedule(
                f"event:{event.id}:announce", ANNOUNCE_KIND, announce_at, {"event": event.id}
            )
            return ["announcement scheduled"]
        await self.announce(event)
        return []

    async def update(self, event: Event) -> Outcome:
        """Write the edited event, move its reminders and edit its announcements."""
        stored = await self.store.update(event, self.app.clock.now())
        notes = await self._arm_reminders(stored)
        await self.arm_next(stored)
        notes += await self._capacity_notes(stored)
        if stored.series_uid:
            notes.append("only this date of the series changed")
            if await self.series_store.by_uid(stored.community_id, stored.series_uid):
                notes[-1] += "; the dates stored later are made from the latest one"
        if await self._announce_before_start(stored):
            notes.append("announced now: the new start is before the planned announcement")
        await self.refresh(stored.id)
        await self.mirror.request(stored.id)
        return Outcome(stored, notes)

    async def _announce_before_start(self, event: Event) -> bool:
        """A start moved before a delayed announcement: announce now rather than never."""
        key = f"event:{event.id}:announce"
        pending = await self.app.scheduler.pending(key)
        if not pending or pending[0].due_at < event.start:
            return False
        await self.app.scheduler.cancel(key)
        await self.announce(event)
        return True

    async def cancel(self, event: Event) -> bool:
        if not await self.store.cancel(event.id, self.app.clock.now()):
            return False
        await self.app.scheduler.cancel_prefix(f"event:{event.id}:")
        await self.refresh(event.id)
        await self.mirror.request(event.id)
        log.info("event %d cancelled", event.id)
        return True

    async def rsvp(self, event: Event, member: UserRef, status: str, notify: bool) -> Post | None:
        """Record the answer; return the announcement as it now reads."""
        return (await self.answer(event, member, status, notify))[1]

    async def answer(
        self, event: Event, member: UserRef, status: str, notify: bool
    ) -> tuple[Answer, Post | None]:
        """Record the answer (a full event's waiting list takes "going"), move up whoever
        a freed place goes to; return what stands and the announcement as it now reads."""
        answer = await self.waitlist.answer(event, member, status, notify)
        return answer, await self.refresh(event.id)

    async def _capacity_notes(self, event: Event) -> list[str]:
        """After an edit: places a raised (or removed) limit frees go to those waiting;
        a limit below those going keeps them going, and the moderator hears so."""
        moved = await self.waitlist.fill(event)
        notes = [f"{moved} member(s) moved up from the waiting list and told"] if moved else []
        going = (await self.store.counts(event.id)).going
        if event.capacity is not None and going > event.capacity:
            notes.append(f"{going} are already going, more than the capacity of"
                         f" {event.capacity}: they stay going, and \"Going\" now joins the"
                         " waiting list until fewer are going")  # fmt: skip
        return notes

    async def import_calendar(
        self,
        data: bytes,
        community_id: int,
        channel: ChannelRef,
        created_by: str,
        tz: str,
        max_remind: timedelta,
        default_remind: list[timedelta],
        horizon: timedelta = ical.HORIZON,
        max_occurrences: int = ical.MAX_OCCURRENCES,
    ) -> ImportReport:
        """Add every upcoming event of an iCalendar document (each occurrence of a repeating
        one within `horizon`); known UIDs are left alone.

        A repeating event is announced once, by its first occurrence added (its post names
        the next dates), unless an occurrence of that series was already known; every
        occurrence keeps its own reminders and RSVPs."""
        report = ImportReport()
        now = self.app.clock.now()
        # Parsing a full-size calendar takes seconds of CPU: keep it off the event loop.
        parsed = await asyncio.to_thread(ical.parse, data, tz, now, horizon, max_occurrences)
        announced: set[str] = set()  # series with an announced (or known) occurrence
        firsts: list[Event] = []  # the occurrence that announces each new series
        for item in parsed:
            draft = item.draft
            if item.left_out:
                report.left_out.append(f"{draft.title or item.uid}: {item.left_out}")
            known = await self.store.by_uid(community_id, item.uid)
            if known:
                if item.series:
                    await self.store.join_series(known.id, item.series, item.rule)
                    if known.start > now:  # its series is already announced
                        announced.add(item.series)
                report.known += 1
                continue
            if draft.start <= now:
                report.past += 1
                continue
            usable = [o for o in draft.remind if timedelta(0) < o <= max_remind]
            draft.remind = usable or list(default_remind)
            try:
                draft = check(draft, now, max_remind)
            except UserError as exc:
                report.invalid.append(f"{draft.title or item.uid}: {exc.message}")
                continue
            outcome = await self.create(
                community_id, channel, draft, created_by, uid=item.uid,
                series=(item.series, item.rule), announce=not item.series,
            )  # fmt: skip
            if outcome is None:
                report.known += 1
                continue
            report.added.append(outcome.event)
            if item.series and item.series not in announced:
                announced.add(item.series)
                firsts.append(outcome.event)
        for event in firsts:  # after its later dates are stored, so that it names them
            await self.announce(event)
        log.info("calendar import into %s: %s", channel.key, report.summary().splitlines()[0])
        return report

    # --- Posts ---------------------------------------------------------------------------

    async def announce(self, event: Event) -> None:
        channels = await self.app.communities.linked(event.channel)
        await self.store.add_posts(event.id, channels)
        await self.mirror.request(event.id)  # asked for first: a crash after still mirrors
        post = await self.announcement(event)
        for channel in channels:
            await self.app.outbox.enqueue(channel, post, post_key(event.id, channel))

    async def announcement(self, event: Event) -> Post:
        if event.series_uid:
            return await self._series_announcement(event)
        counts = await self.store.counts(event.id)
        zone = await self._zone(event)
        waiting = await self.waitlist.store.count(event.id)
        return render.announcement(event, counts, zone, self._ics(event), waiting=waiting)

    async def _series_announcement(self, event: Event) -> Post:
        """The one post of a series, as its next date stands: that date's WHEN, counts and
        buttons, the dates after it (and those cancelled), a menu answering every date."""
        now = self.app.clock.now()
        every = await self.store.occurrences(event.community_id, event.series_uid)
        series = await self.series_store.by_uid(event.community_id, event.series_uid)
        ahead = [e for e in every if e.start > now]
        scheduled = [e for e in ahead if not e.cancelled]
        zone = await self._zone(event)
        if not scheduled or (series is not None and series.cancelled):
            last = (ahead or every or [event])[-1]
            return render_series.series_over(last, zone, self._series_file(series, every, last))
        shown = scheduled[0]
        counts = await self.store.counts(shown.id)
        waiting = await self.waitlist.store.count(shown.id)
        cancelled = [e for e in ahead if e.cancelled]
        return render_series.series_announcement(
            shown, counts, zone, self._series_file(series, every, shown), scheduled[1:],
            cancelled, waiting,
        )  # fmt: skip

    def _series_file(self, series: Series | None, every: list[Event], shown: Event) -> bytes:
        """A series typed in chat: one VEVENT with its RRULE and EXDATEs (kept until one
        of its dates changes); an imported one: the date shown, as its calendar has it."""
        if series is None:
            return self._ics(shown)
        made_from = (series.state, *((e.id, e.sequence, e.state) for e in every))
        cached = self._series_ics.get(series.uid)
        if cached is None or cached[0] != made_from:
            cached = (made_from, ical.export_series(series, every, self.app.clock.now()))
            self._series_ics[series.uid] = cached
        return cached[1]

    def _ics(self, event: Event) -> bytes:
        """The event's own .ics; kept until the event changes (RSVPs do not change it)."""
        cached = self._ics_cache.get(event.id)
        if cached is None or cached[0] != event.sequence:
            cached = (event.sequence, ical.export([event], self.app.clock.now()))
            self._ics_cache[event.id] = cached
        return cached[1]

    async def refresh(self, event_id: int) -> Post | None:
        """Edit every announcement of this event to its current state and counts.

        The read and the edit happen under one lock per event, so the last edit queued
        always carries counts read after the last change: concurrent clicks end exact.
        """
        event = await self.store.get(event_id)
        if event is not None:  # a series' date: the series' one post speaks for it
            event_id = await self._announced_as(event)
        lock = self._locks.setdefault(event_id, asyncio.Lock())
        async with lock:
            event = await self.store.get(event_id)
            if event is None:
                return None
            post = await self.announcement(event)
            for channel in await self.store.posts(event_id):
                await self.app.outbox.edit(post_key(event_id, channel), post)
            return post

    async def is_announcement(self, event_id: int, channel: ChannelRef, message_id: str) -> bool:
        if not message_id:
            return False
        event = await self.store.get(event_id)
        if event is not None:
            event_id = await self._announced_as(event)
        return await self.app.outbox.message_id(post_key(event_id, channel)) == message_id

    # --- Reminders -----------------------------------------------------------------------

    async def _arm_reminders(self, event: Event) -> list[str]:
        """One job per offset, due at the UTC start minus the offset; report skipped ones.

        The start is already UTC (read in the event's own zone when typed), so subtracting
        an offset is exact across daylight-saving changes.
        """
        now = self.app.clock.now()
        notes = []
        wanted = set()
        for offset in event.remind:
            key = remind_job_key(event.id, offset)
            due = event.start - offset
            if due <= now:
                await self.app.scheduler.cancel(key)
                notes.append(f"{format_duration(offset)} reminder skipped: that moment has passed")
                continue
            wanted.add(key)
            payload = {"event": event.id, "offset": int(offset.total_seconds())}
            await self.app.scheduler.schedule(key, REMIND_KIND, due, payload)
        for job in await self.app.scheduler.pending(f"event:{event.id}:remind:"):
            if job.key not in wanted:
                await self.app.scheduler.cancel(job.key)
        return notes

    async def _remind(self, job: Job) -> None:
        event = await self.store.get(int(job.payload["event"]))
        now = self.app.clock.now()
        if event is None or event.cancelled:
            log.info("reminder %s skipped: event gone or cancelled", job.key)
            return
        if now >= event.start:
            log.warning("reminder %s skipped: event %d has already started", job.key, event.id)
            return
        offset = timedelta(seconds=job.payload["offset"])
        zone = await self._zone(event)
        channels = await self.store.posts(event.id) or await self.app.communities.linked(
            event.channel
        )
        key = f"event:{event.id}:remind:{format_duration(offset)}@{int(job.due_at.timestamp())}"
        post = render.reminder(event, offset, zone)
        announced = await self._announced_as(event)
        posted = set(await self.store.posts(announced))
        for channel in channels:
            # In the announcement's thread, where there is one: the channel stays quiet.
            parent = post_key(announced, channel) if channel in posted else ""
            reply = replace(post, thread_of=parent)
            await self.app.outbox.enqueue(channel, reply, f"{key}:{channel.key}")
        if offset == event.final_offset:
            # Those going who asked to be reminded hear it privately, once each (the key
            # names the member, so a restart or a second run never sends it twice).
            private = render.direct_reminder(event, offset, zone)
            for member in await self.store.to_notify(event.id):
                direct = ChannelRef.direct(member)
                await self.app.outbox.enqueue(direct, private, f"{key}:{direct.key}")

    async def _announced_as(self, event: Event) -> int:
        """The id whose announcement speaks for the event: its own, or its series' head's."""
        if event.series_uid:
            head = await self.store.series_head(event.community_id, event.series_uid)
            return head.id if head else event.id
        return event.id

    async def arm_next(self, event: Event) -> None:
        """A series' date: when it begins, its announcement moves on to the next date."""
        if event.series_uid and event.start > self.app.clock.now():
            key = f"event:{event.id}:next"
            await self.app.scheduler.schedule(key, NEXT_KIND, event.start, {"event": event.id})

    async def _next_job(self, job: Job) -> None:
        await self.refresh(int(job.payload["event"]))
        await self.mirror.request(int(job.payload["event"]))  # the next date gets its own

    async def _announce_job(self, job: Job) -> None:
        event = await self.store.get(int(job.payload["event"]))
        if event is None or event.cancelled:
            return
        if self.app.clock.now() >= event.start:
            log.warning("announcement of event %d skipped: it has already started", event.id)
            return
        await self.announce(event)

    async def _zone(self, event: Event) -> str:
        return (await self.app.communities.get(event.community_id)).timezone


def _new_uid() -> str:
    return f"{secrets.token_hex(8)}@itsm-bot"


@dataclass
class ImportReport:
    added: list[Event] = field(default_factory=list)
    known: int = 0
    past: int = 0
    invalid: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # "title: N" more occurrences

    def summary(self) -> str:
        """The report as markup: every title and problem came from the calendar, so inert."""
        lines = [f"Added {len(self.added)} event(s)."]
        dates: dict[str, list[Event]] = {}  # a series' occurrences: one line for them all
        for event in self.added:
            if event.series_uid in dates:
                dates[event.series_uid].append(event)
                continue
            dates[event.series_uid or f"#{event.id}"] = [event]
        for first, *later in dates.values():
            line = f"- #{first.id} {inert(first.title)}"
            if later:
                line += (f" and {len(later)} more date(s) of the series"
                         f" (#{later[0].id}–#{later[-1].id}), announced once")  # fmt: skip
            lines.append(line)
        if self.known:
            lines.append(f"{self.known} already known (same UID), left as they are.")
        if self.past:
            lines.append(f"{self.past} already started or over, skipped.")
        lines += [f"Skipped: {inert(problem)}" for problem in self.invalid]
        lines += [f"Repeats; later occurrences left out: {inert(cut)}" for cut in self.left_out]
        return "\n".join(lines)
