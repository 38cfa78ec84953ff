"""Polls that run themselves, on the console under a fake clock: posted later (`opens=`)
once across restarts, repeated each week with each run tallied apart and a trend in its
results, reminders by direct message to last run's voters who have not voted, sent once
even across restarts, and the values that make no schedule refused. Then the reminder on
Slack (real slack-bolt against the fake Slack), voted on from the direct message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from adapters.console import Console
from bot.model import time_tag
from bot.polls.series import opening
from tests.conftest import START, ConsoleRun
from tests.fakes.fake_slack import block_actions_payload, interaction_body
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_polls_slack import (
    Slack,
    controls,
    slack,  # noqa: F401
)
from tests.test_polls_slack import shown as as_json

HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)
WEEKLY = '@mia! /poll create "How was your week?" "Calm" "Busy" "On fire" repeat=weekly'


async def boot(make_app) -> ConsoleRun:
    """An App on bot.db with a console: called again, a restart on the same file."""
    app = await make_app()
    out: list[str] = []
    return ConsoleRun(Console(app, write=out.append), out)


async def tick(run: ConsoleRun, clock, to: datetime) -> list[tuple[str, str]]:
    """Move the clock, run what is due and deliver it; the polls' jobs that ran."""
    clock.set(to)
    ran = await run.app.scheduler.run_due()
    await run.app.outbox.drain()
    await run.app.features["poll"].refresher.flush()
    await run.app.outbox.drain()
    return [(key, outcome) for key, outcome in ran if key.startswith("poll:")]


def number(run: ConsoleRun, key: str) -> int:
    """The console's number for the message the outbox queued as `key`."""
    return run.console.screen.by_key[key]


def shown(run: ConsoleRun, key: str):
    return run.console.screen.messages[number(run, key)]


async def posts_queued(run: ConsoleRun, prefix: str) -> list[str]:
    rows = await run.app.db.fetchall(
        "SELECT key FROM outbox WHERE kind = 'post' AND key LIKE ? ORDER BY id", (prefix + "%",)
    )
    return [r[0] for r in rows]


async def crash_during(run: ConsoleRun, job_key: str) -> None:
    """As if the process died after the job did its work but before its outcome was
    written: the row is left claimed, and the next start runs the job again."""
    await run.app.db.execute(
        "UPDATE jobs SET state = 'running', claimed_by = 'gone' WHERE key = ?", (job_key,)
    )


# --- opens= --------------------------------------------------------------------------------


async def test_a_poll_posted_later_appears_once_across_restarts(make_app, clock):
    first = await boot(make_app)
    said = await first.say('@mia! /poll create "Best meetup day?" "Tue" "Wed" opens=2h')
    assert "Poll #1 will be posted in this channel Mon 23 Nov 2026 11:00 UTC." in said
    assert "Cancel it before then with `/poll close 1`." in said
    assert await posts_queued(first, "poll:1:") == []
    said = await first.say("@sam /poll results 1")
    assert "Poll #1 is not posted yet, so it has no results." in said

    before = await boot(make_app)  # restarted before the moment: the job is rebuilt
    assert before.app.scheduler.armed() == START + 2 * HOUR
    assert await tick(before, clock, START + 2 * HOUR - timedelta(seconds=1)) == []
    assert await posts_queued(before, "poll:1:") == []
    await tick(before, clock, START + 2 * HOUR)
    assert await posts_queued(before, "poll:1:") == ["poll:1:console:demo:general"]
    assert shown(before, "poll:1:console:demo:general").post.title == "📊 Best meetup day?"

    await crash_during(before, "poll:1:open")  # restarted during: the opening runs again
    during = await boot(make_app)
    await during.app.outbox.drain()
    assert await during.app.scheduler.state("poll:1:open") == "done"
    assert await posts_queued(during, "poll:1:") == ["poll:1:console:demo:general"]
    assert during.console.screen.messages == {}  # nothing posted a second time

    after = await boot(make_app)  # restarted after: nothing is due
    assert await tick(after, clock, START + 3 * HOUR) == []
    assert await posts_queued(after, "poll:1:") == ["poll:1:console:demo:general"]
    said = await before.say(f"@sam click {number(before, 'poll:1:console:demo:general')} Wed")
    assert "You voted Wed" in said


async def test_a_poll_cancelled_before_it_opens_is_never_posted(console, clock):
    await console.say('@mia! /poll create "Q?" "A" "B" opens=1h')
    said = await console.say("@sam /poll close 1")
    assert "Only the poll's creator or a moderator can close it." in said
    said = await console.say("@mia! /poll close 1")
    assert "Poll #1 is cancelled: it will not be posted." in said
    await tick(console, clock, START + 2 * HOUR)
    assert await posts_queued(console, "poll:") == []
    said = await console.say("@mia! /poll results 1", "@mia! /poll close 1")
    assert "Poll #1 was cancelled before it was posted, so it has no results." in said
    assert "Poll #1 was cancelled before it was posted." in said


# --- repeat= -------------------------------------------------------------------------------


async def test_a_weekly_poll_runs_twice_with_separate_tallies_and_a_trend(console, clock):
    said = await console.say(WEEKLY)
    assert "Poll #1 is posted in this channel." in said
    assert "It runs again every week, the next run Mon 30 Nov 2026 09:00 UTC" in said
    assert "each run closes when the next opens; until it is stopped" in said
    first = number(console, "poll:1:console:demo:general")
    assert "run 1 of a repeating poll" in console.console.screen.messages[first].post.footer
    await console.say(f"@sam click {first} Busy", f"@kim click {first} Busy")
    await console.say(f"@lee click {first} Calm", f"@ann click {first} On fire")

    ran = await tick(console, clock, START + WEEK)
    assert ("poll:1:close", "done") in ran and ("poll:2:open", "done") in ran
    second = number(console, "poll:2:console:demo:general")
    shown2 = console.console.screen.messages[second].post
    assert "run 2 of a repeating poll" in shown2.footer and "0 voted" in shown2.footer
    results1 = shown(console, "poll:1:results:console:demo:general").post
    assert "Busy**  `█████░░░░░` 2 · 50%" in results1.text
    assert "Trend" not in results1.text  # one run has no trend yet

    await console.say(f"@sam click {second} On fire", f"@kim click {second} Busy")
    await console.say(f"@lee click {second} On fire", f"@ann click {second} On fire")
    await tick(console, clock, START + 2 * WEEK)
    results2 = shown(console, "poll:2:results:console:demo:general").post.text
    assert "On fire**  `████████░░` 3 · 75%" in results2  # its own votes only
    assert "**Trend over runs 1–2** (share of the members who voted in each)" in results2
    assert "**Calm**  `▃▁` 25% → 0%" in results2
    assert "**Busy**  `▅▃` 50% → 25%" in results2
    assert "**On fire**  `▃▆` 25% → 75%" in results2
    said = await console.say("@sam /poll results 1")  # run 1 keeps its own tally
    assert "Busy  `█████░░░░░` 2 · 50%" in said and "Trend" not in said
    assert "poll:3:console:demo:general" in console.console.screen.by_key  # run 3 is out


async def test_a_stopped_poll_does_not_run_again(console, clock):
    await console.say(WEEKLY + " closes=2d")
    said = await console.say("@sam /poll stop 1")
    assert "Only the poll's creator or a moderator can stop it." in said
    said = await console.say("@mia! /poll stop 1")
    assert "Poll #1 is stopped: it will not run again." in said
    assert "It stays open until Wed 25 Nov 2026 09:00 UTC; `/poll close 1` closes it now." in said
    said = await console.say("@mia! /poll stop 1")
    assert "Poll #1 was stopped already" in said
    await tick(console, clock, START + 2 * DAY)
    assert "poll:1:results:console:demo:general" in console.console.screen.by_key
    await tick(console, clock, START + 3 * WEEK)
    assert await posts_queued(console, "poll:2:") == []  # run 2, made ahead, is cancelled
    assert await console.app.db.fetchval("SELECT count(*) FROM vote_runs") == 2
    assert await console.app.scheduler.pending("poll:") == []
    said = await console.say('@mia! /poll create "Once?" "A" "B"', "@mia! /poll stop 3")
    assert "Poll #3 does not repeat." in said


async def test_a_poll_with_a_count_runs_that_many_times(console, clock):
    said = await console.say(WEEKLY + " runs=2 closes=3d")
    assert "each run closes 3 days after it opens; 2 runs in all" in said
    await tick(console, clock, START + 3 * DAY)
    assert "poll:1:results:console:demo:general" in console.console.screen.by_key
    await tick(console, clock, START + WEEK)
    assert await posts_queued(console, "poll:2:console") == ["poll:2:console:demo:general"]
    await tick(console, clock, START + 5 * WEEK)
    assert "poll:2:results:console:demo:general" in console.console.screen.by_key
    assert (
        await console.app.db.fetchval("SELECT count(*) FROM vote_runs WHERE opened_at IS NOT NULL")
        == 2
    )
    assert await console.app.scheduler.pending("poll:") == []


async def test_a_period_missed_while_the_bot_was_down_is_skipped(make_app, clock):
    first = await boot(make_app)
    await first.say(WEEKLY)
    clock.set(START + 2 * WEEK + HOUR)  # down through run 2's whole week
    again = await boot(make_app)
    await tick(again, clock, START + 2 * WEEK + HOUR)
    posted = await posts_queued(again, "poll:")
    assert "poll:1:results:console:demo:general" in posted  # run 1 closed, late
    assert "poll:2:console:demo:general" not in posted  # run 2 went by unseen
    assert "poll:3:console:demo:general" in posted  # run 3 is open until week 3
    opened = await again.app.db.fetchall(
        "SELECT series_run, closes_at FROM vote_runs WHERE opened_at IS NOT NULL"
        " ORDER BY series_run"
    )
    assert [(n, c) for n, c in opened] == [
        (1, (START + WEEK).timestamp()),
        (3, (START + 3 * WEEK).timestamp()),
    ]


def test_periods_keep_the_local_time_and_the_day_of_the_month():
    oslo_monday = datetime(2027, 3, 22, 8, 0, tzinfo=UTC)  # 09:00 in Oslo (CET)
    after_change = opening("weekly", "Europe/Oslo", oslo_monday, 2)
    assert after_change == datetime(2027, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST
    month_end = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)
    assert opening("monthly", "UTC", month_end, 2) == datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    assert opening("monthly", "UTC", month_end, 3) == datetime(2027, 3, 31, 9, 0, tzinfo=UTC)
    assert opening("monthly", "UTC", month_end, 13) == datetime(2028, 1, 31, 9, 0, tzinfo=UTC)


# --- remind= -------------------------------------------------------------------------------


async def test_a_reminder_goes_once_to_each_member_who_has_not_voted(make_app, clock):
    run = await boot(make_app)
    said = await run.say(WEEKLY + " remind=1d")
    assert "1 day before each run closes, the channel's members who have not voted yet" in said
    first = number(run, "poll:1:console:demo:general")
    for name in ("sam", "kim", "lee"):
        await run.say(f"@{name} click {first} Busy")
    await tick(run, clock, START + WEEK - DAY)  # the console's members: all who typed
    assert await posts_queued(run, "poll:1:remind:") == ["poll:1:remind:console:demo:mia"]

    await tick(run, clock, START + WEEK)
    second = number(run, "poll:2:console:demo:general")
    await run.say(f"@sam click {second} Calm", f"@ann click {second} Calm")
    assert await tick(run, clock, START + 2 * WEEK - DAY - timedelta(seconds=1)) == []
    ran = await tick(run, clock, START + 2 * WEEK - DAY)
    assert ran == [("poll:2:remind", "done")]
    reminded = await posts_queued(run, "poll:2:remind:")
    assert reminded == [
        "poll:2:remind:console:demo:kim",
        "poll:2:remind:console:demo:lee",
        "poll:2:remind:console:demo:mia",
    ]  # not sam nor ann: they voted in this run
    dm = shown(run, reminded[0])
    assert dm.audience == "@kim" and dm.post.title == "⏰ How was your week?"
    assert f"closes {time_tag(START + 2 * WEEK)}" in dm.post.text
    said = await run.say(f"@kim click {number(run, reminded[0])} On fire")
    assert "You voted On fire" in said  # the reminder's buttons vote in run 2

    await crash_during(run, "poll:2:remind")  # the job runs again after a restart...
    again = await boot(make_app)
    await tick(again, clock, START + 2 * WEEK - DAY + HOUR)
    assert await posts_queued(again, "poll:2:remind:") == reminded  # ...and sends nothing
    assert again.console.screen.messages == {}
    later = await boot(make_app)
    assert await tick(later, clock, START + 2 * WEEK - HOUR) == []
    assert await posts_queued(later, "poll:2:remind:") == reminded


async def test_a_poll_that_does_not_repeat_reminds_before_it_closes(make_app, clock):
    run = await boot(make_app)
    said = await run.say('@mia! /poll create "Venue?" "Leeds" "York" closes=3d remind=1d')
    assert "1 day before it closes, the channel's members who have not voted yet" in said
    poll = number(run, "poll:1:console:demo:general")
    await run.say(f"@sam click {poll} York", "@kim /help")  # kim is about but has not voted
    await run.say(f"@mia click {poll} Leeds")
    assert await tick(run, clock, START + 2 * DAY - timedelta(seconds=1)) == []
    assert await tick(run, clock, START + 2 * DAY) == [("poll:1:remind", "done")]
    assert await posts_queued(run, "poll:1:remind:") == ["poll:1:remind:console:demo:kim"]
    assert shown(run, "poll:1:remind:console:demo:kim").audience == "@kim"


# --- Refused values ------------------------------------------------------------------------


async def test_values_that_make_no_schedule_are_refused(console):
    base = '@mia! /poll create "Q?" "A" "B"'
    cases = {
        "opens=2020-01-01": "That opening time is in the past.",
        "opens=2d closes=1d": "`closes` must be after `opens`",
        "opens=2d closes=2d": "`closes` must be after `opens`",
        "repeat=yearly": "`yearly` is not one of weekly, monthly",
        "runs=3": "`runs` counts the runs of a repeating poll.",
        "repeat=weekly runs=1": "must be at least 2",
        "remind=1d": "this poll never closes",
        "closes=1d remind=1d": "`remind=1d` must be shorter than a run is open (1 day)",
        "repeat=weekly remind=1d anonymous": "An anonymous poll does not know who voted",
        "repeat=weekly remind=1w": "`remind=1w` must be shorter than a run is open (1 week)",
        "repeat=weekly closes=2d remind=3d": "must be shorter than a run is open (2 days)",
        "repeat=weekly closes=8d": "A weekly poll's run must close by the time the next one",
    }
    for options, error in cases.items():
        said = await console.say(f"{base} {options}")
        assert error in said, (options, said)
    assert await console.app.db.fetchval("SELECT count(*) FROM vote_runs") == 0
    assert await console.app.db.fetchval("SELECT count(*) FROM vote_series") == 0
    assert await console.app.scheduler.pending("poll:") == []


# --- On Slack ------------------------------------------------------------------------------


async def test_on_slack_the_reminder_is_a_dm_whose_buttons_vote(slack: Slack, clock):  # noqa: F811
    said = await slack.command("poll", 'create "Stand-up day?" Mon Fri repeat=weekly remind=1d')
    assert "Poll #1 is posted" in said["text"] and "get a direct message" in said["text"]
    await slack.app.outbox.drain()
    first_ts = slack.fake.messages["C1"][0]["ts"]
    mon, fri = controls(slack.fake.calls_to("chat.postMessage")[0])
    for member in ("U5", "U6"):
        await slack.click(mon["action_id"], mon["value"], member, first_ts)

    clock.set(START + WEEK)
    await slack.app.scheduler.run_due()
    await slack.app.outbox.drain()
    run2 = next(m for m in slack.fake.messages["C1"] if "run 2 of a repeating poll" in as_json(m))
    mon2, _ = controls(run2)
    assert mon2["value"] == "2:0"
    await slack.click(mon2["action_id"], mon2["value"], "U5", run2["ts"])

    # Without the scope to list the channel, the previous run's voters are reminded.
    slack.fake.channels["C1"] = {"members": ["UBOT", "U5", "U6", "U7"]}
    slack.fake.fail_next("conversations.members", status=200, error="missing_scope")
    clock.set(START + 2 * WEEK - DAY)
    await slack.app.scheduler.run_due()
    await slack.app.outbox.drain()
    await asyncio.wait_for(slack.surface.settled(), timeout=5)
    assert [c["users"] for c in slack.fake.calls_to("conversations.open")] == ["U6"]
    (dm,) = slack.fake.messages["DU6"]
    assert "Stand-up day?" in as_json(dm) and "your vote is not in yet" in as_json(dm)
    _, fri_dm = controls(dm)
    payload = block_actions_payload(
        fri_dm["action_id"], fri_dm["value"], user_id="U6", channel_id="DU6",
        message_ts=dm["ts"], response_url=slack.fake.response_url(),
    )  # fmt: skip
    before = len(slack.fake.responses)
    assert await slack.post(interaction_body(payload)) == 200
    voted = (await slack.fake.wait_for_response(before + 1))[-1]
    assert "You voted *Fri*" in as_json(voted)
    assert await slack.app.features["poll"].store.tallies(2) == {"q": {0: 1, 1: 1}}
    assert await slack.app.features["poll"].store.tallies(1) == {"q": {0: 2}}


async def test_on_slack_a_reminder_reaches_every_channel_member_who_has_not_voted(
    slack: Slack,  # noqa: F811
    clock,
):
    """The channel's members are read page by page (`conversations.members`); the bot and
    those who voted are left out, and each member is sent one direct message."""
    others = [f"U{n:03d}" for n in range(250)]
    slack.fake.channels["C1"] = {"members": ["UBOT", "U5", *others]}
    said = await slack.command("poll", 'create "Venue?" Leeds York closes=3d remind=1d')
    assert "1 day before it closes, the channel's members who have not voted" in said["text"]
    await slack.app.outbox.drain()
    leeds, _ = controls(slack.fake.calls_to("chat.postMessage")[0])
    await slack.click(leeds["action_id"], leeds["value"], "U5", slack.fake.messages["C1"][0]["ts"])
    clock.set(START + 2 * DAY)
    await slack.app.scheduler.run_due()
    await slack.app.outbox.drain()
    pages = slack.fake.calls_to("conversations.members")
    assert len(pages) == 2 and pages[1]["cursor"]
    opened = sorted(c["users"] for c in slack.fake.calls_to("conversations.open"))
    assert opened == others  # not UBOT, not U5 who voted
    assert all("Venue?" in as_json(slack.fake.messages[f"D{u}"][0]) for u in others)
