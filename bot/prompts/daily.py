"""Posting the daily prompt and keeping exactly one job armed per channel.

The outbox key `justdoit:{channel}:{local date}` makes a day's prompt post at most once,
whichever way it was asked for (the schedule, `/justdoit today`, a catch-up after a
restart). The job keys carry the schedule's revision, so a job armed before a pause or a
change never posts, and a re-armed day is a fresh job.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from bot.model import Button, ChannelRef, Post, inert
from bot.outbox import Outbox
from bot.prompts.bank import ADVICE, Prompt
from bot.prompts.schedule import Rule, format_days
from bot.prompts.store import PromptDay, PromptStore, Schedule
from bot.scheduler import Scheduler

log = logging.getLogger(__name__)

DAILY, DIGEST = "justdoit.daily", "justdoit.digest"
DIGEST_WEEKDAY = 0  # Mondays, at the schedule's time
PROMPT_COLOR = 0x2E8B57


def post_key(channel: ChannelRef, day: date) -> str:
    return f"justdoit:{channel.key}:{day.isoformat()}"


def daily_prefix(channel: ChannelRef) -> str:
    return f"justdoit:post:{channel.key}:"


def digest_prefix(channel: ChannelRef) -> str:
    return f"justdoit:digest:{channel.key}:"


def prompt_post(day: PromptDay, advice: str, zone: str) -> Post:
    """The prompt as members see it, with its "I did it" button."""
    text = inert(day.prompt.text)
    if advice in ADVICE:
        text += f"\n_{ADVICE[advice]}_"
    return Post(
        title=f"Just do it · {day.prompt.competency_name}",
        text=text,
        footer=f"Prompt of {day.day:%A %d %B %Y}. Done it? Press the button, or type "
        '/justdoit answer "what I did"',
        buttons=[Button("I did it", "justdoit.did", day.day.isoformat(), "primary")],
        color=PROMPT_COLOR,
        zone=zone,
    )


class Daily:
    """Posts a day's prompt and keeps one daily and one weekly job armed per channel.

    How late a job may still run is the scheduler's call (the feature's grace); these
    methods only say which job comes next.
    """

    def __init__(self, store: PromptStore, scheduler: Scheduler, outbox: Outbox) -> None:
        self.store = store
        self.scheduler = scheduler
        self.outbox = outbox

    async def post(
        self, channel: ChannelRef, day: date, community_id: int, bank: list[Prompt],
        scheduled: bool, zone: str, now: datetime,
    ) -> tuple[PromptDay, bool]:  # fmt: skip
        """Choose (once) and queue (once) the prompt of `day`; True if queued just now."""
        prompt_day, _ = await self.store.prompt_day(
            channel, day, community_id, bank, scheduled, now
        )
        advice = next((p.advice for p in bank if p.id == prompt_day.prompt.id), "")
        queued = await self.outbox.enqueue(
            channel, prompt_post(prompt_day, advice, zone), post_key(channel, day)
        )
        if queued:
            log.info("justdoit: queued the prompt of %s in %s", day, channel.key)
        return prompt_day, queued

    async def next_due(self, channel: ChannelRef) -> datetime | None:
        """When the channel's next daily prompt is due, if one is armed."""
        jobs = await self.scheduler.pending(daily_prefix(channel))
        return jobs[0].due_at if jobs else None

    async def arm(self, schedule: Schedule, now: datetime) -> None:
        """Leave exactly one pending daily job for the channel: the one already armed for
        the schedule's revision (due or overdue, the scheduler runs or skips it), else the
        next scheduled day after `now`; none while paused."""
        prefix = daily_prefix(schedule.channel)
        kept = None
        for job in await self.scheduler.pending(prefix):
            if kept is None and job.payload.get("rev") == schedule.rev:
                kept = job
            else:
                await self.scheduler.cancel(job.key)
        target = None if kept or schedule.paused else schedule.rule.next_after(now)
        if target is not None:
            day, due = target
            payload = {"channel": schedule.channel.key, "day": day.isoformat(), "rev": schedule.rev}
            await self.scheduler.schedule(
                f"{prefix}{day.isoformat()}:r{schedule.rev}", DAILY, due, payload
            )

    async def arm_digest(self, schedule: Schedule, now: datetime) -> None:
        """Keep one weekly digest job: the pending one, moved to the schedule's current
        time of day, or the next Monday after `now`."""
        pending = await self.scheduler.pending(digest_prefix(schedule.channel))
        for job in pending[1:]:
            await self.scheduler.cancel(job.key)
        if pending:
            key, day = pending[0].key, date.fromisoformat(pending[0].payload["day"])
        else:
            day, _ = schedule.rule.next_weekday_after(now, DIGEST_WEEKDAY)
            key = f"{digest_prefix(schedule.channel)}{day.isoformat()}"
        payload = {"channel": schedule.channel.key, "day": day.isoformat()}
        await self.scheduler.schedule(key, DIGEST, schedule.rule.moment(day), payload)


def describe(rule: Rule) -> str:
    return f"{rule.at:%H:%M} {rule.tz}, {format_days(rule.days)}"
