"""The /event commands, the RSVP buttons and the add form: reading input, then the service.

Moderators add, edit, cancel and import; everyone lists and answers. Every bad input is
a UsageError naming the option, raised before anything is stored.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from bot import commands as cmd
from bot import timeutil
from bot.errors import PermissionDenied, UsageError, UserError
from bot.events import calendar_feeds, ical, render, render_series, series_commands
from bot.events.drafts import (
    CLEAR,
    Draft,
    check,
    check_url,
    parse_moment,
    parse_offsets,
    same_wall_time,
)
from bot.events.service import EventService, Outcome
from bot.events.store import Event
from bot.model import (
    ChannelRef,
    Ephemeral,
    Form,
    FormErrors,
    FormField,
    OpenForm,
    Post,
    UpdateMessage,
    channel_tag,
    inert,
)

if TYPE_CHECKING:
    from bot.app import Context
    from bot.events import Events
    from bot.model import Action, Submission

log = logging.getLogger(__name__)

K = cmd.Kind
ID = cmd.Option("id", K.INT, "the event number (see /event list)", True, positional=True,
                min_value=1)  # fmt: skip
DETAILS = [
    cmd.Option("location", description="where it happens", max_length=300),
    cmd.Option("url", description="booking and details page (https://…)", max_length=500),
    cmd.Option("organiser", description="who runs it", max_length=200),
    cmd.Option("description", description="what it is about", max_length=1500),
]
REMIND = cmd.Option(
    "remind",
    description="offsets before the start, like 7d,1d,1h, or none",
    form="durations before the start, separated by commas (7d,1d,1h), or none",
)
_IN_EVENT_ZONE = ('a date and time (2026-12-06 10:00) or a phrase like "next tuesday 9am", '
                  "read in the event's zone")  # fmt: skip
FORM_ID = "event.add"


def declare(feature: Events) -> None:
    """Register every command, the RSVP button and the add form on the app."""
    app = feature.app
    handlers = Handlers(feature)
    app.command(cmd.Command(
        ("event", "add"), "Announce an upcoming event (no options: open a form)", handlers.add,
        options=[
            cmd.Option("title", description="what it is called (needed unless the form)", max_length=200),
            cmd.Option("start", K.DATETIME, "needed: 2026-12-05 09:00, next tuesday 9am, tomorrow 14:00"),
            cmd.Option("end", K.DATETIME, "when it ends (same forms as start)"),
            cmd.Option("tz", description="the event's IANA time zone, like Europe/London"),
            *DETAILS,
            cmd.Option("channel", K.CHANNEL, "where to announce it (default: here)"),
            REMIND,
            cmd.Option("announce", K.DATETIME, "when to announce it (default: now)"),
            *series_commands.SERIES,
            series_commands.CAPACITY,
        ],
        moderator=True,
        examples=[
            '/event add title="itSMF UK Conference" start="2031-11-05 09:00" tz=Europe/London '
            'location="Novotel London West" remind=7d,1d,1h',
            '/event add title="Service Desk SIG" start="2026-12-03 18:00" repeat=monthly '
            "count=6 capacity=30",
            "/event add",
        ],
    ))  # fmt: skip
    app.command(cmd.Command(
        ("event", "edit"), "Change an event; its announcement is edited in place", handlers.edit,
        options=[
            ID,
            cmd.Option("title", description="new title", max_length=200),
            cmd.Option("start", description="new start, read in the event's zone",
                       form=_IN_EVENT_ZONE),
            cmd.Option("end", description="new end, or - to remove it",
                       form=_IN_EVENT_ZONE + "; or - to remove the end"),
            cmd.Option("tz", description="new zone (keeps the local clock time)"),
            *DETAILS,
            REMIND,
            cmd.Option("capacity", description="how many may go, or none for no limit"),
        ],
        moderator=True,
        examples=['/event edit 3 location="Online" start="2026-12-06 10:00"', "/event edit 3 url=-",
                  "/event edit 3 capacity=40"],
    ))  # fmt: skip
    app.command(cmd.Command(
        ("event", "cancel"), "Cancel an event (a whole series, or one date) and its reminders",
        handlers.cancel,
        [ID, cmd.Option("date", description="one date of a series: 2026-12-17")],
        moderator=True, examples=["/event cancel 3", "/event cancel 3 date=2026-12-17"],
    ))  # fmt: skip
    app.command(cmd.Command(("event", "list"), "Upcoming events", handlers.list_upcoming))
    app.command(cmd.Command(
        ("event", "rsvps"), "Who answered an event's RSVP", handlers.rsvps, [ID], moderator=True
    ))  # fmt: skip
    app.command(cmd.Command(("event", "mine"), "Your own RSVPs", handlers.mine))
    app.command(cmd.Command(
        ("event", "import"), "Add the events of an iCalendar (.ics) URL", handlers.import_url,
        [cmd.Option("url", description="https://… address of an .ics calendar", required=True,
                    positional=True, max_length=1000)],
        moderator=True,
    ))  # fmt: skip
    app.command(cmd.Command(
        ("event", "calendar"), "A calendar URL to subscribe to: every event, or one channel's",
        handlers.calendar,
        [cmd.Option("channel", K.CHANNEL, "also the URL of only the events announced there",
                    positional=True),
         cmd.Option("revoke", K.BOOL, "moderators: replace the URL (the old one stops working)")],
        examples=["/event calendar", "/event calendar #general", "/event calendar revoke"],
    ))  # fmt: skip
    app.on_action("event.rsvp", handlers.rsvp)
    app.on_action("event.rsvp_all", partial(series_commands.rsvp_all, feature))
    app.on_form(FORM_ID, handlers.submit_form)


class Handlers:
    def __init__(self, feature: Events) -> None:
        self.feature = feature
        self.service: EventService = feature.service

    @property
    def max_remind(self) -> timedelta:
        return self.feature.settings.max_remind

    def _remind(self, text: str | None) -> list[timedelta]:
        if text is None:
            return list(self.feature.settings.default_remind)
        if text.strip().lower() in ("none", CLEAR):
            return []
        return parse_offsets(text)

    async def _event(self, ctx: Context, event_id: int) -> Event:
        event = await self.service.store.get(event_id, ctx.community.id)
        if event is None:
            raise UsageError(f"There is no event #{event_id}.", "id", "See /event list.")
        return event

    # --- Moderators ----------------------------------------------------------------------

    async def add(
        self,
        ctx: Context,
        title: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        tz: str | None = None,
        channel: ChannelRef | None = None,
        remind: str | None = None,
        announce: datetime | None = None,
        repeat: str | None = None,
        until: str | None = None,
        count: int | None = None,
        capacity: int | None = None,
        **details: str | None,
    ) -> Any:
        given = [title, start, end, tz, channel, remind, announce, repeat, until, count,
                 capacity, *details.values()]  # fmt: skip
        if all(v is None for v in given):
            return OpenForm(add_form(ctx.tz))
        if not title:
            raise UsageError("Missing `title`: what the event is called.", "title")
        if start is None:
            raise UsageError("Missing `start`: when it starts.", "start")
        draft = Draft(
            title=title, start=start, tz=tz or ctx.tz, end=end, capacity=capacity,
            remind=self._remind(remind), **{k: v or "" for k, v in details.items()},
        )  # fmt: skip
        draft = check(draft, ctx.now, self.max_remind)
        if announce is not None and announce >= draft.start:
            raise UsageError("The announcement must come before the start.", "announce")
        where = channel or ctx.channel
        if repeat is not None:
            outcome = await series_commands.add_series(
                self.feature, ctx, where, draft, repeat, until, count, announce
            )
        else:
            series_commands.refuse_ends_alone(until, count)
            found = await self.service.create(
                ctx.community.id, where, draft, ctx.user.key, announce_at=announce
            )
            assert found is not None  # a fresh uid never collides
            outcome = found
        return Ephemeral(confirmation("created", outcome, where, ctx.channel))

    async def edit(self, ctx: Context, id: int, **changes: Any) -> Ephemeral:
        event = await self._event(ctx, id)
        if event.cancelled:
            raise UsageError(f"Event #{id} is cancelled; it cannot be edited.", "id")
        if all(v is None for v in changes.values()):
            raise UsageError("Nothing to change.", hint="Example: /event edit 3 location=Online")
        tz = changes.pop("tz") or event.tz
        start, end = event.start, event.end
        if tz != event.tz:
            start = same_wall_time(start, event.tz, tz)
            end = same_wall_time(end, event.tz, tz) if end else None
        start_text, end_text = changes.pop("start"), changes.pop("end")
        if start_text:
            start = parse_moment(start_text, tz, ctx.now, "start")
        if end_text:
            end = None if end_text == CLEAR else parse_moment(end_text, tz, ctx.now, "end")
        remind = changes.pop("remind")
        capacity = series_commands.capacity(changes.pop("capacity"), event.capacity)
        fields = {}
        for name, value in changes.items():
            fields[name] = (
                getattr(event, name) if value is None else ("" if value == CLEAR else value)
            )
        draft = Draft(
            start=start, tz=tz, end=end, capacity=capacity,
            remind=event.remind if remind is None else self._remind(remind), **fields,
        )  # fmt: skip
        draft = check(draft, ctx.now, self.max_remind, allow_past=start == event.start)
        for name, value in vars(draft).items():
            setattr(event, name, value)
        outcome = await self.service.update(event)
        return Ephemeral(confirmation("updated", outcome, event.channel, ctx.channel))

    async def cancel(self, ctx: Context, id: int, date: str | None = None) -> Ephemeral:
        event = await self._event(ctx, id)
        if date is not None:
            return await series_commands.cancel_date(self.feature, ctx, event, date)
        if event.series_uid:
            return await series_commands.cancel_series(self.feature, event)
        if not await self.service.cancel(event):
            raise UsageError(f"Event #{id} is already cancelled.", "id")
        return Ephemeral(Post(text=f"Event #{id} **{inert(event.title)}** is cancelled; "
                                   "its announcement says so and its reminders are off."))  # fmt: skip

    async def rsvps(self, ctx: Context, id: int) -> Ephemeral:
        event = await self._event(ctx, id)
        rsvps = await self.service.store.rsvps(event.id)
        waiting = await self.service.waitlist.store.waiting(event.id)
        return Ephemeral(render.rsvp_list(event, rsvps, ctx.tz, waiting))

    async def import_url(self, ctx: Context, url: str) -> Ephemeral:
        check_url(url)
        settings = self.feature.settings
        data = await ical.fetch(
            url,
            settings.import_max_bytes,
            settings.import_timeout.total_seconds(),
            settings.import_allow_private,
        )
        report = await self.service.import_calendar(
            data, ctx.community.id, ctx.channel, ctx.user.key, ctx.tz,
            settings.max_remind, list(settings.default_remind),
            settings.import_horizon, settings.import_max_occurrences,
        )  # fmt: skip
        return Ephemeral(Post(title="Calendar import", text=report.summary()))

    # --- Everyone ------------------------------------------------------------------------

    async def calendar(
        self, ctx: Context, channel: ChannelRef | None = None, revoke: bool = False
    ) -> Ephemeral:
        feeds = self.feature.calendars
        if feeds.base_url is None:
            raise UserError(
                "Calendar feeds are served by the bot's web server, which is not switched on.",
                hint="Whoever runs the bot can turn it on with [web] enabled = true"
                " (and public_url set to the address calendar apps reach).",
            )
        if revoke and not ctx.is_moderator:
            raise PermissionDenied("Only moderators can revoke a calendar URL.",
                                   hint="Without revoke, /event calendar gives you the URL.")  # fmt: skip
        if channel is not None and (await ctx.app.communities.of(channel)).id != ctx.community.id:
            raise UsageError("That channel is not one of this community's.", "channel")
        revoked = revoke and await self._revoke_calendar(ctx, channel)
        community_url = await feeds.url(ctx.community.id)
        assert community_url is not None
        shown = [(f"Every event of {inert(ctx.community.name)}", community_url)]
        if channel is not None:
            channel_url = await feeds.url(ctx.community.id, channel)
            assert channel_url is not None
            where = channel_words(channel, ctx.channel)
            shown.append((f"Only the events announced in {where}", channel_url))
        listed = [(holds, url, calendar_feeds.webcal(url)) for holds, url in shown]
        google = calendar_feeds.google_link(community_url)
        return Ephemeral(render.calendar_links(listed, google, revoked))

    async def _revoke_calendar(self, ctx: Context, channel: ChannelRef | None) -> bool:
        """Revoke the channel's URL (or the community's, which the announcements of events
        not yet over then carry anew: their old link would answer 404). False: none yet."""
        if not await self.feature.calendars.revoke(ctx.community.id, channel):
            return False
        log.info("calendar URL of %s revoked by %s",
                 channel.key if channel else f"community {ctx.community.id}", ctx.user.key)  # fmt: skip
        if channel is None:
            for event in await self.service.store.upcoming(ctx.now, ctx.community.id):
                await self.service.refresh(event.id)
        return True

    async def list_upcoming(self, ctx: Context) -> Ephemeral:
        events = await self.service.store.upcoming(ctx.now, ctx.community.id)
        return Ephemeral(render.upcoming(events, ctx.tz))

    async def mine(self, ctx: Context) -> Ephemeral:
        pairs = await self.service.store.mine(ctx.user, ctx.now)
        waiting = await self.service.waitlist.store.places(ctx.user, ctx.now)
        return Ephemeral(render.mine(pairs, ctx.tz, waiting))

    async def rsvp(self, ctx: Context, action: Action) -> list[Any]:
        event_id, _, answer = action.value.partition(":")
        if not event_id.isdigit() or answer not in render.RSVP_LABELS:
            raise UserError("That button is not one I know.")
        event = await self.service.store.get(int(event_id), ctx.community.id)
        if event is None:
            raise UserError("That event no longer exists.")
        if event.cancelled:
            raise UserError(f"**{inert(event.title)}** has been cancelled.")
        if ctx.now >= event.start:
            raise UserError(f"**{inert(event.title)}** has already started.")
        status, _, notify = answer.partition("+")
        said, post = await self.service.answer(event, ctx.user, status, bool(notify))
        replies: list[Any] = []
        if post and await self.service.is_announcement(event.id, ctx.channel, ctx.message_id):
            replies.append(UpdateMessage(post))
        replies.append(Ephemeral(render_series.answered(event, answer, said)))
        return replies

    # --- The add form --------------------------------------------------------------------

    async def submit_form(self, ctx: Context, sub: Submission) -> Any:
        if not ctx.is_moderator:
            raise UserError("Only moderators can add events.")
        values = {k: (v or "").strip() for k, v in sub.values.items()}
        errors: dict[str, str] = {}
        tz = values.get("tz") or ctx.tz
        try:
            timeutil.zone(tz)
        except UsageError as exc:
            errors["tz"] = inert(exc.message)  # it quotes what was typed
            tz = ctx.tz
        start = None
        try:
            start = parse_moment(values.get("start", ""), tz, ctx.now, "start")
        except UsageError as exc:
            errors["start"] = inert(exc.message)
        if not values.get("title"):
            errors["title"] = "An event needs a title."
        if errors:
            return FormErrors(errors)
        assert start is not None
        draft = Draft(
            title=values["title"], start=start, tz=tz,
            location=values.get("location", ""), description=values.get("description", ""),
            remind=list(self.feature.settings.default_remind),
        )  # fmt: skip
        try:
            draft = check(draft, ctx.now, self.max_remind)
        except UsageError as exc:
            return FormErrors({exc.option or "title": inert(exc.message)})
        outcome = await self.service.create(ctx.community.id, ctx.channel, draft, ctx.user.key)
        assert outcome is not None
        return Ephemeral(confirmation("created", outcome, ctx.channel, ctx.channel))


def add_form(default_tz: str) -> Form:
    """Five fields, the most a Discord modal holds; the rest can follow with /event edit."""
    return Form(
        id=FORM_ID,
        title="New event",
        submit_label="Announce",
        fields=[
            FormField("title", "Title", max_length=200),
            FormField("start", "Starts", placeholder="2026-12-05 09:00 or next tuesday 9am"),
            FormField("tz", "Time zone", required=False, placeholder=default_tz, max_length=64),
            FormField("location", "Where", required=False, max_length=300),
            FormField("description", "What it is about", "paragraph", False, max_length=1500),
        ],
    )


def confirmation(verb: str, outcome: Outcome, channel: ChannelRef, here: ChannelRef) -> Post:
    """What a moderator is told of an event added or changed from `here`."""
    event = outcome.event
    reminders = ", ".join(timeutil.format_duration(o) for o in event.remind) or "none"
    lines = [
        f"Event #{event.id} **{inert(event.title)}** {verb}: starts "
        f"{render.own_time(event.start, event.tz)}.",
        f"Announced in {channel_words(channel, here)}; reminders before the start: {reminders}.",
        *(f"- {note}" for note in outcome.notes),
    ]
    return Post(text="\n".join(lines))


def channel_words(channel: ChannelRef, here: ChannelRef) -> str:
    """A channel as a reply read `here` can name it: the platform's own mention where both
    are in one workspace; a channel elsewhere has no mention here, so it is said in words."""
    if (channel.platform, channel.workspace) == (here.platform, here.workspace):
        return channel_tag(channel)
    return f"a channel on {channel.platform.title()}"
