"""Web console benchmark: how fast each page of the console answers for a big community.

One community (Slack and Discord workspaces, zone Europe/Oslo) is seeded on a fresh SQLite
file through the features' own code: 500 feed subscriptions (`Feeds.subscribe`; some
failing, disabled or paused through the feed store, as the poller would leave them), 100
polls and survey runs (`/poll create`, `/survey start|close`) with 10,000 answers in all
(the vote store's `choose` and `write`), 200 events (`EventService.create`, some past, some
cancelled) with their RSVPs (the event store), a month of daily-prompt days and answers
(the prompt store) and a few suggestions waiting for review (`/justdoit suggest`). What
that queued is delivered by a transport that takes every post at once, except in one
channel that refuses them, so the outbox holds sent and failed rows as a live bot's does.

Then the App serves the console on 127.0.0.1 (`[web] enabled`, a free port), a moderator
signs in with a link from the Web feature, and every page in the server's navigation,
plus the detail pages that exist (`/polls/{id}` of the biggest survey run, `/events/{id}`
of the event most members answered), is requested `--requests` times after `--warmup`
requests, one at a time over one keep-alive connection. The time is the client's, from
sending the request to the last byte of the body, with the client in the bot's process
(and event loop), as a browser on the same machine would see it plus a little parsing.
Next to it, the process's CPU time per request (every thread: the database's too, and the
client's little share): on a machine shared with other work the wall time moves with the
load, the CPU time far less. After the timed requests one more is made per page with
every statement on the bot's database connection counted: `queries` says whether a page
reads in a few queries or one per row.

Pages time whatever the server has: a page module that declares no route yet is not in
the navigation and is left out. A page that does not answer 200 is printed and counts as
missing the target.

    python bench/web.py --requests 50

Per page: `page=/feeds p50_ms=X p99_ms=Y bytes=B queries=Q cpu_p50_ms=C cpu_p99_ms=D`;
the last line is exactly `pages=K worst_p99_ms=W target_ms=200 met=yes|no` (wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import config as configuration  # noqa: E402
from bot.app import ERROR_COLOR, App, freeze_startup_heap  # noqa: E402
from bot.cli import sections  # noqa: E402
from bot.errors import DeliveryError, Failure  # noqa: E402
from bot.events.drafts import Draft  # noqa: E402
from bot.features import all_features  # noqa: E402
from bot.model import ChannelRef, Invocation, Post, UserRef  # noqa: E402
from bot.polls.store import Question, Run  # noqa: E402
from bot.prompts.bank import COMPETENCIES  # noqa: E402

SLACK, DISCORD = "TBENCH", "1001"
ZONE = "Europe/Oslo"
GENERAL = ChannelRef("slack", SLACK, "C01GENERAL")
DISCORD_GENERAL = ChannelRef("discord", DISCORD, "2001")
MODERATORS = ChannelRef("slack", SLACK, "C09MODS")
ARCHIVED = ChannelRef("slack", SLACK, "C08ARCHIVE")  # refuses every post (failed rows)
FEED_CHANNELS = [
    GENERAL,
    *(ChannelRef("slack", SLACK, f"C0{n}NEWS") for n in range(2, 8)),
    ARCHIVED,
    DISCORD_GENERAL,
    *(ChannelRef("discord", DISCORD, str(2000 + n)) for n in range(2, 5)),
]
COMMUNITY = {
    "name": "itSMF Bench",
    "timezone": ZONE,
    "workspaces": [f"slack:{SLACK}", f"discord:{DISCORD}"],
    "channels": [GENERAL.key, DISCORD_GENERAL.key],
    "moderators": MODERATORS.key,
}
MODERATOR = UserRef("slack", SLACK, "UMOD", "Mia Moderator")
SITES = [
    "ITSM Review", "itSMF UK", "BSM Review", "ServiceNow Community", "Axelos Blog",
    "The ITSM Practice", "Service Desk Institute", "DevOps Weekly", "BRM Institute",
    "Problem Management Notes", "Change & Release", "Knowledge-Centered Service",
]  # fmt: skip
SURVEY_RUNS = {"bsm-maturity": 4, "community": 3, "itsm-focus": 3}  # the last run stays open
BIG_SURVEY_RESPONDENTS, SURVEY_RESPONDENTS = 250, 30
CITIES = ["Oslo", "Bergen", "Trondheim", "Stockholm", "London", "Manchester", "Online"]
EVENT_KINDS = [
    "Service Management Day", "BRM SIG meetup", "Problem management clinic",
    "Service desk breakfast", "Change advisory workshop", "ITIL 4 study group",
]  # fmt: skip


# --- Seeding -----------------------------------------------------------------------------


def members(n: int) -> list[UserRef]:
    """The community's members, two in three on Slack, the rest on Discord."""
    return [
        UserRef("slack", SLACK, f"U{i:05d}", f"Member {i}")
        if i % 3
        else UserRef("discord", DISCORD, str(900000 + i), f"Member {i}")
        for i in range(n)
    ]


async def command(app: App, path: tuple[str, ...], channel: ChannelRef, user: UserRef = MODERATOR, **options: Any) -> str:  # fmt: skip
    """Run a chat command as typed; a seeding command that fails stops the benchmark."""
    moderator = user == MODERATOR
    replies = await app.invoke(Invocation(path, user, channel, moderator, options=options))
    posts = [r.post for r in replies if isinstance(getattr(r, "post", None), Post)]
    failed = [p.text for p in posts if p.color == ERROR_COLOR]
    if failed:
        raise RuntimeError(f"/{' '.join(path)} failed: {failed[0]}")
    return "\n".join(p.text for p in posts)


async def seed_feeds(app: App, rng: random.Random, count: int) -> None:
    """`count` subscriptions; one feed in twelve followed in a second channel too. Of the
    sources, some fail now and then, a few are switched off; some subscriptions paused."""
    feeds = app.features["feeds"]
    store = feeds.store  # type: ignore[attr-defined]
    now = app.clock.now().timestamp()
    subs: list[int] = []
    sources: list[int] = []
    n = 0
    while len(subs) < count:
        site = SITES[n % len(SITES)]
        url = f"https://feeds{n % 40}.example.org/{site.lower().replace(' ', '-')}/{n}.xml"
        title = f"{site} #{n}" if n % 25 else f'{site} <b>&amp;</b> "friends" #{n}'
        channels = [FEED_CHANNELS[n % len(FEED_CHANNELS)]]
        if n % 12 == 0:
            channels.append(FEED_CHANNELS[(n + 5) % len(FEED_CHANNELS)])
        for channel in channels[: count - len(subs)]:
            options = {"include": "ITIL, incident"} if n % 9 == 0 else {}
            source, sub = await feeds.subscribe(  # type: ignore[attr-defined]
                url, channel, title=title, created_by=MODERATOR.key, **options
            )
            subs.append(sub.id)
        sources.append(source.id)
        n += 1
    for source_id in sources:
        fetched = now - rng.uniform(0, 1800)
        await store.fetched_ok(source_id, fetched, fetched + 1800, etag=None, last_modified=None)
    for source_id in rng.sample(sources, len(sources) // 10):
        for _ in range(rng.randint(1, 4)):
            await store.fetch_failed(source_id, now, "HTTP 503 Service Unavailable", now + 600)
    for source_id in rng.sample(sources, max(1, len(sources) // 50)):
        await store.disable(source_id, now, "HTTP 410 Gone: the site says this feed is no more", "gone")  # fmt: skip
    for sub_id in rng.sample(subs, len(subs) // 20):
        await store.set_paused(sub_id, True)


async def latest_run(app: App) -> Run:
    run_id = await app.db.fetchval("SELECT max(id) FROM vote_runs")
    run = await app.features["poll"].store.get(run_id)  # type: ignore[attr-defined]
    assert run is not None
    return run


async def answer_survey(app: App, run: Run, people: list[UserRef], rng: random.Random) -> int:
    """Every question of the run for each member, as the survey's buttons and form would
    record them; return the answer rows written."""
    store = app.features["survey"].store  # type: ignore[attr-defined]
    questions: list[Question] = await store.questions(run.id)
    now = app.clock.now()
    rows = 0
    for person in people:
        for q in questions:
            if q.kind == "text":
                if rng.random() < 0.4:
                    await store.write(run, q, person, f"We review services monthly ({person.name}).", now)  # fmt: skip
                    rows += 1
                continue
            most = 1 if q.kind == "single" else rng.randint(1, q.max_choices)
            chosen = rng.sample(range(len(q.options)), most)
            await store.choose(run, q, person, chosen, now)
            rows += len(chosen)
    return rows


async def seed_surveys(app: App, people: list[UserRef], rng: random.Random) -> tuple[int, int]:
    """Each survey run a few times (the last run of each left open); return the biggest
    run's id and the answer rows written."""
    rows, biggest = 0, (0, 0)
    for name, times in SURVEY_RUNS.items():
        for k in range(times):
            await command(app, ("survey", "start"), GENERAL, name=name)
            run = await latest_run(app)
            many = BIG_SURVEY_RESPONDENTS if name == "bsm-maturity" and k == times - 1 else SURVEY_RESPONDENTS  # fmt: skip
            rows += await answer_survey(app, run, rng.sample(people, many), rng)
            biggest = max(biggest, (many, run.id))
            if k < times - 1:
                await command(app, ("survey", "close"), GENERAL, name=name)
    return biggest[1], rows


async def seed_polls(app: App, people: list[UserRef], rng: random.Random, polls: int, votes: int) -> int:  # fmt: skip
    """`polls` polls sharing `votes` votes, a few big ones and many small (Zipf); one in
    three closed, some multiple-choice, anonymous, hidden or with a deadline. Return the
    answer rows written."""
    store = app.features["poll"].store  # type: ignore[attr-defined]
    weights = [1 / (i + 1) for i in range(polls)]
    shares = [min(len(people), round(votes * w / sum(weights))) for w in weights]
    rows = 0
    for i, share in enumerate(shares):
        choices = [f"Option {chr(65 + k)}" for k in range(2 + i % 5)]
        options: dict[str, Any] = {"question": f"Poll {i}: which practice needs most love?", "choices": choices}  # fmt: skip
        if i % 4 == 1:
            options |= {"multi": True, "max": 2}
        if i % 7 == 2:
            options["anonymous"] = True
        if i % 11 == 3:
            options["hidden"] = True
        if i % 5 == 4:
            options["closes"] = app.clock.now() + timedelta(days=3 + i % 10)
        channel = FEED_CHANNELS[i % len(FEED_CHANNELS)]
        await command(app, ("poll", "create"), channel, **options)
        run = await latest_run(app)
        question = (await store.questions(run.id))[0]
        now = app.clock.now()
        written = 0
        for person in rng.sample(people, share):
            if written >= share:
                break  # a multiple-choice vote is a row per option: the share counts rows
            most = rng.randint(1, question.max_choices)
            chosen = rng.sample(range(len(question.options)), most)
            await store.choose(run, question, person, chosen, now)
            written += len(chosen)
        rows += written
        if i % 3 == 0:
            await command(app, ("poll", "close"), channel, id=run.id)
    return rows


async def seed_events(app: App, people: list[UserRef], rng: random.Random, count: int) -> int:
    """`count` events: one in ten past, one in ten cancelled, the rest ahead over the
    next year, each with RSVPs (one with many). Return the id of the most answered."""
    service = app.features["event"].service  # type: ignore[attr-defined]
    community = await app.communities.of(GENERAL)
    now = app.clock.now()
    most = (0, 0)
    for i in range(count):
        past = i % 10 == 0
        days = -rng.randint(1, 60) if past else rng.randint(1, 365)
        start = (now + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        draft = Draft(
            title=f"{EVENT_KINDS[i % len(EVENT_KINDS)]} {CITIES[i % len(CITIES)]} #{i}",
            start=start, tz=ZONE, end=start + timedelta(hours=2 + i % 6),
            location=f"{CITIES[i % len(CITIES)]} conference centre, room {i % 9}",
            url=f"https://example.org/events/{i}", organiser="itSMF Bench",
            description="Talks and open tables on service management. " * 3,
            remind=[timedelta(days=1), timedelta(hours=1)],
        )  # fmt: skip
        channel = GENERAL if i % 2 else DISCORD_GENERAL
        outcome = await service.create(community.id, channel, draft, MODERATOR.key, announce=not past)  # fmt: skip
        event = outcome.event
        answered = 400 if i == count // 2 else rng.randint(0, 60)
        for person in rng.sample(people, answered):
            status = rng.choice(["going", "going", "interested", "not_going"])
            await service.store.rsvp(event.id, person, status, rng.random() < 0.5, now)
        most = max(most, (answered, event.id))
        if i % 10 == 5:
            await service.cancel(event)
    return most[1]


async def seed_prompts(app: App, people: list[UserRef], rng: random.Random, days: int) -> None:
    """The daily prompt on weekdays in two channels for the last `days` days, 5 to 30
    answers a day each, and five suggestions waiting for the moderators."""
    feature = app.features["justdoit"]
    store = feature.store  # type: ignore[attr-defined]
    community = await app.communities.of(GENERAL)
    bank = await feature.bank_for(community.id)  # type: ignore[attr-defined]
    today = app.clock.now().date()
    for channel in (GENERAL, DISCORD_GENERAL):
        await command(app, ("justdoit", "schedule"), channel, time="08:30", tz=ZONE, days="mon-fri")  # fmt: skip
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            if day.weekday() >= 5:
                continue
            posted = datetime.combine(day, clock_time(7, 30), UTC)
            prompt_day, _ = await store.prompt_day(channel, day, community.id, bank, True, posted)
            for person in rng.sample(people, rng.randint(5, 30)):
                said = f"{person.name} did it: asked a customer what a good day looks like."
                await store.save_answer(prompt_day, person, prompt_day.prompt.competency, said, posted)  # fmt: skip
    for k, competency in enumerate(list(COMPETENCIES)[:5]):
        await command(
            app, ("justdoit", "suggest"), GENERAL, user=people[k],
            prompt=f"Thank someone in another team for a hand-off done well ({k})",
            competency=competency,
        )  # fmt: skip


@dataclass
class Sink:
    """A platform that takes every post at once, except in the archived channel."""

    platform: str
    pace: float = 0.0
    sent: int = 0

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str:
        if channel == ARCHIVED:
            raise DeliveryError("channel_not_found (archived)", Failure.PERMANENT)
        self.sent += 1
        return f"m{self.sent}"

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None:
        return None

    async def find(self, channel: ChannelRef, key: str, since: float) -> str | None:
        return None


async def seed(app: App, args: argparse.Namespace) -> dict[str, str]:
    """Everything the community holds; return the detail pages' ids by kind."""
    rng = random.Random(args.seed)
    people = members(args.members)
    await seed_feeds(app, rng, args.feeds)
    survey, survey_rows = await seed_surveys(app, people, rng)
    runs = sum(SURVEY_RUNS.values())
    poll_rows = await seed_polls(app, people, rng, max(0, args.polls - runs), max(0, args.votes - survey_rows))  # fmt: skip
    event = await seed_events(app, people, rng, args.events)
    await seed_prompts(app, people, rng, args.prompt_days)
    for platform in ("slack", "discord"):
        app.outbox.attach(Sink(platform))
    await app.outbox.drain(rounds=100_000)
    await describe(app, survey_rows + poll_rows)
    return {"polls": str(survey), "events": str(event)}


async def describe(app: App, answers: int) -> None:
    tables = {
        "subscriptions": "feed_subscriptions", "sources": "feed_sources",
        "runs": "vote_runs", "events": "events", "rsvps": "event_rsvps",
        "prompt_days": "justdoit_days", "prompt_answers": "justdoit_answers",
        "suggestions": "justdoit_suggestions",
    }  # fmt: skip
    counts = {name: await app.db.fetchval(f"SELECT count(*) FROM {t}") for name, t in tables.items()}  # fmt: skip
    outbox = await app.db.fetchall("SELECT state, count(*) FROM outbox GROUP BY state")
    shown = " ".join(f"{name}={n}" for name, n in counts.items())
    states = ",".join(f"{r[0]}:{r[1]}" for r in outbox)
    print(f"seeded: {shown} answers={answers} outbox={states}")


# --- Timing ------------------------------------------------------------------------------


@dataclass
class Timing:
    path: str
    p50_ms: float
    p99_ms: float
    cpu_p50_ms: float
    cpu_p99_ms: float
    size: int
    queries: int
    status: int = 200


def pages(server: Any, ids: dict[str, str]) -> list[str]:
    """Every page in the navigation, then each detail page the server has a route for."""
    paths = [item.path for item in server.nav]
    routes = {r.get_info().get("formatter", "") for r in server.web.router.resources()}
    for kind, found in ids.items():
        route = next((r for r in sorted(routes) if re.fullmatch(rf"/{kind}/\{{\w+\}}", r)), None)
        if route is not None and found != "0":
            paths.append(re.sub(r"\{\w+\}", found, route))
    return paths


async def sign_in(app: App, base: str) -> aiohttp.ClientSession:
    """A browser signed in as the community's moderator, the way the link in chat does."""
    web = app.features["web"]
    community = await app.communities.of(GENERAL)
    link = await web.sign_in_url(MODERATOR, community.id, moderator=True)  # type: ignore[attr-defined]
    client = aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with client.post(link.removeprefix(base), allow_redirects=False) as response:
        if response.status != 303:
            await client.close()
            raise RuntimeError(f"sign-in answered {response.status}: {await response.text()}")
    return client


@dataclass
class Answer:
    wall_ms: float
    cpu_ms: float  # the process's, every thread (the database's too), client included
    status: int
    size: int


async def fetch(client: aiohttp.ClientSession, path: str) -> Answer:
    """One request, timed from sending it to the body's last byte."""
    began, cpu = time.perf_counter(), time.process_time()
    async with client.get(path, allow_redirects=False) as response:
        body = await response.read()
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    return Answer(wall * 1000, cpu * 1000, response.status, len(body))


async def count_queries(app: App, client: aiohttp.ClientSession, path: str) -> int:
    """Statements the bot's connection runs for one request of the page (an extra one,
    after the timed requests: tracing is off while they are timed)."""
    seen = 0

    def trace(_statement: str) -> None:
        nonlocal seen
        seen += 1

    conn = app.db._conn  # the bench looks inside the store: the count is for reading only
    await conn.set_trace_callback(trace)
    try:
        await fetch(client, path)
    finally:
        await conn.set_trace_callback(None)
    return seen


def p50_p99(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def time_page(app: App, client: aiohttp.ClientSession, path: str, args: argparse.Namespace) -> Timing:  # fmt: skip
    for _ in range(args.warmup):
        answer = await fetch(client, path)
        if answer.status != 200:
            return Timing(path, *(float("inf"),) * 4, answer.size, 0, answer.status)
    answers = [await fetch(client, path) for _ in range(args.requests)]
    failed = next((a for a in answers if a.status != 200), None)
    if failed is not None:
        return Timing(path, *(float("inf"),) * 4, failed.size, 0, failed.status)
    wall = p50_p99([a.wall_ms for a in answers])
    cpu = p50_p99([a.cpu_ms for a in answers])
    queries = await count_queries(app, client, path)
    return Timing(path, *wall, *cpu, answers[-1].size, queries)


async def run(args: argparse.Namespace) -> None:
    data = {"community": [COMMUNITY], "web": {"enabled": True, "listen": "127.0.0.1:0"}}
    config = configuration.build(sections(), data)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        db = str(Path(tmp) / "bot.db")
        async with App.running(config, all_features(), db_path=db, background=False) as app:
            began = time.perf_counter()
            ids = await seed(app, args)
            print(f"seeding took {time.perf_counter() - began:.1f} s")
            freeze_startup_heap()  # as `itsm-bot run` does once connected
            server = app.features["web"].server  # type: ignore[attr-defined]
            client = await sign_in(app, server.base_url)
            try:
                timings = [await time_page(app, client, p, args) for p in pages(server, ids)]
            finally:
                await client.close()
    for t in timings:
        if t.status != 200:
            print(f"page={t.path} status={t.status} (not timed)")
        else:
            print(
                f"page={t.path} p50_ms={t.p50_ms:.1f} p99_ms={t.p99_ms:.1f} bytes={t.size} "
                f"queries={t.queries} cpu_p50_ms={t.cpu_p50_ms:.1f} cpu_p99_ms={t.cpu_p99_ms:.1f}"
            )
    worst = max((t.p99_ms for t in timings), default=0.0)
    met = "yes" if timings and worst <= args.target_ms else "no"
    print(f"pages={len(timings)} worst_p99_ms={worst:.1f} target_ms={args.target_ms:g} met={met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--feeds", type=int, default=500, help="feed subscriptions")
    parser.add_argument("--polls", type=int, default=100, help="polls and survey runs")
    parser.add_argument("--votes", type=int, default=10_000, help="answers in all")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--members", type=int, default=1500)
    parser.add_argument("--prompt-days", type=int, default=30, help="days of daily prompts")
    parser.add_argument("--target-ms", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=1, help="of the random choices")
    logging.basicConfig(level=logging.ERROR)
    # The archived channel's posts are given up on purpose: not worth a line each.
    logging.getLogger("bot.outbox").addFilter(lambda r: ARCHIVED.key not in r.getMessage())
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
