"""The scheduler as a work engine: many jobs due at once, one timer, work that grows with
the due jobs only, leases that let a crashed worker's claims be taken again, and no job
run twice however run_due() is called."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import App, Feature
from bot.clock import FakeClock
from bot.help import Help
from bot.scheduler import MIGRATIONS, WAKE, Job, Scheduler
from bot.store import Database
from tests.databases import died


class Load(Feature):
    """Jobs that count how often each one ran."""

    name = "load"
    counts: Counter[str] = Counter()

    def register(self) -> None:
        self.app.scheduler.handle("load", self.run)

    async def run(self, job: Job) -> None:
        Load.counts[job.key] += 1
        await asyncio.sleep(0)  # let another caller in, as a handler awaiting I/O would


async def start(make_app, db: str = "load.db") -> App:
    Load.counts = Counter()
    return await make_app(features=[Help, Load], db=db)


async def schedule_many(app: App, n: int, due: datetime, prefix: str = "job") -> list[str]:
    keys = [f"{prefix}:{i:05d}" for i in range(n)]
    for key in keys:
        await app.scheduler.schedule(key, "load", due)
    return keys


async def test_ten_thousand_jobs_due_together_each_fire_once(make_app, clock):
    app = await start(make_app)
    due = clock.now() + timedelta(minutes=5)
    keys = await schedule_many(app, 10_000, due)
    clock.advance(timedelta(minutes=5))
    ran = await app.scheduler.run_due()
    assert len(ran) == 10_000 and {outcome for _, outcome in ran} == {"done"}
    assert [key for key, _ in ran] == keys  # due order, then the order they were scheduled
    assert len(Load.counts) == 10_000 and set(Load.counts.values()) == {1}
    assert await app.scheduler.run_due() == []
    done = await app.db.fetchval("SELECT count(*) FROM jobs WHERE state = 'done'")
    assert done == 10_000 and await app.scheduler.pending() == []


async def test_one_timer_for_the_earliest_job_whatever_their_number(make_app, clock):
    app = await start(make_app)
    now = clock.now()
    for i in range(1_000):
        await app.scheduler.schedule(f"job:{i}", "load", now + timedelta(hours=1, seconds=i))
    # The app's own housekeeping (the journal's hourly prune) is a timer of its own.
    timers = [j.id for j in app.scheduler.timers.get_jobs() if j.id != "intake-prune"]
    assert timers == [WAKE]
    assert app.scheduler.armed() == now + timedelta(hours=1)
    await app.scheduler.schedule("later", "load", now + timedelta(days=1))
    assert app.scheduler.armed() == now + timedelta(hours=1)  # a later job moves nothing
    await app.scheduler.schedule("sooner", "load", now + timedelta(minutes=1))
    assert app.scheduler.armed() == now + timedelta(minutes=1)
    clock.advance(timedelta(minutes=1))
    assert await app.scheduler.run_due() == [("sooner", "done")]
    assert app.scheduler.armed() == now + timedelta(hours=1)  # re-armed from the table


class CountingDb:
    """The store as the scheduler sees it, counting statements and the rows they return."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.statements: Counter[str] = Counter()
        self.rows = 0
        self.shared, self.skip_locked = db.shared, db.skip_locked  # the backend's dialect
        self.worker, self.dead = db.worker, db.dead  # liveness: not a statement of its own

    def _count(self, sql: str) -> None:
        self.statements["claim" if "SET state = 'running'" in sql else sql.split()[0]] += 1

    async def execute(self, sql: str, params: Any = ()) -> int:
        self._count(sql)
        return await self._db.execute(sql, params)

    async def fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        self._count(sql)
        rows = await self._db.fetchall(sql, params)
        self.rows += len(rows)
        return rows

    async def fetchone(self, sql: str, params: Any = ()) -> Any:
        self._count(sql)
        row = await self._db.fetchone(sql, params)
        self.rows += row is not None
        return row

    async def fetchval(self, sql: str, params: Any = ()) -> Any:
        self._count(sql)
        self.rows += 1
        return await self._db.fetchval(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        self.statements["transaction"] += 1
        async with self._db.transaction() as tx:
            yield tx


async def test_claims_and_rows_read_grow_with_the_due_jobs_only(make_app, clock):
    app = await start(make_app)
    batch = app.scheduler.batch_size
    counted: dict[int, CountingDb] = {}
    for n in (2_000, 4_000):
        # Earlier rounds' done rows and far-off pending jobs stay in the table throughout.
        await schedule_many(app, 1_000, clock.now() + timedelta(days=30), prefix=f"far{n}")
        await schedule_many(app, n, clock.now() + timedelta(minutes=1), prefix=f"due{n}")
        clock.advance(timedelta(minutes=1))
        counting = CountingDb(app.db)
        app.scheduler.db = counting  # type: ignore[assignment]
        assert len(await app.scheduler.run_due()) == n
        app.scheduler.db = app.db
        counted[n] = counting
    for n, counting in counted.items():
        assert counting.statements["claim"] == n // batch + 1  # the last one finds none
        assert counting.statements["transaction"] == n // batch  # one per batch
        assert counting.rows <= n + 2  # the claimed rows, and the next due time
    assert sum(counted[4_000].statements.values()) <= 2 * sum(counted[2_000].statements.values())


async def fire_due_timers(app: App, now: datetime) -> None:
    """What APScheduler does at `now`: start every armed timer that is due, all at once."""
    due = [j for j in app.scheduler.timers.get_jobs() if j.next_run_time <= now]
    await asyncio.gather(*(j.func(*j.args, **j.kwargs) for j in due))


@pytest.mark.sqlite_only("SQLite's own step counter")
async def test_sqlite_work_to_fire_due_jobs_is_linear_not_quadratic(make_app, clock):
    """SQLite's own count of the steps it took while the timers fired what came due:
    doubling the due jobs about doubles it (a timer per job that reads every due row, as
    before, quadruples it)."""
    app = await start(make_app)
    conn = app.db._conn  # reaching into the store on purpose: to ask SQLite itself
    steps: dict[int, int] = {}
    for n in (500, 1_000, 2_000):
        keys = await schedule_many(app, n, clock.now() + timedelta(minutes=1), prefix=f"d{n}")
        clock.advance(timedelta(minutes=1))
        count = [0]

        def tick(count: list[int] = count) -> int:
            count[0] += 1
            return 0  # carry on

        await conn.set_progress_handler(tick, 100)
        await fire_due_timers(app, clock.now())
        await conn.set_progress_handler(None, 0)
        steps[n] = count[0]
        assert all(Load.counts[key] == 1 for key in keys)
    assert steps[1_000] < 2.5 * steps[500] and steps[2_000] < 2.5 * steps[1_000]


async def test_a_claim_whose_lease_ran_out_is_taken_again_after_a_crash(make_app, clock):
    app = await start(make_app)
    crashed = Scheduler(app.db, clock, timers=AsyncIOScheduler(timezone="UTC"))
    stuck = asyncio.Event()

    async def hang(job: Job) -> None:
        stuck.set()
        await asyncio.Event().wait()  # the worker dies here, its claims still held

    crashed.handle("load", hang)
    due = clock.now()
    keys = await schedule_many(app, 3, due)
    dying = asyncio.create_task(crashed.run_due())
    await stuck.wait()
    states = await app.db.fetchall("SELECT state, claimed_by FROM jobs ORDER BY key")
    assert {(r["state"], r["claimed_by"]) for r in states} == {("running", crashed.worker)}
    assert await app.scheduler.run_due() == []  # the lease still stands
    clock.advance(crashed.lease + timedelta(seconds=1))
    assert await app.scheduler.run_due() == [(key, "done") for key in keys]
    assert Load.counts == Counter(keys)
    dying.cancel()  # the dead worker's late bookkeeping changes nothing
    await asyncio.gather(dying, return_exceptions=True)
    assert {await app.scheduler.state(key) for key in keys} == {"done"}


async def test_a_dead_workers_lease_wakes_the_others_with_nothing_else_due(make_app, clock):
    """A worker that dies holding claims leaves no job pending: the others' one timer is
    armed for the end of its lease, so they take its jobs back then by themselves."""
    Load.counts = Counter()
    app = await make_app(features=[Help, Load], config={"scheduler": {"lease": "20s"}})
    assert app.scheduler.lease == timedelta(seconds=20)  # `[scheduler] lease`
    lease = app.scheduler.lease  # the dead worker's, of the same configuration
    crashed = Scheduler(app.db, clock, timers=AsyncIOScheduler(timezone="UTC"), lease=lease)
    stuck = asyncio.Event()

    async def hang(job: Job) -> None:
        stuck.set()
        await asyncio.Event().wait()  # the worker dies here, its claims still held

    crashed.handle("load", hang)
    keys = await schedule_many(app, 3, clock.now())
    dying = asyncio.create_task(crashed.run_due())
    await stuck.wait()
    assert await app.scheduler.run_due() == []  # nothing pending, the lease still stands
    assert app.scheduler.armed() == clock.now() + lease
    clock.advance(lease + timedelta(seconds=1))
    await fire_due_timers(app, clock.now())  # what the timer does then, unasked
    assert Load.counts == Counter(keys)
    assert {await app.scheduler.state(key) for key in keys} == {"done"}
    assert app.scheduler.armed() is None
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)


@pytest.mark.shared_only
async def test_a_killed_workers_claims_run_on_another_seconds_later_not_a_lease_later(
    make_app, clock
):
    """Two workers on one PostgreSQL database: while the first holds a batch, the second
    looks every few seconds whether it still runs; once it is killed (its liveness lock
    gone) the second takes the jobs back at its next look, long before the lease ends."""
    first = await start(make_app, db="shared.db")
    second = await make_app(features=[Help, Load], db="shared.db", alongside=True)
    crashed = Scheduler(first.db, clock, timers=AsyncIOScheduler(timezone="UTC"))
    stuck = asyncio.Event()

    async def hang(job: Job) -> None:
        stuck.set()
        await asyncio.Event().wait()  # the first worker is in the middle of its batch

    crashed.handle("load", hang)
    keys = await schedule_many(second, 3, clock.now())
    dying = asyncio.create_task(crashed.run_due())
    await stuck.wait()
    assert await second.scheduler.run_due() == []  # alive: its claims are left alone
    look = clock.now() + timedelta(seconds=5)
    assert second.scheduler.armed() == look  # not the lease's end, 5 minutes on
    clock.advance(timedelta(seconds=5))
    await fire_due_timers(second, clock.now())
    assert Load.counts == Counter()  # still alive at that look: nothing taken
    await died(first.db)  # killed
    clock.advance(timedelta(seconds=5))
    await fire_due_timers(second, clock.now())
    assert Load.counts == Counter(keys)
    assert {await second.scheduler.state(key) for key in keys} == {"done"}
    assert second.scheduler.armed() is None  # nobody holds claims: no more looks
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)


class Interrupted(BaseException):
    """Not an error of the job: the process is being torn down under it."""


async def test_an_interrupted_batch_records_what_ran_and_hands_back_the_rest(make_app, clock):
    app = await start(make_app)
    interrupt = {"second"}

    async def run(job: Job) -> None:
        if job.key in interrupt:
            interrupt.clear()
            raise Interrupted
        Load.counts[job.key] += 1

    app.scheduler.handle("once", run)
    for n, key in enumerate(("first", "second", "third")):
        await app.scheduler.schedule(key, "once", clock.now() + timedelta(seconds=n))
    clock.advance(timedelta(minutes=1))
    try:
        await app.scheduler.run_due()
    except Interrupted:
        pass
    else:
        raise AssertionError("the interruption should reach the caller")
    assert [await app.scheduler.state(k) for k in ("first", "second", "third")] == [
        "done", "pending", "pending",
    ]  # fmt: skip
    assert await app.scheduler.run_due() == [("second", "done"), ("third", "done")]
    assert Load.counts == Counter(["first", "second", "third"])


async def test_a_long_batch_renews_its_lease(make_app, clock):
    app = await start(make_app)
    lease = app.scheduler.lease
    seen: list[float] = []

    async def slow(job: Job) -> None:
        clock.advance(lease * 0.75)  # a handler that takes most of a lease

    async def check(job: Job) -> None:
        seen.append(
            await app.db.fetchval("SELECT claimed_until FROM jobs WHERE key = ?", (job.key,))
        )

    app.scheduler.handle("slow", slow)
    app.scheduler.handle("check", check)
    await app.scheduler.schedule("first", "slow", clock.now() - timedelta(seconds=2))
    await app.scheduler.schedule("second", "check", clock.now() - timedelta(seconds=1))
    assert await app.scheduler.run_due() == [("first", "done"), ("second", "done")]
    assert seen[0] - clock.now().timestamp() > (lease / 2).total_seconds()


async def test_concurrent_run_due_never_runs_a_job_twice(make_app, clock):
    app = await start(make_app)
    app.scheduler.batch_size = 50  # many batches, so the two callers interleave
    keys = await schedule_many(app, 2_000, clock.now())
    first, second = await asyncio.gather(app.scheduler.run_due(), app.scheduler.run_due())
    assert first and second  # both took a share
    assert sorted(k for k, _ in first + second) == keys
    assert Load.counts == Counter(keys)


async def test_jobs_due_together_run_in_the_order_they_were_scheduled(make_app, clock):
    app = await start(make_app)
    started: list[str] = []

    async def note(job: Job) -> None:
        started.append(job.key)
        await asyncio.sleep(0)

    app.scheduler.handle("note", note)
    due = clock.now() - timedelta(minutes=1)
    for key in ("b", "a", "d", "c"):
        await app.scheduler.schedule(key, "note", due)
    await app.scheduler.schedule("earlier", "note", due - timedelta(minutes=1))
    ran = await app.scheduler.run_due()
    assert started == ["earlier", "b", "a", "d", "c"] == [k for k, _ in ran]


async def test_jobs_of_a_kind_without_handler_stay_pending(make_app, clock, caplog):
    app = await start(make_app)
    await app.db.execute(
        "INSERT INTO jobs (key, kind, due_at) VALUES ('gone', 'removed.feature', ?)",
        (clock.now().timestamp(),),
    )
    await app.scheduler.schedule("here", "load", clock.now())
    assert await app.scheduler.run_due() == [("here", "done")]
    assert await app.scheduler.state("gone") == "pending"
    restarted = await start(make_app)
    assert await restarted.scheduler.state("gone") == "pending"
    assert "1 pending job(s) of kind removed.feature have no handler" in caplog.text


@pytest.mark.sqlite_only("a SQLite file written by an older bot")
async def test_a_database_from_before_leases_is_migrated_and_caught_up(tmp_path, make_app, clock):
    db = await Database.open(tmp_path / "old.db")
    await db.migrate("scheduler", MIGRATIONS[:1])
    await db.execute(
        "INSERT INTO jobs (key, kind, due_at, state) VALUES ('old', 'load', ?, 'running')",
        (clock.now().timestamp(),),
    )
    await db.close()
    clock.advance(timedelta(minutes=10))
    app = await start(make_app, db="old.db")
    assert await app.db.version("scheduler") == len(MIGRATIONS)
    assert await app.scheduler.state("old") == "done" and Load.counts == Counter(["old"])


async def test_the_timer_runs_due_jobs_in_the_background(tmp_path):
    """With the clock running: the one timer fires, runs what is due and re-arms; a job
    that a running job schedules for now is not lost while the timer is busy."""
    db = await Database.open(tmp_path / "bg.db")
    await db.migrate("scheduler", MIGRATIONS)
    clock = FakeClock(datetime.now(UTC) - timedelta(minutes=1))  # what is due, per APScheduler
    scheduler = Scheduler(db, clock)
    fired = asyncio.Event()

    async def first(job: Job) -> None:
        await scheduler.schedule("follow-up", "second", clock.now())

    async def second(job: Job) -> None:
        fired.set()

    scheduler.handle("first", first)
    scheduler.handle("second", second)
    await scheduler.start()
    try:
        await scheduler.schedule("now", "first", clock.now())
        next_year = clock.now() + timedelta(days=365)
        await scheduler.schedule("next-year", "first", next_year)
        await asyncio.wait_for(fired.wait(), timeout=10)
        await _until(lambda: _settled(scheduler, next_year))  # then re-armed for next year
    finally:
        scheduler.stop()
        await db.close()


async def _settled(scheduler: Scheduler, next_due: datetime) -> bool:
    states = {await scheduler.state(key) for key in ("now", "follow-up")}
    return states == {"done"} and scheduler.armed() == next_due


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Yield to the loop until `check` holds (a few iterations, not a timed wait)."""
    for _ in range(1_000):
        if await check():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")
