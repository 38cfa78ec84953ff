"""The daily prompt's reminder: a direct message at the member's own local time.

A member opts in in the prompt's channel (`/justdoit remind 08:30`, `/justdoit remind off`).
Each day at that time in their zone (their own, Slack's, else the community's: see
bot/members.py) the bot looks at the channel's prompt of the day; if there is one and the
member has not answered it, it sends them a direct message, once. One job per member and
channel is armed at a time, in the scheduler's table, so a restart loses none; the message's
outbox key names the prompt's day, so neither a job run twice after a crash nor a zone
change that brings the time round again sends a second one for the same prompt.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from bot.app import Context
from bot.communities import member_of
from bot.errors import UsageError
from bot.model import ChannelRef, Ephemeral, Post, UserRef, channel_tag, inert, time_tag
from bot.prompts.schedule import Rule, parse_time
from bot.scheduler import Job

if TYPE_CHECKING:
    from bot.prompts import JustDoIt

log = logging.getLogger(__name__)

REMIND = "justdoit.remind"
GRACE = timedelta(hours=2)  # a reminder later than this is no reminder: the next day's waits
OFF_WORDS = frozenset({"off", "stop", "no", "none"})
EVERY_DAY = frozenset(range(7))
REMINDER_COLOR = 0x2E8B57


def job_prefix(channel: ChannelRef, member: UserRef) -> str:
    return f"justdoit:remind:{channel.key}:{member.key}:"


def message_key(channel: ChannelRef, member: UserRef, day: date) -> str:
    """One reminder per member per prompt (the channel's day, not the member's)."""
    return f"justdoit:reminded:{channel.key}:{member.key}:{day.isoformat()}"


class Reminders:
    def __init__(self, feature: JustDoIt) -> None:
        self.feature = feature
        self.app = feature.app
        self.db = feature.app.db

    def register(self) -> None:
        self.app.scheduler.handle(REMIND, self._on_due, GRACE, skipped=self._on_skipped)
        members = self.app.features.get("my")
        if members is not None:  # a member's new zone moves their reminders with it
            members.zones.listeners.append(self.member_moved)

    async def start(self) -> None:
        """Arm any reminder left without a pending job (one set before a crash mid-arm)."""
        for row in await self.db.fetchall("SELECT channel, member, at FROM justdoit_reminders"):
            member = member_of(row["member"])
            channel = ChannelRef.parse(row["channel"])
            if member is not None and not await self.app.scheduler.pending(
                job_prefix(channel, member)
            ):
                await self._arm(channel, member, parse_time(row["at"]))

    # --- The command ---------------------------------------------------------------------

    async def remind(self, ctx: Context, at: str | None = None) -> Ephemeral:
        if await self.feature.store.schedule(ctx.channel) is None:
            raise UsageError(
                "This channel has no daily prompt to be reminded of.",
                option="at",
                hint="Type /justdoit remind in the channel where the prompt is posted.",
            )
        if at is None:
            return Ephemeral(Post(text=await self._status(ctx)))
        if at.strip().lower() in OFF_WORDS:
            return Ephemeral(Post(text=await self._stop(ctx)))
        wall = parse_time(at)
        await self.db.execute(
            "INSERT INTO justdoit_reminders VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, member)"
            " DO UPDATE SET at = excluded.at, member_name = excluded.member_name",
            (ctx.channel.key, ctx.user.key, ctx.user.name, f"{wall:%H:%M}", ctx.now.timestamp()),
        )
        await self._arm(ctx.channel, ctx.user, wall)
        return Ephemeral(Post(text=await self._status(ctx)))

    async def _status(self, ctx: Context) -> str:
        wall = await self._wall(ctx.channel, ctx.user)
        if wall is None:
            return (
                f"No reminder of the daily prompt in {channel_tag(ctx.channel)}. "
                "Type /justdoit remind 08:30 for a direct message at 08:30 your time on the "
                "days you have not answered it yet."
            )
        zone = await self._zone(ctx.channel, ctx.user)
        jobs = await self.app.scheduler.pending(job_prefix(ctx.channel, ctx.user))
        when = f" Next: {time_tag(jobs[0].due_at, 'f')}." if jobs else ""
        said = (
            f"I will remind you of the daily prompt in {channel_tag(ctx.channel)} at "
            f"**{wall:%H:%M} {zone}** by direct message, on the days you have not answered it "
            f"by then.{when} /justdoit remind off stops it; /my timezone changes your zone."
        )
        return said + (await self._too_early(ctx.channel, jobs[0].due_at) if jobs else "")

    async def _too_early(self, channel: ChannelRef, due: datetime) -> str:
        """A warning when the reminder comes before the day's prompt is posted: it would
        look for a prompt that is not there yet, and so never remind of one."""
        schedule = await self.feature.store.schedule(channel)
        if schedule is None:
            return ""
        posted = schedule.rule.moment(schedule.rule.local_day(due))
        if due >= posted:
            return ""
        return (
            f"\n**That is before the prompt is posted** ({time_tag(posted, 't')}), so there "
            "would be no prompt of the day yet to remind you of: choose a later time."
        )

    async def _stop(self, ctx: Context) -> str:
        removed = await self.db.execute(
            "DELETE FROM justdoit_reminders WHERE channel = ? AND member = ?",
            (ctx.channel.key, ctx.user.key),
        )
        await self.app.scheduler.cancel_prefix(job_prefix(ctx.channel, ctx.user))
        where = channel_tag(ctx.channel)
        if not removed:
            return f"You had no reminder of the daily prompt in {where}."
        return f"No more reminders of the daily prompt in {where}."

    # --- Arming --------------------------------------------------------------------------

    async def member_moved(self, member: UserRef) -> None:
        """The member's zone changed: each of their reminders comes at the new local time."""
        rows = await self.db.fetchall(
            "SELECT channel, at FROM justdoit_reminders WHERE member = ?", (member.key,)
        )
        for row in rows:
            await self._arm(ChannelRef.parse(row["channel"]), member, parse_time(row["at"]))

    async def _arm(
        self, channel: ChannelRef, member: UserRef, wall: time, after: datetime | None = None
    ) -> None:
        """Leave one pending job: the next `wall` o'clock in the member's zone."""
        zone = await self._zone(channel, member)
        now = after or self.app.clock.now()
        found = Rule(wall, zone, EVERY_DAY).next_after(now)
        assert found is not None  # every day is a reminder day
        day, due = found
        prefix = job_prefix(channel, member)
        key = f"{prefix}{day.isoformat()}"
        for job in await self.app.scheduler.pending(prefix):
            if job.key != key:
                await self.app.scheduler.cancel(job.key)
        payload = {"channel": channel.key, "member": member.key, "at": f"{wall:%H:%M}"}
        await self.app.scheduler.schedule(key, REMIND, due, payload)

    async def _zone(self, channel: ChannelRef, member: UserRef) -> str:
        found = await self.app.member_zone(member) if self.app.member_zone else None
        return found or (await self.app.communities.of(channel)).timezone

    async def _wall(self, channel: ChannelRef, member: UserRef) -> time | None:
        at = await self.db.fetchval(
            "SELECT at FROM justdoit_reminders WHERE channel = ? AND member = ?",
            (channel.key, member.key),
        )
        return parse_time(at) if at else None

    # --- Jobs ----------------------------------------------------------------------------

    async def _on_due(self, job: Job) -> None:
        channel, member = ChannelRef.parse(job.payload["channel"]), member_of(job.payload["member"])
        if member is None:
            return
        wall = await self._wall(channel, member)
        if wall is None:  # turned off between the arming and now
            return
        await self._send_if_unanswered(channel, member)
        await self._arm(channel, member, wall, max(self.app.clock.now(), job.due_at))

    async def _on_skipped(self, job: Job) -> None:
        channel, member = ChannelRef.parse(job.payload["channel"]), member_of(job.payload["member"])
        wall = await self._wall(channel, member) if member else None
        if member is not None and wall is not None:
            log.info("justdoit: %s's reminder of %s came too late; the next is armed",
                     member.key, job.payload.get("at"))  # fmt: skip
            await self._arm(channel, member, wall)

    async def _send_if_unanswered(self, channel: ChannelRef, member: UserRef) -> None:
        store = self.feature.store
        today, _ = await self.feature.local_today(
            channel, (await self.app.communities.of(channel)).timezone, self.app.clock.now()
        )
        day = await store.find_day(channel, today)
        if day is None or await store.answer_of(day, member) is not None:
            return  # no prompt today, or it is answered: nothing to remind of
        zone = await self._zone(channel, member)
        post = Post(
            title="Just do it: today's prompt",
            text=f"_{inert(day.prompt.text)}_\nDone it? Answer in {channel_tag(channel)} with "
            'its I did it button, or type /justdoit answer "what I did" there.',
            footer=f"Your daily reminder ({zone}). /justdoit remind off in that channel stops it.",
            color=REMINDER_COLOR,
            zone=zone,
        )
        await self.app.outbox.enqueue(
            ChannelRef.direct(member), post, message_key(channel, member, day.day)
        )
