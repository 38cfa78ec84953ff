"""Posting the daily prompt and keeping exactly one job armed per channel.

The outbox key `justdoit:{channel}:{local date}` makes a day's prompt post at most once,
whichever way it was asked for (the schedule, `/justdoit today`, a catch-up after a
restart). The job keys carry the schedule's revision, so a job armed before a pause or a
change never posts, and a re-armed day is a fresh job.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from bot.model import Button, ChannelRef, Post
from bot.outbox import Outbox
from bot.prompts.bank import ADVICE, Prompt
from bot.prompts.habit import safe
from bot.prompts.schedule import Rule, format_days
from bot.prompts.store import PromptDay, PromptStore, Schedule
from bot.scheduler import Job, Scheduler

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
    text = safe(day.prompt.text)
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
    """Arms, fires and catches up the per-channel daily and weekly jobs."""

    def __init__(
        self, store: PromptStore, scheduler: Scheduler, outbox: Outbox, grace: timedelta
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.outbox = outbox
        self.grace = grace

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

    async def is_posted(self, channel: ChannelRef, day: date) -> bool:
        return await self.outbox.state(post_key(channel, day)) is not None

    async def arm(
        self, schedule: Schedule, now: datetime, catch_up: bool = False,
        waited_since: datetime | None = None,
    ) -> datetime | None:  # fmt: skip
        """Leave exactly one pending daily job for the channel; return when it is due.

        With `catch_up` (at start-up, or when a job fired too late), the latest scheduled
        day that was waited for (a pending job, or `waited_since`, was due by then) and is
        still within the grace is armed and runs at once; older missed days are dropped
        with a log line.
        """
        prefix = daily_prefix(schedule.channel)
        pending = await self.scheduler.pending(prefix)
        waited = [job.due_at for job in pending] + ([waited_since] if waited_since else [])
        rule = schedule.rule
        target: tuple[date, datetime] | None = None
        if not schedule.paused:
            latest = rule.latest_until(now) if catch_up else None
            if (
                latest is not None
                and now - latest[1] <= self.grace
                and any(due <= latest[1] for due in waited)
                and not await self.is_posted(schedule.channel, latest[0])
            ):
                target = latest
            else:
                target = rule.next_after(now)
        target_key = f"{prefix}{target[0].isoformat()}:r{schedule.rev}" if target else ""
        for job in pending:
            if job.key == target_key:
                continue
            if job.due_at <= now:
                log.warning(
                    "justdoit: dropped the prompt of %s in %s (due %s, now %s)",
                    job.payload.get("day"), schedule.channel.key, job.due_at, now,
                )  # fmt: skip
            await self.scheduler.cancel(job.key)
        if target is None:
            return None
        payload = {"channel": schedule.channel.key, "day": target[0].isoformat()}
        await self.scheduler.schedule(
            target_key, DAILY, target[1], {**payload, "rev": schedule.rev}
        )
        return target[1]

    async def arm_digest(self, schedule: Schedule, now: datetime) -> datetime:
        """Keep one weekly digest job: a pending one still within the grace, or the next."""
        prefix = digest_prefix(schedule.channel)
        pending = await self.scheduler.pending(prefix)
        day, due = schedule.rule.next_weekday_after(now, DIGEST_WEEKDAY)
        keep = next((j for j in pending if now - j.due_at <= self.grace), None)
        target_key = keep.key if keep else f"{prefix}{day.isoformat()}"
        for job in pending:
            if job.key != target_key:
                await self.scheduler.cancel(job.key)
        if keep is not None:
            day = date.fromisoformat(keep.payload["day"])
            due = schedule.rule.moment(day)  # follows a changed time or zone
        payload = {"channel": schedule.channel.key, "day": day.isoformat()}
        await self.scheduler.schedule(target_key, DIGEST, due, payload)
        return due

    @staticmethod
    def stale(job: Job, schedule: Schedule | None) -> str:
        """Why a fired daily job must not post, or '' if it may."""
        if schedule is None:
            return "the schedule is gone"
        if schedule.paused:
            return "the schedule is paused"
        if schedule.rev != job.payload.get("rev"):
            return "the schedule changed since it was armed"
        if not schedule.rule.is_scheduled(date.fromisoformat(job.payload["day"])):
            return "that day is no longer scheduled"
        return ""


def describe(rule: Rule) -> str:
    return f"{rule.at:%H:%M} {rule.tz}, {format_days(rule.days)}"
