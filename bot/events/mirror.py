"""An event mirrored as the platform's own calendar event (Discord's Scheduled Events).

A platform whose transport can (`MirrorsEvents`) gets, for each event announced in one of
its workspaces, a native event with the same name, place, times and booking link, changed
when the event is edited and cancelled with it. For a series, the date its announcement
shows is mirrored: each date gets a native event of its own when the announcement moves on
to it, so an "Interested" on one counts for that date only.

Durable the way the outbox is: the work is a scheduler job keyed by the event, asked for
when the event is announced, edited, cancelled or moves on, so a crash before it runs just
runs it at the next start. A create is marked tried before it is sent, and a tried mirror
without a native id is looked up on the platform (by `NativeEvent.key`) before another is
made. A passing failure tries again later; a refusal (the bot may not manage events there)
is one log line and never touches the announcement.

The other way: members marking "Interested" in the platform's own calendar reach
`interest` (as an action from the adapter) and count as an RSVP of "interested".
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.errors import DeliveryError, Failure, UserError
from bot.events.store import Event
from bot.model import Action, ChannelRef, UserRef
from bot.scheduler import ANY_LATENESS, Job

if TYPE_CHECKING:
    from bot.app import App, Context
    from bot.events.service import EventService

log = logging.getLogger(__name__)

MIRROR_KIND = "event.mirror"
INTEREST_ACTION = "event.native_interest"
DEFAULT_LENGTH = timedelta(hours=1)  # an event without an end, as calendars show one
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)
ONE_MOMENT = timedelta(milliseconds=1)


def job_key(event_id: int) -> str:
    # Not under "event:{id}:": cancelling an event cancels those jobs, and this one must run.
    return f"event-mirror:{event_id}"


def mirror_key(event_id: int, place: str) -> str:
    """What names one mirror on the platform, so that it can be found again."""
    return f"event-mirror:{event_id}:{place}"


def place_of(channel: ChannelRef) -> str:
    return f"{channel.platform}:{channel.workspace}"


@dataclass(frozen=True)
class NativeEvent:
    """An event as a platform calendar takes it: plain text, UTC times, an end always."""

    key: str
    name: str
    description: str
    location: str
    start: datetime
    end: datetime


@runtime_checkable
class MirrorsEvents(Protocol):
    """The optional transport capability: `mirrors_events` True (a setting may turn it
    off), and the calls below. Each raises `DeliveryError` as a send does."""

    mirrors_events: bool

    async def mirror_event(self, channel: ChannelRef, event: NativeEvent, native_id: str) -> str:
        """Create the native event in `channel`'s workspace (`native_id` empty) or change
        it to `event`; return its id."""
        ...

    async def find_mirror(self, channel: ChannelRef, event: NativeEvent) -> str | None:
        """The id of the native event made for `event` (by its `key`), if there is one."""
        ...

    async def cancel_mirror(self, channel: ChannelRef, native_id: str) -> None:
        """Cancel it (or remove it where it can no longer be cancelled); gone is fine."""
        ...


@dataclass
class Mirror:
    event_id: int
    place: str
    channel: ChannelRef
    native_id: str
    tried: bool
    synced: int
    state: str


def native_event(event: Event, place: str) -> NativeEvent:
    """What the platform is told: the title, where, when, and what to read or book."""
    lines = [event.description.strip()] if event.description.strip() else []
    if event.organiser:
        lines.append(f"Organiser: {event.organiser}")
    if event.url:
        lines.append(f"Booking: {event.url}")
    return NativeEvent(
        key=mirror_key(event.id, place),
        name=event.title,
        description="\n\n".join(lines),
        # A native external event must say where; a link is a place for an online one.
        location=event.location or event.url or "See the announcement",
        start=event.start,
        end=event.end if event.end and event.end > event.start else event.start + DEFAULT_LENGTH,
    )


class MirrorStore:
    def __init__(self, db: Any) -> None:
        self.db = db

    async def of_event(self, event_id: int) -> list[Mirror]:
        rows = await self.db.fetchall(
            "SELECT * FROM event_mirrors WHERE event_id = ? ORDER BY place", (event_id,)
        )
        return [_mirror(r) for r in rows]

    async def get(self, event_id: int, place: str, channel: ChannelRef) -> Mirror:
        """The mirror of the event in `place`, made (not yet on the platform) if new."""
        await self.db.execute(
            "INSERT INTO event_mirrors (event_id, place, channel) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (event_id, place, channel.key),
        )
        row = await self.db.fetchone(
            "SELECT * FROM event_mirrors WHERE event_id = ? AND place = ?", (event_id, place)
        )
        return _mirror(row)

    async def by_native(self, place: str, native_id: str) -> Mirror | None:
        row = await self.db.fetchone(
            "SELECT * FROM event_mirrors WHERE place = ? AND native_id = ?", (place, native_id)
        )
        return None if row is None else _mirror(row)

    async def set(self, mirror: Mirror, **values: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)
        await self.db.execute(
            f"UPDATE event_mirrors SET {columns} WHERE event_id = ? AND place = ?",
            (*values.values(), mirror.event_id, mirror.place),
        )

    async def answer_of(self, event_id: int, member: UserRef) -> str | None:
        """The member's RSVP, or "waiting" while on the waiting list."""
        waiting = await self.db.fetchval(
            "SELECT 1 FROM event_waitlist WHERE event_id = ? AND member = ?"
            " AND moved_up_at IS NULL",
            (event_id, member.key),
        )
        if waiting:
            return "waiting"
        return await self.db.fetchval(
            "SELECT status FROM event_rsvps WHERE event_id = ? AND member = ?",
            (event_id, member.key),
        )

    async def drop_interest(self, event_id: int, member: UserRef) -> bool:
        changed = await self.db.execute(
            "DELETE FROM event_rsvps WHERE event_id = ? AND member = ? AND status = 'interested'",
            (event_id, member.key),
        )
        return bool(changed)


def _mirror(row: Any) -> Mirror:
    return Mirror(
        event_id=row["event_id"],
        place=row["place"],
        channel=ChannelRef.parse(row["channel"]),
        native_id=row["native_id"],
        tried=bool(row["tried"]),
        synced=row["synced"],
        state=row["state"],
    )


class EventMirror:
    """Keeps each announced event's native mirrors in step with it."""

    def __init__(self, app: App, service: EventService) -> None:
        self.app = app
        self.service = service
        self.store = MirrorStore(app.db)
        self._locks: dict[int, asyncio.Lock] = {}

    def register(self) -> None:
        self.app.scheduler.handle(MIRROR_KIND, self._job, grace=ANY_LATENESS)
        self.app.on_action(INTEREST_ACTION, self._interest_action)

    async def request(self, event_id: int) -> None:
        """Bring the event's mirrors in step soon (a durable job: a crash runs it later).
        Not asked where every platform it is announced on is connected and keeps no
        calendar of its own (Slack, the console)."""
        event = await self.service.store.get(event_id)
        if event is None or not any(self._may_mirror(c) for _, c in await self._places(event)):
            return
        key = job_key(event_id)
        due = self.app.clock.now()
        if await self.app.scheduler.state(key) not in (None, "pending"):
            # A job that already ran is armed again only when moved: a change in the very
            # instant it ran (a stopped clock, in tests) must still be taken.
            due += ONE_MOMENT
        await self.app.scheduler.schedule(key, MIRROR_KIND, due, {"event": event_id})

    # --- Outbound ------------------------------------------------------------------------

    async def _job(self, job: Job) -> None:
        event = await self.service.store.get(int(job.payload["event"]))
        if event is None:
            return
        pending = False
        for target, may_create in await self._targets(event):
            async with self._locks.setdefault(target.id, asyncio.Lock()):
                pending |= await self._sync(target, may_create)
        if pending:
            await self._retry(job, event)

    async def _targets(self, event: Event) -> list[tuple[Event, bool]]:
        """The events to bring in step, each with whether a new mirror may be made for it:
        the event itself; for a date of a series, also the date the announcement shows."""
        if not event.series_uid:
            return [(event, True)]
        now = self.app.clock.now()
        ahead = [e for e in await self.service.store.series(event.community_id,
                 event.series_uid, now) if e.start > now]  # fmt: skip
        shown = ahead[0] if ahead else None
        targets = [(event, shown is not None and shown.id == event.id)]
        if shown is not None and shown.id != event.id:
            targets.append((shown, True))
        return targets

    async def _places(self, event: Event) -> list[tuple[str, ChannelRef]]:
        """Each workspace the event is announced in (its announcement's channels), once."""
        announced = await self.service._announced_as(event)
        places: dict[str, ChannelRef] = {}
        for channel in await self.service.store.posts(announced):
            if not channel.is_direct:
                places.setdefault(place_of(channel), channel)
        return list(places.items())

    def _may_mirror(self, channel: ChannelRef) -> bool:
        transport = self.app.outbox.transports.get(channel.platform)
        return transport is None or bool(getattr(transport, "mirrors_events", False))

    async def _sync(self, event: Event, may_create: bool) -> bool:
        """Bring the event's mirrors in step; True if one must be tried again later."""
        pending = False
        known = {m.place: m for m in await self.store.of_event(event.id)}
        for place, channel in await self._places(event):
            transport = self.app.outbox.transports.get(channel.platform)
            if transport is None:  # not connected (yet), or paused: its mirror waits for it
                pending |= may_create or place in known
                continue
            if not getattr(transport, "mirrors_events", False):
                continue
            if place not in known and not may_create:
                continue
            mirror = known.get(place) or await self.store.get(event.id, place, channel)
            try:
                await self._sync_one(transport, event, mirror)
            except DeliveryError as exc:
                if exc.failure is not Failure.PERMANENT:
                    log.info("event %d: its mirror in %s waits: %s", event.id, place, exc)
                    pending = True
                    continue
                # Refused outright: nothing was made, so the next try need not look it up.
                await self.store.set(mirror, state="refused", tried=int(bool(mirror.native_id)))
                log.warning("event %d: not mirrored in %s (%s); the announcement stands",
                            event.id, place, exc)  # fmt: skip
        return pending

    async def _sync_one(self, transport: Any, event: Event, mirror: Mirror) -> None:
        if mirror.state == "cancelled":
            return
        channel = mirror.channel
        native_id = mirror.native_id
        if not native_id and mirror.tried:  # a create whose answer may have been lost
            native_id = await transport.find_mirror(channel, native_event(event, mirror.place))
            if native_id:
                await self.store.set(mirror, native_id=native_id)
        if event.cancelled:
            if native_id:
                await transport.cancel_mirror(channel, native_id)
            await self.store.set(mirror, state="cancelled")
            log.info("event %d: its mirror in %s is cancelled", event.id, mirror.place)
            return
        if native_id and mirror.synced == event.sequence and mirror.state == "live":
            return
        if not native_id and event.start <= self.app.clock.now():
            return  # started: a platform takes no new event in the past
        if not native_id:
            await self.store.set(mirror, tried=1)
        made = await transport.mirror_event(channel, native_event(event, mirror.place), native_id)
        await self.store.set(mirror, native_id=made, synced=event.sequence, state="live")
        log.info("event %d: mirrored in %s as %s", event.id, mirror.place, made)

    async def _retry(self, job: Job, event: Event) -> None:
        """Again later, backing off, while the event has not started."""
        tries = int(job.payload.get("tries", 0)) + 1
        wait = min(RETRY_FIRST * 2 ** min(tries - 1, 10), RETRY_MAX)
        due = self.app.clock.now() + wait
        if due >= event.start:
            log.info("event %d: its mirror is left as it is: the event starts first", event.id)
            return
        payload = {"event": event.id, "tries": tries}
        await self.app.scheduler.schedule(job.key, MIRROR_KIND, due, payload)

    # --- Inbound -------------------------------------------------------------------------

    async def _interest_action(self, ctx: Context, action: Action) -> None:
        """The adapter's `add:ID` / `remove:ID`: a member marked (or unmarked) the native
        event ID as interesting in the platform's own calendar."""
        change, _, native_id = action.value.partition(":")
        if change not in ("add", "remove") or not native_id:
            raise UserError(f"Not a change of interest: {action.value!r}.")
        await self.interest(place_of(action.channel), native_id, action.user, change == "add")

    async def interest(self, place: str, native_id: str, member: UserRef, interested: bool) -> str:
        """Count a native "Interested" as an RSVP: it adds "interested" where the member had
        no answer or "not going" (going, or waiting for a place, already says more), and
        taking it back removes only an "interested". Returns what was done, for the log."""
        mirror = await self.store.by_native(place, native_id)
        event = None if mirror is None else await self.service.store.get(mirror.event_id)
        if event is None or event.cancelled:
            return "ignored: not a live mirror"
        current = await self.store.answer_of(event.id, member)
        if interested and current in (None, "not_going"):
            await self.service.answer(event, member, "interested", notify=False)
            done = "interested"
        elif not interested and current == "interested":
            await self.store.drop_interest(event.id, member)
            await self.service.refresh(event.id)
            done = "no longer interested"
        else:
            done = f"kept {current or 'no answer'}"
        log.info("event %d: %s on %s: %s", event.id, member.key, place, done)
        return done
