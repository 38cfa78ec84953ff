"""Timed work, with the database as the source of truth: a small durable work engine.

A job is a row (unique key, kind, due time, payload). APScheduler holds ONE timer, armed
for the earliest pending due time; scheduling an earlier job moves it earlier, and every
wake-up re-arms it from the table, so nothing in memory grows with the number of jobs.

When the timer fires (or a test calls `run_due()` under a fake clock), due jobs are claimed
in batches by the (state, due_at) index: one UPDATE ... RETURNING marks up to `batch_size`
rows `running` under this instance's worker id and a lease (`claimed_until`). The batch
runs, then its outcomes are written in one transaction. Cost is O(due jobs), memory is
bounded by the batch. A crashed worker's claims expire with their lease and are taken
again (the timer is armed for the earliest lease too, so that happens on time). Sooner
where it can be known: on SQLite one process holds the file, so `start()` releases every
claim left `running`; on a shared database, while another worker holds claims, the timer
fires every `LOOK_AGAIN` too, and a killed worker's (its liveness lock gone) are taken
back. On PostgreSQL the claim's sub-select gains `FOR UPDATE SKIP LOCKED` so several
workers share the table with the same statements.

Order: a job due later starts only once every job due before it in this run has finished,
so after downtime a week-before reminder is queued before the day-before one. Jobs due at
the same instant (a thousand reminders for one event) run up to `concurrency` at a time,
started in the order they were first scheduled. Measured with bench/scheduler.py, 10,000
jobs due at once: handlers that only touch the store (ours: they enqueue into the outbox)
take the same time either way, since one connection serialises every statement; handlers
that wait 5 ms on I/O took 52 s one at a time and 3.6 s sixteen at a time.

What came due while the bot was down runs if it is at most `grace` late for its kind,
and is skipped and logged otherwise. Handlers must be idempotent (they usually only
enqueue into the outbox, which is), since a crash before a batch is recorded runs its
jobs again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.clock import Clock
from bot.store import Database, lapsed_claims
from bot.timeutil import utc_from_ts

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        due_at REAL NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'running', 'done', 'skipped', 'failed', 'cancelled')),
        finished_at REAL,
        note TEXT
    );
    CREATE INDEX jobs_due ON jobs (state, due_at)
    """,
    # Leases: which worker holds a running job, and until when its claim stands.
    """
    ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
    ALTER TABLE jobs ADD COLUMN claimed_until REAL
    """,
]

WAKE = "scheduler.wake"  # the one APScheduler job this module owns
RETRY = timedelta(seconds=5)  # a wake-up that failed (the store was busy) tries again
LOOK_AGAIN = timedelta(seconds=5)  # shared database: how often others' claims are checked

# `{kinds}` is one placeholder per kind with a handler: rows of an unknown kind stay pending.
# `{skip}` is the database's skip_locked: on PostgreSQL, workers claiming at once skip each
# other's rows, and the outer `state` check keeps a row from being claimed twice.
_CLAIM = (
    "UPDATE jobs SET state = 'running', claimed_by = ?, claimed_until = ? "
    "WHERE state = 'pending' AND id IN (SELECT id FROM jobs WHERE state = 'pending'"
    " AND due_at <= ? AND kind IN ({kinds}) ORDER BY due_at, id LIMIT ?{skip}) "
    "RETURNING id, key, kind, due_at, payload"
)
# A handler may have re-scheduled its own key (a recurring job): its due time moved, or
# it is pending again, so the guard leaves that row alone.
_FINISH = (
    "UPDATE jobs SET state = ?, finished_at = ?, note = ?, claimed_by = NULL,"
    " claimed_until = NULL "
    "WHERE id = ? AND state = 'running' AND claimed_by = ? AND due_at = ?"
)
_RELEASE = "UPDATE jobs SET state = 'pending', claimed_by = NULL, claimed_until = NULL "


@dataclass
class Job:
    key: str
    kind: str
    due_at: datetime
    payload: dict[str, Any]

    def late_by(self, now: datetime) -> timedelta:
        return now - self.due_at


JobHandler = Callable[[Job], Awaitable[None]]

# A grace for jobs that must run however late they are (closing a poll whose deadline passed).
ANY_LATENESS = timedelta.max


@dataclass
class _Kind:
    handler: JobHandler
    grace: timedelta
    skipped: JobHandler | None


@dataclass
class _Claim:
    """A row this worker holds: the job, plus what the finish needs to find the row again."""

    id: int
    due_ts: float
    job: Job


@dataclass
class _Lease:
    """When a running batch next extends its claims."""

    renew_at: datetime


@dataclass
class _Outcome:
    state: str
    note: str | None = None


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        grace: timedelta = timedelta(hours=6),
        timers: AsyncIOScheduler | None = None,
        batch_size: int = 500,
        lease: timedelta = timedelta(minutes=5),
        concurrency: int = 16,
    ) -> None:
        self.db = db
        self.clock = clock
        self.grace = grace
        self.timers = timers or AsyncIOScheduler(timezone="UTC")
        self.batch_size = batch_size
        self.lease = lease
        self.concurrency = concurrency
        self.worker = db.worker
        self._kinds: dict[str, _Kind] = {}
        self._waking = False
        self._stopped = False

    def handle(
        self,
        kind: str,
        handler: JobHandler,
        grace: timedelta | None = None,
        skipped: JobHandler | None = None,
    ) -> None:
        """Declare what runs for a kind of job, how late it may still run, and what runs
        instead when it is later than that (a recurring job re-arms its next occurrence)."""
        self._kinds[kind] = _Kind(handler, grace if grace is not None else self.grace, skipped)

    # --- Writing -------------------------------------------------------------------------

    async def schedule(
        self, key: str, kind: str, due_at: datetime, payload: dict[str, Any] | None = None
    ) -> None:
        """Create or move a job. A job that already ran is armed again only if it is moved;
        a cancelled one is armed again whenever it is scheduled."""
        if kind not in self._kinds:
            raise ValueError(f"no handler for job kind {kind!r}")
        row = await self.db.fetchone(
            "INSERT INTO jobs (key, kind, due_at, payload) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, payload = excluded.payload,"
            " state = CASE WHEN jobs.due_at = excluded.due_at AND jobs.state != 'cancelled'"
            " THEN jobs.state ELSE 'pending' END,"
            " due_at = excluded.due_at "
            "RETURNING state",
            (key, kind, due_at.timestamp(), json.dumps(payload or {})),
        )
        if row is not None and row["state"] == "pending":
            self._arm(due_at)

    async def cancel(self, key: str) -> bool:
        # The timer is left alone: waking up early for nothing costs one query.
        changed = await self.db.execute(
            "UPDATE jobs SET state = 'cancelled' WHERE key = ? AND state = 'pending'", (key,)
        )
        return bool(changed)

    async def cancel_prefix(self, prefix: str) -> int:
        return await self.db.execute(
            "UPDATE jobs SET state = 'cancelled' "
            "WHERE key LIKE ? ESCAPE '\\' AND state = 'pending'",
            (_like_prefix(prefix),),
        )

    # --- Reading -------------------------------------------------------------------------

    async def pending(self, prefix: str = "") -> list[Job]:
        rows = await self.db.fetchall(
            "SELECT * FROM jobs WHERE state = 'pending' AND key LIKE ? ESCAPE '\\' "
            "ORDER BY due_at, id",
            (_like_prefix(prefix),),
        )
        return [_job(r) for r in rows]

    async def state(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT state FROM jobs WHERE key = ?", (key,))

    def armed(self) -> datetime | None:
        """When the one timer fires next (the earliest pending due time), or None."""
        job = self.timers.get_job(WAKE)
        return None if job is None else job.trigger.run_date

    # --- Running -------------------------------------------------------------------------

    async def start(self, paused: bool = False) -> None:
        """Release what a previous process left claimed, start the clock, and catch up on
        what came due meanwhile (which also arms the timer for what is next)."""
        self._stopped = False
        await self._rescue()
        await self._warn_unknown_kinds()
        if not self.timers.running:
            self.timers.start(paused=paused)
        await self.run_due()

    def stop(self) -> None:
        self._stopped = True  # a wake-up in progress claims no further batch
        if self.timers.running:
            self.timers.shutdown(wait=False)

    async def run_due(self) -> list[tuple[str, str]]:
        """Run or skip every job due by now; return (key, outcome) pairs in due order."""
        ran: list[tuple[str, str]] = []
        await self._drain(ran)
        await self._rearm()
        return ran

    async def _drain(self, ran: list[tuple[str, str]] | None, wake: bool = False) -> None:
        """Claim and run batches until one comes back short: nothing else is due (or
        another caller holds it). Outcomes are collected only if `ran` is given."""
        await self._rescue()
        while not (wake and self._stopped):
            now = self.clock.now()
            batch = await self._claim(now)
            outcomes = await self._run_batch(batch, now)
            if ran is not None:
                ran.extend((c.job.key, o.state) for c, o in zip(batch, outcomes, strict=True))
            if len(batch) < self.batch_size:
                return

    async def _claim(self, now: datetime) -> list[_Claim]:
        kinds = list(self._kinds)
        if not kinds:
            return []
        until = (now + self.lease).timestamp()
        rows = await self.db.fetchall(
            _CLAIM.format(kinds=_marks(kinds), skip=self.db.skip_locked),
            (self.worker, until, now.timestamp(), *kinds, self.batch_size),
        )
        # RETURNING gives no order: due order is restored here.
        rows.sort(key=lambda r: (r["due_at"], r["id"]))
        return [_Claim(r["id"], r["due_at"], _job(r)) for r in rows]

    async def _rescue(self) -> None:
        """Take back the claims of workers that died mid-batch (or whose lease ran out)."""
        where, params = await lapsed_claims(
            self.db, "jobs", "running", self.clock.now().timestamp()
        )
        rescued = await self.db.execute(_RELEASE + "WHERE " + where, params)
        if rescued:
            log.warning("scheduler: %d job(s) claimed by a worker now gone are due again", rescued)

    async def _run_batch(self, batch: Sequence[_Claim], now: datetime) -> list[_Outcome]:
        """Run a batch, one group of jobs due at the same instant after another, and record
        it in one transaction. If it is interrupted, what ran is recorded and the rest
        handed back."""
        outcomes: list[_Outcome | None] = [None] * len(batch)
        lease = _Lease(renew_at=now + self.lease / 2)  # halfway through the claim's lease
        try:
            for group in _same_due(batch):
                await self._run_group(group, now, outcomes, lease)
        finally:
            if batch:
                await self._settle(batch, outcomes)
        return [o for o in outcomes if o is not None]

    async def _run_group(
        self,
        group: list[tuple[int, _Claim]],
        now: datetime,
        outcomes: list[_Outcome | None],
        lease: _Lease,
    ) -> None:
        """Up to `concurrency` jobs at a time, started in id order; all done on return."""
        todo = iter(group)

        async def worker() -> None:
            for index, claim in todo:
                if self.clock.now() >= lease.renew_at:
                    lease.renew_at = await self._renew() - self.lease / 2
                outcomes[index] = await self._fire(claim.job, now)

        workers = min(self.concurrency, len(group))
        if workers == 1:
            await worker()
            return
        # A task group, not gather: if one worker is interrupted the others are stopped
        # before the batch is settled, so nothing still runs a job the settle hands back.
        async with asyncio.TaskGroup() as tasks:
            for _ in range(workers):
                tasks.create_task(worker())

    async def _fire(self, job: Job, now: datetime) -> _Outcome:
        kind = self._kinds[job.kind]
        late = job.late_by(now)
        if late > kind.grace:
            log.warning(
                "scheduler: skipped %s, due %s, %s late (grace %s)",
                job.key, job.due_at.isoformat(), late, kind.grace,
            )  # fmt: skip
            # The follow-up runs while the row is still `running`, so a crash before it is
            # recorded runs the skip again at the next start, as a crash in a handler would.
            if kind.skipped is not None:
                try:
                    await kind.skipped(job)
                except Exception:
                    log.exception("scheduler: after skipping %s, its follow-up failed", job.key)
            return _Outcome("skipped", f"late by {late}")
        try:
            await kind.handler(job)
        except Exception as exc:
            log.exception("scheduler: job %s failed", job.key)
            return _Outcome("failed", repr(exc)[:300])
        return _Outcome("done")

    async def _settle(self, batch: Sequence[_Claim], outcomes: Sequence[_Outcome | None]) -> None:
        """One transaction: record what ran, hand back what did not."""
        finished = self.clock.now().timestamp()
        ran = [
            (o.state, finished, o.note, c.id, self.worker, c.due_ts)
            for c, o in zip(batch, outcomes, strict=True)
            if o is not None
        ]
        left = [(c.id, self.worker) for c, o in zip(batch, outcomes, strict=True) if o is None]
        async with self.db.transaction() as tx:
            await tx.executemany(_FINISH, ran)
            if left:
                await tx.executemany(
                    _RELEASE + "WHERE id = ? AND state = 'running' AND claimed_by = ?", left
                )

    async def _renew(self) -> datetime:
        """Extend this worker's claims by a full lease from now; return the new expiry."""
        until = self.clock.now() + self.lease
        await self.db.execute(
            "UPDATE jobs SET claimed_until = ? WHERE state = 'running' AND claimed_by = ?",
            (until.timestamp(), self.worker),
        )
        return until

    # --- The one timer -------------------------------------------------------------------

    def _arm(self, due_at: datetime) -> None:
        """Move the timer earlier (or arm it); a later time never replaces an earlier one.
        APScheduler's own job is the record of what is armed: once it fires, it is gone."""
        job = self.timers.get_job(WAKE)
        if job is not None and job.trigger.run_date <= due_at:
            return
        self.timers.add_job(
            self._wake,
            DateTrigger(run_date=due_at),
            id=WAKE,
            replace_existing=True,
            misfire_grace_time=None,
            max_instances=2,  # a wake-up during a long one returns at once (see _wake)
        )

    async def _rearm(self) -> None:
        """Arm the timer for the earliest pending job, or the earliest claim's lease to run
        out, as the table says now. It is disarmed first, so a schedule() that lands while
        the table is read arms for itself, and the earlier of the two times wins."""
        if self.timers.get_job(WAKE) is not None:
            self.timers.remove_job(WAKE)
        due = await self._next_wake()
        if due is not None:
            self._arm(due)

    async def _next_wake(self) -> datetime | None:
        """The earliest pending due time, or lease expiry of a claim held now: a worker that
        dies with jobs claimed leaves nothing pending, so without waking for its lease the
        others would take those jobs back only when other work next woke them."""
        kinds = list(self._kinds)
        if not kinds:
            return None
        row = await self.db.fetchone(
            "SELECT (SELECT due_at FROM jobs WHERE state = 'pending'"
            f" AND kind IN ({_marks(kinds)}) ORDER BY due_at, id LIMIT 1) AS due,"
            " (SELECT min(claimed_until) FROM jobs WHERE state = 'running') AS lease,"
            " (SELECT count(*) FROM jobs WHERE state = 'running' AND claimed_by <> ?) AS theirs",
            (*kinds, self.worker),
        )
        times = [t for t in (row["due"], row["lease"]) if t is not None] if row else []
        if row and row["theirs"] and self.db.shared:
            # Another worker holds a batch: look every few seconds whether it still runs,
            # so a killed one's jobs run seconds late, not a lease late (see `_rescue`).
            times.append(self.clock.now().timestamp() + LOOK_AGAIN.total_seconds())
        return utc_from_ts(min(times)) if times else None

    async def _wake(self) -> None:
        """The timer fired: run what is due, then re-arm from the table."""
        if self._waking:
            return  # the wake-up in progress reads the table again before it ends
        self._waking = True
        try:
            await self._drain(None, wake=True)
        except Exception:
            log.exception("scheduler: running due jobs failed; trying again in %s", RETRY)
            self._arm(self.clock.now() + RETRY)
            return
        finally:
            self._waking = False
        if self._stopped:
            return
        # Outside the flag: a timer that fires while the table is read runs in full.
        try:
            await self._rearm()
        except Exception:
            log.exception("scheduler: re-arming failed; trying again in %s", RETRY)
            self._arm(self.clock.now() + RETRY)

    async def _warn_unknown_kinds(self) -> None:
        rows = await self.db.fetchall(
            "SELECT kind, count(*) AS n FROM jobs WHERE state = 'pending' GROUP BY kind"
        )
        for row in rows:
            if row["kind"] not in self._kinds:
                log.warning(
                    "scheduler: %d pending job(s) of kind %s have no handler; left pending",
                    row["n"], row["kind"],
                )  # fmt: skip


def _same_due(batch: Sequence[_Claim]) -> list[list[tuple[int, _Claim]]]:
    """The batch (in due order) cut into runs of jobs due at the same instant, each job
    with its place in the batch."""
    groups: list[list[tuple[int, _Claim]]] = []
    for index, claim in enumerate(batch):
        if groups and groups[-1][0][1].due_ts == claim.due_ts:
            groups[-1].append((index, claim))
        else:
            groups.append([(index, claim)])
    return groups


def _marks(values: Sequence[Any]) -> str:
    """One `?` per value, for an IN (...) list."""
    return ", ".join("?" * len(values))


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching keys that start with `prefix`, wildcards taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _job(row: Any) -> Job:
    return Job(
        key=row["key"],
        kind=row["kind"],
        due_at=utc_from_ts(row["due_at"]),
        payload=json.loads(row["payload"]),
    )
