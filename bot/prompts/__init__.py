"""The daily BRM "just do it" prompt: one small practice a day, and what members did.

Moderators set a channel's schedule (time, zone, weekdays, skip dates); the bot posts one
prompt a day through the outbox, rotating through the six competencies without repeats;
members answer with a button or `/justdoit answer`, keep streaks, and get a weekly digest.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot import commands as cmd
from bot.app import Context, Feature
from bot.config import Duration, Section
from bot.errors import UsageError
from bot.model import ChannelRef, Ephemeral, Post, channel_tag, inert, time_tag
from bot.prompts import cli as prompts_cli
from bot.prompts.bank import COMPETENCIES, Prompt, load_bank
from bot.prompts.daily import DAILY, DIGEST, Daily, describe, digest_prefix
from bot.prompts.habit import digest_post
from bot.prompts.members import Members
from bot.prompts.reminders import Reminders
from bot.prompts.schedule import parse_date, parse_days, parse_time
from bot.prompts.store import MIGRATIONS, PromptStore, Schedule
from bot.prompts.suggestions import Suggestions
from bot.scheduler import Job

log = logging.getLogger(__name__)

DEFAULT_DAYS = "mon-fri"


class JustDoItSettings(Section):
    prompts: str = ""  # a prompts file; empty means the bundled config/prompts.toml
    grace: Duration = Duration(hours=6)  # how late a missed prompt may still be posted
    demo_time: str = "08:30"


def _channel_option() -> cmd.Option:
    return cmd.Option("channel", cmd.Kind.CHANNEL, "the channel (default: this one)")


class JustDoIt(Feature):
    name = "justdoit"
    migrations = MIGRATIONS
    Settings = JustDoItSettings
    cli = prompts_cli.group

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.store = PromptStore(app.db)
        self.bank: list[Prompt] = load_bank(self.settings.prompts or None)
        self.daily = Daily(self.store, app.scheduler, app.outbox)
        self.members = Members(self)
        self.reminders = Reminders(self)
        self.suggestions = Suggestions(app, self.store)

    def register(self) -> None:
        add, mod = self.app.command, True
        competency = cmd.Option(
            "competency",
            cmd.Kind.CHOICE,
            "one of the six competencies",
            choices=tuple(COMPETENCIES),
        )
        add(cmd.Command(
            ("justdoit", "schedule"), "Set when the daily prompt is posted in a channel",
            self.schedule, moderator=mod,
            options=[
                cmd.Option("time", description="local time of day, like 08:30", positional=True,
                           form="a time of day: 08:30, 8am or 17:15"),
                cmd.Option("tz", description="time zone, like Europe/London"),
                cmd.Option("days", description="mon-fri, mon,wed,fri, daily or weekends",
                           form="days of the week: a range (mon-fri), a list (mon,wed,fri), "
                                "daily or weekends"),
                _channel_option(),
            ],
            examples=["/justdoit schedule time=08:30 tz=Europe/London days=mon-fri"],
        ))  # fmt: skip
        add(cmd.Command(
            ("justdoit", "skip"), "Skip (or with undo, restore) dates such as holidays",
            self.skip, moderator=mod,
            options=[
                cmd.Option("dates", description="dates like 2026-12-25", required=True,
                           positional=True, many=True,
                           form="one or more dates written 2026-12-25, separated by spaces"),
                cmd.Option("undo", cmd.Kind.BOOL, "post on these dates again", default=False),
                _channel_option(),
            ],
            examples=["/justdoit skip 2026-12-25 2026-12-26"],
        ))  # fmt: skip
        add(cmd.Command(("justdoit", "pause"), "Stop the daily prompt until resumed",
                        self.pause, options=[_channel_option()], moderator=mod))  # fmt: skip
        add(cmd.Command(("justdoit", "resume"), "Start the daily prompt again",
                        self.resume, options=[_channel_option()], moderator=mod))  # fmt: skip
        add(cmd.Command(("justdoit", "today"), "Post today's prompt now (once a day)",
                        self.today, options=[_channel_option()], moderator=mod))  # fmt: skip
        add(cmd.Command(
            ("justdoit", "answer"), "Tell the channel what you did for today's prompt",
            self.members.answer,
            options=[
                cmd.Option("what", description="what you did", required=True, positional=True,
                           max_length=500),
                competency,
            ],
            examples=['/justdoit answer "Thanked the service desk analyst by name"'],
        ))  # fmt: skip
        add(cmd.Command(("justdoit", "stats"), "Your streak and answers, and the community's",
                        self.members.stats))  # fmt: skip
        add(cmd.Command(
            ("justdoit", "remind"), "A direct message at your own time if you have not answered",
            self.reminders.remind,
            options=[
                cmd.Option("at", description="your local time of day, like 08:30, or off",
                           positional=True, form="a time of day (08:30, 8am) or off"),
            ],
            examples=["/justdoit remind 08:30", "/justdoit remind off"],
        ))  # fmt: skip
        add(cmd.Command(
            ("justdoit", "suggest"), "Suggest a prompt for the bank (moderators review it)",
            self.suggestions.suggest,
            options=[
                cmd.Option("prompt", description="the prompt", required=True, positional=True,
                           max_length=280),
                competency,
            ],
            examples=['/justdoit suggest "Ask a customer what a good day looks like" '
                      "competency=develop-relationships"],
        ))  # fmt: skip
        add(cmd.Command(("justdoit", "export"), "Download every answer as CSV",
                        self.members.export, moderator=mod))  # fmt: skip
        add(cmd.Command(
            ("justdoit", "settings"), "Show answers publicly or keep them private; weekly digest",
            self.channel_settings, moderator=mod,
            options=[
                cmd.Option("answers", cmd.Kind.CHOICE, "public or private",
                           choices=("public", "private")),
                cmd.Option("digest", cmd.Kind.BOOL, "post a weekly digest"),
                _channel_option(),
            ],
            examples=["/justdoit settings answers=private digest=yes"],
        ))  # fmt: skip
        self.members.register()
        self.suggestions.register()
        self.reminders.register()
        grace = self.settings.grace
        self.app.scheduler.handle(DAILY, self._on_daily, grace, skipped=self._daily_skipped)
        self.app.scheduler.handle(DIGEST, self._on_digest, grace, skipped=self._digest_skipped)

    async def start(self) -> None:
        now = self.app.clock.now()
        for schedule in await self.store.schedules():
            await self.daily.arm(schedule, now)
            await self.daily.arm_digest(schedule, now)
        await self.reminders.start()

    async def seed_demo(self, channel: ChannelRef) -> None:
        if await self.store.schedule(channel) is not None:
            return
        community = await self.app.communities.of(channel)
        now = self.app.clock.now()
        days = parse_days(DEFAULT_DAYS)
        await self.store.save_schedule(
            channel, community.id, self.settings.demo_time, community.timezone, days, now
        )
        await self._rearm(channel)

    # --- Shared helpers ------------------------------------------------------------------

    async def bank_for(self, community_id: int) -> list[Prompt]:
        return self.bank + await self.suggestions.approved_prompts(community_id)

    async def local_today(
        self, channel: ChannelRef, default_zone: str, now: datetime
    ) -> tuple[date, str]:
        """The channel's date at `now` and its zone: the schedule's, else `default_zone`."""
        schedule = await self.store.schedule(channel)
        zone = schedule.rule.tz if schedule else default_zone
        return now.astimezone(ZoneInfo(zone)).date(), zone

    async def answers_private(self, channel: ChannelRef) -> bool:
        return (
            await self.app.settings.get(f"justdoit:{channel.key}", "answers", "public") == "private"
        )

    async def _rearm(self, channel: ChannelRef) -> Schedule:
        schedule = await self.store.schedule(channel)
        assert schedule is not None
        now = self.app.clock.now()
        await self.daily.arm(schedule, now)
        await self.daily.arm_digest(schedule, now)
        return schedule

    async def _existing(self, ctx: Context, channel: ChannelRef | None) -> Schedule:
        target = channel or ctx.channel
        schedule = await self.store.schedule(target)
        if schedule is None:
            raise UsageError(
                f"{_which(ctx, target)} has no daily prompt schedule.",
                hint="Set one first: /justdoit schedule time=08:30",
            )
        return schedule

    async def _status(self, schedule: Schedule, headline: str) -> Ephemeral:
        next_due = await self.daily.next_due(schedule.channel)
        lines = [headline, f"Schedule: {describe(schedule.rule)}"]
        if schedule.paused:
            lines.append("Paused: no prompt until /justdoit resume.")
        elif next_due:
            lines.append(f"Next prompt: {time_tag(next_due, 'f')}")
        today = schedule.rule.local_day(self.app.clock.now())
        skips = sorted(d for d in schedule.rule.skips if d >= today)
        if skips:
            lines.append("Skipping: " + ", ".join(d.isoformat() for d in skips))
        return Ephemeral(Post(text="\n".join(lines), zone=schedule.rule.tz))

    # --- Moderator commands --------------------------------------------------------------

    async def schedule(
        self, ctx: Context, time: str | None = None, tz: str | None = None,
        days: str | None = None, channel: ChannelRef | None = None,
    ) -> Ephemeral:  # fmt: skip
        target = channel or ctx.channel
        current = await self.store.schedule(target)
        if time is None and tz is None and days is None:
            if current is None:
                raise UsageError(
                    f"{_which(ctx, target)} has no daily prompt schedule yet.",
                    hint="Set one: /justdoit schedule time=08:30 days=mon-fri",
                )
            return await self._status(current, f"The daily prompt in {channel_tag(target)}.")
        at = parse_time(time) if time else (current.rule.at if current else None)
        if at is None:
            raise UsageError("Give the time of day: time=08:30.", option="time")
        zone = tz or (current.rule.tz if current else ctx.tz)
        weekdays = (
            parse_days(days)
            if days
            else (current.rule.days if current else parse_days(DEFAULT_DAYS))
        )
        community = await self.app.communities.of(target)
        await self.store.save_schedule(
            target, community.id, f"{at:%H:%M}", zone, weekdays, ctx.now, by=ctx.user
        )
        schedule = await self._rearm(target)
        return await self._status(
            schedule, f"The daily prompt in {channel_tag(target)} is scheduled."
        )

    async def skip(
        self, ctx: Context, dates: list[str], undo: bool = False, channel: ChannelRef | None = None
    ) -> Ephemeral:
        schedule = await self._existing(ctx, channel)
        days = sorted({parse_date(d) for d in dates})
        today = schedule.rule.local_day(ctx.now)
        past = [d for d in days if d < today]
        if past and not undo:
            raise UsageError(
                f"{past[0].isoformat()} is in the past.", option="dates",
                hint="Skip dates from today on.",
            )  # fmt: skip
        if undo:
            await self.store.remove_skips(schedule.channel, days)
        else:
            await self.store.add_skips(schedule.channel, days)
        await self.store.touch(schedule.channel, ctx.now)
        schedule = await self._rearm(schedule.channel)
        listed = ", ".join(d.isoformat() for d in days)
        verb = "will post again on" if undo else "will skip"
        return await self._status(schedule, f"The daily prompt {verb} {listed}.")

    async def pause(self, ctx: Context, channel: ChannelRef | None = None) -> Ephemeral:
        return await self._set_paused(ctx, channel, True)

    async def resume(self, ctx: Context, channel: ChannelRef | None = None) -> Ephemeral:
        return await self._set_paused(ctx, channel, False)

    async def _set_paused(
        self, ctx: Context, channel: ChannelRef | None, paused: bool
    ) -> Ephemeral:
        schedule = await self._existing(ctx, channel)
        await self.store.set_paused(schedule.channel, paused, ctx.now)
        schedule = await self._rearm(schedule.channel)
        done = "Paused" if paused else "Resumed"
        return await self._status(
            schedule, f"{done} the daily prompt in {channel_tag(schedule.channel)}."
        )

    async def today(self, ctx: Context, channel: ChannelRef | None = None) -> Ephemeral:
        target = channel or ctx.channel
        schedule = await self.store.schedule(target)
        community = await self.app.communities.of(target)
        zone = schedule.rule.tz if schedule else community.timezone
        day = ctx.now.astimezone(ZoneInfo(zone)).date()
        scheduled = schedule.rule.is_scheduled(day) if schedule else True
        prompt_day, queued = await self.daily.post(
            target, day, community.id, await self.bank_for(community.id), scheduled, zone, ctx.now
        )
        if queued:
            return Ephemeral(Post(text=f"Posted today's prompt in {channel_tag(target)}."))
        return Ephemeral(Post(
            text=f"Today's prompt is already posted in {channel_tag(target)} "
            f"(it posts once a day):\n_{inert(prompt_day.prompt.text)}_"
        ))  # fmt: skip

    async def channel_settings(
        self, ctx: Context, answers: str | None = None, digest: bool | None = None,
        channel: ChannelRef | None = None,
    ) -> Ephemeral:  # fmt: skip
        target = channel or ctx.channel
        scope = f"justdoit:{target.key}"
        if answers is not None:
            await self.app.settings.set(scope, "answers", answers)
        if digest is not None:
            await self.app.settings.set(scope, "digest", digest)
        shown = await self.app.settings.get(scope, "answers", "public")
        weekly = await self.app.settings.get(scope, "digest", True)
        return Ephemeral(Post(text=(
            f"Answers in {channel_tag(target)} are **{shown}**"
            + (" (only the member sees them)." if shown == "private" else " (posted in the channel).")
            + f"\nWeekly digest: **{'on' if weekly else 'off'}**."
        )))  # fmt: skip

    # --- Jobs ----------------------------------------------------------------------------

    async def _on_daily(self, job: Job) -> None:
        schedule = await self.store.schedule(ChannelRef.parse(job.payload["channel"]))
        if schedule is None:
            return
        if schedule.rev == job.payload["rev"]:
            await self._post_scheduled(schedule, date.fromisoformat(job.payload["day"]))
        else:  # a crash between a schedule change and its re-arm
            log.info("justdoit: %s does not post: the schedule changed since", job.key)
        await self.daily.arm(schedule, max(self.app.clock.now(), job.due_at))

    async def _daily_skipped(self, job: Job) -> None:
        """Too late for that day's prompt: post a later day still within the grace, if
        any, and arm the next."""
        schedule = await self.store.schedule(ChannelRef.parse(job.payload["channel"]))
        if schedule is None:
            return
        log.warning("justdoit: dropped the prompt of %s in %s",
                    job.payload["day"], schedule.channel.key)  # fmt: skip
        now = self.app.clock.now()
        latest = schedule.rule.latest_until(now)
        if (
            schedule.rev == job.payload["rev"]
            and latest is not None
            and now - latest[1] <= self.settings.grace
        ):
            await self._post_scheduled(schedule, latest[0])
        await self.daily.arm(schedule, now)

    async def _post_scheduled(self, schedule: Schedule, day: date) -> None:
        bank = await self.bank_for(schedule.community_id)
        await self.daily.post(
            schedule.channel, day, schedule.community_id, bank, True, schedule.rule.tz,
            self.app.clock.now(),
        )  # fmt: skip

    async def _digest_skipped(self, job: Job) -> None:
        schedule = await self.store.schedule(ChannelRef.parse(job.payload["channel"]))
        if schedule is not None:
            await self.daily.arm_digest(schedule, self.app.clock.now())

    async def _folded(self, community_id: int) -> bool:
        """Whether the community's weekly digest is on: it carries the prompt's week (streak
        leaders, answers shared), so the prompt's own digest would say it twice."""
        digest = self.app.features.get("digest")
        return digest is not None and await digest.covers(community_id)

    async def _on_digest(self, job: Job) -> None:
        channel = ChannelRef.parse(job.payload["channel"])
        schedule = await self.store.schedule(channel)
        if schedule is None:
            return
        day = date.fromisoformat(job.payload["day"])
        scope = f"justdoit:{channel.key}"
        now = self.app.clock.now()
        if await self.app.settings.get(scope, "digest", True) and not await self._folded(
            schedule.community_id
        ):
            week_start = day - timedelta(days=7)
            answers = await self.store.channel_answers(channel, week_start, day)
            post = digest_post(
                answers, week_start, await self.answers_private(channel), schedule.rule.tz
            )
            if post is not None:
                await self.app.outbox.enqueue(channel, post, f"{digest_prefix(channel)}{day}")
        await self.daily.arm_digest(schedule, max(now, job.due_at))


def _which(ctx: Context, channel: ChannelRef) -> str:
    """A channel named in an error: errors are made inert, so no channel marker fits."""
    return "This channel" if channel == ctx.channel else "That channel"
