"""Benchmark: the bot's real fetch-parse-dedupe-outbox path against its floors and a naive
feedparser loop.

N feeds (default 500) are served on 127.0.0.1 by a separate process: 10 % slow (2 s before
the body), 5 % broken (a few hang longer than any timeout; the rest answer 500, garbage
or a truncated body), the rest healthy, 20-80 KB each with a few of about 1 MB, RSS and
Atom, with ETag / Last-Modified. Ours: two cycles with a real SQLite file (cold: every
feed new; warm: a day later, 20 % of the fetchable feeds with 1-3 new items, the rest
answering 304). Measured side by side in one run, each floor in a process of its own:

- network floor: the time to just download every feed with the bot's fetcher, the same
  concurrency and timeout (cold: plain GETs; warm: conditional GETs, after the change);
- CPU floor: the time to parse every body the cold cycle gets, one after the other on
  one core, with the parser the bot uses (named), asking for what a new subscription
  needs (every key, the newest BACKLOG items in full);
- ours: each cycle's time and its ratio to the network floor, the longest loop stall
  during the cycles, the peak resident memory of the whole process tree (this process,
  which runs the bot, and every descendant, summed, sampled every 50 ms), and what was
  missed or doubled;
- preview: the time from a feed's last byte to its parsed items, as /feed preview waits
  for it, on a fresh bot (first parse ever), for a 1 MB feed;
- the naive baseline (unless --skip-naive): a sequential loop of `feedparser.parse(url)`
  with a 10 s socket timeout, each call in try/except.

Last line: ratio_vs_naive=R second_cycle_304=P duplicates=D missed=M max_stall_ms=S
peak_rss_mb=X cold_vs_floor=C warm_vs_floor=W preview_ms=V
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import threading
import time
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402

TIMEOUT = 10.0
BACKLOG = 3
WORDS = (
    "incident problem change release service desk catalogue level agreement capacity "
    "availability continuity relationship value stream improvement knowledge asset "
    "configuration request fulfilment DevOps agile lean governance portfolio"
).split()


# --- The feed server (its own process) -----------------------------------------------------


class Plan:
    """Which feed is what: deterministic from N and the seed."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.n = n
        self.kind: dict[int, str] = {}
        broken = [i for i in range(n) if i % 20 == 3]
        hangs = max(1, len(broken) // 6)
        for j, i in enumerate(broken):
            self.kind[i] = "hang" if j < hangs else ("500", "garbage", "truncated")[j % 3]
        for i in range(n):
            if i not in self.kind:
                self.kind[i] = "slow" if i % 10 == 1 else "healthy"
        fetchable = [i for i in range(n) if self.kind[i] in ("healthy", "slow")]
        self.huge = set(rng.sample(fetchable, 3))
        self.size = {i: (1_000_000 if i in self.huge else rng.randint(20_000, 80_000)) for i in range(n)}  # fmt: skip
        self.atom = {i: i % 2 == 0 for i in range(n)}
        self.fetchable = fetchable

    def items(self, i: int, extra: int = 0) -> list[tuple[int, str]]:
        """(number, summary) for feed i, newest first; each item about 900 bytes of XML."""
        count = max(5, self.size[i] // 900)
        rng = random.Random(i)
        summaries = [" ".join(rng.choices(WORDS, k=90)) for _ in range(8)]
        return [(k, summaries[k % 8]) for k in range(count + extra, 0, -1)]

    def body(self, i: int, extra: int = 0) -> bytes:
        out = []
        base = 1_790_000_000
        if self.atom[i]:
            out.append(f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Feed {i}</title><id>urn:feed:{i}</id><updated>2026-11-23T09:00:00Z</updated>')  # fmt: skip
            for k, text in self.items(i, extra):
                out.append(f"<entry><title>Feed {i} article {k}</title><id>urn:f{i}:{k}</id><link href=\"https://example.org/f{i}/{k}\"/><updated>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(base + k * 3600))}</updated><author><name>Author {k % 7}</name></author><summary type=\"html\">&lt;p&gt;{text}.&lt;/p&gt;</summary></entry>")  # fmt: skip
            out.append("</feed>")
        else:
            out.append(f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {i}</title><link>https://example.org/f{i}/</link><description>d</description>')  # fmt: skip
            for k, text in self.items(i, extra):
                out.append(f"<item><title>Feed {i} article {k}</title><guid>f{i}-{k}</guid><link>https://example.org/f{i}/{k}</link><pubDate>{formatdate(base + k * 3600, usegmt=True)}</pubDate><description>&lt;p&gt;{text}.&lt;/p&gt;</description></item>")  # fmt: skip
            out.append("</channel></rss>")
        return "".join(out).encode()


def serve(n: int, conn) -> None:  # type: ignore[no-untyped-def]
    """Run the feed server until killed; send its port through `conn`."""
    plan = Plan(n)
    extra: dict[int, int] = {}
    cache: dict[tuple[int, int], tuple[bytes, str]] = {}

    def current(i: int) -> tuple[bytes, str]:
        key = (i, extra.get(i, 0))
        if key not in cache:
            body = plan.body(i, key[1])
            cache[key] = (body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        return cache[key]

    for i in plan.fetchable:
        current(i)

    async def feed(request: web.Request) -> web.StreamResponse:
        i = int(request.match_info["i"])
        kind = plan.kind[i]
        if kind == "hang":
            await asyncio.sleep(3600)
        if kind == "500":
            return web.Response(status=500, text="internal error")
        if kind == "garbage":
            return web.Response(body=os.urandom(20_000), content_type="application/rss+xml")
        if kind == "slow":
            await asyncio.sleep(2)
        body, etag = current(i) if kind != "truncated" else (plan.body(i), "")
        ctype = "application/atom+xml" if plan.atom[i] else "application/rss+xml"
        if kind == "truncated":
            response = web.StreamResponse(headers={"Content-Type": ctype})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            request.transport.close()  # type: ignore[union-attr]
            return response
        modified = formatdate(1_790_000_000 + extra.get(i, 0) * 3600, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers=headers, content_type=ctype)

    async def mutate(request: web.Request) -> web.Response:
        for i, more in (await request.json()).items():
            extra[int(i)] = extra.get(int(i), 0) + more
            current(int(i))
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{i}.xml", feed)
        app.router.add_post("/_mutate", mutate)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


# --- The floors (each in a process of its own, so their memory is not the bot's) -----------


def floors(base: str, n: int, validators: dict[int, tuple[str, str]] | None, conn) -> None:  # type: ignore[no-untyped-def]
    """Download every feed as the bot would (its fetcher, concurrency and timeout), then,
    on a plain run, parse every body; send the times (and each feed's validators) back."""
    conn.send(asyncio.run(_floors(base, n, validators)))


async def _floors(base: str, n: int, validators: dict[int, tuple[str, str]] | None) -> dict:  # type: ignore[type-arg]
    from collections import deque

    from bot.feeds.parse import Want, parse_feed
    from bot.feeds.poller import ACCEPT
    from bot.feeds.settings import FeedSettings
    from bot.fetch import Fetcher

    settings = FeedSettings()
    fetcher = Fetcher(
        timeout=TIMEOUT, max_bytes=settings.max_bytes, concurrency=settings.concurrency,
        user_agent=settings.user_agent, allow_private=True, accept=ACCEPT,
    )  # fmt: skip
    todo = deque(range(n))
    results = {}

    async def worker() -> None:
        while todo:
            i = todo.popleft()
            etag, modified = (validators or {}).get(i, (None, None))
            results[i] = await fetcher.fetch(f"{base}/feed/{i}.xml", etag, modified)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(settings.concurrency)))
    network = time.perf_counter() - start
    await fetcher.close()
    out: dict = {"network": network, "fetched": sum(r.ok for r in results.values())}  # type: ignore[type-arg]
    if validators is not None:
        return out
    out["validators"] = {i: (r.etag, r.last_modified) for i, r in results.items() if r.ok}
    parsers: set[str] = set()
    start = time.perf_counter()
    for r in results.values():
        if r.ok:
            parsed = parse_feed(r.body, r.url, r.content_type, settings.summary_chars, Want(unseen=False, newest=BACKLOG))  # fmt: skip
            parsers.add(getattr(parsed, "parser", "") or "feedparser")
    out["cpu"] = time.perf_counter() - start
    out["parsers"] = sorted(parsers)
    return out


def run_floors(base: str, n: int, validators: dict[int, tuple[str, str]] | None = None) -> dict:  # type: ignore[type-arg]
    context = multiprocessing.get_context("spawn")
    ours_end, theirs_end = context.Pipe()
    proc = context.Process(target=floors, args=(base, n, validators, theirs_end), daemon=True)
    proc.start()
    result = ours_end.recv()
    proc.join()
    return result


# --- Measuring -----------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Peak of the summed resident memory of this process and its descendants."""

    def __init__(self, exclude: set[int]) -> None:
        super().__init__(daemon=True)
        self.exclude = exclude
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.total())
            time.sleep(0.05)

    def total(self) -> int:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        family, grew = {os.getpid()}, True
        while grew:
            more = {p for p, pp in parents.items() if pp in family and p not in self.exclude}
            grew = bool(more - family)
            family |= more
        return sum(_rss(pid) for pid in family)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def stall_monitor(stop: asyncio.Event, measuring: asyncio.Event, worst: list[float]) -> None:
    """The longest time the loop was late waking a 5 ms sleep, while `measuring` is set."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.005)
        if measuring.is_set():
            worst[0] = max(worst[0], time.perf_counter() - start - 0.005)


def naive(urls: list[str]) -> float:
    import feedparser

    socket.setdefaulttimeout(TIMEOUT)
    start = time.perf_counter()
    for url in urls:
        try:
            feedparser.parse(url)
        except Exception:  # the naive loop simply moves on
            pass
    return time.perf_counter() - start


# --- Ours ----------------------------------------------------------------------------------


async def ours(
    plan: Plan, base: str, db_path: str, sampler: RssSampler, parse_workers: int = 0
) -> dict[str, float]:
    from aiohttp import ClientSession

    from bot.app import App
    from bot.clock import FakeClock
    from bot.config import build
    from bot.feeds import Feeds
    from bot.feeds.settings import FeedSettings
    from bot.model import ChannelRef
    from bot.postcodec import load_post

    clock = FakeClock()
    settings = {
        "allow_private": True, "timeout": TIMEOUT, "per_channel_cap": 10_000,
        "parse_workers": parse_workers,
    }  # fmt: skip
    config = build({"feeds": FeedSettings}, {"feeds": settings})
    async with App.running(config, [Feeds], clock=clock, db_path=db_path, background=False) as app:
        feeds: Feeds = app.features["feeds"]  # type: ignore[assignment]
        url_of = {i: f"{base}/feed/{i}.xml" for i in range(plan.n)}
        sampler.start()
        preview = await preview_wait(feeds, url_of[min(plan.huge)])
        for i in range(plan.n):
            channel = ChannelRef("bench", "w", f"c{i % 50}")
            await feeds.subscribe(url_of[i], channel, backlog=BACKLOG, allow_private=True)
        queued: dict[str, float] = {}
        original = app.outbox.enqueue

        async def enqueue(channel, post, key, not_before=None):  # type: ignore[no-untyped-def]
            created = await original(channel, post, key, not_before)
            if created:
                queued[f"{channel.key} {post.url}"] = time.perf_counter()
            return created

        app.outbox.enqueue = enqueue  # type: ignore[method-assign]
        stop, measuring, worst = asyncio.Event(), asyncio.Event(), [0.0]
        monitor = asyncio.create_task(stall_monitor(stop, measuring, worst))

        def link(i: int, k: int) -> str:
            return f"bench:w:c{i % 50} https://example.org/f{i}/{k}"

        expected1 = {link(i, k) for i in plan.fetchable for k, _ in plan.items(i)[:BACKLOG]}
        measuring.set()
        start = time.perf_counter()
        await feeds.poll_due()
        cycle1_done = time.perf_counter() - start
        measuring.clear()
        got1 = [queued[k] for k in expected1 if k in queued]
        cycle1 = (max(got1) - start) if len(got1) == len(expected1) else cycle1_done

        rng = random.Random(11)
        changed = {i: rng.randint(1, 3) for i in rng.sample(plan.fetchable, len(plan.fetchable) // 5)}  # fmt: skip
        async with ClientSession() as http:
            await http.post(f"{base}/_mutate", json={str(i): m for i, m in changed.items()})
        expected2 = set()
        for i, more in changed.items():
            top = len(plan.items(i)) + more
            expected2 |= {link(i, k) for k in range(top - more + 1, top + 1)}
        clock.advance(timedelta(days=1))
        await asyncio.sleep(0.05)
        measuring.set()
        start = time.perf_counter()
        outcomes = await feeds.poll_due()
        cycle2 = time.perf_counter() - start
        measuring.clear()
        stop.set()
        await monitor
        sampler.running = False

        source_index = {s.id: int(s.url.rsplit("/", 1)[1].split(".")[0]) for s in await feeds.store.all_sources()}  # fmt: skip
        unchanged = [sid for sid, i in source_index.items() if i in plan.fetchable and i not in changed]  # fmt: skip
        answered_304 = sum(outcomes.get(sid) == "not_modified" for sid in unchanged)
        rows = await app.db.fetchall("SELECT channel, payload FROM outbox WHERE key LIKE 'feed:%'")
        posted = [f"{r['channel']} {load_post(r['payload']).url}" for r in rows]
        expected = expected1 | expected2
    return {
        "cycle1": cycle1,
        "cycle1_done": cycle1_done,
        "cycle2": cycle2,
        "p304": 100.0 * answered_304 / max(1, len(unchanged)),
        "duplicates": len(posted) - len(set(posted)),
        "missed": len(expected - set(posted)),
        "stall_ms": worst[0] * 1000,
        "posted": len(posted),
        "expected": len(expected),
        "preview": preview,
    }


async def preview_wait(feeds: Any, url: str) -> float:
    """Seconds from the last byte of `url` to its parsed items, the way /feed preview gets
    them (`Feeds.resolve` with what a preview asks for), on a bot that has parsed nothing."""
    from bot.feeds.feature import PREVIEW

    fetcher = feeds.poller.fetcher
    fetch = fetcher.fetch
    last_byte = [0.0]

    async def timed(*args: Any, **kwargs: Any) -> Any:
        result = await fetch(*args, **kwargs)
        last_byte[0] = time.perf_counter()
        return result

    fetcher.fetch = timed
    try:
        await feeds.resolve(url, PREVIEW)
    finally:
        fetcher.fetch = fetch
    return time.perf_counter() - last_byte[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--skip-naive", action="store_true", help="for quick runs; R is then 0")
    parser.add_argument(
        "--parse-workers", type=int, default=0,
        help="[feeds] parse_workers for the bot (0, the default: parse in a thread)",
    )  # fmt: skip
    args = parser.parse_args()
    plan = Plan(args.feeds)
    context = multiprocessing.get_context("spawn")
    ours_end, theirs_end = context.Pipe()
    server = context.Process(target=serve, args=(args.feeds, theirs_end), daemon=True)
    server.start()
    port = ours_end.recv()
    base = f"http://127.0.0.1:{port}"
    kinds = {k: sum(1 for v in plan.kind.values() if v == k) for k in set(plan.kind.values())}
    print(f"feeds={args.feeds} kinds={json.dumps(kinds, sort_keys=True)} huge={sorted(plan.huge)}")
    try:
        cold = run_floors(base, args.feeds)
        print(
            f"network floor (cold, plain GETs): {cold['network']:.2f} s; "
            f"CPU floor (parse {cold['fetched']} bodies on one core): {cold['cpu']:.2f} s; "
            f"parser: {', '.join(cold['parsers'])}"
        )
        sampler = RssSampler(exclude={server.pid or -1})
        with tempfile.TemporaryDirectory() as tmp:
            db = str(Path(tmp) / "bench.db")
            result = asyncio.run(ours(plan, base, db, sampler, args.parse_workers))
        warm = run_floors(base, args.feeds, cold["validators"])
        print(f"network floor (warm, conditional GETs): {warm['network']:.2f} s")
        theirs = 0.0
        if not args.skip_naive:
            theirs = naive([f"{base}/feed/{i}.xml" for i in range(args.feeds)])
            print(f"naive cold cycle: {theirs:.1f} s")
    finally:
        server.kill()
    cold_ratio = result["cycle1_done"] / cold["network"]
    warm_ratio = result["cycle2"] / warm["network"]
    mode = f"{args.parse_workers} parse process(es)" if args.parse_workers else "parse thread"
    print(
        f"ours ({mode}): cold cycle {result['cycle1_done']:.2f} s = {cold_ratio:.2f}x the network "
        f"floor (every new item queued at {result['cycle1']:.2f} s); warm cycle "
        f"{result['cycle2']:.2f} s = {warm_ratio:.2f}x its floor "
        f"({result['cycle2'] / cold['network']:.2f}x the cold floor); "
        f"posted {result['posted']} of {result['expected']} expected"
    )
    print(
        f"preview: parsed {result['preview'] * 1000:.0f} ms after the last byte; "
        f"peak tree RSS {sampler.peak / 1e6:.0f} MB; max loop stall {result['stall_ms']:.1f} ms"
    )
    ratio = theirs / result["cycle1"] if theirs else 0.0
    print(
        f"ratio_vs_naive={ratio:.1f} second_cycle_304={result['p304']:.1f} "
        f"duplicates={result['duplicates']} missed={result['missed']} "
        f"max_stall_ms={result['stall_ms']:.1f} peak_rss_mb={sampler.peak / 1e6:.0f} "
        f"cold_vs_floor={cold_ratio:.2f} warm_vs_floor={warm_ratio:.2f} "
        f"preview_ms={result['preview'] * 1000:.0f}"
    )


if __name__ == "__main__":
    main()
