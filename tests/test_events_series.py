"""Series typed in chat (issue 20): `/event add … repeat=` is one series, announced once with
its next dates; each date is reminded in its turn (also across restarts, none lost, none
twice); the announcement moves on to each next date, its buttons answer that date and its
menu every date; one date or the whole series can be cancelled; the daily job stores the
dates coming within reach; the .ics and the calendar feed carry one VEVENT with the RRULE
and an EXDATE per cancelled date. Driven on the console under a fake clock; the menu
also through slack-bolt against the fake Slack, and as discord.py components."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import recurring_ical_events

from adapters.console import Console
from adapters.discord.render import render
from bot.events import Events
from bot.help import Help
from tests.fakes.fake_slack import block_actions_payload, interaction_body
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_events_calendar_feeds import ask, read
from tests.test_events_import_series import calendar_url_fixture  # noqa: F401
from tests.test_polls_slack import slack_bot

FEATURES = [Help, Events]
ADD = '@mod! /event add title="Service Desk SIG" start="2026-12-01 18:00" tz=Europe/London'
TUESDAYS = [datetime(2026, 12, d, 18, 0, tzinfo=UTC) for d in (1, 8, 15, 22, 29)]
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


async def boot(make_app, config=None, db="bot.db"):
    app = await make_app(features=FEATURES, db=db, config=config)
    out: list[str] = []
    return app, Console(app, write=out.append), out


async def restart(make_app, before: Console, config=None):
    """The bot again on the same database; the channel (the console's screen) outlives it,
    as a platform's does, so the announcement can still be edited."""
    app, console, out = await boot(make_app, config)
    console.screen = console.transport.screen = before.screen
    return app, console, out


async def say(console: Console, out: list[str], line: str) -> str:
    start = len(out)
    await console.handle(line)
    await console.app.outbox.drain()
    return "\n".join(out[start:])


async def tick(app, clock, to: datetime) -> None:
    """Move the clock, run what is due, and deliver (past the edits' debounce)."""
    clock.set(to)
    await app.scheduler.run_due()
    await app.outbox.drain()
    clock.advance(2)
    await app.outbox.drain()


def posts(console: Console, title_start: str) -> list:
    return [
        s.post for s in console.screen.messages.values() if s.post.title.startswith(title_start)
    ]


def when(post) -> str:
    return next(f.value for f in post.fields if f.name == "WHEN")


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


async def dates(app) -> list[tuple[int, datetime, str]]:
    rows = await app.db.fetchall("SELECT id, start_at, state FROM events ORDER BY start_at")
    return [(r["id"], datetime.fromtimestamp(r["start_at"], UTC), r["state"]) for r in rows]


async def answers(app, member: str) -> dict[int, str]:
    rows = await app.db.fetchall(
        "SELECT event_id, status FROM event_rsvps WHERE member = ? ORDER BY event_id",
        (f"console:demo:{member}",),
    )
    return {r["event_id"]: r["status"] for r in rows}


def calendar_of(post) -> icalendar.Calendar:
    (attached,) = post.attachments
    return icalendar.Calendar.from_ical(attached.data)


def expanded(cal: icalendar.Calendar, until: datetime) -> list[datetime]:
    """The dates a calendar app shows for the .ics, as UTC."""
    found = recurring_ical_events.of(cal).between(datetime(2026, 11, 1, tzinfo=UTC), until)
    return sorted(e.decoded("dtstart").astimezone(UTC) for e in found)


async def test_a_weekly_series_is_one_announcement_naming_its_next_dates(make_app):
    app, console, out = await boot(make_app)
    said = await say(console, out, ADD + " repeat=weekly count=5")
    assert "repeats weekly" in said and "5 date(s) stored ahead" in said
    assert [start for _, start, _ in await dates(app)] == TUESDAYS
    uids = [r["series_uid"] for r in await app.db.fetchall("SELECT series_uid FROM events")]
    assert len(set(uids)) == 1 and uids[0]
    (post,) = posts(console, "📅")  # one announcement for the five dates
    assert f"Repeats weekly · next: ⟦t:{ts(TUESDAYS[1])}:d⟧" in when(post)
    assert "and 1 more · 5 dates in all" in when(post)
    assert post.text.startswith(f"**RSVP for ⟦t:{ts(TUESDAYS[0])}:D⟧:** 0 going")
    assert {b.value.split(":")[0] for b in post.buttons if b.action} == {"1"}
    assert [s.action for s in post.selects] == ["event.rsvp_all"]

    listing = await say(console, out, "@ann /event list")
    assert listing.count("Service Desk SIG") == 1 and "repeats weekly, 4 more dates" in listing


async def test_each_date_is_reminded_in_its_turn_and_the_announcement_moves_on(make_app, clock):
    app, console, _ = await boot(make_app)
    await console.handle(ADD + " repeat=weekly count=3 remind=1d")
    await app.outbox.drain()
    (announcement,) = [n for n, s in console.screen.messages.items() if s.post.title[:1] == "📅"]
    for turn, start in enumerate(TUESDAYS[:3]):
        await tick(app, clock, start - DAY - timedelta(seconds=1))
        assert len(posts(console, "⏰")) == turn  # not a second early
        await tick(app, clock, start - DAY)
        reminder = posts(console, "⏰")[-1]
        assert reminder.title == "⏰ In 1 day: Service Desk SIG"
        assert f"⟦t:{ts(start)}:R⟧" in reminder.text
        assert reminder.buttons[0].value == f"{turn + 1}:going"  # that date's own answer
        await tick(app, clock, start)  # the date begins: the announcement moves on
        shown = console.screen.messages[announcement].post
        if turn < 2:
            assert shown.buttons[0].value == f"{turn + 2}:going"
            assert f"RSVP for ⟦t:{ts(TUESDAYS[turn + 1])}:D⟧" in shown.text
    assert len(posts(console, "⏰")) == 3
    assert "This series is over" in console.screen.messages[announcement].post.text
    assert len(posts(console, "📅")) == 1  # never announced again


async def test_a_restart_in_the_middle_loses_no_reminder_and_repeats_none(make_app, clock):
    app, console, _ = await boot(make_app)
    await console.handle(ADD + " repeat=weekly count=3 remind=1d,1h")
    await app.outbox.drain()
    await tick(app, clock, TUESDAYS[0] - DAY)
    assert len(posts(console, "⏰")) == 1

    # Down while the first date's hour-before reminder came due; back 30 minutes later.
    clock.set(TUESDAYS[0] - HOUR + timedelta(minutes=30))
    again, console2, _ = await restart(make_app, console)
    await again.outbox.drain()
    assert len(posts(console, "⏰")) == 2

    # Another restart at once: nothing is sent a second time.
    third, console3, _ = await restart(make_app, console2)
    await third.outbox.drain()
    assert len(posts(console, "⏰")) == 2
    for start in TUESDAYS[1:3]:
        for offset in (DAY, HOUR):
            await tick(third, clock, start - offset)
        await tick(third, clock, start)
    reminders = posts(console, "⏰")
    assert [p.title for p in reminders] == [
        "⏰ In 1 day: Service Desk SIG", "⏰ In 1 hour: Service Desk SIG"
    ] * 3  # fmt: skip
    assert [p.buttons[0].value for p in reminders] == ["1:going"] * 2 + ["2:going"] * 2 + [
        "3:going"
    ] * 2  # each date's reminders answer that date
    (shown,) = posts(console, "📅")
    assert "This series is over" in shown.text  # the announcement was edited throughout
    states = await third.db.fetchall(
        "SELECT state, count(*) AS n FROM jobs WHERE kind = 'event.remind' GROUP BY state"
    )
    assert {r["state"]: r["n"] for r in states} == {"done": 6}


async def test_the_daily_job_stores_dates_as_they_come_within_reach(make_app, clock):
    config = {"event": {"import_max_occurrences": 3}}
    app, console, out = await boot(make_app, config)
    said = await say(console, out, ADD + " repeat=weekly remind=1d")
    assert "3 date(s) stored ahead" in said
    await console.handle('@dan click 2 "Going to every date"')
    assert [start for _, start, _ in await dates(app)] == TUESDAYS[:3]

    await tick(app, clock, datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # the job: nothing new
    assert len(await dates(app)) == 3
    await tick(app, clock, datetime(2026, 12, 2, 3, 0, tzinfo=UTC))  # the first date is past
    stored = await dates(app)
    assert [start for _, start, _ in stored] == TUESDAYS[:4]
    newest = stored[-1][0]
    assert (await answers(app, "dan"))[newest] == "going"  # "every date" includes it
    assert await app.scheduler.state(f"event:{newest}:remind:1d") == "pending"
    shown = posts(console, "📅")[0]
    assert f"⟦t:{ts(TUESDAYS[3])}:d⟧" in when(shown)

    # Running it again, or a restart, stores nothing twice.
    assert await app.features["event"].series.extend_all() == 0
    again, _, _ = await boot(make_app, config)
    assert len(await dates(again)) == 4
    assert await again.scheduler.state("event:series:extend") == "pending"


async def test_buttons_answer_one_date_and_the_menu_every_date(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " repeat=weekly count=3 remind=1d")
    await console.handle("@ann click 2 going")
    assert await answers(app, "ann") == {1: "going"}

    said = await say(console, out, '@bob click 2 "Going to every date + remind me"')
    assert "3 dates ahead, and the dates added later get the same answer" in said
    assert await answers(app, "bob") == {1: "going", 2: "going", 3: "going"}
    await console.handle('@bob click 2 "not going"')  # one date changed, the others stand
    assert await answers(app, "bob") == {1: "not_going", 2: "going", 3: "going"}

    await tick(app, clock, TUESDAYS[0] - DAY)
    await tick(app, clock, TUESDAYS[1] - DAY)  # the second date's reminder has its buttons
    number = max(
        n for n, s in console.screen.messages.items()
        if s.post.title[:1] == "⏰" and s.audience == "public"
    )  # fmt: skip
    assert "on Tuesday 08 December 2026" in await say(console, out, f"@cat click {number} going")
    assert await answers(app, "cat") == {2: "going"}
    notify = await app.db.fetchval(
        "SELECT notify FROM event_rsvps WHERE event_id = 3 AND member = 'console:demo:bob'"
    )
    assert notify == 1


async def test_cancelling_one_date_stops_its_reminders_and_adds_an_exdate(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " repeat=weekly count=5 remind=1d")
    said = await say(console, out, "@mod! /event cancel 1 date=2026-12-08")
    assert "of Tue 08 Dec 2026, 18:00 Europe/London is cancelled" in said
    assert await app.scheduler.state("event:2:remind:1d") == "cancelled"
    assert "already cancelled" in await say(console, out, "@mod! /event cancel 1 date=2026-12-08")
    assert "has no date on 09 Dec 2026" in await say(
        console, out, "@mod! /event cancel 1 date=2026-12-09"
    )
    await tick(app, clock, clock.now())
    shown = posts(console, "📅")[0]
    assert f"cancelled: ⟦t:{ts(TUESDAYS[1])}:d⟧" in when(shown)
    assert f"next: ⟦t:{ts(TUESDAYS[2])}:d⟧" in when(shown)

    for start in TUESDAYS[:3]:
        await tick(app, clock, start - DAY)
    reminded = [p.text for p in posts(console, "⏰")]
    assert len(reminded) == 2  # 8 December's never came
    assert f"⟦t:{ts(TUESDAYS[0])}:R⟧" in reminded[0] and f"⟦t:{ts(TUESDAYS[2])}:R⟧" in reminded[1]
    cal = calendar_of(shown)
    (vevent,) = cal.walk("VEVENT")
    assert vevent["rrule"]["FREQ"] == ["WEEKLY"] and vevent["rrule"]["COUNT"] == [5]
    assert vevent["exdate"].params["TZID"] == "Europe/London"
    (excluded,) = vevent["exdate"].dts
    assert excluded.dt.replace(tzinfo=None) == datetime(2026, 12, 8, 18, 0)
    assert expanded(cal, datetime(2027, 2, 1, tzinfo=UTC)) == [
        TUESDAYS[0], TUESDAYS[2], TUESDAYS[3], TUESDAYS[4]
    ]  # fmt: skip


async def test_a_date_beyond_reach_is_cancelled_before_it_is_stored(make_app, clock):
    config = {"event": {"import_max_occurrences": 2}}
    app, console, out = await boot(make_app, config)
    await say(console, out, ADD + " repeat=weekly remind=1d")
    assert len(await dates(app)) == 2
    said = await say(console, out, "@mod! /event cancel 1 date=2026-12-22")
    assert "is cancelled" in said
    await tick(app, clock, datetime(2026, 12, 9, 3, 0, tzinfo=UTC))  # the job fills up again
    assert [(start, state) for _, start, state in await dates(app)] == [
        (TUESDAYS[0], "scheduled"), (TUESDAYS[1], "scheduled"), (TUESDAYS[2], "scheduled"),
        (TUESDAYS[3], "cancelled"), (TUESDAYS[4], "scheduled"),
    ]  # fmt: skip


async def test_cancelling_the_series_cancels_every_date_ahead(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " repeat=weekly remind=1d")
    said = await say(console, out, "@mod! /event cancel 3")  # any date names the series
    assert "The series Service Desk SIG is cancelled" in said
    await tick(app, clock, TUESDAYS[1] - DAY)
    assert posts(console, "⏰") == []
    shown = posts(console, "CANCELLED")
    assert len(shown) == 1 and "This series has been cancelled" in shown[0].text
    assert shown[0].buttons == [] and shown[0].selects == []
    assert await app.scheduler.pending("event:") == []  # no reminder and no daily job left
    assert {state for _, _, state in await dates(app)} == {"cancelled"}
    (vevent,) = calendar_of(shown[0]).walk("VEVENT")
    assert str(vevent["status"]) == "CANCELLED"
    assert len(await dates(app)) == 12  # and no more are stored
    assert "no date ahead" in await say(console, out, "@mod! /event cancel 1")


async def test_an_edited_date_is_an_override_in_the_calendar(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " repeat=weekly count=3")
    said = await say(console, out, '@mod! /event edit 2 location=Online start="2026-12-08 19:00"')
    assert "only this date of the series changed" in said
    await tick(app, clock, clock.now())
    cal = calendar_of(posts(console, "📅")[0])
    master, override = cal.walk("VEVENT")
    assert str(override["uid"]) == str(master["uid"])
    assert override.decoded("recurrence-id").replace(tzinfo=None) == datetime(2026, 12, 8, 18, 0)
    assert str(override["location"]) == "Online"
    moved = TUESDAYS[1] + HOUR
    assert expanded(cal, datetime(2027, 1, 1, tzinfo=UTC)) == [TUESDAYS[0], moved, TUESDAYS[2]]


async def test_a_series_keeps_its_local_time_across_the_clock_change(make_app, clock):
    app, console, out = await boot(make_app)
    add = '@mod! /event add title=SIG start="2027-03-23 18:00" tz=Europe/London repeat=weekly'
    await say(console, out, add + " count=3")
    expected = [
        datetime(2027, 3, 23, 18, 0, tzinfo=UTC),  # GMT
        datetime(2027, 3, 30, 17, 0, tzinfo=UTC),  # BST: still 18:00 in London
        datetime(2027, 4, 6, 17, 0, tzinfo=UTC),
    ]
    assert [start for _, start, _ in await dates(app)] == expected
    assert expanded(calendar_of(posts(console, "📅")[0]), datetime(2027, 6, 1, tzinfo=UTC)) == (
        expected
    )


async def test_a_monthly_rule_starts_on_its_own_first_date(make_app):
    app, console, out = await boot(make_app)
    said = await say(console, out, ADD + ' repeat="RRULE:FREQ=MONTHLY;BYDAY=1TH" until=2027-03-31')
    assert "its first date is Thu 03 Dec 2026, 18:00 Europe/London" in said
    assert [start.day for _, start, _ in await dates(app)] == [3, 7, 4, 4]  # Dec, Jan, Feb, Mar
    shown = posts(console, "📅")[0]
    assert "Repeats monthly · next:" in when(shown) and "· until ⟦t:" in when(shown)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("repeat=hourly", "hourly is not a repeat rule I can read"),
        ('repeat="RRULE:FREQ=HOURLY"', "repeats daily, weekly, monthly or yearly, not HOURLY"),
        ('repeat="RRULE:FREQ=WEEKLY;BYDAY=XX"', "That repeat rule does not work"),
        ('repeat="RRULE:FREQ=DAILY;BYHOUR=9,17"', "the time of day is the start's"),
        ("repeat=weekly until=2026-11-30", "until (30 Nov 2026) is before the start"),
        ("repeat=weekly count=0", "count: must be at least 1"),
        ("repeat=weekly until=2027-01-31 count=5", "Give either until or count, not both"),
        ('repeat="RRULE:FREQ=WEEKLY;COUNT=3" count=4', "The rule already says when it ends"),
        ("until=2027-01-31", "until goes with repeat"),
        ("count=3", "count goes with repeat"),
        ("repeat=weekly capacity=0", "capacity: must be at least 1"),
    ],
)
async def test_bad_series_options_are_refused_with_the_reason(make_app, options, message):
    app, console, out = await boot(make_app)
    said = await say(console, out, f"{ADD} {options}")
    assert message in said.replace("`", "")
    assert await dates(app) == [] and posts(console, "📅") == []


async def test_the_calendar_feed_carries_a_series_as_one_vevent(web, clock):
    await web.console.say(
        '@mia! /event add title="Service Desk SIG" start="2026-12-01 18:00" tz=Europe/London'
        " repeat=weekly count=4",
        '@mia! /event add title="Chapter AGM" start="2026-12-10 17:00" tz=Europe/London',
        "@mia! /event cancel 1 date=2026-12-15",
    )
    [url] = await ask(web)
    cal = await read(url)
    found = {str(e["summary"]): e for e in cal.walk("VEVENT")}
    assert sorted(found) == ["Chapter AGM", "Service Desk SIG"]  # not one VEVENT per date
    sig = found["Service Desk SIG"]
    assert sig["rrule"]["COUNT"] == [4] and sig["dtstart"].params["TZID"] == "Europe/London"
    assert [d.dt.replace(tzinfo=None) for d in sig["exdate"].dts] == [datetime(2026, 12, 15, 18)]
    assert "VALARM" not in [c.name for c in sig.subcomponents]
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]
    shown = [e for e in expanded(cal, datetime(2027, 1, 1, tzinfo=UTC)) if e.hour == 18]
    assert shown == [TUESDAYS[0], TUESDAYS[1], TUESDAYS[3]]


@pytest.fixture
async def slack(make_app, fake_slack):
    async with slack_bot(make_app, fake_slack, FEATURES) as bot:
        yield bot


async def test_on_slack_the_menu_answers_every_date(slack, clock):
    slack.fake.users["U9"] = {"is_admin": True}
    created = await slack.command(
        "event", 'add title="Service Desk SIG" start="2026-12-01 18:00" repeat=weekly count=3',
        user="U9",
    )  # fmt: skip
    assert "repeats weekly" in str(created)
    await slack.app.outbox.drain()
    (posted,) = slack.fake.calls_to("chat.postMessage")
    actions = [b for b in posted["blocks"] if b["type"] == "actions"]
    buttons = [e for e in actions[0]["elements"] if e["type"] == "button"]
    assert [b["value"] for b in buttons] == ["1:going", "1:going+notify", "1:interested",
                                             "1:not_going"]  # fmt: skip
    (menu,) = [e for b in actions for e in b["elements"] if e["type"] == "static_select"]
    assert [o["text"]["text"] for o in menu["options"]][0] == "Going to every date"
    block_id = next(b["block_id"] for b in actions if menu in b["elements"])

    ts = slack.fake.messages["C1"][0]["ts"]
    payload = block_actions_payload(menu["action_id"], "", user_id="U5", message_ts=ts,
                                    response_url=slack.fake.response_url())  # fmt: skip
    payload["actions"] = [{
        "type": "static_select", "action_id": menu["action_id"], "block_id": block_id,
        "selected_option": {"value": "going", "text": {"type": "plain_text", "text": "x"}},
        "action_ts": "1700000001.000200",
    }]  # fmt: skip
    before = len(slack.fake.responses)
    assert await slack.post(interaction_body(payload)) == 200
    said = (await slack.fake.wait_for_response(before + 1))[-1]
    assert "3 dates ahead" in str(said)
    rows = await slack.app.db.fetchall(
        "SELECT event_id FROM event_rsvps WHERE member = 'slack:T1:U5' AND status = 'going'"
    )
    assert [r["event_id"] for r in rows] == [1, 2, 3]


async def test_on_discord_the_announcement_has_its_buttons_and_the_menu(make_app):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " repeat=weekly count=3 capacity=10")
    post = posts(console, "📅")[0]
    view = render(post).view
    assert view is not None
    rows = view.to_components()
    assert [[c["type"] for c in row["components"]] for row in rows] == [[2, 2, 2, 2], [3]]
    (menu,) = rows[1]["components"]
    assert [o["label"] for o in menu["options"]] == [
        "Going to every date", "Going to every date + remind me", "Interested in every date",
        "Not going to any date",
    ]  # fmt: skip
    assert menu["custom_id"].startswith("itsm:event.rsvp_all")
    assert "0/10 going" in post.text


async def test_an_imported_monthly_series_is_one_series_end_to_end(make_app, clock, calendar_url):
    config = {"event": {"import_allow_private": True}}
    app, console, out = await boot(make_app, config)
    await say(console, out, f"@mod! /event import {calendar_url}")
    (announcement,) = [n for n, s in console.screen.messages.items() if "SIG" in s.post.title]
    rows = await app.db.fetchall("SELECT id FROM events WHERE series_uid != '' ORDER BY start_at")
    sig = [r["id"] for r in rows]
    assert len(sig) == 4  # Dec, Jan (moved), Apr, May: Feb excluded, Mar cancelled
    december = sig[0]
    said = await say(console, out, f'@ann click {announcement} "Going to every date"')
    assert "4 dates ahead" in said
    assert set(await answers(app, "ann")) == set(sig)

    said = await say(console, out, f"@mod! /event cancel {december} date=2027-01-14")
    assert "(moved a week) of Thu 14 Jan 2027, 18:00 Europe/London is cancelled" in said
    await tick(app, clock, datetime(2026, 12, 3, 18, 0, tzinfo=UTC))  # December begins
    shown = console.screen.messages[announcement].post
    assert shown.buttons[0].value == f"{sig[2]}:going"  # on to April, past cancelled January
    assert f"cancelled: ⟦t:{ts(datetime(2027, 1, 14, 18, 0, tzinfo=UTC))}:d⟧" in when(shown)
    assert len(posts(console, "📅")) == 2  # the SIG's one announcement and the AGM's
