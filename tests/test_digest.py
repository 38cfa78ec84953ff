"""The weekly digest on the console: a seeded week (feed posts with reactions and replies, a
closed poll, upcoming events, a week of prompt answers) comes out as one post with every
part, at the day and time set, once across a restart and a crash part-way through queuing.

A real App on a real SQLite file, feeds from a local server, time from the FakeClock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest

from adapters.console import Console
from bot.digest import Digest, job_key, post_key
from bot.digest.timing import Weekly
from bot.model import ChannelRef
from tests.conftest import ConsoleRun
from tests.databases import allow_inserts, refuse_inserts
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import FeedServer, entries, rss

feed_server = fake_feeds.feed_server  # the fixture

CONFIG = {"feeds": {"allow_private": True, "timeout": 2, "per_channel_cap": 50}}
GENERAL = ChannelRef("console", "demo", "general")
MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # the digest's first Monday, 09:00 UTC
WEEK = "2026-W49"  # the ISO week of Monday 30 Nov 2026


async def console_on(make_app, db: str = "bot.db") -> ConsoleRun:
    app = await make_app(config=CONFIG, db=db)
    out: list[str] = []
    return ConsoleRun(Console(app, write=out.append), out)


async def at(run: ConsoleRun, clock, moment: datetime) -> str:
    """Move the clock to `moment`, run what came due, deliver it; return what appeared."""
    clock.set(moment)
    before = len(run.out)
    await run.console.settle()
    return "\n".join(run.out[before:])


def number_of(run: ConsoleRun, text: str) -> int:
    """The number of the last message whose first line holds `text`."""
    found = [int(m.group(1)) for b in run.out if (m := re.match(r"#(\d+) ", b)) and text in b]
    assert found, f"no message with {text!r}"
    return found[-1]


def digest_of(run: ConsoleRun) -> str:
    posts = [b for b in run.out if "week in" in b and "[public]" in b]
    assert len(posts) == 1, posts
    return posts[0]


async def seed_week(run: ConsoleRun, clock, server: FeedServer) -> None:
    """Monday 23 Nov to Monday 30 Nov: articles discussed, a poll closed, events ahead,
    the daily prompt answered every day by sam and on the last three by ana."""
    say = run.say
    await say("@mod! /justdoit schedule time=08:30 tz=UTC days=daily")
    await say("@mod! /digest schedule day=mon time=09:00 tz=UTC")
    clock.advance(timedelta(minutes=5))
    url = server.set("f.xml", body=rss(entries(3, prefix="ITIL story")))
    await say(f"@mod! /feed add {url}")
    first, second = number_of(run, "ITIL story 1"), number_of(run, "ITIL story 2")
    await say(f"@sam react {second} 👍", f"@ana react {second} 🎉", f"@sam reply {second} Useful")
    await say(f"@ana react {first} 👍")
    await say('@mod! /poll create "Which practice needs most love?" Incident Change Problem')
    poll = number_of(run, "Which practice needs most love?")
    await say(f"@sam click {poll} Incident", f"@ana click {poll} Incident")
    await say(f"@ben click {poll} Change", "@mod! /poll close 1")
    await say('@mod! /poll create "Never asked?" Yes No opens=3d', "@mod! /poll close 2")
    await say('@mod! /event add title="itSMF UK Conference" start="2026-12-05 09:00" tz=UTC')
    await say(f"@sam click {number_of(run, 'itSMF UK Conference')} going")
    await say('@mod! /event add title="Far away meetup" start="2027-02-01 09:00" tz=UTC')
    for day in range(24, 31):  # Tue 24 to Mon 30 Nov, each after the 08:30 prompt
        await at(run, clock, datetime(2026, 11, day, 8, 45, tzinfo=UTC))
        await say(f'@sam /justdoit answer "Thanked a colleague on day {day}"')
        if day >= 28:
            await say(f'@ana /justdoit answer "Asked a customer about day {day}"')
    await say("@sam /digest named yes", "@sam /digest share", "@ana /digest share")


async def test_a_seeded_week_becomes_one_post_with_every_part(make_app, clock, feed_server):
    run = await console_on(make_app)
    await seed_week(run, clock, feed_server)
    assert "week in" not in run.text  # not before its time
    await at(run, clock, MONDAY)
    digest = digest_of(run)
    articles = digest.split("Most discussed articles")[1].split("Polls and surveys")[0]
    # Ranked by reactions + replies: story 2 (2 + 1) before story 1 (1); story 3 had none.
    assert articles.index("ITIL story 2") < articles.index("ITIL story 1")
    assert "2 reactions · 1 reply" in articles and "ITIL story 3" not in articles
    assert "Of 3 feed posts this week" in articles
    assert "Which practice needs most love?" in digest and "Incident, 67% of 3 answering" in digest
    assert "itSMF UK Conference" in digest and "1 going" in digest
    assert "Far away meetup" not in digest  # past the next two weeks
    assert "Never asked?" not in digest  # cancelled before it opened
    streaks = digest.split("Just do it: streaks")[1]
    assert "- sam: 7 days in a row" in streaks  # named: he chose to be
    assert "1 member on a 3-day streak" in streaks and "ana" not in streaks.split("Shared")[0]
    shared = digest.split("Shared by members")[1]
    assert "- sam: _Thanked a colleague on day 30_ (Inspire)" in shared
    assert "- A member: _Asked a customer about day 30_" in shared


async def test_preview_shows_it_now_privately_and_off_stops_it(make_app, clock, feed_server):
    run = await console_on(make_app)
    await seed_week(run, clock, feed_server)
    preview = await run.say("@mod! /digest preview")
    assert "[only mod sees this]" in preview and "Most discussed articles" in preview
    assert "Preview: only you see this" in preview and "week in" not in digest_text(run)
    refused = await run.say("@sam /digest preview")
    assert "for moderators only" in refused
    assert "is off" in await run.say("@mod! /digest off")
    assert "week in" not in await at(run, clock, MONDAY + timedelta(days=7))
    assert "was not on" in await run.say("@mod! /digest off")


def digest_text(run: ConsoleRun) -> str:
    return "\n".join(b for b in run.out if "[public]" in b)


async def test_schedule_says_when_and_where_and_refuses_bad_values(console):
    assert "no weekly digest yet" in await console.say("@mod! /digest schedule")
    said = await console.say("@mod! /digest schedule day=fri time=17:30 tz=Europe/Oslo")
    assert "every Friday at 17:30 (Europe/Oslo)" in said and "in #general" in said
    assert "Fri 27 Nov 2026 17:30 CET" in said  # the next one, in its zone
    moved = await console.say("@mod! /digest schedule time=08:00")
    assert "every Friday at 08:00 (Europe/Oslo)" in moved  # the rest kept
    assert "is not one of mon" in await console.say("@mod! /digest schedule day=someday")
    assert "not a time of day" in await console.say("@mod! /digest schedule time=25:99")
    assert "Mars/Olympus" in await console.say("@mod! /digest schedule tz=Mars/Olympus")
    pending = await console.app.scheduler.pending("digest:")
    assert [job.due_at for job in pending] == [datetime(2026, 11, 27, 7, 0, tzinfo=UTC)]


async def test_posted_once_across_a_restart(make_app, clock, feed_server):
    run = await console_on(make_app)
    await seed_week(run, clock, feed_server)
    await at(run, clock, MONDAY)
    digest_of(run)
    again = await console_on(make_app)  # a restart on the same database
    await at(again, clock, MONDAY + timedelta(minutes=10))
    assert "week in" not in again.text
    digest = feature(again)
    pending = await again.app.scheduler.pending("digest:")
    assert [j.key for j in pending] == [job_key(1, "2026-W50")]  # next week is armed
    assert await digest.post_week(await digest.store.schedule(1), WEEK, MONDAY) == 0


async def test_a_crash_while_queuing_posts_each_channel_once(make_app, clock, feed_server):
    """Channels on two platforms; the first is queued, then the second's row cannot be
    written (the process dies there): after the restart the job runs again, queues the
    second only, with the same text, and the first is not queued again."""
    slack = ChannelRef("slack", "T1", "C1")
    community = {
        "name": "ITSM Norway", "timezone": "UTC", "workspaces": ["console:demo", "slack:T1"],
        "channels": [GENERAL.key, slack.key],
    }  # fmt: skip
    config = {**CONFIG, "community": [community]}
    app = await make_app(config=config, db="crash.db")
    out: list[str] = []
    run = ConsoleRun(Console(app, write=out.append), out)
    await seed_week(run, clock, feed_server)
    await refuse_inserts(app.db, "die", "outbox", "the process died here", "digest:%:slack:%")
    clock.set(MONDAY)
    await app.scheduler.run_due()
    first = await app.db.fetchall("SELECT key, payload FROM outbox WHERE key LIKE 'digest:%'")
    assert [r["key"] for r in first] == [post_key(1, WEEK, GENERAL)]
    await allow_inserts(app.db, "die", "outbox")
    # The job is still to do, as after a crash before its outcome was written.
    await app.db.execute("UPDATE jobs SET state = 'running' WHERE key = ?", (job_key(1, WEEK),))
    restarted = await make_app(config=config, db="crash.db")
    clock.advance(timedelta(minutes=6))
    await restarted.scheduler.run_due()
    rows = await restarted.db.fetchall(
        "SELECT key, payload FROM outbox WHERE key LIKE 'digest:%' ORDER BY id"
    )
    assert [r["key"] for r in rows] == [post_key(1, WEEK, GENERAL), post_key(1, WEEK, slack)]
    assert rows[0]["payload"] == rows[1]["payload"]  # the very same digest
    assert "The week in ITSM Norway" in rows[1]["payload"]
    await restarted.scheduler.run_due()
    assert await restarted.db.fetchval("SELECT count(*) FROM outbox WHERE key LIKE 'digest:%'") == 2


async def test_a_quiet_week_posts_nothing(console, clock):
    await console.say("@mod! /digest schedule day=mon time=09:00 tz=UTC")
    assert "Nothing to tell yet" in await console.say("@mod! /digest preview")
    assert "week in" not in await at(console, clock, MONDAY)


def feature(run: ConsoleRun) -> Digest:
    return run.app.features["digest"]  # type: ignore[return-value]


@pytest.mark.parametrize("word", ["yes", "no"])
async def test_members_choose_to_be_named(console, word):
    said = await console.say(f"@sam /digest named {word}")
    assert ("names you" if word == "yes" else "does not name you") in said
    assert ("names you" if word == "yes" else "does not name you") in await console.say(
        "@sam /digest named"
    )


def test_the_weekly_time_stays_on_the_wall_clock_across_daylight_saving():
    weekly = Weekly(6, time(9, 0), "Europe/Oslo")  # Sundays 09:00, Oslo
    before = weekly.next_after(datetime(2027, 3, 21, 12, 0, tzinfo=UTC))
    after = weekly.next_after(before)
    assert before == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)  # the day clocks go forward
    assert after == datetime(2027, 4, 4, 7, 0, tzinfo=UTC)
    assert weekly.next_after(datetime(2026, 10, 25, 7, 59, tzinfo=UTC)) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )  # the day they go back: 09:00 CET
    assert weekly.week_of(before) == "2027-W12" and weekly.week_of(after) == "2027-W13"
    assert weekly.describe() == "every Sunday at 09:00 (Europe/Oslo)"


async def test_a_restart_before_its_time_still_posts_it_once(make_app, clock, feed_server):
    run = await console_on(make_app)
    await seed_week(run, clock, feed_server)
    again = await console_on(make_app)  # restarted on the Monday morning, before 09:00
    await at(again, clock, MONDAY)
    assert len([b for b in again.out if "week in" in b]) == 1
    await at(again, clock, MONDAY + timedelta(hours=1))
    assert len([b for b in again.out if "week in" in b]) == 1


async def test_a_week_missed_by_a_long_downtime_is_skipped_and_the_next_armed(
    make_app, clock, feed_server, caplog
):
    run = await console_on(make_app)
    await seed_week(run, clock, feed_server)
    clock.set(MONDAY + timedelta(hours=13))  # down past the twelve hours of grace
    again = await console_on(make_app)
    await again.console.settle()
    assert "week in" not in again.text
    assert "too late to post" in caplog.text
    pending = await again.app.scheduler.pending("digest:")
    assert [j.due_at for j in pending] == [MONDAY + timedelta(days=7)]


async def test_sharing_needs_an_answer_of_the_week_and_can_be_taken_back(console, clock):
    refused = await console.say("@sam /digest share")
    assert "no answer from this week in this channel" in refused
    await console.say("@mod! /justdoit schedule time=08:30 tz=UTC days=daily")
    await at(console, clock, datetime(2026, 11, 24, 8, 45, tzinfo=UTC))
    await console.say('@sam /justdoit answer "Asked the desk what slows them down"')
    shared = await console.say("@sam /digest share")
    assert 'quote your answer of Tue 24 Nov as "A member"' in shared
    store = feature(console).store
    assert len(await store.shares([GENERAL], date(2026, 11, 23))) == 1
    assert "Taken back" in await console.say("@sam /digest share undo")
    assert await store.shares([GENERAL], date(2026, 11, 23)) == []
    assert "Nothing was shared" in await console.say("@sam /digest share undo")
