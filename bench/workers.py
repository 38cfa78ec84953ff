"""Workers benchmark: 1, 2 and 4 `itsm-bot run` workers on one PostgreSQL, the same work
each time, one worker killed with SIGKILL midway.

The work (defaults = issue #18's sizes): 500 feeds from a local farm subscribed over 50
channels, 4 items each (2,000 feed posts), and 10,000 events over 50 other channels, each
with a reminder due at the same instant (10,000 reminders). Everything comes due at one
moment, "go", a little after every worker of the phase has connected: the feeds' next
check and the reminders' due time. From then on the workers fetch, parse, queue and post.

Setting that up is slow on PostgreSQL, so it is done once, into a template database: the
feeds through `itsm-bot feeds import` (one OPML file per channel), the events through the
events feature's own service in this process (`EventService.create`, as the demo seeds
its events; not announced, so the posts timed are the feed posts and the reminders). Each
phase runs on a fresh copy (`CREATE DATABASE ... TEMPLATE`), moved in time by one UPDATE
per table so that its feeds and reminders are due at that phase's "go" (the events' start
moves with their reminders, so each reminder still reads "in 1 hour").

The fake Slack (no rate limit, `--latency` per answer) and the feed farm run in this
process, on the same 2 cores as the workers and PostgreSQL. In a phase of N > 1 workers,
the first is SIGKILLed when half of the posts and reminders have arrived. What it held
comes back as soon as another worker looks, its liveness lock being gone: its claimed
batch of reminders within 5 s; the heads of its outbox lanes within 5 s where no other
worker was waiting on them, but a lane another worker already waits on is looked at again
only when the dead worker's claim on its head ends (3 call timeouts, `--call-timeout`);
and the feeds it had claimed but not recorded 4 fetch timeouts after it last renewed that
claim (`--feed-timeout`), when another worker fetches them again (`refetched_after_kill`:
what it fetched died with it).

Per phase: seconds from "go" until every post and reminder arrived (`wall_s`), posts/s
and reminders/s, lost / doubled / out-of-order feed posts (order within each feed),
reminders missing and twice, feed fetches less than half an interval after the same
feed's previous one other than those refetched after the kill (`fetched_twice`; each
worker fetches with a User-Agent of its own), each worker's share of the fetches and of
the posts (by its own bot token), and CPU seconds spent in the workers, in PostgreSQL's
backends for the phase's database and its background processes, in this process (the
fakes) and elsewhere on the machine (other work). Speedup_N = wall_s(1 worker) /
wall_s(N workers), in the same run. It prints numbers and never asserts; the last line
is exactly `workers=W lost=L doubled=D jobs_twice=J fetched_twice=F speedup_2=S2
speedup_4=S4`, W the most workers run and L, D, J, F summed over the phases (L counts
feed posts lost and reminders missing, D feed posts doubled, J reminders posted more
than once).

Needs a PostgreSQL server whose user may create databases: ITSM_BOT_TEST_POSTGRES or
`--database` (e.g. postgresql://postgres@127.0.0.1:5432/test). Every database it makes
is dropped at the end, on an error or Ctrl-C too (and those of a run killed outright,
at the next start).

    ITSM_BOT_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/test python bench/workers.py
    python bench/workers.py --database URL --feeds 100 --reminders 1000   # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import config as configuration  # noqa: E402
from bot.app import App  # noqa: E402
from bot.cli import sections  # noqa: E402
from bot.events.drafts import Draft, check  # noqa: E402
from bot.features import all_features  # noqa: E402
from bot.model import ChannelRef  # noqa: E402
from tests.fakes.fake_slack import TEAM_ID, FakeSlack  # noqa: E402
from tests.fakes.feed_server import FeedServer, entries, rss  # noqa: E402
from tests.process import (  # noqa: E402
    START_TIMEOUT,
    BotProcess,
    Delivery,
    channel_ref,
    run_cli,
    write_config,
)

URL_VARIABLE = "ITSM_BOT_TEST_POSTGRES"
PREFIX = "itsm_bench"  # databases made here: itsm_bench_<pid>_<what>
REMIND = timedelta(hours=1)  # each event's one reminder, this long before its start
REMINDER = re.compile(r"^⏰ .*?(Meeting \d+)")  # a reminder's text names its event
TICKS = os.sysconf("SC_CLK_TCK")


# --- The server and its databases --------------------------------------------------------


class Server:
    """The PostgreSQL server: databases made (and always dropped) by this run."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[str] = []

    def url_of(self, database: str) -> str:
        """The URL of one database on the server (with the given URL's options, but not
        its search_path: each database here is the bot's alone)."""
        parts = urlsplit(self.url)
        options = "&".join(
            o for o in parts.query.split("&") if o and not o.startswith("search_path=")
        )
        return urlunsplit((parts.scheme, parts.netloc, f"/{database}", options, ""))

    async def connect(self) -> Any:
        """A connection to the database the given URL names, to make and drop others."""
        import asyncpg

        return await asyncpg.connect(self.url_of(urlsplit(self.url).path.lstrip("/")))

    async def create(self, name: str, template: str = "") -> str:
        conn = await self.connect()
        try:
            copy = f" TEMPLATE {template}" if template else ""
            await conn.execute(f"CREATE DATABASE {name}{copy}")
        finally:
            await conn.close()
        self.made.append(name)
        return self.url_of(name)

    async def drop(self, name: str) -> None:
        conn = await self.connect()
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()
        if name in self.made:
            self.made.remove(name)

    async def drop_all(self) -> None:
        for name in list(self.made):
            await self.drop(name)

    async def drop_orphans(self) -> None:
        """Databases of bench runs whose process is gone (killed before it cleaned up)."""
        conn = await self.connect()
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", PREFIX + "\\_%"
            )
        finally:
            await conn.close()
        for row in rows:
            pid = row["datname"][len(PREFIX) + 1 :].split("_")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                await self.drop(row["datname"])


async def query(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# --- The work ------------------------------------------------------------------------------


@dataclass
class Work:
    """What every phase has to deliver: the feeds per channel, the reminders' events."""

    channels: list[str]
    feeds: dict[str, list[str]]  # channel -> its feeds' paths on the farm
    items: int
    event_channels: list[str]
    reminders: int

    @classmethod
    def of(cls, args: argparse.Namespace) -> Work:
        channels = [f"C{n:03d}" for n in range(1, args.posts_channels + 1)]
        feeds: dict[str, list[str]] = {c: [] for c in channels}
        for k in range(args.feeds):
            feeds[channels[k % len(channels)]].append(f"f{k:04d}.xml")
        events = [f"E{n:03d}" for n in range(1, args.event_channels + 1)]
        return cls(channels, feeds, args.items, events, args.reminders)

    @staticmethod
    def prefix(path: str) -> str:
        """A feed's item titles start with this (e.g. "F0007 item")."""
        return f"F{path[1:5]} item"

    def expected(self) -> dict[str, list[str]]:
        """Per feed (by path), its titles in the order they must be posted (oldest first)."""
        return {
            path: [f"{self.prefix(path)} {i}" for i in range(1, self.items + 1)]
            for paths in self.feeds.values()
            for path in paths
        }

    def channel_of_event(self, n: int) -> str:
        return self.event_channels[n % len(self.event_channels)]

    @property
    def posts(self) -> int:
        return sum(len(p) for p in self.feeds.values()) * self.items

    @property
    def total(self) -> int:
        return self.posts + self.reminders


async def subscribe(work: Work, farm: FeedServer, tmp: Path, url: str) -> None:
    """Every channel subscribed to its feeds with `itsm-bot feeds import`, two at a time."""
    config = tmp / "import.toml"
    config.write_text("[feeds]\nallow_private = true\n")  # the farm is on 127.0.0.1
    for paths in work.feeds.values():
        for path in paths:
            farm.set(path, body=rss(entries(work.items, prefix=work.prefix(path))))
    limit = asyncio.Semaphore(2)

    async def one(channel: str) -> None:
        outlines = "".join(
            f'<outline type="rss" text="{p}" xmlUrl="{farm.url(p)}"/>' for p in work.feeds[channel]
        )
        opml = tmp / f"{channel}.opml"
        opml.write_text(f'<?xml version="1.0"?><opml version="2.0"><body>{outlines}</body></opml>')
        async with limit:
            status, out = await run_cli(
                "feeds", "import", str(opml), "--channel", channel_ref(channel),
                "--backlog", "50", "--db", url, "--config", str(config), timeout=300,
            )  # fmt: skip
        if status != 0 or f"{len(work.feeds[channel])} new subscription" not in out:
            raise RuntimeError(f"feeds import for {channel} failed ({status}): {out}")

    await asyncio.gather(*(one(c) for c in work.channels if work.feeds[c]))


async def make_events(work: Work, url: str, start: datetime, at_once: int) -> None:
    """`work.reminders` events, each with one reminder REMIND before `start`, made by the
    events feature's service (announcement left out), `at_once` at a time."""
    config = configuration.build(sections())
    async with App.running(config, all_features(), db_path=url, background=False) as app:
        feature: Any = app.features["event"]
        now = app.clock.now()
        numbers = iter(range(work.reminders))

        async def maker() -> None:
            for n in numbers:
                channel = ChannelRef("slack", TEAM_ID, work.channel_of_event(n))
                community = await app.communities.of(channel)
                draft = Draft(title=f"Meeting {n}", start=start, tz="UTC", remind=[REMIND])
                draft = check(draft, now, feature.settings.max_remind)
                made = await feature.service.create(
                    community.id, channel, draft, f"slack:{TEAM_ID}:U1", announce=False
                )
                if made is None:
                    raise RuntimeError(f"event {n} was not made")

        await asyncio.gather(*(maker() for _ in range(at_once)))


async def build_template(
    args: argparse.Namespace, server: Server, work: Work, farm: FeedServer, tmp: Path
) -> tuple[str, datetime]:
    """The template database; and when its reminders are due (a day ahead)."""
    name = f"{PREFIX}_{os.getpid()}_template"
    url = await server.create(name)
    began = time.monotonic()
    await subscribe(work, farm, tmp, url)
    subscribed = time.monotonic()
    start = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    await make_events(work, url, start, args.make_at_once)
    print(
        f"template: {sum(map(len, work.feeds.values()))} feeds over {len(work.channels)} "
        f"channels in {subscribed - began:.1f}s, {work.reminders} events over "
        f"{len(work.event_channels)} channels in {time.monotonic() - subscribed:.1f}s",
        flush=True,
    )
    return name, start - REMIND


async def move_in_time(url: str, due: datetime, go: float) -> None:
    """Make a copy's work due at `go` (epoch seconds): every feed's next check, and every
    pending reminder with its event (start and end moved by the same amount)."""
    shift = go - due.timestamp()
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("UPDATE feed_sources SET next_check_at = $1", go)
            await conn.execute(
                "UPDATE jobs SET due_at = due_at + $1 WHERE state = 'pending'"
                " AND key LIKE 'event:%:remind:%'",
                shift,
            )
            await conn.execute(
                "UPDATE events SET start_at = start_at + $1, end_at = end_at + $1", shift
            )
    finally:
        await conn.close()


# --- What arrived --------------------------------------------------------------------------


@dataclass
class Arrivals:
    """The fake's messages read as they come (only the new ones each time): first arrival
    of each feed post and reminder, and how often each reminder came."""

    work: Work
    fake: FakeSlack
    wanted: set[str] = field(default_factory=set)  # every feed post's title
    read: dict[str, int] = field(default_factory=dict)
    posts: dict[str, float] = field(default_factory=dict)  # title -> first arrival
    reminders: Counter[str] = field(default_factory=Counter)
    reminded: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.wanted = {t for titles in self.work.expected().values() for t in titles}

    def update(self) -> int:
        """Read what is new; return the feed posts and reminders arrived (once each)."""
        for channel in self.work.channels + self.work.event_channels:
            messages = self.fake.messages.get(channel, [])
            for message in messages[self.read.get(channel, 0) :]:
                self._note(str(message.get("text", "")), float(message["ts"]))
            self.read[channel] = len(messages)
        return len(self.posts) + len(self.reminded)

    def _note(self, text: str, at: float) -> None:
        found = REMINDER.match(text)
        if found:
            self.reminders[found.group(1)] += 1
            self.reminded.setdefault(found.group(1), at)
        elif text in self.wanted:
            self.posts.setdefault(text, at)

    def delivery(self) -> Delivery:
        """Lost, doubled and out-of-order feed posts; order is within each feed."""
        tally = Delivery()
        expected = self.work.expected()
        for channel, paths in self.work.feeds.items():
            got = [str(m.get("text", "")) for m in self.fake.posts(channel)]
            for path in paths:
                prefix = self.work.prefix(path) + " "
                mine = [t for t in got if t.startswith(prefix)]
                tally.add(f"{channel}/{path}", expected[path], mine, [])
            tally.add(channel, [], [], self.fake.post_keys(channel))  # a key posted twice
        return tally


# --- CPU -----------------------------------------------------------------------------------


def cpu_of(pid: int) -> float | None:
    """CPU seconds a process used so far (user + system, its reaped children's too)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / TICKS


def machine_busy() -> float:
    """CPU seconds all cores spent busy since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSampler:
    """CPU seconds, sampled every second while a phase runs: each worker's, the server's
    backends for the phase's database, its shared background processes (WAL writer,
    checkpointer...: they serve the other databases too), this process (the fakes), and
    the whole machine. A process that ends keeps its last sample."""

    database: str
    server: Server
    workers: list[int]
    seen: dict[int, float] = field(default_factory=dict)  # pid -> CPU at its first sample
    last: dict[int, float] = field(default_factory=dict)
    backends: set[int] = field(default_factory=set)
    background: set[int] = field(default_factory=set)
    began: tuple[float, float, float] = (0.0, 0.0, 0.0)  # monotonic, own CPU, machine busy
    ended: tuple[float, float, float] = (0.0, 0.0, 0.0)

    async def run(self, stop: asyncio.Event) -> None:
        self.began = (time.monotonic(), own_cpu(), machine_busy())
        conn = await self.server.connect()
        try:
            while not stop.is_set():
                await self.find_postgres(conn)
                self.sample()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            await conn.close()
        self.sample()
        self.ended = (time.monotonic(), own_cpu(), machine_busy())

    async def find_postgres(self, conn: Any) -> None:
        rows = await conn.fetch("SELECT pid, datname, backend_type FROM pg_stat_activity")
        for row in rows:
            if row["datname"] == self.database:
                self.backends.add(row["pid"])
            elif row["datname"] is None and row["backend_type"] != "client backend":
                self.background.add(row["pid"])

    def sample(self) -> None:
        for pid in [*self.workers, *self.backends, *self.background]:
            used = cpu_of(pid)
            if used is not None:
                self.seen.setdefault(pid, used)
                self.last[pid] = used

    def used(self, pids: list[int] | set[int]) -> float:
        return sum(self.last[p] - self.seen[p] for p in pids if p in self.last)

    def line(self) -> str:
        span = self.ended[0] - self.began[0]
        each = [self.used([p]) for p in self.workers]
        parts = {
            "workers": sum(each),
            "postgres": self.used(self.backends),
            "postgres_bg": self.used(self.background),
            "bench_fakes": self.ended[1] - self.began[1],
        }
        busy = self.ended[2] - self.began[2]
        other = max(0.0, busy - sum(parts.values()))
        shown = " ".join(f"{k}={v:.1f}" for k, v in parts.items())
        return (
            f"  cpu_s over {span:.1f}s sampled (2 cores = {2 * span:.0f}): {shown} "
            f"other={other:.1f} machine_busy={busy:.1f} "
            f"per_worker={','.join(f'{v:.1f}' for v in each)}"
        )


# --- One phase -----------------------------------------------------------------------------


@dataclass
class Result:
    workers: int
    wall: float
    lost: int
    doubled: int
    jobs_twice: int
    fetched_twice: int


def worker_sections(args: argparse.Namespace, k: int) -> dict[str, dict[str, Any]]:
    """Worker k's configuration: its own User-Agent, and the settings that bound how long
    a kill delays the work (see the module's docstring)."""
    return {
        "feeds": {"poll_every": "1s", "interval": f"{args.interval:g}s", "min_interval": "1s",
                  "jitter": 0, "allow_private": True, "per_channel_cap": 1_000_000,
                  "user_agent": agent(k), "timeout": args.feed_timeout},
        "slack": {"pace": args.pace},
        "outbox": {"call_timeout": args.call_timeout},
        "scheduler": {"lease": f"{args.job_lease:g}s"},
    }  # fmt: skip


class Phase:
    """N workers on a fresh copy of the template, against a fresh fake Slack."""

    def __init__(
        self, args: argparse.Namespace, server: Server, work: Work, farm: FeedServer, n: int
    ) -> None:
        self.args, self.server, self.work, self.farm, self.n = args, server, work, farm, n
        self.name = f"{PREFIX}_{os.getpid()}_w{n}"
        self.fake = FakeSlack()
        self.bots: list[BotProcess] = []
        self.url = ""
        self.killed_at = 0.0  # epoch seconds

    async def run(self, template: str, due: datetime, tmp: Path) -> Result:
        await self.fake.start()
        self.fake.latency = self.args.latency
        try:
            self.url = await self.server.create(self.name, template)
            go = time.time() + self.args.lead + self.args.lead_per_worker * self.n
            await move_in_time(self.url, due, go)
            self.farm.requests.clear()
            return await self.deliver(go, tmp)
        finally:
            for bot in self.bots:
                await bot.close()
            await self.fake.close()
            if self.url:
                await self.server.drop(self.name)

    async def start_workers(self, tmp: Path) -> float:
        """Start every worker at once; seconds until all are connected."""
        began = time.monotonic()
        for k in range(self.n):
            directory = tmp / f"w{self.n}-{k}"
            directory.mkdir()
            config = write_config(directory, self.url, worker_sections(self.args, k))  # type: ignore[arg-type]
            bot = BotProcess(self.fake, config, directory, token=f"xoxb-bench-w{k}")
            self.bots.append(bot)
            await bot.start(connect=False)
        await self.fake.wait_connected(self.n, START_TIMEOUT * self.n)
        return time.monotonic() - began

    async def deliver(self, go: float, tmp: Path) -> Result:
        moments = Moments(go=go)
        arrivals = Arrivals(self.work, self.fake)
        stop = asyncio.Event()
        moments.connected = await self.start_workers(tmp)
        moments.early = go - time.time()
        sampler = CpuSampler(self.name, self.server, [b.pid for b in self.bots])
        sampling = asyncio.create_task(sampler.run(stop))
        try:
            moments.killed = await self.wait_and_kill(arrivals)
            arrived = time.monotonic()
            open_rows = await self.settle()
            moments.settled = time.monotonic() - arrived
        finally:
            stop.set()
            await sampling
        return self.report(arrivals, sampler, moments, open_rows)

    async def wait_and_kill(self, arrivals: Arrivals) -> int:
        """Wait for every post and reminder, killing the first worker at half of them;
        return how many had arrived when it was killed (0: no kill)."""
        total, killed = self.work.total, 0
        deadline = time.monotonic() + self.args.timeout
        while arrivals.update() < total:
            if self.args.kill and self.n > 1 and not killed and arrivals.update() >= total // 2:
                await self.bots[0].kill()
                killed, self.killed_at = arrivals.update(), time.time()
            if time.monotonic() > deadline:
                print(f"  timed out after {self.args.timeout:g}s: {arrivals.update()}/{total}")
                break
            await asyncio.sleep(0.2)
        return killed

    async def settle(self) -> list[Any]:
        """Until the outbox has nothing left to send (a late second copy would have come),
        then a moment more; the rows still open."""
        deadline = time.monotonic() + 60
        sql = "SELECT state, count(*) AS n FROM outbox WHERE state IN ('pending', 'sending')"
        while True:
            rows = await query(self.url, sql + " GROUP BY state")
            if not rows or time.monotonic() > deadline:
                await asyncio.sleep(2)
                return rows
            await asyncio.sleep(0.5)

    def shares(self) -> str:
        """Posts made with each worker's token (its own), in worker order."""
        by_token = Counter(
            c.token for c in self.fake.calls if c.method == "chat.postMessage" and c.response.get("ok")
        )  # fmt: skip
        return ",".join(str(by_token.get(b.token, 0)) for b in self.bots)

    def report(
        self, arrivals: Arrivals, sampler: CpuSampler, moments: Moments, open_rows: list[Any]
    ) -> Result:
        arrivals.update()
        work, go = self.work, moments.go
        tally = arrivals.delivery()
        doubled = max(tally.doubled, tally.doubled_keys)
        posts_s = max(arrivals.posts.values(), default=go) - go
        reminders_s = max(arrivals.reminded.values(), default=go) - go
        wall = max(posts_s, reminders_s)
        missing = work.reminders - len(arrivals.reminders)
        twice = sum(n - 1 for n in arrivals.reminders.values() if n > 1)
        agents = [agent(k) for k in range(self.n)]
        fetches = Fetches.of(self.farm, go, self.args.interval, agents, self.killed_at)
        posted = len(arrivals.posts)
        print(
            f"[workers={self.n}] wall_s={wall:.1f} posts={posted}/{work.posts} in "
            f"{posts_s:.1f}s ({posted / max(posts_s, 1e-9):.0f}/s) "
            f"reminders={len(arrivals.reminders)}/{work.reminders} in {reminders_s:.1f}s "
            f"({len(arrivals.reminders) / max(reminders_s, 1e-9):.0f}/s)",
            flush=True,
        )
        print(
            f"  lost={tally.lost} doubled={doubled} out_of_order={tally.out_of_order} "
            f"reminders_missing={missing} reminders_twice={twice} {fetches.line()}"
        )
        kill = "no kill"
        if moments.killed:
            after = wall - (self.killed_at - go)
            kill = f"w0 killed at {moments.killed}/{work.total}, the rest took {after:.1f}s"
        print(
            f"  connected_s={moments.connected:.1f} go_after_connect_s={moments.early:.1f} "
            f"{kill} posts_per_worker={self.shares()} settled_s={moments.settled:.1f} "
            f"open_outbox_rows={[tuple(r) for r in open_rows]}"
        )
        print(sampler.line(), flush=True)
        for channel, detail in list(tally.detail.items())[:5]:
            print(f"  {channel}: {detail}"[:300])
        return Result(self.n, wall, tally.lost + missing, doubled, twice, fetches.close)


@dataclass
class Moments:
    """When a phase's work came due (epoch seconds), and how long its steps took."""

    go: float
    connected: float = 0.0  # seconds from starting the workers until all were connected
    early: float = 0.0  # seconds from then until "go" (negative: late)
    killed: int = 0  # posts and reminders arrived when the first worker was killed
    settled: float = 0.0  # seconds from the last arrival until the outbox was empty


@dataclass
class Fetches:
    """The farm's requests in one phase, seen from "go"; each worker fetches with a User-Agent
    of its own (`agent`), so a feed the killed worker had fetched and another fetched again
    after the kill is told apart from a feed fetched twice by workers that are alive."""

    count: int
    feeds: int
    first_round_s: float  # until every feed had been fetched once
    close: int  # a fetch less than half an interval after the feed's previous one
    after_kill: int  # fetched again within an interval because the killed worker had it
    by_worker: list[int]

    @classmethod
    def of(cls, farm: FeedServer, go: float, interval: float, agents: list[str], killed_at: float) -> Fetches:  # fmt: skip
        to_epoch = time.time() - time.monotonic()
        times: dict[str, list[tuple[float, str]]] = {}
        for seen in farm.requests:
            agent = seen.headers.get("User-Agent", "")
            times.setdefault(seen.path, []).append((seen.at + to_epoch, agent))
        close = after_kill = 0
        for fetches in times.values():
            fetches.sort()
            for (a, by), (b, _) in zip(fetches, fetches[1:], strict=False):
                if killed_at and by == agents[0] and a < killed_at < b and b - a < interval:
                    after_kill += 1  # what it fetched died with it
                elif b - a < interval / 2:
                    close += 1
        first = max((min(ts)[0] for ts in times.values()), default=go) - go
        agents_seen = Counter(r.headers.get("User-Agent", "") for r in farm.requests)
        by_worker = [agents_seen.get(agent, 0) for agent in agents]
        return cls(len(farm.requests), len(times), first, close, after_kill, by_worker)

    def line(self) -> str:
        return (
            f"fetches={self.count} of {self.feeds} feeds (first round in "
            f"{self.first_round_s:.1f}s, per worker {','.join(map(str, self.by_worker))}) "
            f"fetched_twice={self.close} refetched_after_kill={self.after_kill}"
        )


def agent(k: int) -> str:
    """Worker k's User-Agent on feed requests."""
    return f"itsm-bench-worker-{k}"


# --- The run -------------------------------------------------------------------------------


def speedup(results: dict[int, Result], n: int) -> str:
    one, many = results.get(1), results.get(n)
    if one is None or many is None or many.wall <= 0:
        return "nan"
    return f"{one.wall / many.wall:.2f}"


async def run(args: argparse.Namespace, url: str) -> None:
    server = Server(url)
    work = Work.of(args)
    farm = FeedServer()
    await farm.start()
    results: dict[int, Result] = {}
    try:
        await server.drop_orphans()
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as scratch:
            tmp = Path(args.logs or scratch)
            tmp.mkdir(parents=True, exist_ok=True)
            template, due = await build_template(args, server, work, farm, tmp)
            for n in args.workers:
                phase = Phase(args, server, work, farm, n)
                results[n] = await phase.run(template, due, tmp)
    finally:
        await farm.stop()
        await server.drop_all()
    total: Callable[[str], int] = lambda name: sum(getattr(r, name) for r in results.values())  # noqa: E731
    print(
        f"workers={max(args.workers)} lost={total('lost')} doubled={total('doubled')} "
        f"jobs_twice={total('jobs_twice')} fetched_twice={total('fetched_twice')} "
        f"speedup_2={speedup(results, 2)} speedup_4={speedup(results, 4)}"
    )


def worker_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("give worker counts like 1,2,4")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database",
        default=os.environ.get(URL_VARIABLE, ""),
        help=f"a PostgreSQL server's URL (default: ${URL_VARIABLE})",
    )
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default=[1, 2, 4],
        help="worker counts, one phase each (default 1,2,4)",
    )
    parser.add_argument("--posts-channels", type=int, default=50, help="channels of feed posts")
    parser.add_argument("--feeds", type=int, default=500, help="feeds, spread over those")
    parser.add_argument("--items", type=int, default=4, help="items per feed")
    parser.add_argument("--reminders", type=int, default=10_000, help="events, a reminder each")
    parser.add_argument("--event-channels", type=int, default=50, help="channels of events")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between checks")
    parser.add_argument(
        "--no-kill",
        dest="kill",
        action="store_false",
        help="kill no worker (to see how the work alone scales)",
    )
    parser.add_argument("--feed-timeout", type=float, default=10.0, help="[feeds] timeout")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="[outbox] call_timeout")
    parser.add_argument("--job-lease", type=float, default=30.0, help="[scheduler] lease, s")
    parser.add_argument("--pace", type=float, default=0.0, help="[slack] pace, seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per Slack answer")
    parser.add_argument("--lead", type=float, default=6.0, help="seconds to 'go', plus...")
    parser.add_argument("--lead-per-worker", type=float, default=2.0, help="...this per worker")
    parser.add_argument("--make-at-once", type=int, default=8, help="events made at once")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a phase may take")
    parser.add_argument("--logs", default="", help="keep the workers' logs in this directory")
    args = parser.parse_args()  # fmt: skip
    if not args.database.startswith(("postgresql://", "postgres://")):
        print(
            f"bench/workers.py needs a PostgreSQL server: set {URL_VARIABLE} or give "
            "--database postgresql://USER@HOST:PORT/DB (a user that may create databases)",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        asyncio.run(run(args, args.database))
    except KeyboardInterrupt:
        print("interrupted: the workers are stopped and the databases dropped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
