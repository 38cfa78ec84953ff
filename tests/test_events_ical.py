"""Calendars: the .ics parsed back with icalendar and checked, the attachment on each
announcement, import of files and URLs (with its safety limits), the export -> import
round trip, and the `itsm-bot events` commands."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from aiohttp import web
from click.testing import CliRunner

from adapters.console import Console
from bot.app import App
from bot.cli import main
from bot.clock import FakeClock
from bot.errors import UserError
from bot.events import Events, ical
from bot.help import Help
from tests.conftest import START, make_config

FEATURES = [Help, Events]
FULL = (
    '@mod! /event add title="itSMF UK Conference" start="2031-11-05 09:00"'
    ' end="2031-11-06 17:00" tz=Europe/London location="Novotel London West"'
    ' url=https://example.org/conf organiser="itSMF UK" description="Two days, one theme"'
    " remind=7d,1d,1h"
)
SIG = '@mod! /event add title="CSI SIG" start="2031-03-10 14:00" tz=America/New_York remind=2h'


async def boot(make_app, db="bot.db", config=None):
    app = await make_app(features=FEATURES, db=db, config=config)
    out: list[str] = []
    return app, Console(app, write=out.append), out


def vevents(data: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(data).walk("VEVENT"))


async def test_the_export_parses_back_with_every_property(make_app):
    app, console, _ = await boot(make_app)
    await console.handle(FULL)
    service = app.features["event"].service
    event = await service.store.get(1)
    data = ical.export([event], app.clock.now())
    cal = icalendar.Calendar.from_ical(data)
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["uid"]) == event.uid
    assert vevent.decoded("dtstamp") == START
    assert vevent["dtstart"].params["TZID"] == "Europe/London"
    start = vevent.decoded("dtstart")
    assert start.replace(tzinfo=None) == datetime(2031, 11, 5, 9, 0)
    assert start.astimezone(UTC) == datetime(2031, 11, 5, 9, 0, tzinfo=UTC)
    assert vevent.decoded("dtend").astimezone(UTC) == datetime(2031, 11, 6, 17, 0, tzinfo=UTC)
    assert str(vevent["summary"]) == "itSMF UK Conference"
    assert str(vevent["location"]) == "Novotel London West"
    assert str(vevent["url"]) == "https://example.org/conf"
    assert str(vevent["description"]) == "Two days, one theme"
    assert str(vevent["contact"]) == "itSMF UK"
    triggers = [a.decoded("trigger") for a in vevent.walk("VALARM")]
    assert triggers == [-timedelta(days=7), -timedelta(days=1), -timedelta(hours=1)]
    assert {str(a["action"]) for a in vevent.walk("VALARM")} == {"DISPLAY"}
    again = ical.export([await service.store.get(1)], app.clock.now() + timedelta(days=1))
    assert again == data  # stable: same UID and stamp until the event changes


async def test_the_zone_rules_cover_the_event_across_a_clock_change(make_app):
    # Starts in summer time, ends after the clocks go back on 26 October 2031.
    app, console, _ = await boot(make_app)
    await console.handle(
        '@mod! /event add title=Retreat start="2031-10-25 09:00" end="2031-10-27 17:00"'
        " tz=Europe/London"
    )
    event = await app.features["event"].service.store.get(1)
    data = ical.export([event], app.clock.now())
    (vtimezone,) = icalendar.Calendar.from_ical(data).walk("VTIMEZONE")
    own_rules = vtimezone.to_tz(lookup_tzid=False)  # read from the file, not the system
    assert event.start.astimezone(own_rules).utcoffset() == timedelta(hours=1)
    assert event.end.astimezone(own_rules).utcoffset() == timedelta(0)
    assert event.start.astimezone(own_rules).hour == 9
    assert len(data) < 1500  # only the rules the event needs, not every year since 1970


async def test_each_announcement_carries_its_own_ics(make_app):
    app, console, _ = await boot(make_app)
    await console.handle(FULL)
    attachment = console.screen.messages[2].post.attachments[0]
    assert attachment.content_type == "text/calendar"
    (vevent,) = vevents(attachment.data)
    assert str(vevent["summary"]) == "itSMF UK Conference"
    await console.handle("@mod! /event edit 1 location=Online")
    app.clock.advance(5)
    await app.outbox.drain()
    edited = console.screen.messages[2].post.attachments[0]
    (vevent,) = vevents(edited.data)
    assert str(vevent["location"]) == "Online" and int(vevent["sequence"]) == 1


async def test_export_then_import_gives_the_same_events(make_app):
    app, console, _ = await boot(make_app)
    await console.handle(FULL)
    await console.handle(SIG)
    service = app.features["event"].service
    originals = await service.store.upcoming(app.clock.now())
    data = ical.export(originals, app.clock.now())

    other, console2, _ = await boot(make_app, db="other.db")
    report = await other.features["event"].service.import_calendar(
        data, 1, console2.channel, "test", "UTC", timedelta(days=60), [timedelta(hours=1)]
    )
    assert len(report.added) == 2
    copies = await other.features["event"].service.store.upcoming(other.clock.now())

    def essence(e):
        return (e.uid, e.title, e.start, e.end, e.tz, e.location, e.url, e.organiser,
                e.description, e.remind)  # fmt: skip

    assert [essence(e) for e in copies] == [essence(e) for e in originals]
    await other.outbox.drain()
    assert [s.post.title for s in console2.screen.messages.values()] == [
        "📅 CSI SIG",
        "📅 itSMF UK Conference",
    ]
    again = await other.features["event"].service.import_calendar(
        data, 1, console2.channel, "test", "UTC", timedelta(days=60), []
    )
    assert (len(again.added), again.known) == (0, 2)


FOREIGN = b"""BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//A chapter//EN
BEGIN:VEVENT
UID:floating-1
DTSTAMP:20260101T000000Z
DTSTART:20270115T180000
SUMMARY:Floating evening talk
ORGANIZER;CN=North Chapter:mailto:chapter@example.org
END:VEVENT
BEGIN:VEVENT
DTSTAMP:20260101T000000Z
DTSTART:20270116T090000Z
DURATION:PT2H
SUMMARY:UTC workshop, no UID
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT30M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:gone
DTSTAMP:20260101T000000Z
DTSTART:20270117T090000Z
STATUS:CANCELLED
SUMMARY:Called off
END:VEVENT
BEGIN:VEVENT
UID:old
DTSTAMP:20260101T000000Z
DTSTART:20200117T090000Z
SUMMARY:Long ago
END:VEVENT
BEGIN:VEVENT
UID:untitled
DTSTAMP:20260101T000000Z
DTSTART:20270118T090000Z
END:VEVENT
END:VCALENDAR
"""


async def test_a_chapters_calendar_imports_with_clear_skips(make_app):
    app, console, _ = await boot(make_app)
    service = app.features["event"].service
    report = await service.import_calendar(
        FOREIGN, 1, console.channel, "test", "Europe/Dublin", timedelta(days=60),
        [timedelta(days=1)],
    )  # fmt: skip
    titles = [e.title for e in report.added]
    assert titles == ["Floating evening talk", "UTC workshop, no UID"]
    floating, workshop = report.added
    assert floating.tz == "Europe/Dublin" and floating.organiser == "North Chapter"
    assert floating.start == datetime(2027, 1, 15, 18, 0, tzinfo=UTC)  # Dublin is UTC in winter
    assert floating.remind == [timedelta(days=1)]  # no alarm: the default
    assert workshop.tz == "UTC" and workshop.end - workshop.start == timedelta(hours=2)
    assert workshop.remind == [timedelta(minutes=30)]
    assert workshop.uid.startswith("import-")
    assert report.past == 1
    assert report.invalid == ["untitled: An event needs a title."]
    assert "Added 2 event(s)." in report.summary()


def test_an_all_day_event_starts_at_midnight_in_the_default_zone():
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nBEGIN:VEVENT\r\nUID:day-1\r\n"
        b"DTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20270601\r\nSUMMARY:Chapter day\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    (item,) = ical.parse(data, "Europe/Berlin")
    assert item.draft.start == datetime(2027, 5, 31, 22, 0, tzinfo=UTC)  # 00:00 CEST
    assert (item.uid, item.draft.tz) == ("day-1", "Europe/Berlin")


async def test_the_calendar_is_parsed_off_the_event_loop(make_app, monkeypatch):
    app, console, _ = await boot(make_app)
    loop_thread = threading.get_ident()
    parsed_in: list[int] = []
    real_parse = ical.parse

    def watched_parse(data: bytes, tz: str, *limits):
        parsed_in.append(threading.get_ident())
        return real_parse(data, tz, *limits)

    monkeypatch.setattr(ical, "parse", watched_parse)
    report = await app.features["event"].service.import_calendar(
        FOREIGN, 1, console.channel, "test", "UTC", timedelta(days=60), []
    )
    assert len(report.added) == 2
    assert parsed_in and loop_thread not in parsed_in


def calendar(*events: str) -> bytes:
    """A VCALENDAR around `events`, each written as indented lines of one VEVENT."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//x//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *(line.strip() for line in event.splitlines()), "END:VEVENT"]
    return "\r\n".join([*lines, "END:VCALENDAR", ""]).encode()


MONTHLY_SIG = calendar(
    """UID:sig@chapter
    DTSTAMP:20261101T000000Z
    DTSTART;TZID=Europe/London:20261203T180000
    DTEND;TZID=Europe/London:20261203T193000
    RRULE:FREQ=MONTHLY;BYDAY=1TH;COUNT=8
    EXDATE;TZID=Europe/London:20270204T180000
    SUMMARY:Service Design SIG
    BEGIN:VALARM
    ACTION:DISPLAY
    TRIGGER:-P1D
    END:VALARM""",
    """UID:sig@chapter
    DTSTAMP:20261101T000000Z
    RECURRENCE-ID;TZID=Europe/London:20270107T180000
    DTSTART;TZID=Europe/London:20270114T180000
    DTEND;TZID=Europe/London:20270114T193000
    SUMMARY:Service Design SIG (moved a week)""",
    """UID:sig@chapter
    DTSTAMP:20261101T000000Z
    RECURRENCE-ID;TZID=Europe/London:20270304T180000
    DTSTART;TZID=Europe/London:20270304T180000
    STATUS:CANCELLED
    SUMMARY:Service Design SIG""",
    """UID:one-off@chapter
    DTSTAMP:20261101T000000Z
    DTSTART:20270301T100000Z
    SUMMARY:Chapter AGM""",
)


async def test_a_repeating_event_adds_each_occurrence_within_the_horizon_once(make_app):
    app, console, _ = await boot(make_app)
    service = app.features["event"].service

    async def run_import():
        return await service.import_calendar(
            MONTHLY_SIG, 1, console.channel, "test", "UTC", timedelta(days=60), [],
            horizon=timedelta(days=150),
        )  # fmt: skip

    report = await run_import()
    added = sorted(report.added, key=lambda e: e.start)
    # Dec, Jan (moved), Feb excluded, Mar cancelled, Apr (after the clocks change);
    # May onwards is past the 150 days from 23 Nov (22 Apr).
    assert [(e.title, e.start) for e in added] == [
        ("Service Design SIG", datetime(2026, 12, 3, 18, 0, tzinfo=UTC)),
        ("Service Design SIG (moved a week)", datetime(2027, 1, 14, 18, 0, tzinfo=UTC)),
        ("Chapter AGM", datetime(2027, 3, 1, 10, 0, tzinfo=UTC)),
        ("Service Design SIG", datetime(2027, 4, 1, 17, 0, tzinfo=UTC)),
    ]
    assert all(e.tz == "Europe/London" for e in added if "SIG" in e.title)
    assert [e.uid for e in added] == [
        "sig@chapter",  # the series' own start keeps the series' UID
        "sig@chapter/20270107T180000Z",  # named for the slot it was planned for
        "one-off@chapter",
        "sig@chapter/20270401T170000Z",
    ]
    assert added[0].remind == [timedelta(days=1)]

    again = await run_import()
    assert again.added == [] and again.known == 4
    assert len(await service.store.upcoming(app.clock.now())) == 4


def test_a_series_gives_at_most_so_many_occurrences_and_says_so():
    daily = calendar(
        """UID:standup@chapter
        DTSTART:20261124T090000Z
        RRULE:FREQ=DAILY
        SUMMARY:Daily stand-up"""
    )
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    items = ical.parse(daily, "UTC", now, timedelta(days=180), max_occurrences=3)
    assert [i.draft.start.day for i in items] == [24, 25, 26]
    assert [i.left_out for i in items] == [0, 0, 176]  # 179 in 180 days from the 24th
    started_long_ago = daily.replace(b"DTSTART:20261124", b"DTSTART:20200101")
    later = ical.parse(started_long_ago, "UTC", now, timedelta(days=2))
    assert [i.draft.start for i in later] == [  # none of the six years before now
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC),  # starting now: the service skips it
        datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
    ]


async def test_garbage_is_not_a_calendar(make_app):
    with pytest.raises(UserError, match="not an iCalendar file"):
        ical.parse(b"<html>hello</html>", "UTC")


@pytest.fixture
async def served():
    """A local web server with a calendar, a huge file and a redirect."""
    big = b"BEGIN:VCALENDAR\r\n" + b"X-PAD:" + b"x" * 3000 + b"\r\nEND:VCALENDAR\r\n"
    calendar = FOREIGN

    async def cal(request):
        return web.Response(body=calendar, content_type="text/calendar")

    async def huge(request):
        return web.Response(body=big, content_type="text/calendar")

    async def moved(request):
        raise web.HTTPFound("/cal.ics")

    application = web.Application()
    application.add_routes(
        [web.get("/cal.ics", cal), web.get("/big.ics", huge), web.get("/moved", moved)]
    )
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_event_import_fetches_a_url_with_limits(make_app, served):
    config = {"event": {"import_allow_private": True, "import_max_bytes": 2000}}
    app, console, out = await boot(make_app, config=config)
    await console.handle(f"@mod! /event import {served}/moved")
    assert "Added 2 event(s)." in out[-1 - 2]  # then the two announcements
    assert await app.db.fetchval("SELECT count(*) FROM events") == 2
    await console.handle(f"@mod! /event import {served}/big.ics")
    assert "larger than 2,000 bytes" in out[-1]
    await console.handle(f"@mod! /event import {served}/missing.ics")
    assert "HTTP 404" in out[-1]
    await console.handle("@mod! /event import file:///etc/passwd")
    assert "is not a web address" in out[-1]
    await console.handle(f"@ann /event import {served}/cal.ics")
    assert "for moderators only" in out[-1]


async def test_private_addresses_are_refused_unless_allowed(make_app, served):
    app, console, out = await boot(make_app)
    await console.handle(f"@mod! /event import {served}/cal.ics")
    assert "refused: 127.0.0.1 is a loopback address" in out[-1]
    with pytest.raises(UserError, match="only http:// and https:// addresses"):
        await ical.fetch("gopher://example.org/x", 1000, 5)
    with pytest.raises(UserError, match="refused: 127.0.0.1 is a loopback address"):
        await ical.fetch(served.replace("127.0.0.1", "localhost") + "/cal.ics", 1000, 5)
    assert await app.db.fetchval("SELECT count(*) FROM events") == 0


# --- The command line (synchronous: each command runs its own event loop) ----------------


def seed(path: str) -> None:
    async def go() -> None:
        config = make_config()
        async with App.running(
            config, FEATURES, clock=FakeClock(START), db_path=path, background=False
        ) as app:
            console = Console(app, write=lambda _: None)
            await console.handle(FULL)
            await console.handle(SIG)
            await console.handle("@mod! /event cancel 2")

    asyncio.run(go())


def test_events_ics_prints_the_upcoming_events(tmp_path):
    path = str(tmp_path / "ev.db")
    seed(path)
    result = CliRunner().invoke(main, ["events", "ics", "--db", path])
    assert result.exit_code == 0, result.output
    (vevent,) = vevents(result.output.encode())  # the cancelled one is left out
    assert str(vevent["summary"]) == "itSMF UK Conference"
    assert vevent["dtstart"].params["TZID"] == "Europe/London"
    missing = CliRunner().invoke(main, ["events", "ics", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code != 0 and "no such database" in missing.output


def test_events_import_adds_a_file_to_a_channel(tmp_path):
    source, target = str(tmp_path / "src.db"), str(tmp_path / "dst.db")
    seed(source)
    exported = CliRunner().invoke(main, ["events", "ics", "--db", source]).output
    ics_file = tmp_path / "chapter.ics"
    ics_file.write_text(exported)
    args = ["events", "import", str(ics_file), "--db", target, "--channel", "slack:T1:C1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Added 1 event(s)." in result.output and "itSMF UK Conference" in result.output
    again = CliRunner().invoke(main, args)
    assert "Added 0 event(s)." in again.output and "1 already known" in again.output
    listed = CliRunner().invoke(main, ["events", "ics", "--db", target])
    assert "SUMMARY:itSMF UK Conference" in listed.output
    bad = CliRunner().invoke(main, [*args[:5], "--channel", "nowhere"])
    assert bad.exit_code != 0 and "platform:workspace:channel" in bad.output
