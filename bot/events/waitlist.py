"""Capacity and the waiting list: once `capacity` members are going, "Going" puts a member
on the event's waiting list and tells them their place; a place given up moves the first
one waiting up, who is told by direct message.

Each answer is decided in one transaction (count, then write), so two members pressing
"Going" for the last place at once end with one going and one waiting. A move-up and its
message are two steps: the row is marked moved up, then the message is queued under a key
naming that row and the row marked told. A crash between them is finished at start-up,
and the outbox key makes a second queueing a no-op: each move-up is told exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.events import render_series
from bot.events.store import Event, EventStore
from bot.events.store import _event as event_from_row
from bot.model import ChannelRef, UserRef
from bot.store import Database, Tx

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """What stands after a member answered."""

    status: str  # going, interested, not_going, or waiting (the event was full)
    place: int = 0  # on the waiting list, from 1
    freed: bool = False  # they were going and no longer are: a place may be free


@dataclass
class MovedUp:
    id: int  # the waiting-list row: names this one move-up
    event_id: int
    member: UserRef


def moved_up_key(event_id: int, row_id: int) -> str:
    return f"event:{event_id}:moved-up:{row_id}"


class WaitlistStore:
    """The answers that depend on capacity, and the waiting list itself."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def answer(
        self, event: Event, member: UserRef, status: str, notify: bool, now: datetime
    ) -> Answer:
        """Record `status` for `member`, or put them on the waiting list if it is "going"
        and the event is full. A member already waiting who presses "Going" keeps their
        place; any other answer takes them off the list."""
        async with self.db.transaction() as tx:
            await self._lock(tx, event)
            current = await tx.fetchval(
                "SELECT status FROM event_rsvps WHERE event_id = ? AND member = ?",
                (event.id, member.key),
            )
            waiting = await _waiting_row(tx, event.id, member)
            if status == "going" and current != "going":
                if waiting is not None:
                    await tx.execute(
                        "UPDATE event_waitlist SET notify = ? WHERE id = ?", (int(notify), waiting)
                    )
                    return Answer("waiting", await _place(tx, event.id, waiting))
                if event.capacity is not None and await _going(tx, event.id) >= event.capacity:
                    row = await _join(tx, event.id, member, notify, now)
                    return Answer("waiting", await _place(tx, event.id, row))
            if waiting is not None:
                await tx.execute("DELETE FROM event_waitlist WHERE id = ?", (waiting,))
            await _set(tx, event.id, member, status, notify, now)
            return Answer(status, freed=current == "going" and status != "going")

    async def _lock(self, tx: Tx, event: Event) -> None:
        """One answer at a time per event, so the count it decides by stays true (on a
        database where transactions run side by side)."""
        await tx.execute(f"SELECT id FROM events WHERE id = ?{self.db.for_update}", (event.id,))

    async def fill(self, event: Event, now: datetime) -> int:
        """Move the first ones waiting up into the places free (all of them once the event
        has no limit); return how many moved."""
        async with self.db.transaction() as tx:
            await self._lock(tx, event)
            rows = await tx.fetchall(
                "SELECT * FROM event_waitlist WHERE event_id = ? AND moved_up_at IS NULL"
                " ORDER BY id",
                (event.id,),
            )
            if event.capacity is not None:
                rows = rows[: max(0, event.capacity - await _going(tx, event.id))]
            for row in rows:
                member = _member(row)
                await _set(tx, event.id, member, "going", bool(row["notify"]), now)
                await tx.execute(
                    "UPDATE event_waitlist SET moved_up_at = ? WHERE id = ?",
                    (now.timestamp(), row["id"]),
                )
            return len(rows)

    async def untold(self, event_id: int | None = None) -> list[MovedUp]:
        """Move-ups whose direct message is not queued yet (of one event, or any)."""
        sql = "SELECT * FROM event_waitlist WHERE told = 0 AND moved_up_at IS NOT NULL"
        params: tuple[Any, ...] = ()
        if event_id is not None:
            sql += " AND event_id = ?"
            params = (event_id,)
        rows = await self.db.fetchall(sql + " ORDER BY id", params)
        return [MovedUp(r["id"], r["event_id"], _member(r)) for r in rows]

    async def mark_told(self, row_id: int) -> None:
        await self.db.execute("UPDATE event_waitlist SET told = 1 WHERE id = ?", (row_id,))

    async def count(self, event_id: int) -> int:
        return await self.db.fetchval(
            "SELECT count(*) FROM event_waitlist WHERE event_id = ? AND moved_up_at IS NULL",
            (event_id,),
        )

    async def places(self, member: UserRef, now: datetime) -> list[tuple[Event, int]]:
        """The events not yet over whose waiting list `member` is on, with their place."""
        rows = await self.db.fetchall(
            "SELECT e.*, (SELECT count(*) FROM event_waitlist o WHERE o.event_id = w.event_id"
            " AND o.moved_up_at IS NULL AND o.id <= w.id) AS place"
            " FROM event_waitlist w JOIN events e ON e.id = w.event_id"
            " WHERE w.member = ? AND w.moved_up_at IS NULL AND e.state = 'scheduled'"
            " AND coalesce(e.end_at, e.start_at) > ? ORDER BY e.start_at",
            (member.key, now.timestamp()),
        )
        return [(event_from_row(r), r["place"]) for r in rows]

    async def waiting(self, event_id: int) -> list[UserRef]:
        """Who waits, first first."""
        rows = await self.db.fetchall(
            "SELECT * FROM event_waitlist WHERE event_id = ? AND moved_up_at IS NULL ORDER BY id",
            (event_id,),
        )
        return [_member(r) for r in rows]


async def _waiting_row(tx: Tx, event_id: int, member: UserRef) -> int | None:
    return await tx.fetchval(
        "SELECT id FROM event_waitlist WHERE event_id = ? AND member = ? AND moved_up_at IS NULL",
        (event_id, member.key),
    )


async def _going(tx: Tx, event_id: int) -> int:
    return await tx.fetchval(
        "SELECT count(*) FROM event_rsvps WHERE event_id = ? AND status = 'going'", (event_id,)
    )


async def _place(tx: Tx, event_id: int, row_id: int) -> int:
    return await tx.fetchval(
        "SELECT count(*) FROM event_waitlist WHERE event_id = ? AND moved_up_at IS NULL"
        " AND id <= ?",
        (event_id, row_id),
    )


async def _join(tx: Tx, event_id: int, member: UserRef, notify: bool, now: datetime) -> int:
    """Onto the waiting list; an earlier answer (interested) gives way to it."""
    await tx.execute(
        "DELETE FROM event_rsvps WHERE event_id = ? AND member = ?", (event_id, member.key)
    )
    cursor = await tx.execute(
        "INSERT INTO event_waitlist (event_id, member, name, notify, joined_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (event_id, member.key, member.name, int(notify), now.timestamp()),
    )
    return cursor.lastrowid


async def _set(
    tx: Tx, event_id: int, member: UserRef, status: str, notify: bool, now: datetime
) -> None:
    await tx.execute(
        "INSERT INTO event_rsvps (event_id, member, name, status, notify, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, member) DO UPDATE SET"
        " status = excluded.status, notify = excluded.notify, name = excluded.name,"
        " updated_at = excluded.updated_at",
        (event_id, member.key, member.name, status, int(notify), now.timestamp()),
    )


def _member(row: Any) -> UserRef:
    platform, workspace, user = row["member"].split(":", 2)
    return UserRef(platform, workspace, user, row["name"])


class Waitlist:
    """Answers through the waiting list, and the move-up messages."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.store = WaitlistStore(app.db)
        self.events = EventStore(app.db)

    async def answer(self, event: Event, member: UserRef, status: str, notify: bool) -> Answer:
        answer = await self.store.answer(event, member, status, notify, self.app.clock.now())
        if answer.freed:
            await self.fill(event)
        return answer

    async def fill(self, event: Event) -> int:
        """Fill the places free from the waiting list and tell those moved up."""
        moved = await self.store.fill(event, self.app.clock.now())
        if moved:
            log.info("event %d: %d member(s) moved up from the waiting list", event.id, moved)
        await self.tell(event)
        return moved

    async def tell(self, event: Event) -> None:
        zone = (await self.app.communities.get(event.community_id)).timezone
        for moved in await self.store.untold(event.id):
            direct = ChannelRef.direct(moved.member)
            post = render_series.moved_up(event, zone)
            await self.app.outbox.enqueue(direct, post, moved_up_key(event.id, moved.id))
            await self.store.mark_told(moved.id)

    async def finish(self) -> None:
        """At start-up: tell the members whose move-up a stop cut short."""
        for event_id in sorted({m.event_id for m in await self.store.untold()}):
            event = await self.events.get(event_id)
            if event is not None:
                await self.tell(event)
