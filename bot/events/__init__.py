"""Events: announce upcoming itSMF-style events, remind before they start, RSVP, calendars.

The feature wires the pieces together: `store` (tables), `drafts` (checking input),
`render` (posts), `service` (what happens to an event), `commands` (what members type),
`series`, `rules`, `series_store` and `series_commands` (series typed with repeat=),
`waitlist` (capacity and the waiting list), `render_series` (their posts), `ical` (calendars), `calendar_feeds` (the .ics URLs calendar apps subscribe to, served by
the web server), `mirror` (the platforms' own calendar events, e.g. Discord's Scheduled
Events) and `cli` (`itsm-bot events ics|import`).
"""

from __future__ import annotations

import logging
import re
import tomllib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import field

from bot import timeutil
from bot.app import Feature
from bot.config import Duration, Section
from bot.events import commands, store
from bot.events.calendar_feeds import ROUTE, CalendarFeeds, LinkedEventService
from bot.events.cli import events as events_cli
from bot.events.drafts import Draft
from bot.events.series import SeriesService
from bot.model import ChannelRef

if TYPE_CHECKING:
    from bot.web.server import WebServer

log = logging.getLogger(__name__)

DEMO_EVENTS = Path(__file__).resolve().parent.parent.parent / "config" / "events.toml"


class EventSettings(Section):
    """The `[event]` section of the configuration file."""

    default_remind: list[Duration] = field(
        default_factory=lambda: [Duration(days=1), Duration(hours=1)]
    )
    max_remind: Duration = Duration(days=60)
    # How late a reminder may still be posted after downtime (never once the event started).
    reminder_grace: Duration = Duration(hours=2)
    import_max_bytes: int = 1_000_000
    import_timeout: Duration = Duration(seconds=20)
    import_allow_private: bool = False
    # A repeating event (imported, or a series typed with repeat=): its dates stored this far
    # ahead, at most so many; a series typed in chat is extended daily as time passes.
    import_horizon: Duration = Duration(days=180)
    import_max_occurrences: int = 12


class Events(Feature):
    name = "event"
    migrations = store.MIGRATIONS
    Settings = EventSettings
    cli = events_cli

    def register(self) -> None:
        self.calendars = CalendarFeeds(self.app)
        self.service = LinkedEventService(self.app, self.calendars)
        self.service.register_jobs(self.settings.reminder_grace)
        self.service.mirror.register()
        self.series = SeriesService(
            self.service, self.settings.import_horizon, self.settings.import_max_occurrences
        )
        self.series.register_jobs()
        commands.declare(self)

    async def start(self) -> None:
        await self.series.start()
        await self.service.waitlist.finish()  # move-ups a stop cut short are told now

    def web_routes(self, server: WebServer) -> None:
        """The calendar feeds, public: the token in the URL is the only key."""
        server.public(ROUTE, self.calendars.serve)

    async def seed_demo(self, channel: ChannelRef) -> None:
        """Add the bundled demo events, dated from today; known ones are left alone."""
        community = await self.app.communities.of(channel)
        now = self.app.clock.now()
        for entry in load_demo_events(DEMO_EVENTS):
            draft = demo_draft(entry, now)
            uid = f"demo-{_slug(draft.title)}@itsm-bot"
            await self.service.create(community.id, channel, draft, "demo", uid=uid)


def load_demo_events(path: Path) -> list[dict]:
    return tomllib.loads(path.read_text(encoding="utf-8")).get("event", [])


def demo_draft(entry: dict, now: datetime) -> Draft:
    """One `[[event]]` of events.toml, `days_from_now` counted in the event's own zone."""
    tz = entry["tz"]
    day = now.astimezone(timeutil.zone(tz)).date() + timedelta(days=entry["days_from_now"])
    local = datetime.combine(day, time.fromisoformat(entry["start_time"]), timeutil.zone(tz))
    start = local.astimezone(UTC)
    minutes = entry.get("duration_minutes")
    return Draft(
        title=entry["title"],
        start=start,
        tz=tz,
        end=start + timedelta(minutes=minutes) if minutes else None,
        location=entry.get("location", ""),
        url=entry.get("url", ""),
        organiser=entry.get("organiser", ""),
        description=entry.get("description", ""),
        remind=[timeutil.parse_duration(r) for r in entry.get("remind", [])],
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
