"""Events, their RSVPs and where each was announced: the feature's own tables and queries.

Times are stored as UTC epoch seconds; `tz` is the zone the event was entered in, kept
for showing its own local time and for calendars. One RSVP per member per event is a
primary key, so concurrent clicks can only ever change one row.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.model import ChannelRef, UserRef
from bot.store import Database
from bot.timeutil import utc_from_ts

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        community_id INTEGER NOT NULL,
        uid TEXT NOT NULL,
        channel TEXT NOT NULL,
        title TEXT NOT NULL,
        start_at REAL NOT NULL,
        end_at REAL,
        tz TEXT NOT NULL,
        location TEXT NOT NULL DEFAULT '',
        url TEXT NOT NULL DEFAULT '',
        organiser TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        remind TEXT NOT NULL DEFAULT '[]',
        announce_at REAL,
        state TEXT NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'cancelled')),
        sequence INTEGER NOT NULL DEFAULT 0,
        created_by TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (community_id, uid)
    );
    CREATE INDEX events_upcoming ON events (community_id, state, start_at);
    CREATE TABLE event_rsvps (
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        member TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('going', 'interested', 'not_going')),
        notify INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (event_id, member)
    );
    CREATE TABLE event_posts (
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        PRIMARY KEY (event_id, channel)
    )
    """,
    # A repeating event: each occurrence stays its own row (own UID, RSVPs and reminders);
    # `series_uid` ties them together (the calendar's UID of the series) and `series_rule`
    # is its RRULE as the calendar wrote it ('' for dates listed one by one).
    """
    ALTER TABLE events ADD COLUMN series_uid TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN series_rule TEXT NOT NULL DEFAULT '';
    CREATE INDEX events_series ON events (community_id, series_uid, start_at)
    """,
    # Calendar feeds: one live token per community (channel NULL) and per channel; a revoked
    # token stays (its URL answers 404) and the next ask makes a new one. The token itself
    # is kept, not a hash: the same URL is shown again to whoever asks.
    """
    CREATE TABLE event_calendar_feeds (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        community_id INTEGER NOT NULL,
        channel TEXT,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE UNIQUE INDEX event_calendar_feeds_live
        ON event_calendar_feeds (community_id, coalesce(channel, '')) WHERE revoked_at IS NULL;
    CREATE INDEX event_posts_channel ON event_posts (channel, event_id)
    """,
    # Series typed in chat (`/event add … repeat=`): the rule its occurrences are made from,
    # from its first start, in its zone (the rule repeats the local clock time). Each
    # occurrence is an `events` row with `series_uid` = this uid. A member's answer for
    # every date is kept too, for the occurrences stored later.
    """
    CREATE TABLE event_series (
        id INTEGER PRIMARY KEY,
        community_id INTEGER NOT NULL,
        uid TEXT NOT NULL,
        rule TEXT NOT NULL,
        start_at REAL NOT NULL,
        tz TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'cancelled')),
        sequence INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (community_id, uid)
    );
    CREATE TABLE event_series_rsvps (
        series_id INTEGER NOT NULL REFERENCES event_series (id) ON DELETE CASCADE,
        member TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('going', 'interested', 'not_going')),
        notify INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (series_id, member)
    )
    """,
    # Capacity (NULL: no limit) and the waiting list once it is reached, first come first
    # served by id (AUTOINCREMENT: an id is never reused, so the outbox key of a move-up
    # message names one move-up only). A member moved up keeps the row, `told` once the
    # direct message is queued: a crash between the two is finished at start-up.
    """
    ALTER TABLE events ADD COLUMN capacity INTEGER;
    CREATE TABLE event_waitlist (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        member TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        notify INTEGER NOT NULL DEFAULT 0,
        joined_at REAL NOT NULL,
        moved_up_at REAL,
        told INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX event_waitlist_waiting ON event_waitlist (event_id, member)
        WHERE moved_up_at IS NULL;
    CREATE INDEX event_waitlist_untold ON event_waitlist (event_id) WHERE told = 0
    """,
    # The platform's own calendar event mirroring an event (bot/events/mirror.py), one per
    # event and workspace (`place`: platform:workspace). `tried` is set before a create is
    # sent, so after a lost answer or a crash it is looked up rather than made twice;
    # `synced` is the event's sequence the platform last took.
    """
    CREATE TABLE event_mirrors (
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        place TEXT NOT NULL,
        channel TEXT NOT NULL,
        native_id TEXT NOT NULL DEFAULT '',
        tried INTEGER NOT NULL DEFAULT 0,
        synced INTEGER NOT NULL DEFAULT -1,
        state TEXT NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'refused', 'cancelled')),
        PRIMARY KEY (event_id, place)
    );
    CREATE INDEX event_mirrors_native ON event_mirrors (place, native_id)
    """,
]


@dataclass
class Event:
    id: int
    community_id: int
    uid: str
    channel: ChannelRef
    title: str
    start: datetime
    end: datetime | None
    tz: str
    location: str = ""
    url: str = ""
    organiser: str = ""
    description: str = ""
    remind: list[timedelta] = field(default_factory=list)
    announce_at: datetime | None = None
    state: str = "scheduled"
    sequence: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    series_uid: str = ""  # one of a repeating event's occurrences: the series it belongs to
    series_rule: str = ""
    capacity: int | None = None  # how many may be going; None: no limit

    @property
    def cancelled(self) -> bool:
        return self.state == "cancelled"

    @property
    def final_offset(self) -> timedelta | None:
        """The reminder closest to the start: the one that mentions those going."""
        return min(self.remind) if self.remind else None


@dataclass
class Rsvp:
    event_id: int
    member: UserRef
    status: str
    notify: bool


@dataclass
class Counts:
    going: int = 0
    interested: int = 0
    not_going: int = 0


def _event(row: Any) -> Event:
    return Event(
        id=row["id"],
        community_id=row["community_id"],
        uid=row["uid"],
        channel=ChannelRef.parse(row["channel"]),
        title=row["title"],
        start=utc_from_ts(row["start_at"]),
        end=utc_from_ts(row["end_at"]),
        tz=row["tz"],
        location=row["location"],
        url=row["url"],
        organiser=row["organiser"],
        description=row["description"],
        remind=[timedelta(seconds=s) for s in json.loads(row["remind"])],
        announce_at=utc_from_ts(row["announce_at"]),
        state=row["state"],
        sequence=row["sequence"],
        created_at=utc_from_ts(row["created_at"]),
        updated_at=utc_from_ts(row["updated_at"]),
        series_uid=row["series_uid"],
        series_rule=row["series_rule"],
        capacity=row["capacity"],
    )


def _remind(offsets: list[timedelta]) -> str:
    return json.dumps(sorted({int(o.total_seconds()) for o in offsets}, reverse=True))


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class EventStore:
    """One async method per query."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, event: Event, created_by: str, now: datetime) -> Event | None:
        """Insert; None when this community already has an event with that uid."""
        new_id = await self.db.insert(
            "INSERT INTO events (community_id, uid, channel, title, start_at, end_at, tz,"
            " location, url, organiser, description, remind, announce_at, created_by,"
            " created_at, updated_at, series_uid, series_rule, capacity)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (community_id, uid) DO NOTHING",
            (
                event.community_id, event.uid, event.channel.key, event.title,
                event.start.timestamp(), _ts(event.end), event.tz, event.location, event.url,
                event.organiser, event.description, _remind(event.remind),
                _ts(event.announce_at), created_by, now.timestamp(), now.timestamp(),
                event.series_uid, event.series_rule, event.capacity,
            ),
        )  # fmt: skip
        return None if new_id is None else await self.get(new_id)

    async def get(self, event_id: int, community_id: int | None = None) -> Event | None:
        row = await self.db.fetchone("SELECT * FROM events WHERE id = ?", (event_id,))
        if row is None or (community_id is not None and row["community_id"] != community_id):
            return None
        return _event(row)

    async def by_uid(self, community_id: int, uid: str) -> Event | None:
        row = await self.db.fetchone(
            "SELECT * FROM events WHERE community_id = ? AND uid = ?", (community_id, uid)
        )
        return None if row is None else _event(row)

    async def update(self, event: Event, now: datetime) -> Event:
        """Write every editable field back and bump the calendar sequence."""
        await self.db.execute(
            "UPDATE events SET title = ?, start_at = ?, end_at = ?, tz = ?, location = ?,"
            " url = ?, organiser = ?, description = ?, remind = ?, capacity = ?,"
            " sequence = sequence + 1, updated_at = ? WHERE id = ?",
            (
                event.title, event.start.timestamp(), _ts(event.end), event.tz, event.location,
                event.url, event.organiser, event.description, _remind(event.remind),
                event.capacity, now.timestamp(), event.id,
            ),
        )  # fmt: skip
        found = await self.get(event.id)
        assert found is not None
        return found

    async def cancel(self, event_id: int, now: datetime) -> bool:
        changed = await self.db.execute(
            "UPDATE events SET state = 'cancelled', sequence = sequence + 1, updated_at = ?"
            " WHERE id = ? AND state = 'scheduled'",
            (now.timestamp(), event_id),
        )
        return bool(changed)

    async def upcoming(self, now: datetime, community_id: int | None = None) -> list[Event]:
        """Scheduled events not yet over (an event without an end is over once started)."""
        sql = "SELECT * FROM events WHERE state = 'scheduled' AND coalesce(end_at, start_at) > ?"
        params: list[Any] = [now.timestamp()]
        if community_id is not None:
            sql += " AND community_id = ?"
            params.append(community_id)
        rows = await self.db.fetchall(sql + " ORDER BY start_at, id", params)
        return [_event(r) for r in rows]

    async def for_calendar(
        self, community_id: int, since: datetime, now: datetime, channel: ChannelRef | None = None
    ) -> list[Event]:
        """What a calendar feed holds: every event of the community (or announced in
        `channel`) not over before `since`, cancelled ones too (a subscribed calendar drops
        them when it reads STATUS:CANCELLED); an announcement still to come keeps its event
        out until it is posted."""
        sql = (
            "SELECT * FROM events WHERE community_id = ? AND coalesce(end_at, start_at) > ?"
            " AND (announce_at IS NULL OR announce_at <= ?)"
        )
        params: list[Any] = [community_id, since.timestamp(), now.timestamp()]
        if channel is not None:
            sql += (
                " AND (channel = ? OR id IN (SELECT event_id FROM event_posts WHERE channel = ?))"
            )
            params += [channel.key, channel.key]
        rows = await self.db.fetchall(sql + " ORDER BY start_at, id", params)
        return [_event(r) for r in rows]

    # --- Repeating events ------------------------------------------------------------------

    async def series(self, community_id: int, series_uid: str, now: datetime) -> list[Event]:
        """A series' scheduled occurrences not yet over, soonest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM events WHERE community_id = ? AND series_uid = ?"
            " AND state = 'scheduled' AND coalesce(end_at, start_at) > ?"
            " ORDER BY start_at, id",
            (community_id, series_uid, now.timestamp()),
        )
        return [_event(r) for r in rows]

    async def occurrences(self, community_id: int, series_uid: str) -> list[Event]:
        """Every occurrence of a series stored, past and cancelled ones too, soonest first."""
        rows = await self.db.fetchall(
            "SELECT * FROM events WHERE community_id = ? AND series_uid = ? ORDER BY start_at, id",
            (community_id, series_uid),
        )
        return [_event(r) for r in rows]

    async def series_head(self, community_id: int, series_uid: str) -> Event | None:
        """The occurrence whose announcement speaks for the series (the first announced)."""
        row = await self.db.fetchone(
            "SELECT * FROM events WHERE community_id = ? AND series_uid = ?"
            " AND id IN (SELECT event_id FROM event_posts) ORDER BY start_at, id LIMIT 1",
            (community_id, series_uid),
        )
        return None if row is None else _event(row)

    async def join_series(self, event_id: int, series_uid: str, rule: str) -> bool:
        """Mark an occurrence stored before series were kept (one import of old) as one."""
        changed = await self.db.execute(
            "UPDATE events SET series_uid = ?, series_rule = ? WHERE id = ? AND series_uid = ''",
            (series_uid, rule, event_id),
        )
        return bool(changed)

    # --- Where it was announced -------------------------------------------------------------

    async def add_posts(self, event_id: int, channels: list[ChannelRef]) -> None:
        async with self.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO event_posts (event_id, channel) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(event_id, c.key) for c in channels],
            )

    async def posts(self, event_id: int) -> list[ChannelRef]:
        rows = await self.db.fetchall(
            "SELECT channel FROM event_posts WHERE event_id = ? ORDER BY rowid", (event_id,)
        )
        return [ChannelRef.parse(r["channel"]) for r in rows]

    # --- RSVPs --------------------------------------------------------------------------

    async def rsvp(self, event_id: int, member: UserRef, status: str, notify: bool, now: datetime):
        """Set this member's answer; a second click changes the same row."""
        await self.db.execute(
            "INSERT INTO event_rsvps (event_id, member, name, status, notify, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, member) DO UPDATE SET"
            " status = excluded.status, notify = excluded.notify, name = excluded.name,"
            " updated_at = excluded.updated_at",
            (event_id, member.key, member.name, status, int(notify), now.timestamp()),
        )

    async def counts(self, event_id: int) -> Counts:
        rows = await self.db.fetchall(
            "SELECT status, count(*) AS n FROM event_rsvps WHERE event_id = ? GROUP BY status",
            (event_id,),
        )
        return Counts(**{r["status"]: r["n"] for r in rows})

    async def rsvps(self, event_id: int) -> list[Rsvp]:
        rows = await self.db.fetchall(
            "SELECT * FROM event_rsvps WHERE event_id = ? ORDER BY status, updated_at",
            (event_id,),
        )
        return [_rsvp(r) for r in rows]

    async def to_notify(self, event_id: int) -> list[UserRef]:
        """Members going who asked to be reminded."""
        rows = await self.db.fetchall(
            "SELECT * FROM event_rsvps WHERE event_id = ? AND status = 'going' AND notify = 1"
            " ORDER BY updated_at",
            (event_id,),
        )
        return [_rsvp(r).member for r in rows]

    async def mine(self, member: UserRef, now: datetime) -> list[tuple[Event, Rsvp]]:
        rows = await self.db.fetchall(
            "SELECT e.*, r.event_id, r.member, r.name, r.status, r.notify FROM events e"
            " JOIN event_rsvps r ON r.event_id = e.id WHERE r.member = ?"
            " AND e.state = 'scheduled' AND coalesce(e.end_at, e.start_at) > ?"
            " ORDER BY e.start_at",
            (member.key, now.timestamp()),
        )
        return [(_event(r), _rsvp(r)) for r in rows]


def _rsvp(row: Any) -> Rsvp:
    platform, workspace, user = row["member"].split(":", 2)
    return Rsvp(
        event_id=row["event_id"],
        member=UserRef(platform, workspace, user, row["name"]),
        status=row["status"],
        notify=bool(row["notify"]),
    )
