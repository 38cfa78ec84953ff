"""The weekly community digest: the week across feeds, polls, events and the daily prompt,
in one post, in every channel of the community on every platform at once.

Moderators set the day, time and zone (`/digest schedule`), look at it any time
(`/digest preview`, privately) and stop it (`/digest off`). Members choose to be named in
it (`/digest named yes`) and to share a prompt answer in it (`/digest share`).

Posted once a week, whatever happens: the job is keyed by community and ISO week, the
week's post is kept as first built, and each channel's post has an outbox key naming the
week, so a restart, or a crash in the middle of queuing the channels, queues nothing twice
and the channels all get the same text. A run that fails tries again a little later.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from bot import commands as cmd
from bot.app import Context, Feature
from bot.communities import Community
from bot.digest.gather import Gatherer
from bot.digest.members import MemberChoices
from bot.digest.render import digest_post
from bot.digest.store import MIGRATIONS, DigestStore, Schedule
from bot.digest.timing import WEEKDAYS, Weekly
from bot.errors import UsageError
from bot.model import ChannelRef, Ephemeral, Post, channel_tag, time_tag
from bot.prompts.schedule import parse_time
from bot.scheduler import Job
from bot.timeutil import utc_from_ts

log = logging.getLogger(__name__)

KIND = "digest.weekly"
GRACE = timedelta(hours=12)  # a digest missed during downtime is still posted this late
RETRY = timedelta(minutes=5)  # after a run that failed part-way
DEFAULT_AT = time(9, 0)


def job_prefix(community_id: int) -> str:
    return f"digest:{community_id}:"  # the colon: community 1 never matches 12


def job_key(community_id: int, week: str) -> str:
    return f"{job_prefix(community_id)}{week}"


def post_key(community_id: int, week: str, channel: ChannelRef) -> str:
    return f"{job_key(community_id, week)}:{channel.key}"


class Digest(Feature):
    name = "digest"
    migrations = MIGRATIONS

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.store = DigestStore(app.db)
        self.gatherer = Gatherer(app, self.store)
        self.members = MemberChoices(app, self.store)

    def register(self) -> None:
        add = self.app.command
        add(cmd.Command(
            ("digest", "schedule"), "Post the weekly digest on this day and time", self.schedule,
            moderator=True,
            options=[
                cmd.Option("day", cmd.Kind.CHOICE, "day of the week", choices=WEEKDAYS),
                cmd.Option("time", description="local time of day, like 09:00",
                           form="a time of day: 09:00, 9am or 17:15"),
                cmd.Option("tz", description="time zone, like Europe/London"),
            ],
            examples=["/digest schedule day=mon time=09:00 tz=Europe/London"],
        ))  # fmt: skip
        add(cmd.Command(("digest", "preview"), "See this week's digest now (only you)",
                        self.preview, moderator=True))  # fmt: skip
        add(cmd.Command(("digest", "off"), "Stop the weekly digest", self.off,
                        moderator=True))  # fmt: skip
        self.members.register()
        self.app.scheduler.handle(KIND, self._on_week, GRACE, skipped=self._week_skipped)

    async def start(self) -> None:
        now = self.app.clock.now()
        for schedule in await self.store.active_schedules():
            await self.arm(schedule, now)

    async def covers(self, community_id: int) -> bool:
        """Whether the weekly digest is on for a community (the daily prompt's own weekly
        digest gives way to it)."""
        schedule = await self.store.schedule(community_id)
        return schedule is not None and schedule.active

    # --- Moderator commands ----------------------------------------------------------

    async def schedule(
        self, ctx: Context, day: str | None = None, time: str | None = None, tz: str | None = None
    ) -> Ephemeral:
        current = await self.store.schedule(ctx.community.id)
        if day is None and time is None and tz is None:
            if current is None or not current.active:
                raise UsageError(
                    "There is no weekly digest yet.",
                    hint="Set one: /digest schedule day=mon time=09:00",
                )
            return await self._status(ctx, current, "The weekly digest.")
        was = current.weekly if current else Weekly(0, DEFAULT_AT, ctx.tz)
        weekly = Weekly(
            WEEKDAYS.index(day) if day else was.weekday,
            parse_time(time) if time else was.at,
            tz or (was.tz if current else ctx.tz),
        )
        saved = await self.store.save_schedule(ctx.community.id, weekly, ctx.channel, ctx.user,
                                               ctx.now)  # fmt: skip
        await self.app.scheduler.cancel_prefix(job_prefix(ctx.community.id))
        await self.arm(saved, ctx.now)
        return await self._status(ctx, saved, "The weekly digest is on.")

    async def preview(self, ctx: Context) -> Ephemeral:
        schedule = await self.store.schedule(ctx.community.id)
        tz = schedule.weekly.tz if schedule else ctx.tz
        post = await self.build(ctx.community, ctx.now, tz)
        if post is None:
            return Ephemeral(Post(text=(
                "Nothing to tell yet: this week has no feed posts, closed polls or surveys, "
                "upcoming events, prompt streaks or shared answers."
            )))  # fmt: skip
        when = ""
        if schedule is not None and schedule.active:
            when = f" It is next posted {time_tag(schedule.weekly.next_after(ctx.now), 'f')}."
        post.footer = f"Preview: only you see this, as of now.{when}"
        return Ephemeral(post)

    async def off(self, ctx: Context) -> Ephemeral:
        switched = await self.store.switch_off(ctx.community.id, ctx.now)
        await self.app.scheduler.cancel_prefix(job_prefix(ctx.community.id))
        if not switched:
            return Ephemeral(Post(text="The weekly digest was not on."))
        return Ephemeral(Post(text=(
            "The weekly digest is off. Turn it on again with /digest schedule day=mon time=09:00"
        )))  # fmt: skip

    async def _status(self, ctx: Context, schedule: Schedule, headline: str) -> Ephemeral:
        community = await self.app.communities.get(schedule.community_id)
        due = schedule.weekly.next_after(ctx.now)
        lines = [
            headline,
            f"Posted {schedule.weekly.describe()}, {where(community, schedule, ctx.channel)}.",
            f"Next: {time_tag(due, 'f')}.",
            "See it now with /digest preview; stop it with /digest off.",
        ]
        return Ephemeral(Post(text="\n".join(lines), zone=schedule.weekly.tz))

    # --- The weekly job --------------------------------------------------------------

    async def arm(self, schedule: Schedule, after: datetime) -> None:
        """The job of the first week due after `after` (a week armed already stays)."""
        due = schedule.weekly.next_after(after)
        week = schedule.weekly.week_of(due)
        payload = {"community": schedule.community_id, "week": week, "rev": schedule.rev,
                   "due": due.timestamp()}  # fmt: skip
        await self.app.scheduler.schedule(job_key(schedule.community_id, week), KIND, due, payload)

    async def _current(self, job: Job) -> Schedule | None:
        schedule = await self.store.schedule(job.payload["community"])
        if schedule is None or not schedule.active or schedule.rev != job.payload["rev"]:
            log.info("digest: %s does not post: the schedule changed or stopped", job.key)
            return None
        return schedule

    async def _on_week(self, job: Job) -> None:
        schedule = await self._current(job)
        if schedule is None:
            return
        due = utc_from_ts(job.payload["due"]) or job.due_at
        try:
            await self.post_week(schedule, job.payload["week"], due)
        except Exception:
            # Posts already queued stay queued, once: the next try queues the rest.
            log.exception("digest: %s failed; trying again in %s", job.key, RETRY)
            retry_at = self.app.clock.now() + RETRY
            await self.app.scheduler.schedule(job.key, KIND, retry_at, job.payload)
            return
        await self.arm(schedule, max(self.app.clock.now(), due))

    async def _week_skipped(self, job: Job) -> None:
        schedule = await self._current(job)
        if schedule is not None:
            log.warning("digest: the digest of %s was too late to post", job.payload["week"])
            await self.arm(schedule, self.app.clock.now())

    async def post_week(self, schedule: Schedule, week: str, due: datetime) -> int:
        """Queue the week's digest in every channel of the community; return how many were
        queued now (0 for a week queued before, or with nothing to tell)."""
        community = await self.app.communities.get(schedule.community_id)
        post = await self.store.week(community.id, week)
        if post is None:
            built = await self.build(community, due, schedule.weekly.tz)
            if built is None:
                log.info("digest: nothing to tell in %s for community %s", week, community.id)
                return 0
            post = await self.store.keep_week(community.id, week, built, self.app.clock.now())
        queued = 0
        for channel in community.channels or [schedule.channel]:
            queued += await self.app.outbox.enqueue(channel, post, post_key(community.id, week,
                                                                            channel))  # fmt: skip
        log.info("digest: %s queued in %d channel(s)", week, queued)
        return queued

    async def build(self, community: Community, until: datetime, tz: str) -> Post | None:
        week = await self.gatherer.week(community, until, tz)
        return digest_post(week, await self._title(community), tz)

    async def _title(self, community: Community) -> str:
        """The community's name, or none for one the bot made itself for a workspace."""
        workspaces = await self.app.communities.workspaces(community.id)
        return "" if any(community.name == f"{p}:{w}" for p, w in workspaces) else community.name


def where(community: Community, schedule: Schedule, here: ChannelRef) -> str:
    """Where the digest goes, in words: channels of this platform by name, others counted."""
    channels = community.channels or [schedule.channel]
    local = [channel_tag(c) for c in channels if c.platform == here.platform]
    elsewhere = len(channels) - len(local)
    parts = [f"in {', '.join(local)}"] if local else []
    if elsewhere:
        platforms = sorted({c.platform.title() for c in channels if c.platform != here.platform})
        parts.append(f"{elsewhere} channel{'s' if elsewhere != 1 else ''} on "
                     f"{' and '.join(platforms)}")  # fmt: skip
    return " and ".join(parts)
