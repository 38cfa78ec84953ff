"""Several `itsm-bot run` workers on one PostgreSQL database share the work, and one killed
with SIGKILL midway costs nothing: every post once and in order per channel, every job
once, no feed fetched twice in one interval.

Each worker is a real process with its own Socket Mode connection to the fake Slack (Slack
spreads envelopes over an app's connections; the work here is the bot's own: feed items
and event reminders). The database is a schema of its own on the test server
(tests/databases.py), dropped afterwards.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.features import all_features
from bot.model import ChannelRef, Invocation, UserRef
from tests import process, workers_db
from tests.conftest import make_config
from tests.fakes.fake_slack import TEAM_ID, FakeSlack
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.process import BotProcess, Delivery, subscribe_feed, titles, wait_for, write_config
from tests.workers_db import query, settled

fake, feeds = process.fake, process.feeds  # the fixtures
database = workers_db.database

CHANNELS = [f"C{n}" for n in range(1, 21)]  # 20 channels of feed posts
EVENT_CHANNELS = ["E1", "E2", "E3"]  # and three of events
ITEMS = 25  # a feed each: 500 posts
EVENTS = 30  # each with a reminder due in the same minute
INTERVAL = 4.0  # seconds between two checks of a feed
TIMEOUT = 240.0  # seconds for everything to arrive on a busy machine
MOD = UserRef("slack", TEAM_ID, "U1", "Mod")


def sections() -> dict[str, dict[str, Any]]:
    return {
        "feeds": {"poll_every": "1s", "interval": f"{INTERVAL:g}s", "min_interval": "1s",
                  "jitter": 0, "allow_private": True, "per_channel_cap": 100000},
        "slack": {"pace": 0.05},
        # A dead worker's claims are a lease of three call timeouts: short, for the test.
        "outbox": {"call_timeout": 5},
    }  # fmt: skip


async def subscribe_all(feeds: FeedServer, tmp: Path, url: str) -> dict[str, list[str]]:
    expected = {}
    for channel in CHANNELS:
        prefix = f"{channel} item"
        feed = feeds.set(f"{channel}.xml", body=rss(entries(ITEMS, prefix=prefix)))
        await subscribe_feed(tmp, url, feed, channel)  # type: ignore[arg-type]
        expected[channel] = [f"{prefix} {i}" for i in range(1, ITEMS + 1)]
    return expected


async def schedule_events(url: str, start: datetime) -> list[str]:
    """EVENTS events in E1..E3, all starting at `start` with a reminder 2 minutes before:
    the reminders come due together. Made through the bot's own command, in this process,
    before the workers start."""
    titles_made = []
    async with App.running(make_config(), all_features(), db_path=url, background=False) as app:
        for n in range(EVENTS):
            channel = ChannelRef("slack", TEAM_ID, EVENT_CHANNELS[n % 3])
            title = f"SIG meeting {n}"
            text = f'add title="{title}" start="{start:%Y-%m-%d %H:%M}" tz=UTC remind=2m'
            replies = await app.invoke(Invocation(("event",), MOD, channel, True, text=text))
            assert replies, title
            titles_made.append(title)
    return titles_made


def reminders(fake: FakeSlack) -> Counter[str]:
    """How often each event's reminder reached Slack (a reply in the thread of the event's
    announcement, whose text names it)."""
    seen: Counter[str] = Counter()
    for channel in EVENT_CHANNELS:
        for message in fake.messages.get(channel, []):
            text = str(message.get("text", ""))
            if text.startswith("⏰") and "SIG meeting" in text:
                seen[text] += 1
    return seen


def closest_fetches(feeds: FeedServer) -> dict[str, float]:
    """Per feed, the shortest time between two of its requests."""
    gaps = {}
    for channel in CHANNELS:
        times = sorted(r.at for r in feeds.hits(f"{channel}.xml"))
        if len(times) > 1:
            gaps[channel] = min(b - a for a, b in zip(times, times[1:], strict=False))
    return gaps


@pytest.mark.parametrize("workers", [2, 3])
async def test_workers_share_the_work_and_survive_one_killed(
    fake: FakeSlack, feeds: FeedServer, tmp_path: Path, database: str, workers: int
) -> None:
    fake.latency = 0.01
    expected = await subscribe_all(feeds, tmp_path, database)
    # Minutes are what /event add takes: the next whole minute at least 150 s away, so the
    # reminders (2 minutes before) come due together 30 to 90 s from now, mid-delivery.
    start = (datetime.now(UTC) + timedelta(seconds=210)).replace(second=0, microsecond=0)
    made = await schedule_events(database, start)
    bots = []
    for n in range(workers):
        directory = tmp_path / f"worker-{n}"
        directory.mkdir()
        bots.append(BotProcess(fake, write_config(directory, database, sections()), directory))  # type: ignore[arg-type]
    total = sum(len(t) for t in expected.values())
    try:
        for n, bot in enumerate(bots):
            await bot.start(connect=False)
            await bot.wait_connected(n + 1)
        posted = lambda: sum(len(titles(fake, c)) for c in CHANNELS)  # noqa: E731
        await fake.wait_until(lambda: posted() >= total // 2, TIMEOUT, "half the posts")
        await bots[0].kill()  # midway, with posts and leases in its hands
        try:
            await fake.wait_until(lambda: posted() >= total, TIMEOUT, "every feed post")
        except TimeoutError:
            left = await query(
                database, "SELECT state, claimed_by, count(*) FROM outbox"
                " WHERE state IN ('pending', 'sending') GROUP BY state, claimed_by",
            )  # fmt: skip
            raise AssertionError(
                f"{posted()} of {total} posted; open rows {[tuple(r) for r in left]}\n"
                + bots[1].log()[-3000:]
            ) from None

        try:
            await wait_for(lambda: len(reminders(fake)) >= EVENTS, TIMEOUT, "every reminder", 0.5)
        except TimeoutError:
            jobs = await query(
                database, "SELECT key, state, due_at, claimed_by, claimed_until FROM jobs"
                " WHERE key LIKE 'event:%:remind:%' ORDER BY key",
            )  # fmt: skip
            raise AssertionError(
                f"{len(reminders(fake))} reminders; jobs {[tuple(r) for r in jobs]}\n"
                + bots[1].log()[-3000:]
            ) from None
        open_rows = await settled(database, TIMEOUT)
    finally:
        for bot in bots:
            await bot.close()
    tally = Delivery.count(fake, expected)
    assert tally.clean, str(tally)
    for channel, want in expected.items():
        assert titles(fake, channel) == want, channel
    twice = {t: n for t, n in reminders(fake).items() if n != 1}
    assert len(reminders(fake)) == EVENTS and not twice, (twice, made)
    jobs = await query(database, "SELECT key, state FROM jobs WHERE key LIKE 'event:%:remind:%'")
    assert len(jobs) == EVENTS and {j["state"] for j in jobs} == {"done"}, jobs
    gaps = closest_fetches(feeds)
    assert all(gap >= INTERVAL / 2 for gap in gaps.values()), gaps  # no feed fetched twice
    assert open_rows == [], open_rows
