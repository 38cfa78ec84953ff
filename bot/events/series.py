"""Series typed in chat (`/event add … repeat=weekly|monthly|"RRULE:…"`): one announcement,
one stored occurrence per date, extended as time passes.

A series keeps its next dates stored (at most `import_max_occurrences` ahead, within
`import_horizon`), each with its own reminders, RSVPs and waiting list; a daily job
stores the dates that come within reach, each made from the latest date stored. Every
date's UID is the series' UID and its slot, so storing a date twice is impossible and
the job may run as often as it likes. The series' one announcement shows its next date
(the service moves it on as each date begins): its buttons answer that date, its menu
every date, and an answer for every date is kept for the dates stored later.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from bot import timeutil
from bot.errors import UsageError
from bot.events import rules
from bot.events.drafts import Draft
from bot.events.series_store import Series
from bot.events.service import Outcome, _new_uid
from bot.events.store import Event
from bot.events.waitlist import Answer
from bot.model import UserRef, time_tag
from bot.scheduler import ANY_LATENESS, Job

if TYPE_CHECKING:
    from bot.events.service import EventService
    from bot.model import ChannelRef

log = logging.getLogger(__name__)

EXTEND_KIND = "event.series"
EXTEND_KEY = "event:series:extend"
EXTEND_AT = time(3, 0)  # UTC: the daily job stores the dates that came within reach
MADE_BY = "series"


def draft_of(event: Event) -> Draft:
    """A stored date as the draft the next dates are made from."""
    return Draft(
        title=event.title, start=event.start, tz=event.tz, end=event.end,
        location=event.location, url=event.url, organiser=event.organiser,
        description=event.description, remind=list(event.remind), capacity=event.capacity,
    )  # fmt: skip


class SeriesService:
    def __init__(self, service: EventService, horizon: timedelta, max_occurrences: int) -> None:
        self.service = service
        self.app = service.app
        self.events = service.store
        self.store = service.series_store
        self.horizon = horizon
        self.max_occurrences = max_occurrences

    def register_jobs(self) -> None:
        self.app.scheduler.handle(EXTEND_KIND, self._extend_job, grace=ANY_LATENESS)

    async def start(self) -> None:
        """Catch up on what came within reach while the bot was down; arm the daily job
        and each date's move-on (dates stored before series moved on: none was armed)."""
        await self.extend_all()
        await self._arm_daily()
        for event in await self.events.upcoming(self.app.clock.now()):
            await self.service.arm_next(event)

    # --- Making dates -----------------------------------------------------------------

    async def create(
        self,
        community_id: int,
        channel: ChannelRef,
        draft: Draft,
        rule: str,
        created_by: str,
        announce_at: datetime | None = None,
    ) -> Outcome:
        """Store the series and its first dates, then announce it (now or later) once."""
        now = self.app.clock.now()
        series = Series(0, community_id, _new_uid(), rule, draft.start, draft.tz)
        series = await self.store.create(series, now)
        made, notes = await self._store_dates(series, draft, channel, created_by, announce_at)
        head = made[0]
        notes += await self.service.announce_when(head, announce_at)
        notes.append(f"{len(made)} date(s) stored ahead, more added as time passes")
        await self._arm_daily()
        log.info("series %s created by %s: %s (%s)", series.uid, created_by, draft.title, rule)
        return Outcome(head, notes)

    async def extend(self, series: Series) -> list[Event]:
        """Store the dates now within reach, made from the latest one stored."""
        stored = await self.events.occurrences(series.community_id, series.uid)
        if not stored:
            return []
        latest = stored[-1]
        made, _ = await self._store_dates(series, draft_of(latest), latest.channel, MADE_BY)
        if made:
            await self.service.refresh(made[0].id)  # its post names the new dates
        return made

    async def extend_all(self) -> int:
        made = 0
        for series in await self.store.live():
            made += len(await self.extend(series))
        if made:
            log.info("series: %d date(s) stored as they came within reach", made)
        return made

    async def _store_dates(
        self,
        series: Series,
        template: Draft,
        channel: ChannelRef,
        created_by: str,
        announce_at: datetime | None = None,
    ) -> tuple[list[Event], list[str]]:
        """The rule's dates from now to the horizon not stored yet, while fewer than the
        most to keep are ahead; each answered as members answered every date. Returns them
        and the first one's notes (its reminders already past)."""
        now = self.app.clock.now()
        stored = await self.events.occurrences(series.community_id, series.uid)
        known = {e.uid for e in stored}
        room = self.max_occurrences - len([e for e in stored if not e.cancelled and e.start > now])
        made: list[Event] = []
        notes: list[str] = []
        length = template.end - template.start if template.end else None
        after = max(now, series.start - timedelta(seconds=1))
        reach = max(now + self.horizon, series.start)  # a series far ahead: its first date
        for slot in rules.dates(series.rule, series.start, series.tz, after, reach):
            if len(made) >= room:
                break
            uid = rules.occurrence_uid(series.uid, slot)
            if uid in known:
                continue
            draft = replace(template, start=slot, end=slot + length if length else None)
            outcome = await self.service.create(
                series.community_id, channel, draft, created_by, announce_at=announce_at,
                uid=uid, series=(series.uid, series.rule), announce=False,
            )  # fmt: skip
            if outcome is None:  # stored meanwhile
                continue
            made.append(outcome.event)
            notes = notes or outcome.notes
            await self._answer_as_standing(series, outcome.event)
        return made, notes

    async def _answer_as_standing(self, series: Series, event: Event) -> None:
        for standing in await self.store.standing(series.id):
            await self.service.waitlist.answer(
                event, standing.member, standing.status, standing.notify
            )

    async def _extend_job(self, job: Job) -> None:
        await self.extend_all()
        await self._arm_daily()

    async def _arm_daily(self) -> None:
        """Once a day while some series is live (none: no job at all)."""
        if not await self.store.live():
            return
        now = self.app.clock.now()
        due = datetime.combine(now.astimezone(UTC).date(), EXTEND_AT, UTC)
        if due <= now:
            due += timedelta(days=1)
        await self.app.scheduler.schedule(EXTEND_KEY, EXTEND_KIND, due)

    # --- Answers for every date -------------------------------------------------------

    async def answer_all(
        self, event: Event, member: UserRef, status: str, notify: bool
    ) -> list[tuple[Event, Answer]]:
        """Answer every date ahead of `event`'s series, and the dates stored later."""
        now = self.app.clock.now()
        series = await self.store.by_uid(event.community_id, event.series_uid)
        if series is not None:
            await self.store.stand(series.id, member, status, notify, now)
        answered = []
        for date_ahead in await self.events.series(event.community_id, event.series_uid, now):
            if date_ahead.start > now:
                answer = await self.service.waitlist.answer(date_ahead, member, status, notify)
                answered.append((date_ahead, answer))
        await self.service.refresh(event.id)
        return answered

    # --- Cancelling -------------------------------------------------------------------

    async def cancel_date(self, event: Event, day: date) -> Event:
        """Cancel the series' date on local `day` (stored first if it is still beyond reach,
        so that it is never stored as on)."""
        now = self.app.clock.now()
        stored = await self.events.occurrences(event.community_id, event.series_uid)
        found = [
            e for e in stored if day in (_day(e.start, e.tz), _day(rules.slot_of(e.uid), e.tz))
        ]
        if not found:
            found = [await self._store_beyond_reach(event, stored, day)]
        occurrence = found[0]
        shown = timeutil.format_local(occurrence.start, occurrence.tz, "f")
        if occurrence.cancelled:
            raise UsageError(f"The date of {shown} is already cancelled.", "date")
        if occurrence.start <= now:
            raise UsageError(f"The date of {shown} has already begun.", "date")
        await self.service.cancel(occurrence)
        return occurrence

    async def _store_beyond_reach(self, event: Event, stored: list[Event], day: date) -> Event:
        series = await self.store.by_uid(event.community_id, event.series_uid)
        slot = None if series is None else rules.on_day(series.rule, series.start, series.tz, day)
        if series is None or slot is None:
            ahead = [e for e in stored if e.start > self.app.clock.now() and not e.cancelled]
            dates = ", ".join(time_tag(e.start, "d") for e in ahead[:5]) or "none ahead"
            raise UsageError(f"The series of event #{event.id} has no date on {day:%d %b %Y}.",
                             "date", f"Its next dates: {dates}.")  # fmt: skip
        template = stored[-1]
        length = template.end - template.start if template.end else None
        draft = replace(draft_of(template), start=slot, end=slot + length if length else None)
        outcome = await self.service.create(
            series.community_id, template.channel, draft, MADE_BY,
            uid=rules.occurrence_uid(series.uid, slot), series=(series.uid, series.rule),
            announce=False,
        )  # fmt: skip
        assert outcome is not None  # not among those stored
        return outcome.event

    async def cancel_all(self, event: Event) -> int:
        """Cancel the whole series: every date ahead, and no more dates are stored."""
        now = self.app.clock.now()
        series = await self.store.by_uid(event.community_id, event.series_uid)
        if series is not None:
            await self.store.cancel(series.id, now)
            if not await self.store.live():
                await self.app.scheduler.cancel(EXTEND_KEY)
        cancelled = 0
        for date_ahead in await self.events.series(event.community_id, event.series_uid, now):
            if date_ahead.start > now and await self.service.cancel(date_ahead):
                cancelled += 1
        await self.service.refresh(event.id)
        log.info("series %s cancelled: %d date(s) ahead", event.series_uid, cancelled)
        return cancelled


def _day(moment: datetime | None, tz: str) -> date | None:
    return None if moment is None else timeutil.local(moment, tz).date()
