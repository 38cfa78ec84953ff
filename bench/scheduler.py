"""Scheduler benchmark: many jobs due at the same instant, on the real clock.

N jobs (10,000 by default) are scheduled through the real Scheduler of an App running in
the background, on a SQLite file, all due at one instant `--lead` seconds ahead (after
the scheduling is done). Their handler notes when it ran and how often. Then, in the same
run, APScheduler 3 alone gets the same N as DateTrigger jobs at one instant, as a reference
for what the clock itself costs. Lateness is fire time minus due time; peak RSS is the
process's high-water mark during each part (reset between parts where Linux allows it),
next to its RSS just before the scheduling.

`--handler` picks what a job does: `memory` (note it and return), `db` (also one INSERT
into a table, as an outbox enqueue would), `sleep` (also wait `--sleep-ms`, as a call to
another service would).

    python bench/scheduler.py --jobs 10000

The last line is exactly `due=N fired=F twice=T p50_ms=X p99_ms=Y peak_rss_mb=Z`, for the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: E402
from apscheduler.triggers.date import DateTrigger  # noqa: E402

from bot import config as configuration  # noqa: E402
from bot.app import App, Feature  # noqa: E402
from bot.cli import sections  # noqa: E402
from bot.scheduler import Job  # noqa: E402

KIND = "bench.fire"


@dataclass
class Fired:
    """What the handlers saw: each key's count, and every fire time (epoch seconds)."""

    counts: Counter[str] = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)

    def note(self, key: str) -> None:
        self.times.append(time.time())
        self.counts[key] += 1


class BenchJobs(Feature):
    """The jobs under test; set `fired` and `mode` before the App starts."""

    name = "benchjobs"
    migrations = ["CREATE TABLE bench_out (key TEXT PRIMARY KEY)"]
    fired = Fired()
    mode = "memory"
    sleep_s = 0.005

    def register(self) -> None:
        self.app.scheduler.handle(KIND, self.fire)

    async def fire(self, job: Job) -> None:
        BenchJobs.fired.note(job.key)
        if BenchJobs.mode == "db":
            await self.app.db.execute(
                "INSERT INTO bench_out (key) VALUES (?) ON CONFLICT DO NOTHING", (job.key,)
            )
        elif BenchJobs.mode == "sleep":
            await asyncio.sleep(BenchJobs.sleep_s)


# --- Memory ------------------------------------------------------------------------------


def _status_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_mb() -> float:
    return _status_mb("VmHWM")


def reset_peak() -> bool:
    """Start the high-water mark again from the current RSS (Linux 4.0+); False if not."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- Runs --------------------------------------------------------------------------------


@dataclass
class Result:
    due: int
    fired: int
    twice: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    idle_mb: float
    peak_mb: float
    schedule_s: float

    def line(self, name: str) -> str:
        return (
            f"[{name}] due={self.due} fired={self.fired} twice={self.twice} "
            f"schedule_s={self.schedule_s:.2f} p50_ms={self.p50_ms:.1f} "
            f"p99_ms={self.p99_ms:.1f} max_ms={self.max_ms:.1f} "
            f"idle_rss_mb={self.idle_mb:.1f} peak_rss_mb={self.peak_mb:.1f}"
        )


def summarise(fired: Fired, due: int, due_ts: float, idle: float, schedule_s: float) -> Result:
    late = sorted((t - due_ts) * 1000 for t in fired.times) or [float("nan")]
    p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
    twice = sum(1 for n in fired.counts.values() if n > 1)
    return Result(
        due, len(fired.counts), twice, statistics.median(late), p99, late[-1],
        idle, peak_mb(), schedule_s,
    )  # fmt: skip


async def wait_for(fired: Fired, n: int, deadline: float) -> None:
    """Until every job fired (or the deadline passed), and a moment more to catch doubles."""
    while len(fired.times) < n and time.time() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)


async def bot_run(args: argparse.Namespace, tmp: Path) -> Result:
    """The real Scheduler of a background App, on a SQLite file and the system clock."""
    BenchJobs.fired, BenchJobs.mode = Fired(), args.handler
    BenchJobs.sleep_s = args.sleep_ms / 1000
    config = configuration.build(sections())
    async with App.running(config, [BenchJobs], db_path=str(tmp / "jobs.db")) as app:
        if args.batch:
            app.scheduler.batch_size = args.batch
        if args.concurrency:
            app.scheduler.concurrency = args.concurrency
        idle = rss_mb()
        reset_peak()
        began = time.time()
        due_ts = began + args.lead
        due = datetime.fromtimestamp(due_ts, UTC)
        for i in range(args.jobs):
            await app.scheduler.schedule(f"bench:{i}", KIND, due, {"i": i})
        schedule_s = time.time() - began
        if schedule_s > args.lead:
            print(f"warning: scheduling took {schedule_s:.1f}s, longer than --lead")
        await wait_for(BenchJobs.fired, args.jobs, due_ts + args.timeout)
        done = await app.db.fetchval("SELECT count(*) FROM jobs WHERE state = 'done'")
        if done != len(BenchJobs.fired.counts):
            print(f"warning: {done} rows done, {len(BenchJobs.fired.counts)} keys fired")
        return summarise(BenchJobs.fired, args.jobs, due_ts, idle, schedule_s)


async def apscheduler_run(args: argparse.Namespace) -> Result:
    """APScheduler 3 alone: N DateTrigger jobs at one instant, coroutine handlers."""
    fired = Fired()

    async def fire(key: str) -> None:
        fired.note(key)

    timers = AsyncIOScheduler(timezone="UTC")
    timers.start()
    idle = rss_mb()
    reset_peak()
    began = time.time()
    due_ts = began + args.lead
    due = datetime.fromtimestamp(due_ts, UTC)
    for i in range(args.jobs):
        key = f"bench:{i}"
        timers.add_job(fire, DateTrigger(run_date=due), args=[key], id=key, misfire_grace_time=None)
    schedule_s = time.time() - began
    await wait_for(fired, args.jobs, due_ts + args.timeout)
    timers.shutdown(wait=False)
    return summarise(fired, args.jobs, due_ts, idle, schedule_s)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs due at one instant")
    parser.add_argument("--lead", type=float, default=5.0, help="seconds until they are due")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait after")
    parser.add_argument("--batch", type=int, default=0, help="claim batch (0: the default)")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="handlers at once (0: the default)"
    )
    parser.add_argument("--handler", choices=["memory", "db", "sleep"], default="memory")
    parser.add_argument("--sleep-ms", type=float, default=5.0, help="for --handler sleep")
    parser.add_argument("--no-reference", action="store_true", help="skip APScheduler alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"rss_before_mb={rss_mb():.1f} peak_resettable={reset_peak()}")
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        bot = await bot_run(args, Path(tmp))
    print(bot.line("bot"))
    if not args.no_reference:
        print((await apscheduler_run(args)).line("apscheduler"))
    print(
        f"due={bot.due} fired={bot.fired} twice={bot.twice} p50_ms={bot.p50_ms:.1f} "
        f"p99_ms={bot.p99_ms:.1f} peak_rss_mb={bot.peak_mb:.1f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
