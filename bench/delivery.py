"""Delivery benchmark: 300 feed posts to 10 channels through the real process and a fake
Slack that limits each channel to one message a second, answers late, storms and is
crashed into.

`itsm-bot run` (tests/process.py) delivers feed items to 10 channels, 30 items each, added
in three phases of 10 per channel by changing the feed bodies. The fake answers every call
after `--latency` seconds and rate-limits chat.postMessage per channel (1/s, burst 2, as
Slack does); the bot is set to `pace = 1.0`.

- phase 1, steady: each channel's delivery rate over its phase-1 posts (posts - 1 over the
  time from its first to its last post, from the fake's arrival times); `rate_pct` is the
  mean over channels of rate / 1.0 msg/s * 100;
- phase 2, storm: for `--storm` seconds every chat.postMessage answers 429 or 500 (switching
  every `--switch` seconds), then Slack recovers; `extra_429` counts the 429s the rate
  limiter gave after the storm (the bot overrunning the limit while catching up), and the
  line says how long after recovery the last phase-2 post arrived;
- phase 3, crash: the process is killed with SIGKILL after about half of the phase's posts,
  started again on the same database, and waited for until everything is delivered.

Over all 300 posts: `lost` (never posted), `doubled` (a post or its key seen twice) and
`out_of_order` (posts not in feed order in their channel). It prints numbers and never
asserts; the last line is exactly `rate_pct=R extra_429=E lost=L doubled=D out_of_order=O`.

    python bench/delivery.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.fake_slack import FakeSlack  # noqa: E402
from tests.fakes.feed_server import FeedServer, entries, rss  # noqa: E402
from tests.process import (  # noqa: E402
    BotProcess,
    Delivery,
    arrival,
    read_db,
    subscribe_feed,
    titles,
    wait_for,
    write_config,
)

LIMIT = 1.0  # Slack's messages per second per channel, as the fake enforces it


class Bench:
    """The fake Slack, the feeds and the bot's process for one run of the benchmark."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.db = tmp / "bot.db"
        self.channels = [f"C{n:02d}" for n in range(1, args.channels + 1)]
        self.fake = FakeSlack()
        self.feeds = FeedServer()
        self.bot: BotProcess | None = None

    # --- Set-up --------------------------------------------------------------------------

    async def start(self) -> BotProcess:
        await self.fake.start()
        await self.feeds.start()
        self.fake.latency = self.args.latency
        self.fake.rate_limit(per_second=LIMIT, burst=2)
        for channel in self.channels:
            self.publish(channel, 1)
            await subscribe_feed(self.tmp, self.db, self.feeds.url(f"{channel}.xml"), channel)
        config = write_config(
            self.tmp,
            self.db,
            {
                "feeds": {
                    "poll_every": "1s", "interval": "2s", "jitter": 0,
                    "allow_private": True, "per_channel_cap": 100000,
                },
                "slack": {"pace": 1.0},
            },
        )  # fmt: skip
        self.bot = BotProcess(self.fake, config, self.tmp)
        return self.bot

    async def close(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        await self.fake.close()
        await self.feeds.stop()

    def publish(self, channel: str, phase: int) -> None:
        """The channel's feed as it stands in `phase`: 10 items more each phase."""
        body = rss(entries(self.args.per_phase * phase, prefix=f"{channel} item"))
        self.feeds.set(f"{channel}.xml", body=body)

    def expected(self, phases: int) -> dict[str, list[str]]:
        """Each channel's titles up to the end of `phases`, oldest first."""
        n = self.args.per_phase * phases
        return {ch: [f"{ch} item {i}" for i in range(1, n + 1)] for ch in self.channels}

    # --- Waiting -------------------------------------------------------------------------

    def posted(self, phases: int) -> int:
        """How many of the posts due by the end of `phases` have arrived."""
        want = self.expected(phases)
        return sum(len(set(want[ch]) & set(titles(self.fake, ch))) for ch in self.channels)

    def arrivals(self, phase: int) -> dict[str, list[float]]:
        """Arrival times (epoch seconds) of each channel's posts of items new in `phase`."""
        n = self.args.per_phase
        new = {ch: set(titles[n * (phase - 1) :]) for ch, titles in self.expected(phase).items()}
        return {
            ch: [arrival(m) for m in self.fake.posts(ch) if m["text"] in new[ch]]
            for ch in self.channels
        }

    async def until(self, predicate: Callable[[], bool], what: str) -> float:
        """Wait for a condition at the fake; return the seconds it took (inf on timeout)."""
        began = time.monotonic()
        try:
            await self.fake.wait_until(predicate, self.args.timeout, what)
        except TimeoutError as exc:
            print(f"  timed out: {exc}"[:300])
            return float("inf")
        return time.monotonic() - began

    async def settled(self) -> None:
        """Wait (a little) until the outbox has nothing left to send, so late copies count."""
        query = "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')"
        try:
            await wait_for(lambda: read_db(self.db, query)[0][0] == 0, self.args.timeout, "idle")
        except TimeoutError as exc:
            print(f"  {exc}")

    # --- The phases ----------------------------------------------------------------------

    async def steady(self) -> float:
        """Phase 1: the rate each channel gets while nothing goes wrong."""
        assert self.bot is not None
        await self.bot.start()
        total = len(self.channels) * self.args.per_phase
        took = await self.until(lambda: self.posted(1) >= total, f"{total} phase-1 posts")
        rates = [
            (len(times) - 1) / (times[-1] - times[0])
            for times in self.arrivals(1).values()
            if len(times) > 1 and times[-1] > times[0]
        ]
        rate_pct = statistics.mean(r / LIMIT * 100 for r in rates) if rates else 0.0
        low, high = (min(rates), max(rates)) if rates else (0.0, 0.0)
        print(
            f"phase 1 (steady): posts={self.posted(1)}/{total} in {took:.1f}s "
            f"rate_pct={rate_pct:.1f} per-channel msg/s min={low:.3f} max={high:.3f} "
            f"limiter_429={len(self.fake.rate_limited)}"
        )
        return rate_pct

    async def storm(self) -> int:
        """Phase 2: every chat.postMessage fails for a while, then Slack recovers."""
        total = len(self.channels) * self.args.per_phase * 2
        calls_before = len(self.fake.calls)
        for channel in self.channels:
            self.publish(channel, 2)
        began = time.monotonic()
        status = 429
        while time.monotonic() - began < self.args.storm:
            self.fake.outage(status=status, methods=["chat.postMessage"])
            await asyncio.sleep(min(self.args.switch, self.args.storm - (time.monotonic() - began)))
            status = 500 if status == 429 else 429
        during = self.posted(2) - self.posted(1)
        queued = read_db(self.db, "SELECT count(*) FROM outbox WHERE key LIKE 'feed:%'")[0][0]
        refused = sum(1 for c in self.fake.calls[calls_before:] if c.status in (429, 500))
        self.fake.recover()
        recovered, recovered_wall = time.monotonic(), time.time()
        await self.until(lambda: self.posted(2) >= total, f"{total} posts after the storm")
        extra = sum(1 for at, _ in self.fake.rate_limited if at > recovered)
        lanes = [[t - recovered_wall for t in times] for times in self.arrivals(2).values()]
        arrived = [t for times in lanes for t in times]
        first, last = (min(arrived), max(arrived)) if arrived else (float("nan"),) * 2
        resumed = [min(times) for times in lanes if times]  # how long each lane's backoff held
        print(
            f"phase 2 (storm): {self.args.storm:g}s of 429/500 on chat.postMessage, "
            f"refused_calls={refused} rows_queued={queued} posted_during_storm={during} "
            f"posts={self.posted(2)}/{total} extra_429={extra} "
            f"first_post_after_recovery_s={first:.1f} last_post_after_recovery_s={last:.1f} "
            f"lanes_resumed_after_s={min(resumed, default=0):.1f}..{max(resumed, default=0):.1f}"
        )
        return extra

    async def crash(self) -> None:
        """Phase 3: kill -9 halfway through the phase's posts, restart, wait for the rest."""
        assert self.bot is not None
        per_phase = len(self.channels) * self.args.per_phase
        total = per_phase * 3
        for channel in self.channels:
            self.publish(channel, 3)
        half = per_phase * 2 + per_phase // 2
        await self.until(lambda: self.posted(3) >= half, f"{half} posts before the kill")
        await self.bot.kill()
        killed_at = self.posted(3) - per_phase * 2
        began = time.monotonic()
        await self.bot.start()
        connected = time.monotonic() - began
        took = await self.until(lambda: self.posted(3) >= total, f"{total} posts after the kill")
        await self.settled()
        in_doubt = len(self.bot.log_lines("in flight at a crash", run=self.bot.runs))
        print(
            f"phase 3 (kill -9): killed after {killed_at}/{per_phase} phase-3 posts, "
            f"reconnected in {connected:.1f}s, rest delivered {took:.1f}s after the restart, "
            f"posts={self.posted(3)}/{total} restart_in_flight_lines={in_doubt}"
        )
        status = await self.bot.stop()
        if status != 0:
            print(f"  SIGTERM exit status {status}")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            await bench.start()
            rate_pct = await bench.steady()
            extra = await bench.storm()
            await bench.crash()
            tally = Delivery.count(bench.fake, bench.expected(3))
            for channel, detail in tally.detail.items():
                print(f"  {channel}: {detail}"[:400])
            if bench.bot is not None and args.show_log:
                print(bench.bot.log(0)[-args.show_log :])
        finally:
            await bench.close()
    doubled = max(tally.doubled, tally.doubled_keys)
    print(
        f"rate_pct={rate_pct:.1f} extra_429={extra} lost={tally.lost} doubled={doubled} "
        f"out_of_order={tally.out_of_order}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--per-phase", type=int, default=10, help="items per channel per phase")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per Slack answer")
    parser.add_argument("--storm", type=float, default=20.0, help="seconds of 429/500")
    parser.add_argument("--switch", type=float, default=1.5, help="seconds between 429 and 500")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds any wait may take")
    parser.add_argument("--show-log", type=int, default=0, help="print this many chars of log")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
