"""Members' own time zones on the console: `/my timezone`, the replies only they see shown
in it (channel posts keep the community's zone), a mistyped zone refused naming the closest,
and the daily prompt's reminder by direct message at the member's own local time, once,
across a restart and a job run again after a crash."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.console import Console
from bot.help import Help
from bot.members import My
from bot.prompts import JustDoIt

EVENT = '@mod! /event add title="itSMF UK Conference" start="2026-12-05 09:00" tz=Europe/London'


class Run:
    def __init__(self, app) -> None:
        self.app = app
        self.out: list[str] = []
        self.console = Console(app, write=self.out.append)

    async def say(self, *lines: str) -> str:
        start = len(self.out)
        for line in lines:
            await self.console.handle(line)
        await self.app.outbox.drain()
        return "\n".join(self.out[start:])

    def direct(self, name: str) -> list:
        return [s.post for s in self.console.screen.messages.values() if s.audience == f"@{name}"]

    async def zone_row(self, user: str):
        return await self.app.db.fetchone(
            'SELECT zone, source FROM member_zones WHERE "user" = ?', (user,)
        )


async def test_the_members_zone_is_shown_in_their_replies_only(make_app) -> None:
    run = Run(await make_app())
    said = await run.say("@ann /my timezone Europe/Oslo")
    assert "Your time zone is now Europe/Oslo (it is 10:00 there, UTC+01:00)" in said
    announced = await run.say(EVENT)
    assert "WHEN: Saturday 05 December 2026 09:00 UTC" in announced  # the channel's zone
    mine = await run.say("@ann /event list")
    assert "Sat 05 Dec 2026 10:00 CET" in mine
    assert "(Sat 05 Dec 2026, 09:00 Europe/London)" in mine  # the organisers' time stays
    other = await run.say("@bob /event list")
    assert "Sat 05 Dec 2026 09:00 UTC" in other and "CET" not in other


async def test_a_polls_opening_time_is_told_in_the_creators_zone(make_app) -> None:
    run = Run(await make_app())
    await run.say("@ann /my timezone Asia/Kolkata")
    said = await run.say('@ann /poll create "Which practice?" Incident Change opens=2d')
    assert "will be posted in this channel Wed 25 Nov 2026 14:30 IST" in said
    said = await run.say('@bob /poll create "Which one?" Problem Change opens=2d')
    assert "Wed 25 Nov 2026 09:00 UTC" in said


async def test_show_and_reset_go_back_to_the_communitys_zone(make_app) -> None:
    run = Run(await make_app(config={"bot": {"timezone": "Europe/London"}}))
    said = await run.say("@ann /my timezone")
    assert "You have not set a time zone: you see the community's, Europe/London" in said
    await run.say("@ann /my timezone america/new_york")  # any case: stored as IANA writes it
    assert dict(await run.zone_row("ann")) == {"zone": "America/New_York", "source": "member"}
    assert "America/New_York (it is 04:00 there, UTC-05:00), as you set it" in await run.say(
        "@ann /my timezone"
    )
    said = await run.say("@ann /my timezone reset")
    assert "Forgot your time zone. You have not set a time zone" in said
    assert await run.zone_row("ann") is None
    assert "You had not set a time zone." in await run.say("@ann /my timezone reset")
    assert "09:00 GMT" in await run.say(EVENT, "@ann /event list")


async def test_a_mistyped_zone_is_refused_naming_the_closest(make_app) -> None:
    run = Run(await make_app())
    said = await run.say("@ann /my timezone Europe/Olso")
    assert "`Europe/Olso` is not a time zone I know." in said
    assert "Did you mean Europe/Oslo?" in said
    said = await run.say("@ann /my timezone Mars/Olympus_Mons")
    assert "is not a time zone I know" in said and "Did you mean" not in said
    assert "Did you mean America/New_York?" in await run.say("@ann /my timezone America/New York")
    assert await run.zone_row("ann") is None
    # The same hint for any tz= option.
    said = await run.say(EVENT.replace("Europe/London", "Europe/Londn"))
    assert "Did you mean Europe/London?" in said


async def test_help_lists_the_command_and_its_options(make_app) -> None:
    run = Run(await make_app())
    assert "/my timezone" in await run.say("@ann /help")
    said = await run.say("@ann /help my timezone")
    assert "/my timezone [zone...]" in said and "or reset" in said


async def test_a_zone_set_elsewhere_is_the_members_own_per_platform(make_app) -> None:
    run = Run(await make_app())
    await run.say("@ann /my timezone Asia/Tokyo")
    row = await run.app.db.fetchone('SELECT platform, workspace, "user" FROM member_zones')
    assert tuple(row) == ("console", "demo", "ann")


async def test_a_direct_message_shows_its_times_in_the_members_zone(make_app, clock) -> None:
    run = Run(await make_app())
    await run.say("@ann /my timezone Asia/Tokyo")
    await run.say(EVENT + " remind=1h")
    await run.say("@ann click 3 going + remind me", "@bob click 3 going + remind me")
    await at(run, clock, datetime(2026, 12, 5, 8, 0, tzinfo=UTC))
    (ann,) = run.direct("ann")
    (bob,) = run.direct("bob")
    assert ann.zone == "Asia/Tokyo" and bob.zone == "UTC"  # bob has none: the community's
    (shown,) = [block for block in run.out if "[direct to ann]" in block]
    assert "05 Dec 2026 18:00 JST" in shown, shown


# --- The daily prompt's reminder ---------------------------------------------------------

FEATURES = [Help, My, JustDoIt]


async def prompt_today(run: Run) -> None:
    await run.say("@mod! /justdoit schedule time=08:30 tz=UTC days=daily", "@mod! /justdoit today")


async def at(run: Run, clock, moment: datetime) -> None:
    clock.set(moment)
    await run.app.scheduler.run_due()
    await run.app.outbox.drain()


async def test_the_reminder_comes_at_the_members_local_time_once(make_app, clock) -> None:
    run = Run(await make_app(features=FEATURES))  # Monday 23 Nov 2026, 09:00 UTC
    await prompt_today(run)
    await run.say("@ann /my timezone America/New_York", "@bob /my timezone America/New_York")
    said = await run.say("@ann /justdoit remind 12:00")
    assert "at 12:00 America/New_York by direct message" in said
    assert "Next: Mon 23 Nov 2026 12:00 EST" in said  # in her zone, not the community's
    await run.say("@bob /justdoit remind 12:00", '@bob /justdoit answer "Called a customer"')
    await at(run, clock, datetime(2026, 11, 23, 16, 59, tzinfo=UTC))
    assert run.direct("ann") == []
    await at(run, clock, datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # 12:00 in New York
    (dm,) = run.direct("ann")
    assert dm.title == "Just do it: today's prompt"
    assert "America/New_York" in dm.footer and "/justdoit answer" in dm.text
    assert run.direct("bob") == []  # he had answered
    await at(run, clock, datetime(2026, 11, 23, 20, 0, tzinfo=UTC))
    assert len(run.direct("ann")) == 1
    jobs = await run.app.scheduler.pending("justdoit:remind:")
    assert sorted(j.due_at for j in jobs) == [datetime(2026, 11, 24, 17, 0, tzinfo=UTC)] * 2


async def test_a_reminder_run_again_after_a_crash_sends_nothing_twice(make_app, clock) -> None:
    run = Run(await make_app(features=FEATURES))
    await prompt_today(run)
    await run.say("@ann /my timezone Europe/Oslo", "@ann /justdoit remind 13:00")
    await at(run, clock, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # 13:00 in Oslo
    assert len(run.direct("ann")) == 1
    # A crash before the job's outcome was written: at the next start it runs again.
    await run.app.db.execute(
        "UPDATE jobs SET state = 'running' WHERE key LIKE 'justdoit:remind:%2026-11-23'"
    )
    again = Run(await make_app(features=FEATURES))
    await at(again, clock, datetime(2026, 11, 23, 12, 1, tzinfo=UTC))
    assert again.direct("ann") == []
    sent = await again.app.db.fetchval(
        "SELECT count(*) FROM outbox WHERE key LIKE 'justdoit:reminded:%'"
    )
    assert sent == 1
    (job,) = await again.app.scheduler.pending("justdoit:remind:")
    assert job.due_at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def test_a_new_zone_moves_the_reminder_and_off_stops_it(make_app, clock) -> None:
    run = Run(await make_app(features=FEATURES))
    await prompt_today(run)
    await run.say("@ann /justdoit remind 18:00")  # the community's zone: UTC
    (job,) = await run.app.scheduler.pending("justdoit:remind:")
    assert job.due_at == datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    await run.say("@ann /my timezone Asia/Tokyo")  # 18:00 there is 09:00 UTC: tomorrow
    (job,) = await run.app.scheduler.pending("justdoit:remind:")
    assert job.due_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    said = await run.say("@ann /justdoit remind off")
    assert "No more reminders of the daily prompt" in said
    assert await run.app.scheduler.pending("justdoit:remind:") == []
    await at(run, clock, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    assert run.direct("ann") == []


async def test_a_reminder_before_the_prompt_is_posted_is_warned_of(make_app) -> None:
    run = Run(await make_app(features=FEATURES))
    await prompt_today(run)  # posted at 08:30 UTC
    await run.say("@ann /my timezone Europe/Oslo")
    said = await run.say("@ann /justdoit remind 09:00")  # 08:00 UTC
    assert "That is before the prompt is posted (09:30)" in said  # in her zone
    assert "before the prompt" not in await run.say("@ann /justdoit remind 09:45")


async def test_bad_reminder_input_is_refused_clearly(make_app) -> None:
    run = Run(await make_app(features=FEATURES))
    said = await run.say("@ann /justdoit remind 08:30")
    assert "This channel has no daily prompt to be reminded of." in said
    await prompt_today(run)
    said = await run.say("@ann /justdoit remind 25:99")
    assert "`25:99` is not a time of day." in said
    assert await run.app.scheduler.pending("justdoit:remind:") == []
    assert "You had no reminder" in await run.say("@ann /justdoit remind off")
