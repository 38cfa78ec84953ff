"""/event add, edit, cancel, list through the console: announcements edited in place, and
every bad input refused with a clear message and nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from adapters.console import Console
from bot.events import Events
from bot.help import Help
from bot.model import ChannelRef

ADD = '@mod! /event add title="itSMF UK Conference" start="2026-12-05 09:00" tz=Europe/London'


class Run:
    """A console on an App with only the events feature, and helpers to look inside."""

    def __init__(self, app, clock) -> None:
        self.app = app
        self.clock = clock
        self.out: list[str] = []
        self.console = Console(app, write=self.out.append)
        self.service = app.features["event"].service

    async def say(self, *lines: str) -> str:
        start = len(self.out)
        for line in lines:
            await self.console.handle(line)
        return "\n".join(self.out[start:])

    async def settle(self, seconds: float = 2) -> None:
        """Let the edit debounce pass, then deliver."""
        self.clock.advance(seconds)
        await self.app.scheduler.run_due()
        await self.app.outbox.drain()

    def post(self, number: int):
        return self.console.screen.messages[number].post

    async def count(self) -> int:
        return await self.app.db.fetchval("SELECT count(*) FROM events")


@pytest.fixture
async def run(make_app, clock) -> Run:
    return Run(await make_app(features=[Help, Events]), clock)


def fields(post) -> dict[str, str]:
    return {f.name: f.value for f in post.fields}


async def test_add_announces_with_the_listing_shape_and_own_zone(run):
    said = await run.say(
        ADD + ' end="2026-12-05 17:00" location="Novotel London West" url=https://example.org/c'
        ' organiser="itSMF UK" description="The annual conference" remind=7d,1d,1h'
    )
    assert "Event #1 **itSMF UK Conference** created" not in said  # markdown is rendered
    assert "Event #1 itSMF UK Conference created" in said
    post = run.post(2)
    shown = fields(post)
    assert list(shown) == ["WHAT", "WHERE", "WHEN", "WHO", "BOOKING"]
    start = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)  # GMT in December
    assert f"\u27e6t:{int(start.timestamp())}:F\u27e7" in shown["WHEN"]
    assert f"\u27e6t:{int(start.timestamp())}:R\u27e7" in shown["WHEN"]
    assert "Sat 05 Dec 2026, 09:00–17:00 Europe/London" in shown["WHEN"]
    assert "Novotel London West" in shown["WHERE"]
    assert "(https://example.org/c)" in shown["BOOKING"]
    assert [b.label for b in post.buttons] == [
        "Going", "Going + remind me", "Interested", "Not going",
    ]  # fmt: skip
    assert post.attachments[0].filename == "event-1.ics"
    jobs = {j.key: j.due_at for j in await run.app.scheduler.pending("event:1:")}
    assert jobs == {
        "event:1:remind:1w": start - timedelta(days=7),
        "event:1:remind:1d": start - timedelta(days=1),
        "event:1:remind:1h": start - timedelta(hours=1),
    }
    listed = await run.say("@ann /event list")
    assert "#1 itSMF UK Conference" in listed and "Novotel London West" in listed


async def test_natural_phrases_are_read_in_the_events_zone(run):
    # 2026-11-23 09:00 UTC is a Monday; 'tomorrow 14:00' in New York is 19:00 UTC.
    await run.say('@mod! /event add title=SIG start="tomorrow 14:00" tz=America/New_York')
    await run.say('@mod! /event add title=Seminar start="next tuesday 9am"')
    first = await run.service.store.get(1)
    second = await run.service.store.get(2)
    assert first.start == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    assert first.tz == "America/New_York"
    assert second.start.astimezone(UTC).hour == 9 and second.tz == "UTC"
    assert second.start.weekday() == 1 and second.start > run.clock.now()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (ADD.replace("2026-12-05 09:00", "the day after never"), "can't read `the day after"),
        (ADD.replace("Europe/London", "Mars/Olympus"), "`Mars/Olympus` is not a time zone"),
        (ADD + ' end="2026-12-05 08:00"', "The end is before the start"),
        (ADD.replace("2026-12-05", "2026-11-01"), "is in the past"),
        (ADD + " remind=7d,3x", "`3x` is not a reminder offset"),
        (ADD + " remind=90d", "`12w6d` is not a reminder offset I can use"),
        (ADD + " url=ftp://example.org", "is not a web address"),
        (ADD + " colour=red", "`colour` is not an option"),
        ('@mod! /event add start="2026-12-05 09:00"', "Missing `title`"),
        ("@mod! /event add title=Talk", "Missing `start`"),
        (ADD.replace("@mod!", "@ann"), "for moderators only"),
        (ADD + ' announce="2026-12-06 09:00"', "announcement must come before the start"),
    ],
)
async def test_bad_input_is_refused_clearly_and_stores_nothing(run, line, message):
    said = await run.say(line)
    assert message in said
    assert "[only" in said  # shown to the one who typed it
    assert await run.count() == 0
    assert await run.app.outbox.pending_count() == 0


async def test_unknown_event_ids_are_named(run):
    for line in ("@mod! /event edit 9 title=X", "@mod! /event cancel 9", "@mod! /event rsvps 9"):
        assert "There is no event #9." in await run.say(line)


async def test_events_of_another_community_are_unknown(run):
    await run.say(ADD)
    other = Console(run.app, write=run.out.append)
    elsewhere = ChannelRef("console", "other-workspace", "general")
    from bot.model import Invocation

    replies = await run.app.invoke(
        Invocation(("event",), other.user("mod"), elsewhere, True, text="cancel 1")
    )
    assert "There is no event #1." in replies[0].post.text
    assert not (await run.service.store.get(1)).cancelled


async def test_edit_changes_the_announcement_in_place_and_moves_reminders(run):
    await run.say(ADD + ' location="Novotel London West" remind=1d')
    said = await run.say('@mod! /event edit 1 location="Online" start="2026-12-06 10:00"')
    assert "updated: starts Sun 06 Dec 2026, 10:00 Europe/London" in said
    await run.settle()
    assert "#2 (edited) [public]" in run.out[-1]
    post = run.post(2)
    assert fields(post)["WHERE"] == "Online"
    assert "Sun 06 Dec 2026, 10:00 Europe/London" in fields(post)["WHEN"]
    jobs = await run.app.scheduler.pending("event:1:")
    assert [(j.key, j.due_at) for j in jobs] == [
        ("event:1:remind:1d", datetime(2026, 12, 5, 10, 0, tzinfo=UTC))
    ]
    assert (await run.service.store.get(1)).sequence == 1


async def test_edit_of_the_zone_keeps_the_local_clock_time_and_clears_with_a_dash(run):
    await run.say(ADD + ' end="2026-12-05 11:00" url=https://example.org/x')
    await run.say("@mod! /event edit 1 tz=America/New_York url=- remind=none")
    event = await run.service.store.get(1)
    assert event.start == datetime(2026, 12, 5, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert event.end == datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
    assert event.url == "" and event.remind == []
    assert await run.app.scheduler.pending("event:1:") == []


async def test_edit_refuses_bad_changes_and_keeps_the_event(run):
    await run.say(ADD)
    assert "The end is before the start" in await run.say('@mod! /event edit 1 end="2026-12-01"')
    assert "is in the past" in await run.say('@mod! /event edit 1 start="2026-11-01 09:00"')
    assert "can't read `someday`" in await run.say("@mod! /event edit 1 start=someday")
    assert "`Mars/Olympus` is not a time zone" in await run.say(
        "@mod! /event edit 1 tz=Mars/Olympus"
    )
    assert "Nothing to change" in await run.say("@mod! /event edit 1")
    assert "for moderators only" in await run.say("@ann /event edit 1 title=Mine")
    event = await run.service.store.get(1)
    assert (event.title, event.end, event.sequence) == ("itSMF UK Conference", None, 0)
    assert (event.start, event.tz) == (datetime(2026, 12, 5, 9, 0, tzinfo=UTC), "Europe/London")


async def test_cancel_marks_the_announcement_and_cancels_reminders(run):
    await run.say(ADD + " remind=7d,1d")
    said = await run.say("@mod! /event cancel 1")
    assert "is cancelled" in said
    await run.settle()
    post = run.post(2)
    assert post.title.startswith("CANCELLED: ")
    assert post.buttons == []
    (calendar,) = post.attachments  # still there, so a calendar that has it can be updated
    (vevent,) = icalendar.Calendar.from_ical(calendar.data).walk("VEVENT")
    assert (str(vevent["status"]), int(vevent["sequence"])) == ("CANCELLED", 1)
    assert await run.app.scheduler.pending("event:1:") == []
    assert await run.app.scheduler.state("event:1:remind:1w") == "cancelled"
    assert "already cancelled" in await run.say("@mod! /event cancel 1")
    assert "is cancelled; it cannot be edited" in await run.say("@mod! /event edit 1 title=X")
    assert "has no button `going`" in await run.say("@ann click 2 going")  # buttons removed
    from bot.model import Action

    stale = Action("event.rsvp", "1:going", run.console.user("ann"), run.console.channel, "2")
    replies = await run.app.act(stale)  # a client still showing the old buttons
    assert "has been cancelled" in replies[0].post.text
    assert "No upcoming events" in await run.say("/event list")
    run.clock.advance(timedelta(days=30))
    assert await run.app.scheduler.run_due() == []


async def test_reminders_already_past_at_creation_are_reported_and_not_armed(run):
    said = await run.say('@mod! /event add title=Soon start="2026-11-25 09:00" remind=7d,1d')
    assert "1w reminder skipped: that moment has passed" in said
    assert [j.key for j in await run.app.scheduler.pending()] == ["event:1:remind:1d"]


async def test_a_later_announcement_waits_for_its_moment(run):
    said = await run.say(ADD.replace("tz=Europe/London", 'announce="2026-11-30 12:00"'))
    assert "announcement scheduled" in said
    assert len(run.console.screen.messages) == 1  # the confirmation only
    run.clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))  # the community's zone: UTC
    await run.settle(0)
    assert run.post(2).title == "📅 itSMF UK Conference"


async def test_moving_the_start_before_a_delayed_announcement_announces_now(run):
    await run.say(ADD.replace("tz=Europe/London", 'announce="2026-11-30 12:00"'))
    said = await run.say('@mod! /event edit 1 start="2026-11-28 10:00"')
    assert "announced now" in said
    assert any(
        m.post.title == "📅 itSMF UK Conference" for m in run.console.screen.messages.values()
    )
    assert await run.app.scheduler.pending("event:1:announce") == []


async def test_a_delayed_announcement_is_still_made_after_long_downtime(make_app, clock):
    first = Run(await make_app(features=[Help, Events], db="down.db"), clock)
    await first.say(ADD.replace("tz=Europe/London", 'announce="2026-11-24 12:00"'))
    await first.app.stop()
    clock.set(datetime(2026, 12, 4, 9, 0, tzinfo=UTC))  # ten days later, the day before
    again = Run(await make_app(features=[Help, Events], db="down.db"), clock)
    await again.settle(0)
    assert await again.app.outbox.state("event:1:console:demo:general") is not None


async def test_the_announcement_goes_to_the_communitys_linked_channels(make_app, clock):
    config = {
        "community": [
            {
                "name": "ITSM",
                "workspaces": ["console:demo", "slack:T1"],
                "channels": ["console:demo:general", "slack:T1:C-events"],
            }
        ]
    }
    run = Run(await make_app(features=[Help, Events], config=config), clock)
    await run.say(ADD)
    assert await run.app.outbox.state("event:1:console:demo:general") == "sent"
    assert await run.app.outbox.state("event:1:slack:T1:C-events") == "pending"  # no transport
    await run.say("@mod! /event edit 1 title=Renamed")
    row = await run.app.db.fetchone(
        "SELECT payload FROM outbox WHERE key = 'event:1:slack:T1:C-events'"
    )
    assert "Renamed" in row["payload"]  # not posted yet: the queued post itself was replaced


async def test_no_options_opens_a_form_whose_errors_come_back(run):
    said = await run.say("@mod! /event add")
    assert "Form: New event" in said
    said = await run.say('@mod! form title="" start="someday never" tz=Nowhere/Land')
    assert "- tz: `Nowhere/Land` is not a time zone I know." in said
    assert "- title: An event needs a title." in said
    assert "- start:" in said
    said = await run.say('@mod! form title="BRM SIG" start="2026-11-01 10:00"')
    assert "- start: The start" in said and "is in the past" in said
    assert await run.count() == 0
    said = await run.say(
        '@mod! form title="BRM SIG" start="2026-12-01 10:00" tz=Europe/Oslo location=Online'
    )
    assert "Event #1 BRM SIG created" in said
    event = await run.service.store.get(1)
    assert event.start == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert event.location == "Online" and len(event.remind) == 2


async def test_only_moderators_may_submit_the_add_form(run):
    from bot.events.commands import FORM_ID
    from bot.model import Submission

    values = {"title": "Mine", "start": "2026-12-01 10:00"}
    sub = Submission(FORM_ID, "", values, run.console.user("ann"), run.console.channel, False)
    replies = await run.app.submit(sub)
    assert "Only moderators can add events." in replies[0].post.text
    assert await run.count() == 0


async def test_demo_events_are_dated_from_today_and_seeded_once(run):
    await run.app.features["event"].seed_demo(run.console.channel)
    await run.app.features["event"].seed_demo(run.console.channel)
    await run.app.outbox.drain()
    events = await run.service.store.upcoming(run.clock.now())
    assert len(events) == 4
    seminar = next(e for e in events if e.title.startswith("Service Desk"))
    # 12 days from Monday 23 November 2026, 09:00 in London (GMT).
    assert seminar.start == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert seminar.end - seminar.start == timedelta(minutes=240)
    assert seminar.remind == [timedelta(days=7), timedelta(days=1), timedelta(hours=1)]
    breakfast = next(e for e in events if "Breakfast" in e.title)
    assert breakfast.start == datetime(2026, 12, 12, 12, 30, tzinfo=UTC)  # 07:30 Toronto
    titles = [s.post.title for s in run.console.screen.messages.values()]
    assert len(titles) == 4 and all(t.startswith("📅 ") for t in titles)


def test_the_demo_then_the_calendar_command_on_the_same_database(tmp_path):
    from click.testing import CliRunner

    from bot.cli import main

    path = str(tmp_path / "ev.db")
    script = (
        '@mod! /event add title="itSMF UK Conference" start="2031-11-05 09:00"'
        ' tz=Europe/London location="Novotel London West"\n/event list\n'
    )
    shown = CliRunner().invoke(main, ["demo", "--db", path], input=script)
    assert shown.exit_code == 0, shown.output
    listing = shown.output.split("** Upcoming events **")[1]
    assert "itSMF UK Conference — " in listing and "Novotel London West" in listing
    ics = CliRunner().invoke(main, ["events", "ics", "--db", path])
    assert ics.exit_code == 0
    assert "SUMMARY:itSMF UK Conference" in ics.output
    assert "DTSTART;TZID=Europe/London:20311105T090000" in ics.output
    assert "LOCATION:Novotel London West" in ics.output
