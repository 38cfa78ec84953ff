"""The daily post: local time across DST changes, skip days, pause, `today`, restarts,
and no prompt repeated until the bank is used up. Time is a FakeClock throughout.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from bot.app import App
from bot.model import ChannelRef, Ephemeral, Invocation, Post, UserRef, time_tag

CHANNEL = ChannelRef("test", "ws", "general")
MOD = UserRef("test", "ws", "mod", "Mo")


class Recorder:
    """A platform that remembers what it was sent (shared across restarts, like a real one)."""

    platform = "test"
    pace = 0.0

    def __init__(self) -> None:
        self.sent: list[tuple[ChannelRef, Post, str]] = []

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str:
        self.sent.append((channel, post, key))
        return str(len(self.sent))

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None:
        self.sent[int(message_id) - 1] = (channel, post, self.sent[int(message_id) - 1][2])

    async def find(self, channel: ChannelRef, key: str) -> str | None:
        found = [i for i, sent in enumerate(self.sent, 1) if sent[2] == key]
        return str(found[0]) if found else None

    def prompts(self) -> list[tuple[str, Post]]:
        """(outbox key, post) of every daily prompt sent."""
        return [(k, p) for _, p, k in self.sent if p.title.startswith("Just do it ·")]


async def start(make_app, recorder: Recorder, **kwargs) -> App:
    app = await make_app(**kwargs)
    app.outbox.attach(recorder)
    return app


async def say(
    app: App, text: str, user: UserRef = MOD, moderator: bool = True, channel: ChannelRef = CHANNEL
) -> list:
    top, _, rest = text.lstrip("/").partition(" ")
    return await app.invoke(Invocation((top,), user, channel, moderator, text=rest))


def text_of(replies: list) -> str:
    return "\n".join(r.post.text for r in replies if hasattr(r, "post"))


async def next_due(app: App) -> datetime:
    jobs = await app.scheduler.pending("justdoit:post:")
    assert len(jobs) == 1, [j.key for j in jobs]
    return jobs[0].due_at


async def fire_next(app: App, clock) -> datetime:
    """Move the clock to the next daily job, checking nothing posts a minute early."""
    due = await next_due(app)
    clock.set(due - timedelta(minutes=1))
    await app.scheduler.run_due()
    assert await app.outbox.drain() == 0
    clock.set(due)
    await app.scheduler.run_due()
    await app.outbox.drain()
    return due


def local_days(recorder: Recorder) -> list[str]:
    return [key.rsplit(":", 1)[1] for key, _ in recorder.prompts()]


async def test_fires_at_0830_london_across_the_october_change(make_app, clock) -> None:
    clock.set(datetime(2026, 10, 22, 12, 0, tzinfo=UTC))
    recorder = Recorder()
    app = await start(make_app, recorder)
    replies = await say(app, "/justdoit schedule time=08:30 tz=Europe/London days=daily")
    assert "08:30 Europe/London, daily" in text_of(replies)
    fired = [await fire_next(app, clock) for _ in range(4)]
    assert fired == [
        datetime(2026, 10, 23, 7, 30, tzinfo=UTC),  # BST
        datetime(2026, 10, 24, 7, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 8, 30, tzinfo=UTC),  # GMT from 25 October
        datetime(2026, 10, 26, 8, 30, tzinfo=UTC),
    ]
    assert local_days(recorder) == ["2026-10-23", "2026-10-24", "2026-10-25", "2026-10-26"]
    assert all(p.buttons[0].action == "justdoit.did" for _, p in recorder.prompts())


async def test_fires_at_0830_new_york_across_the_march_change(make_app, clock) -> None:
    clock.set(datetime(2027, 3, 10, 18, 0, tzinfo=UTC))
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule 8:30am tz=America/New_York days=mon-fri")
    fired = [await fire_next(app, clock) for _ in range(4)]
    assert fired == [
        datetime(2027, 3, 11, 13, 30, tzinfo=UTC),  # EST
        datetime(2027, 3, 12, 13, 30, tzinfo=UTC),
        datetime(2027, 3, 15, 12, 30, tzinfo=UTC),  # EDT; the weekend is not scheduled
        datetime(2027, 3, 16, 12, 30, tzinfo=UTC),
    ]


async def test_skip_dates_are_honoured_and_can_be_undone(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)  # Monday 23 Nov 2026, 09:00 UTC
    await say(app, "/justdoit schedule time=08:30 tz=UTC days=mon-fri")
    replies = await say(app, "/justdoit skip 2026-11-25 2026-11-27")
    assert "Skipping: 2026-11-25, 2026-11-27" in text_of(replies)
    await say(app, "/justdoit skip 2026-11-27 undo")
    for _ in range(4):
        await fire_next(app, clock)
    assert local_days(recorder) == ["2026-11-24", "2026-11-26", "2026-11-27", "2026-11-30"]


async def test_bad_schedule_input_is_refused_and_changes_nothing(make_app, clock) -> None:
    app = await start(make_app, Recorder())
    await say(app, "/justdoit schedule time=08:30 tz=UTC")
    due = await next_due(app)
    for bad, needle in [
        ("/justdoit schedule time=25:00", "not a time of day"),
        ("/justdoit schedule time=08:00 days=funday", "not a day of the week"),
        ("/justdoit schedule time=08:00 tz=Mars/Base", "not a time zone"),
        ("/justdoit skip 2026-02-30", "not a date"),
        ("/justdoit skip 2025-01-01", "in the past"),
    ]:
        replies = await say(app, bad)
        assert isinstance(replies[0], Ephemeral)
        assert needle in replies[0].post.text, bad
    assert await next_due(app) == due
    member = UserRef("test", "ws", "m1", "M")
    refused = await say(app, "/justdoit schedule time=07:00", user=member, moderator=False)
    assert "moderators only" in text_of(refused)
    assert await next_due(app) == due


async def test_pause_and_resume(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC days=daily")
    await say(app, "/justdoit pause")
    assert await app.scheduler.pending("justdoit:post:") == []
    clock.advance(timedelta(days=1))  # Tuesday 09:00: nothing
    await app.scheduler.run_due()
    await app.outbox.drain()
    assert recorder.prompts() == []
    clock.set(datetime(2026, 11, 25, 6, 0, tzinfo=UTC))
    await say(app, "/justdoit resume")
    await say(app, "/justdoit pause")
    await say(app, "/justdoit resume")  # the same day re-armed after a pause still fires
    await fire_next(app, clock)
    assert local_days(recorder) == ["2026-11-25"]


async def test_today_then_the_schedule_posts_once(make_app, clock) -> None:
    recorder = Recorder()
    clock.set(datetime(2026, 11, 24, 7, 0, tzinfo=UTC))
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC")
    first = await say(app, "/justdoit today")
    assert "Posted today's prompt" in text_of(first)
    await app.outbox.drain()
    again = await say(app, "/justdoit today")
    assert "already posted" in text_of(again)
    await fire_next(app, clock)  # 08:30: the same day, so nothing new
    assert local_days(recorder) == ["2026-11-24"]
    await fire_next(app, clock)
    assert local_days(recorder) == ["2026-11-24", "2026-11-25"]


async def test_today_without_a_schedule_uses_the_community_zone(make_app, clock) -> None:
    recorder = Recorder()
    clock.set(datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    config = {"community": [{"name": "c", "timezone": "Asia/Tokyo", "workspaces": ["test:ws"]}]}
    app = await start(make_app, recorder, config=config)
    await say(app, "/justdoit today")
    await app.outbox.drain()
    assert local_days(recorder) == ["2026-11-25"]  # already Wednesday in Tokyo
    member = UserRef("test", "ws", "m1", "M")
    refused = await say(app, "/justdoit today", user=member, moderator=False)
    assert "moderators only" in text_of(refused)


async def test_restart_neither_posts_twice_nor_forgets_the_next_day(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC")
    await fire_next(app, clock)  # Tuesday
    app = await start(make_app, recorder)  # restart on the same database
    await app.scheduler.run_due()
    await app.outbox.drain()
    assert local_days(recorder) == ["2026-11-24"]
    assert await next_due(app) == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    await fire_next(app, clock)
    assert local_days(recorder) == ["2026-11-24", "2026-11-25"]


async def test_a_crash_before_delivery_posts_once_after_restart(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC")
    clock.set(await next_due(app))
    await app.scheduler.run_due()  # queued, never delivered: the process dies here
    clock.advance(timedelta(minutes=5))
    app = await start(make_app, recorder)
    await app.scheduler.run_due()
    await app.outbox.drain()
    await app.outbox.drain()
    assert local_days(recorder) == ["2026-11-24"]


async def test_a_missed_day_within_the_grace_is_posted_after_downtime(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC")
    clock.set(datetime(2026, 11, 24, 11, 0, tzinfo=UTC))  # down from 08:00 to 11:00
    app = await start(make_app, recorder)
    await app.outbox.drain()
    assert local_days(recorder) == ["2026-11-24"]
    assert await next_due(app) == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)


async def test_older_missed_days_are_dropped_and_logged(make_app, clock, caplog) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC")  # next: Tuesday
    clock.set(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))  # back on Thursday at noon
    with caplog.at_level(logging.WARNING):
        app = await start(make_app, recorder)
        await app.outbox.drain()
    assert local_days(recorder) == ["2026-11-26"]  # Thursday is within 6 h; Tue, Wed not
    assert "dropped the prompt of 2026-11-24" in caplog.text
    clock.set(datetime(2026, 11, 27, 20, 0, tzinfo=UTC))  # Friday evening: too late
    app = await start(make_app, recorder)
    await app.outbox.drain()
    assert local_days(recorder) == ["2026-11-26"]
    assert await next_due(app) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)


async def test_no_repeat_until_the_bank_is_used_up(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    feature = app.features["justdoit"]
    size = len(feature.bank)
    await say(app, "/justdoit schedule time=08:30 tz=UTC days=daily")
    for _ in range(size + 2):
        await fire_next(app, clock)
    days = await feature.store.days(CHANNEL)
    first_cycle = [d.prompt.id for d in days[:size]]
    assert len(set(first_cycle)) == size
    assert {d.cycle for d in days[:size]} == {1}
    assert [d.cycle for d in days[size:]] == [2, 2]
    competencies = [d.prompt.competency for d in days]
    assert all(a != b for a, b in zip(competencies, competencies[1:], strict=False))
    assert len(recorder.prompts()) == size + 2


async def test_a_late_timer_drops_old_days_and_keeps_going(make_app, clock, caplog) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC")  # next: Tuesday
    clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))  # the process slept until Friday
    with caplog.at_level(logging.WARNING):
        await app.scheduler.run_due()
        await app.scheduler.run_due()
        await app.outbox.drain()
    assert "dropped the prompt of 2026-11-24" in caplog.text
    assert local_days(recorder) == ["2026-11-27"]
    assert await next_due(app) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)


async def test_seed_demo_schedules_once(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    feature = app.features["justdoit"]
    await feature.seed_demo(CHANNEL)
    await feature.seed_demo(CHANNEL)
    schedule = await feature.store.schedule(CHANNEL)
    assert (f"{schedule.rule.at:%H:%M}", schedule.rev) == ("08:30", 1)
    assert await next_due(app) == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)  # not caught up
    assert len(await app.scheduler.pending("justdoit:digest:")) == 1
    await app.outbox.drain()
    assert recorder.sent == []


async def test_digest_can_be_turned_off_and_survives_a_long_outage(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, "/justdoit schedule time=08:30 tz=UTC")
    await fire_next(app, clock)
    await say(app, '/justdoit answer "Did a thing"', user=UserRef("test", "ws", "a", "A"))
    await say(app, "/justdoit settings digest=off")
    clock.set(datetime(2026, 11, 30, 8, 30, tzinfo=UTC))
    await app.scheduler.run_due()
    await app.outbox.drain()
    assert not [k for _, _, k in recorder.sent if k.startswith("justdoit:digest:")]
    await say(app, "/justdoit settings digest=on")
    clock.set(datetime(2026, 12, 9, 12, 0, tzinfo=UTC))  # down over the next Monday
    app = await start(make_app, recorder)
    await app.scheduler.run_due()
    digests = await app.scheduler.pending("justdoit:digest:")
    assert [j.due_at for j in digests] == [datetime(2026, 12, 14, 8, 30, tzinfo=UTC)]


async def test_a_job_armed_before_a_schedule_change_does_not_post(make_app, clock) -> None:
    recorder = Recorder()
    app = await start(make_app, recorder)
    feature = app.features["justdoit"]
    await say(app, "/justdoit schedule time=08:30 tz=UTC")  # Tuesday 08:30, revision 1
    days = frozenset(range(5))  # the change is saved, then the process dies before re-arming
    await feature.store.save_schedule(CHANNEL, 1, "10:00", "UTC", days, clock.now())
    clock.set(datetime(2026, 11, 24, 8, 30, tzinfo=UTC))
    await app.scheduler.run_due()
    await app.outbox.drain()
    assert recorder.prompts() == []
    assert await next_due(app) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    await fire_next(app, clock)
    assert local_days(recorder) == ["2026-11-24"]


async def test_status_and_stats_show_the_next_prompt(make_app, clock) -> None:
    app = await start(make_app, Recorder())
    status = text_of(await say(app, "/justdoit schedule time=08:30 tz=UTC"))
    tuesday = time_tag(datetime(2026, 11, 24, 8, 30, tzinfo=UTC), "f")
    assert f"Next prompt: {tuesday}" in status
    stats = text_of(await say(app, "/justdoit stats", user=UserRef("test", "ws", "m1", "M")))
    assert f"Next prompt: {tuesday}" in stats
    paused = text_of(await say(app, "/justdoit pause"))
    assert "Next prompt" not in paused and "Paused" in paused


async def test_the_pending_digest_follows_a_changed_time(make_app, clock) -> None:
    app = await start(make_app, Recorder())
    await say(app, "/justdoit schedule time=08:30 tz=UTC")
    await say(app, "/justdoit schedule time=10:00 tz=Europe/Paris")
    digests = await app.scheduler.pending("justdoit:digest:")
    assert [j.due_at for j in digests] == [datetime(2026, 11, 30, 9, 0, tzinfo=UTC)]
