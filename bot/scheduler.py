"""Timed work, with the database as the source of truth.

A job is a row (unique key, kind, due time, payload). APScheduler holds one timer per
pending row and is rebuilt from the table at every start; what came due while the bot was
down runs if it is at most `grace` late for its kind, and is skipped and logged otherwise.
Handlers must be idempotent (they usually only enqueue into the outbox, which is), since a
crash mid-handler runs the job again at the next start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.clock import Clock
from bot.store import Database
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
    """
]


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


class Scheduler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        grace: timedelta = timedelta(hours=6),
        timers: AsyncIOScheduler | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.grace = grace
        self.timers = timers or AsyncIOScheduler(timezone="UTC")
        self._kinds: dict[str, _Kind] = {}

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
        await self.db.execute(
            "INSERT INTO jobs (key, kind, due_at, payload) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, payload = excluded.payload,"
            " state = CASE WHEN jobs.due_at = excluded.due_at AND jobs.state != 'cancelled'"
            " THEN jobs.state ELSE 'pending' END,"
            " due_at = excluded.due_at",
            (key, kind, due_at.timestamp(), json.dumps(payload or {})),
        )
        state = await self.db.fetchval("SELECT state FROM jobs WHERE key = ?", (key,))
        if state == "pending":
            self._arm(key, due_at)

    async def cancel(self, key: str) -> bool:
        changed = await self.db.execute(
            "UPDATE jobs SET state = 'cancelled' WHERE key = ? AND state = 'pending'", (key,)
        )
        self._disarm(key)
        return bool(changed)

    async def cancel_prefix(self, prefix: str) -> int:
        keys = [
            r["key"]
            for r in await self.db.fetchall(
                "SELECT key FROM jobs WHERE key LIKE ? AND state = 'pending'", (prefix + "%",)
            )
        ]
        for key in keys:
            await self.cancel(key)
        return len(keys)

    # --- Reading -------------------------------------------------------------------------

    async def pending(self, prefix: str = "") -> list[Job]:
        rows = await self.db.fetchall(
            "SELECT * FROM jobs WHERE state = 'pending' AND key LIKE ? ORDER BY due_at, id",
            (prefix + "%",),
        )
        return [_job(r) for r in rows]

    async def state(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT state FROM jobs WHERE key = ?", (key,))

    def armed(self) -> dict[str, datetime]:
        """The timers APScheduler holds: job key -> when it fires."""
        return {j.id: j.trigger.run_date for j in self.timers.get_jobs()}

    # --- Running -------------------------------------------------------------------------

    async def start(self, paused: bool = False) -> None:
        """Rebuild every timer from the table, then catch up on what came due meanwhile."""
        await self.db.execute("UPDATE jobs SET state = 'pending' WHERE state = 'running'")
        if not self.timers.running:
            self.timers.start(paused=paused)
        for job in await self.pending():
            self._arm(job.key, job.due_at)
        await self.run_due()

    def stop(self) -> None:
        if self.timers.running:
            self.timers.shutdown(wait=False)

    async def run_due(self) -> list[tuple[str, str]]:
        """Run or skip every job due by now; return (key, outcome) pairs in due order."""
        now = self.clock.now()
        rows = await self.db.fetchall(
            "SELECT * FROM jobs WHERE state = 'pending' AND due_at <= ? ORDER BY due_at, id",
            (now.timestamp(),),
        )
        return [(row["key"], await self._fire(_job(row), now)) for row in rows]

    async def _fire(self, job: Job, now: datetime) -> str:
        self._disarm(job.key)
        kind = self._kinds.get(job.kind)
        if kind is None:
            log.warning("scheduler: no handler for %s (%s); left pending", job.key, job.kind)
            return "unknown"
        claimed = await self.db.execute(
            "UPDATE jobs SET state = 'running' WHERE key = ? AND state = 'pending'", (job.key,)
        )
        if not claimed:
            return "taken"
        late = job.late_by(now)
        if late > kind.grace:
            log.warning(
                "scheduler: skipped %s, due %s, %s late (grace %s)",
                job.key, job.due_at.isoformat(), late, kind.grace,
            )  # fmt: skip
            # The follow-up runs while the row is still `running`, so a crash before it is
            # done runs the skip again at the next start, as a crash in a handler would.
            if kind.skipped is not None:
                try:
                    await kind.skipped(job)
                except Exception:
                    log.exception("scheduler: after skipping %s, its follow-up failed", job.key)
            await self._finish(job, "skipped", f"late by {late}")
            return "skipped"
        try:
            await kind.handler(job)
        except Exception as exc:
            log.exception("scheduler: job %s failed", job.key)
            await self._finish(job, "failed", repr(exc)[:300])
            return "failed"
        await self._finish(job, "done", None)
        return "done"

    async def _finish(self, job: Job, state: str, note: str | None) -> None:
        # A handler may have re-scheduled its own key (a recurring job): leave that alone.
        await self.db.execute(
            "UPDATE jobs SET state = ?, finished_at = ?, note = ? "
            "WHERE key = ? AND state = 'running'",
            (state, self.clock.now().timestamp(), note, job.key),
        )

    def _arm(self, key: str, due_at: datetime) -> None:
        self.timers.add_job(
            self.run_due,
            DateTrigger(run_date=due_at),
            id=key,
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _disarm(self, key: str) -> None:
        if self.timers.get_job(key):
            self.timers.remove_job(key)


def _job(row: Any) -> Job:
    return Job(
        key=row["key"],
        kind=row["kind"],
        due_at=utc_from_ts(row["due_at"]),
        payload=json.loads(row["payload"]),
    )
