"""Reminders at the right instants under a fake clock, across daylight-saving changes,
through restarts (caught up within the grace, skipped after it or once the event began),
and the final reminder mentioning those going who asked for it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from adapters.console import Console
from bot.events import Events
from bot.help import Help
from bot.model import Action, ChannelRef, Invocation, UserRef

FEATURES = [Help, Events]


async def boot(make_app, db: str = "bot.db", config=None):
    app = await make_app(features=FEATURES, db=db, config=config)
    out: list[str] = []
    return app, Console(app, write=out.append), out


async def add(console: Console, options: str) -> str:
    out_before = len(console.screen.messages)
    await console.handle(f"@mod! /event add {options}")
    return console.screen.messages[out_before + 1].post.text


def reminders(console: Console) -> list:
    return [s.post for s in console.screen.messages.values() if s.post.title.startswith("⏰")]


async def tick(app, clock, to: datetime) -> list:
    clock.set(to)
    ran = await app.scheduler.run_due()
    await app.outbox.drain()
    return ran


async def test_reminders_fire_at_their_instants_and_not_before(make_app, clock):
    app, console, _ = await boot(make_app)
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=7d,1d,1h')
    start = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    for offset, label in ((timedelta(days=7), "1 week"), (timedelta(days=1), "1 day")):
        assert await tick(app, clock, start - offset - timedelta(seconds=1)) == []
        ran = await tick(app, clock, start - offset)
        assert [outcome for _, outcome in ran] == ["done"]
        assert reminders(console)[-1].title == f"⏰ In {label}: Seminar"
    await tick(app, clock, start - timedelta(hours=1))
    assert len(reminders(console)) == 3
    assert "⟦t:" in reminders(console)[-1].text  # the start, in each reader's zone


async def test_london_event_across_the_october_change(make_app, clock):
    # Created in summer time (BST, UTC+1); held after the clocks go back on 25 October.
    clock.set(datetime(2026, 10, 20, 9, 0, tzinfo=UTC))
    app, console, _ = await boot(make_app)
    await add(console, 'title=SIG start="2026-10-27 09:00" tz=Europe/London remind=7d,1d,1h')
    event = await app.features["event"].service.store.get(1)
    assert event.start == datetime(2026, 10, 27, 9, 0, tzinfo=UTC)  # 09:00 GMT, not 08:00
    due = {j.key: j.due_at for j in await app.scheduler.pending()}
    assert "event:1:remind:1w" not in due  # 20 Oct 09:00 UTC is not in the future
    assert due == {
        "event:1:remind:1d": datetime(2026, 10, 26, 9, 0, tzinfo=UTC),
        "event:1:remind:1h": datetime(2026, 10, 27, 8, 0, tzinfo=UTC),
    }
    assert await tick(app, clock, datetime(2026, 10, 26, 8, 59, tzinfo=UTC)) == []
    await tick(app, clock, datetime(2026, 10, 26, 9, 0, tzinfo=UTC))
    assert await tick(app, clock, datetime(2026, 10, 27, 7, 59, tzinfo=UTC)) == []
    assert len(reminders(console)) == 1
    await tick(app, clock, datetime(2026, 10, 27, 8, 0, tzinfo=UTC))
    assert len(reminders(console)) == 2
    when = next(f.value for f in reminders(console)[-1].fields if f.name == "WHEN")
    assert "Tue 27 Oct 2026, 09:00 Europe/London" in when


async def test_new_york_event_across_the_march_change(make_app, clock):
    # Created in standard time (EST, UTC-5); held after clocks go forward on 14 March 2027.
    clock.set(datetime(2027, 3, 10, 12, 0, tzinfo=UTC))
    app, console, _ = await boot(make_app)
    await add(console, 'title=Meetup start="2027-03-16 09:00" tz=America/New_York remind=3d,1h')
    event = await app.features["event"].service.store.get(1)
    assert event.start == datetime(2027, 3, 16, 13, 0, tzinfo=UTC)  # 09:00 EDT
    due = {j.key: j.due_at for j in await app.scheduler.pending()}
    assert due == {
        "event:1:remind:3d": datetime(2027, 3, 13, 13, 0, tzinfo=UTC),  # 08:00 EST locally
        "event:1:remind:1h": datetime(2027, 3, 16, 12, 0, tzinfo=UTC),
    }
    await tick(app, clock, datetime(2027, 3, 13, 13, 0, tzinfo=UTC))
    assert await tick(app, clock, datetime(2027, 3, 16, 11, 59, tzinfo=UTC)) == []
    assert len(reminders(console)) == 1
    await tick(app, clock, datetime(2027, 3, 16, 12, 0, tzinfo=UTC))
    assert len(reminders(console)) == 2


async def test_a_restart_rebuilds_the_timers(make_app, clock):
    app, console, _ = await boot(make_app)
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=1d,1h')
    again = await make_app(features=FEATURES)  # same database: a restart
    due = {j.key: j.due_at for j in await again.scheduler.pending("event:1:remind:")}
    assert due == {
        "event:1:remind:1d": datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
        "event:1:remind:1h": datetime(2026, 12, 5, 8, 0, tzinfo=UTC),
    }
    assert again.scheduler.armed() == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # the one timer


async def test_after_downtime_a_reminder_within_grace_is_posted(make_app, clock):
    app, console, _ = await boot(make_app)
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=1d')
    clock.set(datetime(2026, 12, 4, 10, 30, tzinfo=UTC))  # down while it came due; 1.5h late
    again, console2, _ = await boot(make_app)
    await again.outbox.drain()
    assert await again.scheduler.state("event:1:remind:1d") == "done"
    assert [p.title for p in reminders(console2)] == ["⏰ In 1 day: Seminar"]


async def test_after_downtime_a_reminder_past_grace_is_skipped_and_logged(make_app, clock, caplog):
    app, console, _ = await boot(make_app)
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=1d')
    clock.set(datetime(2026, 12, 4, 12, 0, tzinfo=UTC))  # 3h late, grace is 2h
    with caplog.at_level(logging.WARNING):
        again, console2, _ = await boot(make_app)
    await again.outbox.drain()
    assert await again.scheduler.state("event:1:remind:1d") == "skipped"
    assert reminders(console2) == []
    assert "skipped event:1:remind:1d" in caplog.text


async def test_a_reminder_is_skipped_once_the_event_has_started(make_app, clock, caplog):
    app, console, _ = await boot(make_app, config={"event": {"reminder_grace": "6h"}})
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=1h')
    clock.set(datetime(2026, 12, 5, 9, 30, tzinfo=UTC))  # within grace, but it began
    with caplog.at_level(logging.WARNING):
        again, console2, _ = await boot(make_app, config={"event": {"reminder_grace": "6h"}})
    await again.outbox.drain()
    assert reminders(console2) == []
    assert "event 1 has already started" in caplog.text


COMMUNITY = {
    "community": [
        {
            "name": "ITSM",
            "workspaces": ["console:demo", "slack:T1"],
            "channels": ["console:demo:general", "slack:T1:C1"],
        }
    ]
}


def directs(console: Console) -> list[tuple[str, str]]:
    """(member, title) of each reminder sent as a direct message."""
    return [
        (s.audience[1:], s.post.title)
        for s in console.screen.messages.values()
        if s.audience.startswith("@") and s.post.title.startswith("⏰")
    ]


async def test_the_final_reminder_goes_privately_to_those_going_who_asked(make_app, clock):
    # Used to mention them in the channel's final reminder; now each gets a direct message
    # and the channel reminder pings nobody.
    app, console, _ = await boot(make_app, config=COMMUNITY)
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=1d,1h')
    for name, answer in (("ann", "going+notify"), ("bob", "going"), ("cy", "interested")):
        await console.handle(f"@{name} click 2 {answer.replace('+notify', ' + remind me')}")
    slack_user = UserRef("slack", "T1", "U9", "dee")
    slack_channel = ChannelRef("slack", "T1", "C1")
    await app.act(Action("event.rsvp", "1:going+notify", slack_user, slack_channel))
    await tick(app, clock, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    assert directs(console) == []  # only the final reminder is sent privately
    await tick(app, clock, datetime(2026, 12, 5, 8, 0, tzinfo=UTC))
    public = [s.post for s in console.screen.messages.values() if s.audience == "public"]
    final = [p for p in public if p.title.startswith("⏰")][-1]
    assert final.mentions == [] and "⟦@:" not in final.text
    assert directs(console) == [("ann", "⏰ In 1 hour: Seminar")]  # bob did not opt in
    rows = await app.db.fetchall(
        "SELECT key, channel, payload FROM outbox WHERE key LIKE 'event:1:remind:1h@%'"
    )
    by_channel = {r["channel"]: r for r in rows}
    assert set(by_channel) == {
        "console:demo:general", "slack:T1:C1", "console:demo:@ann", "slack:T1:@U9",
    }  # fmt: skip
    assert '"mentions": []' in by_channel["slack:T1:C1"]["payload"]


async def test_a_direct_reminder_is_sent_once_across_a_restart(make_app, clock):
    app, console, _ = await boot(make_app, db="dm.db")
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=1h')
    await console.handle("@ann click 2 going + remind me")
    clock.advance(2)
    await app.outbox.drain()  # the RSVP's redraw went out long before the reminder
    clock.set(datetime(2026, 12, 5, 8, 0, tzinfo=UTC))
    await app.scheduler.run_due()
    # The process died after queueing the reminder but before the job was marked done and
    # before anything was delivered: the restarted process runs the job again.
    await app.db.execute("UPDATE jobs SET state = 'running' WHERE key = 'event:1:remind:1h'")
    again, console2, _ = await boot(make_app, db="dm.db")
    assert await again.scheduler.state("event:1:remind:1h") == "done"  # it ran again
    await again.scheduler.run_due()
    await again.outbox.drain()
    assert directs(console2) == [("ann", "⏰ In 1 hour: Seminar")]
    keys = await again.db.fetchall("SELECT key FROM outbox WHERE channel = 'console:demo:@ann'")
    assert len(keys) == 1


async def test_a_moved_start_rearms_a_reminder_that_already_ran(make_app, clock):
    app, console, _ = await boot(make_app)
    await add(console, 'title=Seminar start="2026-12-05 09:00" remind=1d')
    await tick(app, clock, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    assert len(reminders(console)) == 1
    inv = Invocation(("event",), console.user("mod"), console.channel, True,
                     text='edit 1 start="2026-12-12 09:00"')  # fmt: skip
    await app.invoke(inv)
    await tick(app, clock, datetime(2026, 12, 5, 9, 0, tzinfo=UTC))
    assert len(reminders(console)) == 1  # the old moment passes quietly
    await tick(app, clock, datetime(2026, 12, 11, 9, 0, tzinfo=UTC))
    assert len(reminders(console)) == 2
