"""Ack latency of the Slack surface in HTTP mode, measured through the local fake Slack.

Sends N signed `/itsm` slash commands one after another to bolt's aiohttp app on
127.0.0.1 and times each HTTP answer (the ack Slack waits for, 3 s at most), then
waits for every reply to reach the fake's response_url. Prints p50/p99 in milliseconds.

    python bench/slack_ack.py [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.slack import create  # noqa: E402
from bot.app import App  # noqa: E402
from bot.cli import sections  # noqa: E402
from bot.config import build  # noqa: E402
from bot.features import all_features  # noqa: E402
from tests.fakes.fake_slack import FakeSlack, signed_headers, slash_command_body  # noqa: E402

SECRET = "bench-signing-secret"


async def bench(count: int) -> list[float]:
    fake = await FakeSlack().start()
    config = build(sections(), {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0}})
    env = {
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.base_url,
    }
    timings: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with App.running(config, all_features(), db_path=f"{tmp}/bench.db") as app:
            surface = create(app, config.section("slack"), env)
            await surface.start()
            url = f"http://127.0.0.1:{surface.port}/slack/events"
            try:
                async with aiohttp.ClientSession() as session:
                    for n in range(count):
                        body = slash_command_body(
                            "/itsm", "poll" if n % 2 else "", response_url=fake.response_url()
                        )
                        headers = signed_headers(SECRET, body)
                        started = time.perf_counter()
                        request = session.post(url, data=body.encode(), headers=headers)
                        async with await asyncio.wait_for(request, timeout=5) as response:
                            await response.read()
                            if response.status != 200:
                                raise SystemExit(f"request {n}: HTTP {response.status}")
                        timings.append((time.perf_counter() - started) * 1000)
                await fake.wait_for_response(count, timeout=30)
            finally:
                await surface.stop()
    await fake.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    timings = asyncio.run(bench(args.count))
    ordered = sorted(timings)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{len(timings)} slash commands acked over HTTP: "
        f"p50 {statistics.median(timings):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
