"""The scheduler: the database decides; one timer for the earliest job; restarts catch up
within grace."""

from __future__ import annotations

from datetime import timedelta

from bot.app import Feature
from bot.help import Help


class Ticks(Feature):
    """A feature whose jobs record when they ran."""

    name = "ticks"
    fired: list[str] = []

    def register(self) -> None:
        self.app.scheduler.handle("tick", self.tick, grace=timedelta(minutes=30))

    async def tick(self, job) -> None:
        Ticks.fired.append(job.key)


async def start(make_app):
    Ticks.fired = []
    return await make_app(features=[Help, Ticks], db="jobs.db")


async def test_jobs_fire_when_due_and_not_before(make_app, clock):
    app = await start(make_app)
    await app.scheduler.schedule("a", "tick", clock.now() + timedelta(minutes=10))
    assert app.scheduler.armed() == clock.now() + timedelta(minutes=10)
    clock.advance(timedelta(minutes=9))
    assert await app.scheduler.run_due() == []
    clock.advance(timedelta(minutes=1))
    assert await app.scheduler.run_due() == [("a", "done")]
    assert await app.scheduler.run_due() == []  # once
    assert Ticks.fired == ["a"] and app.scheduler.armed() is None


async def test_restart_re_arms_the_timer_and_catches_up_within_grace(make_app, clock):
    app = await start(make_app)
    now = clock.now()
    await app.scheduler.schedule("soon", "tick", now + timedelta(minutes=5))
    await app.scheduler.schedule("long-missed", "tick", now + timedelta(minutes=1))
    await app.scheduler.schedule("future", "tick", now + timedelta(days=2))
    await app.stop()
    # The bot is down for 40 minutes: `long-missed` is 39 min late (grace 30), `soon` 35.
    clock.advance(timedelta(minutes=40))
    Ticks.fired = []
    restarted = await make_app(features=[Help, Ticks], db="jobs.db")
    assert Ticks.fired == []
    assert await restarted.scheduler.state("long-missed") == "skipped"
    assert await restarted.scheduler.state("soon") == "skipped"
    assert [j.key for j in await restarted.scheduler.pending()] == ["future"]
    assert restarted.scheduler.armed() == now + timedelta(days=2)


async def test_a_job_within_grace_runs_on_restart(make_app, clock, caplog):
    app = await start(make_app)
    await app.scheduler.schedule("recent", "tick", clock.now() + timedelta(minutes=1))
    await app.scheduler.schedule("old", "tick", clock.now() - timedelta(hours=2))
    await app.stop()
    clock.advance(timedelta(minutes=10))
    Ticks.fired = []
    restarted = await make_app(features=[Help, Ticks], db="jobs.db")
    assert Ticks.fired == ["recent"]
    assert await restarted.scheduler.state("old") == "skipped"
    assert "skipped old" in caplog.text


async def test_moving_and_cancelling_a_job(make_app, clock):
    app = await start(make_app)
    await app.scheduler.schedule("a", "tick", clock.now() + timedelta(minutes=5))
    await app.scheduler.schedule("a", "tick", clock.now() + timedelta(minutes=50))
    clock.advance(timedelta(minutes=10))
    assert await app.scheduler.run_due() == []
    assert await app.scheduler.cancel("a") is True
    clock.advance(timedelta(hours=1))
    assert await app.scheduler.run_due() == [] and Ticks.fired == []


async def test_a_failing_job_is_recorded_and_others_still_run(make_app, clock):
    app = await start(make_app)

    async def broken(job):
        raise ValueError("bad payload")

    app.scheduler.handle("broken", broken)
    await app.scheduler.schedule("x", "broken", clock.now())
    await app.scheduler.schedule("y", "tick", clock.now())
    assert await app.scheduler.run_due() == [("x", "failed"), ("y", "done")]
    assert await app.scheduler.state("x") == "failed" and Ticks.fired == ["y"]


async def test_a_cancelled_job_scheduled_again_at_the_same_time_runs(make_app, clock):
    app = await start(make_app)
    due = clock.now() + timedelta(minutes=5)
    await app.scheduler.schedule("a", "tick", due)
    await app.scheduler.cancel("a")
    await app.scheduler.schedule("a", "tick", due)
    clock.advance(timedelta(minutes=5))
    assert await app.scheduler.run_due() == [("a", "done")]
    await app.scheduler.schedule("a", "tick", due)  # already ran at that time: not again
    assert await app.scheduler.run_due() == []


async def test_a_skipped_job_lets_its_kind_re_arm_the_next_one(make_app, clock):
    from bot.scheduler import ANY_LATENESS

    app = await start(make_app)
    RAN.clear()
    skipped: list[str] = []

    async def rearm(job):
        skipped.append(job.key)
        await app.scheduler.schedule("day-2", "daily", job.due_at + timedelta(days=1))

    app.scheduler.handle("daily", _record, timedelta(hours=1), rearm)
    app.scheduler.handle("close", _record, ANY_LATENESS)
    await app.scheduler.schedule("day-1", "daily", clock.now())
    await app.scheduler.schedule("close-poll", "close", clock.now())
    clock.advance(timedelta(hours=5))  # down for five hours
    assert await app.scheduler.run_due() == [("day-1", "skipped"), ("close-poll", "done")]
    assert skipped == ["day-1"] and RAN == ["close-poll"]
    assert [j.key for j in await app.scheduler.pending()] == ["day-2"]


async def test_a_job_that_re_schedules_its_own_key_keeps_its_next_run(make_app, clock):
    app = await start(make_app)
    RAN.clear()

    async def daily(job):
        RAN.append(job.key)
        await app.scheduler.schedule(job.key, "again", job.due_at + timedelta(days=1))

    app.scheduler.handle("again", daily)
    first = clock.now()
    await app.scheduler.schedule("daily", "again", first)
    assert await app.scheduler.run_due() == [("daily", "done")]
    assert await app.scheduler.state("daily") == "pending"  # the finish left it alone
    assert app.scheduler.armed() == first + timedelta(days=1)
    clock.advance(timedelta(days=1))
    assert await app.scheduler.run_due() == [("daily", "done")]
    assert RAN == ["daily", "daily"]


RAN: list[str] = []


async def _record(job) -> None:
    RAN.append(job.key)
