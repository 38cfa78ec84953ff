"""Interaction callback latency of the Discord surface, through the local fake Discord.

Starts the real bot core (every feature, a temporary SQLite file), connects the Discord
surface to the fake over its gateway, then sends INTERACTION_CREATE events one after another
and times each from the moment the fake dispatches it to the moment it receives the bot's
callback. Prints p50 / p99 / max in milliseconds.

    /tmp/venv/bin/python bench/discord_callback.py [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.discord import create  # noqa: E402
from bot import config as configuration  # noqa: E402
from bot.app import App  # noqa: E402
from bot.cli import sections  # noqa: E402
from bot.features import all_features  # noqa: E402
from tests.fakes.fake_discord import FakeDiscord  # noqa: E402


async def measure(count: int) -> list[float]:
    fake = await FakeDiscord().start()
    try:
        with tempfile.TemporaryDirectory(prefix="itsm-bench-") as tmp:
            config = configuration.build(
                sections(), {"discord": {"guild_id": fake.guild_id, "pace": 0}}
            )
            async with App.running(
                config, all_features(), db_path=str(Path(tmp) / "bench.db"), background=False
            ) as app:
                env = {
                    "DISCORD_TOKEN": "fake-token",
                    "DISCORD_API_URL": fake.api_base,
                    "DISCORD_GATEWAY_URL": fake.gateway_url,
                }
                surface = create(app, config.section("discord"), env, guild_ready_timeout=0.1)
                await asyncio.wait_for(surface.start(), 10)
                try:
                    timings = []
                    for _ in range(count):
                        payload = fake.slash_payload("help", user_id=4242)
                        started = time.perf_counter()
                        await fake.send_interaction(payload)
                        await fake.wait_interaction_response(payload["id"], timeout=3.0)
                        timings.append((time.perf_counter() - started) * 1000)
                    return timings
                finally:
                    await surface.stop()
    finally:
        await fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    timings = asyncio.run(measure(args.count))
    cuts = statistics.quantiles(timings, n=100)
    print(
        f"interactions={len(timings)} p50={cuts[49]:.1f}ms "
        f"p99={cuts[98]:.1f}ms max={max(timings):.1f}ms"
    )


if __name__ == "__main__":
    main()
