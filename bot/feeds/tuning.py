"""A subscription's own settings: how often its feed is checked (`interval=`) and the one
role or user group its posts ping (`ping=`), on `/feed add` and `/feed edit`.

An interval is refused (a usage error naming the bounds), never clamped: what a moderator
asked for is either what happens or said to be impossible. Its bounds: at least the
configured `min_interval` (and `poll_every`, below which asking changes nothing), at least
what the feed itself asks (its RSS `<ttl>`, or the `Cache-Control: max-age` of its answer,
up to `max_interval`), at most `max_interval`. A feed several channels follow is checked at
the shortest interval any of them asks (`Poller.every`); each still posts an item once.

The ping is the only mention a feed post may make (`Post.mention_roles`); whatever the
feed's own text says is made inert by every renderer, as it always was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.errors import UsageError
from bot.feeds.settings import FeedSettings
from bot.feeds.store import Source, Subscription
from bot.model import Ephemeral, Post, RoleRef, inert
from bot.timeutil import duration_words

if TYPE_CHECKING:
    from bot.app import Context
    from bot.feeds.feature import Feeds


@dataclass(frozen=True)
class Bounds:
    low: float  # seconds
    high: float
    why_low: str  # what sets the lower bound, in words

    def words(self) -> str:
        return f"from {_words(self.low)} to {_words(self.high)}"


def bounds(settings: FeedSettings, hint: float | None = None) -> Bounds:
    """The intervals a subscription may ask for; `hint` is what the feed asks (seconds)."""
    floor = max(settings.min_interval, settings.poll_every).total_seconds()
    high = settings.max_interval.total_seconds()
    if hint and hint > floor:
        return Bounds(min(hint, high), high, "the feed itself asks no more often (its TTL or max-age)")  # fmt: skip
    return Bounds(floor, high, "the configured minimum, `[feeds] min_interval`")


def checked_interval(asked: timedelta, settings: FeedSettings, hint: float | None) -> float:
    """`asked` in seconds, or a UsageError saying the bounds it is outside of."""
    limits = bounds(settings, hint)
    seconds = asked.total_seconds()
    if seconds < limits.low:
        raise UsageError(
            f"`interval`: {_words(seconds)} is too often: at least {_words(limits.low)}, as"
            f" {limits.why_low}. Choose an interval {limits.words()}.",
            option="interval",
        )
    if seconds > limits.high:
        raise UsageError(
            f"`interval`: {_words(seconds)} is too long: at most {_words(limits.high)}"
            f" (`[feeds] max_interval`). Choose an interval {limits.words()}.",
            option="interval",
        )
    return seconds


def interval_form(settings: FeedSettings) -> str:
    """What `interval=` takes, in words, for `/help`."""
    return (
        f"a duration like 2h or 90m, {bounds(settings).words()}, and never more often than"
        " the feed itself asks (its TTL or max-age)"
    )


def feed_hint(*hints: float | None) -> float | None:
    """What a feed asks of its readers (the longest of its TTL and max-age), if anything."""
    return max((h for h in hints if h), default=None)


def ping_of(role: RoleRef | None) -> tuple[str, str]:
    """(id, name) to store for a `ping=` value; ("", "") for none."""
    if role is None or not role.role:
        return "", ""
    return role.role, role.name


def ping_words(sub: Subscription) -> str:
    """The role a subscription pings, as text that pings nobody (for replies and lists)."""
    return f"@{inert(sub.ping_name or sub.ping_role)}" if sub.ping_role else ""


def every_words(sub: Subscription, settings: FeedSettings) -> str:
    if sub.check_every:
        return f"{_words(sub.check_every)} (its own interval)"
    return duration_words(settings.interval)


async def edit(
    feeds: Feeds,
    ctx: Context,
    sub_id: int,
    interval: timedelta | None,
    ping: RoleRef | None,
    noping: bool,
) -> Ephemeral:
    """`/feed edit ID [interval=…] [ping=…|none] [noping]`: change what is given."""
    sub = await feeds.mine(ctx, sub_id)
    if interval is None and ping is None and not noping:
        raise UsageError(
            "Nothing to change: give `interval=`, `ping=` or `noping`.",
            hint=f"For example: /feed edit {sub_id} interval=2h ping=@oncall",
        )
    said = []
    if interval is not None:
        source = await feeds.store.source(sub.source_id)
        seconds = checked_interval(interval, feeds.settings, source.ttl if source else None)
        await feeds.store.set_check_every(sub.id, seconds)
        if source is not None:
            await reschedule(feeds, source)
        said.append(f"checked about every {_words(seconds)}")
    if noping or ping is not None:
        role, name = ping_of(None if noping else ping)
        await feeds.store.set_ping(sub.id, role, name)
        changed = await feeds.store.subscription(sub.id)
        assert changed is not None
        shown = ping_words(changed)
        said.append(f"its posts ping {shown}" if shown else "its posts ping nobody")
    return Ephemeral(Post(text=f"Subscription #{sub.id}: {'; '.join(said)}."))


async def reschedule(feeds: Feeds, source: Source) -> None:
    """Bring the next check forward when a subscription asks for a shorter interval (a
    longer one takes effect from the next check)."""
    if source.last_fetch_at is None or source.failures:
        return  # never fetched (due now) or backing off: its schedule stands
    every = await feeds.poller.every(source)
    await feeds.store.check_soon(source.id, source.last_fetch_at + every)


def _words(seconds: float) -> str:
    return duration_words(timedelta(seconds=seconds))
