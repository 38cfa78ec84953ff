"""Polls that run themselves: posted later (`opens=`), asked again each week or month
(`repeat=`, until `/poll stop` or `runs=`), with a reminder by direct message (`remind=`).

Every step is a scheduler job keyed by the run it is for (`poll:7:open`, `poll:7:remind`),
and every step is safe to run twice, so a restart before, during or after its moment does
it once: the run's message and each reminder have outbox keys of their own, and the next
period's run is found again by its number rather than made again.

Who is reminded: the members of the poll's channels who have not voted yet, as the
platform lists them (Slack `conversations.members`, the console's members). Where the
platform will not tell (Discord, without the privileged members intent the bot does not
ask for; Slack without the scope), a repeating poll falls back on those who voted in its
previous run but not yet in this one. An anonymous poll does
not know who voted and refuses `remind=`. The reminder goes out `remind` before the run
closes, so a poll that does not repeat needs `closes=`; every run of a repeating poll closes
(at its own `closes` or when the next run opens), so that moment is always known.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.errors import UsageError
from bot.model import ChannelRef, time_tag
from bot.polls import render
from bot.polls.series import PERIOD_WORDS, Repeat, Series, TrendPoint, member, opening
from bot.polls.store import Run
from bot.scheduler import ANY_LATENESS, Job
from bot.timeutil import duration_words, format_duration

if TYPE_CHECKING:
    from bot.polls.polls import Polls

log = logging.getLogger(__name__)

TREND_RUNS = 8  # runs a trend shows in chat, the latest
OPEN, REMIND = "poll.open", "poll.remind"


@dataclass
class Plan:
    """When a new poll opens and closes, and how it repeats, checked."""

    opens: datetime | None  # None: it is posted now
    first: datetime  # when its first run opens
    closes: datetime | None  # its own deadline, as given
    repeat: Repeat | None
    runs: int | None
    remind: timedelta | None
    first_closes: datetime | None  # when its first run closes (a repeating poll's always do)

    @property
    def length(self) -> timedelta | None:
        """How long each run is open when a repeating poll has its own `closes`."""
        return self.closes - self.first if self.closes and self.repeat else None


def plan(
    opens: datetime | None,
    closes: datetime | None,
    repeat: Repeat | None,
    runs: int | None,
    remind: timedelta | None,
    anonymous: bool,
    now: datetime,
    zone: str,
) -> Plan:
    """The schedule of a new poll, or a UsageError saying what is wrong with it."""
    if opens is not None and opens <= now:
        raise UsageError(
            "That opening time is in the past.", option="opens", hint="Try opens=2h or a date."
        )
    first = opens or now
    if closes is not None and closes <= first:
        raise UsageError(
            "`closes` must be after `opens`: the poll would close before it is posted.",
            option="closes",
        )
    if repeat is None:
        _refuse_without_repeat(runs, remind, closes)
        if remind is not None and closes is not None:
            _check_remind(remind, closes - first, anonymous)
        return Plan(opens, first, closes, None, None, remind, closes)
    second = opening(repeat, zone, first, 2)
    if closes is not None and closes > second:
        raise UsageError(
            f"A {repeat} poll's run must close by the time the next one opens "
            f"({time_tag(second, 'f')}).",
            option="closes",
            hint="Leave `closes` out to close each run when the next one opens.",
        )
    if remind is not None:
        _check_remind(remind, (closes or second) - first, anonymous)
    return Plan(opens, first, closes, repeat, runs, remind, closes or second)


def _refuse_without_repeat(
    runs: int | None, remind: timedelta | None, closes: datetime | None
) -> None:
    if runs is not None:
        raise UsageError(
            "`runs` counts the runs of a repeating poll.",
            option="runs",
            hint="Add repeat=weekly or repeat=monthly.",
        )
    if remind is not None and closes is None:
        raise UsageError(
            "`remind` goes out that long before the poll closes, and this poll never closes.",
            option="remind",
            hint="Add closes=, e.g. closes=3d remind=1d.",
        )


def _check_remind(remind: timedelta, open_for: timedelta, anonymous: bool) -> None:
    if anonymous:
        raise UsageError(
            "An anonymous poll does not know who voted, so it cannot remind anyone.",
            option="remind",
        )
    if remind <= timedelta(0) or remind >= open_for:
        raise UsageError(
            f"`remind={format_duration(remind)}` must be shorter than a run is open "
            f"({duration_words(open_for)}).",
            option="remind",
        )


def created_text(run: Run, plan: Plan, series: Series | None, where: str) -> str:
    """What the creator is told: when the poll appears, how it repeats, who is reminded."""
    if plan.opens is None:
        lines = [f"Poll #{run.id} is posted in {where}."]
    else:
        lines = [
            f"Poll #{run.id} will be posted in {where} {time_tag(plan.opens, 'f')} "
            f"({time_tag(plan.opens, 'R')})."
        ]
    if series is not None:
        lines.append(_repeat_text(series))
    if plan.remind is not None:
        each = "each run closes" if series is not None else "it closes"
        lines.append(
            f"{duration_words(plan.remind).capitalize()} before {each}, the channel's members "
            "who have not voted yet get a direct message, once."
        )
    if series is not None:
        lines.append(f"Stop it with `/poll stop {run.id}`; close one run with `/poll close`.")
    elif plan.opens is not None:
        lines.append(f"Cancel it before then with `/poll close {run.id}`.")
    else:
        lines.append(f"Close it with `/poll close {run.id}`.")
    return "\n".join(lines)


def _repeat_text(series: Series) -> str:
    period = PERIOD_WORDS[series.repeat]
    closes = (
        f"each run closes {duration_words(series.length)} after it opens"
        if series.length
        else "each run closes when the next opens"
    )
    count = f"{series.runs} runs in all" if series.runs else "until it is stopped"
    return (
        f"It runs again every {period}, the next run {time_tag(series.opening(2), 'f')}; "
        f"{closes}; {count}. Each run is tallied apart, and its results show the trend."
    )


class Schedule:
    """The jobs of scheduled and repeating polls, for the Polls feature."""

    def __init__(self, polls: Polls) -> None:
        self.polls = polls
        self.app = polls.app

    def register(self) -> None:
        # A poll comes out however late its opening is (unless its whole run went by while
        # the bot was down); a reminder hours late is still worth it, one days late is not.
        self.app.scheduler.handle(OPEN, self._open_job, grace=ANY_LATENESS)
        self.app.scheduler.handle(REMIND, self._remind_job)

    async def arm_opening(self, run_id: int, opens: datetime) -> None:
        await self.app.scheduler.schedule(_key(run_id, "open"), OPEN, opens, {"run": run_id})

    async def cancel(self, run_id: int) -> None:
        """Cancel a run not yet posted: it never will be."""
        await self.app.scheduler.cancel(_key(run_id, "open"))
        await self.polls.store.cancel(run_id, self.app.clock.now())

    async def stop(self, series: Series) -> Run | None:
        """No further runs: the next period's run is cancelled; the one open stays open
        until it closes. Returns that open run, if any."""
        await self.polls.series.stop(series.id, self.app.clock.now())
        for waiting in await self.polls.series.waiting(series.id):
            await self.cancel(waiting.id)
        return await self.polls.series.current(series.id)

    async def trend(self, run: Run) -> list[TrendPoint] | None:
        if run.series_id is None:
            return None
        return await self.polls.series.trend(run, TREND_RUNS)

    # --- Opening -------------------------------------------------------------------------

    async def _open_job(self, job: Job) -> None:
        await self.open(int(job.payload["run"]))

    async def open(self, run_id: int) -> list[ChannelRef]:
        """Post a run now (or again: every part is idempotent) and, for a repeating poll,
        make the next period's run. Returns the channels it is posted in."""
        run = await self.polls.store.get(run_id)
        if run is None or run.closed_at is not None:
            log.info("poll %s: cancelled or closed before it opened", run_id)
            return []
        series = await self.polls.series.get(run.series_id) if run.series_id else None
        now = self.app.clock.now()
        if run.opened_at is None and not await self._may_open(run, series, now):
            return []
        await self.polls.store.opened(run_id, now)
        run = await self.polls.store.get(run_id)
        if run is None or run.opened_at is None:  # cancelled while the checks ran
            return []
        channels = await self._channels(run)
        question = await self.polls.question(run_id)
        self.polls.forget(run_id)
        post = render.poll_post(run, question, {}, 0, False)
        await self.polls.publish(run_id, channels, post, run.closes_at)
        if series is not None:
            await self._arm_reminder(run, series, now)
            await self._next(run, series, now)
        log.info("poll %s posted in %d channel(s)", run_id, len(channels))
        return channels

    async def _may_open(self, run: Run, series: Series | None, now: datetime) -> bool:
        """A run not yet posted is posted unless its series was stopped or its whole run
        went by while the bot was down (then the series goes on with the next period)."""
        if series is not None and series.stopped_at is not None:
            await self.cancel(run.id)
            return False
        if run.closes_at is not None and run.closes_at <= now:
            log.warning("poll %s: its run ended while the bot was down; not posted", run.id)
            await self.cancel(run.id)
            if series is not None:
                await self._next(run, series, now)
            return False
        return True

    async def _channels(self, run: Run) -> list[ChannelRef]:
        if run.everywhere:
            return await self.app.communities.linked(run.channel)
        return [run.channel]

    async def _next(self, run: Run, series: Series, now: datetime) -> None:
        """Make the next period's run and arm its opening; a period that would already be
        over is skipped."""
        number = (run.series_run or 0) + 1
        while series.has_period(number) and series.closing(number) <= now:
            number += 1
        if not series.has_period(number):
            log.info("poll series %s: its last run is posted", series.id)
            return
        questions = [await self.polls.question(run.id)]
        opens = series.opening(number)
        next_id = await self.polls.series.run_for(
            run, questions, number, opens, series.closing(number), now
        )
        await self.arm_opening(next_id, opens)

    # --- Reminding -----------------------------------------------------------------------

    async def _arm_reminder(self, run: Run, series: Series, now: datetime) -> None:
        if series.remind is None or run.closes_at is None:
            return
        due = run.closes_at - series.remind
        if due <= now:  # a month shorter than the reminder is early: this run has none
            log.info("poll %s: its reminder would come before it opened; none", run.id)
            return
        await self.app.scheduler.schedule(_key(run.id, "remind"), REMIND, due, {"run": run.id})

    async def remind_at(self, run_id: int, due: datetime) -> None:
        """Arm the reminder of a poll that does not repeat (a series arms its runs' own)."""
        await self.app.scheduler.schedule(_key(run_id, "remind"), REMIND, due, {"run": run_id})

    async def _remind_job(self, job: Job) -> None:
        run = await self.polls.store.get(int(job.payload["run"]))
        if run is None or run.anonymous or not run.is_open(self.app.clock.now()):
            return
        missing = await self._not_voted(run)
        post = render.poll_reminder_post(run, await self.polls.question(run.id))
        for key in sorted(missing):
            direct = ChannelRef.direct(member(key))
            # The key names the run and the member: each member hears it once, ever.
            await self.app.outbox.enqueue(direct, post, f"{_key(run.id, 'remind')}:{key}")
        log.info("poll %s: reminded %d member(s)", run.id, len(missing))

    async def _not_voted(self, run: Run) -> set[str]:
        """Member keys to remind: the channels' members who have not voted, else (the
        platform will not list them) the previous run's voters who have not voted again."""
        voted = await self.polls.series.voters(run.id)
        listed = await self._listed(run)
        if listed is not None:
            return listed - voted
        previous = await self.polls.series.previous(run) if run.series_id else None
        if previous is None or previous.anonymous:
            log.info("poll %s: no member list and no previous run to remind of", run.id)
            return set()
        return await self.polls.series.voters(previous.id) - voted

    async def _listed(self, run: Run) -> set[str] | None:
        keys: set[str] | None = None
        for channel in await self._channels(run):
            members = await self.app.outbox.lanes.members(channel)
            if members is not None:
                keys = (keys or set()) | {m.key for m in members}
        return keys


def _key(run_id: int, what: str) -> str:
    return f"poll:{run_id}:{what}"
