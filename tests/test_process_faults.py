"""Faults through the real process: `itsm-bot run` killed with SIGKILL, its token revoked,
Slack failing for a while, and what reached the fake Slack counted afterwards.

Each test starts the bot as deployed (tests/process.py), against a FakeSlack and a local
feed server in the test's own event loop, and restarts it on the same SQLite file. Posts
the bot makes on its own come from feeds (one subscription per channel, imported before
the first start, so each channel's items are queued oldest first); every one must reach its
channel once, in feed order, whatever happened in between. Clicks come as Socket Mode
envelopes; every one the bot acknowledged must be counted once.

Kill moments are drawn from a seeded `random.Random`; the seed is in every assertion
message, and `ITSM_BOT_FAULT_SEED=N` replays one. Every wait is on a condition with a
generous timeout (the machine is shared); the only sleep is the outage's deliberate window.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

from tests import process
from tests.fakes.fake_slack import FakeSlack, block_actions_payload, slash_command_payload
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.process import (
    BotProcess,
    Delivery,
    read_db,
    subscribe_feed,
    titles,
    wait_for,
    write_config,
)

fake, feeds = process.fake, process.feeds  # the fixtures
DELIVERY_TIMEOUT = 120.0  # seconds for everything queued to arrive, on a busy machine
OPEN = "state IN ('pending', 'sending')"


# --- Fixtures and helpers ----------------------------------------------------------------


def seeded() -> tuple[int, random.Random]:
    """A seed (from ITSM_BOT_FAULT_SEED, or fresh) and the generator it gives."""
    seed = int(os.environ.get("ITSM_BOT_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    return seed, random.Random(seed)


def feed_config(pace: float, **outbox: Any) -> dict[str, dict[str, Any]]:
    """Feeds checked every couple of seconds from 127.0.0.1, no per-channel cap."""
    sections: dict[str, dict[str, Any]] = {
        "feeds": {
            "poll_every": "1s",
            "interval": "2s",
            "jitter": 0,
            "allow_private": True,
            "per_channel_cap": 100000,
        },
        "slack": {"pace": pace},
    }
    if outbox:
        sections["outbox"] = dict(outbox)
    return sections


async def subscribe(
    feeds: FeedServer, tmp: Path, db: Path, channels: list[str], items: int
) -> dict[str, list[str]]:
    """A feed of `items` items for each channel; return each channel's titles, oldest
    first (the order they must be posted in)."""
    expected = {}
    for channel in channels:
        prefix = f"{channel} item"
        url = feeds.set(f"{channel}.xml", body=rss(entries(items, prefix=prefix)))
        await subscribe_feed(tmp, db, url, channel)
        expected[channel] = [f"{prefix} {i}" for i in range(1, items + 1)]
    return expected


def delivered(fake: FakeSlack, expected: dict[str, list[str]]) -> int:
    return sum(len(fake.posts(channel)) for channel in expected)


def open_rows(db: Path) -> int:
    return read_db(db, f"SELECT count(*) FROM outbox WHERE {OPEN}")[0][0]


def states(db: Path) -> dict[str, int]:
    return dict(read_db(db, "SELECT state, count(*) FROM outbox GROUP BY state"))


async def wait_all_delivered(
    fake: FakeSlack, db: Path, expected: dict[str, list[str]], timeout: float = DELIVERY_TIMEOUT
) -> bool:
    """Wait until every expected title is in its channel and the outbox has nothing left
    to send (so a late second copy would be seen too); False on timeout."""

    def done() -> bool:
        every = all(set(want) <= set(titles(fake, ch)) for ch, want in expected.items())
        return every and open_rows(db) == 0

    try:
        await wait_for(done, timeout, "every item posted and the outbox empty", every=0.2)
    except TimeoutError:
        return False
    return True


# --- 1. SIGKILL during delivery ---------------------------------------------------------


async def test_sigkill_during_delivery_loses_doubles_and_reorders_nothing(
    fake: FakeSlack, feeds: FeedServer, tmp_path: Path
) -> None:
    seed, rng = seeded()
    fake.latency = 0.02
    db = tmp_path / "bot.db"
    expected = await subscribe(feeds, tmp_path, db, ["C1", "C2", "C3"], 15)
    total = sum(len(t) for t in expected.values())
    config = write_config(tmp_path, db, feed_config(pace=0.05))
    kills: list[tuple[int, int]] = []  # (posts asked for, posts seen once it was dead)
    async with BotProcess(fake, config, tmp_path) as bot:
        for upto in (total * 2 // 3, total - 1):
            so_far = delivered(fake, expected)
            if so_far >= upto:
                break
            k = rng.randint(so_far + 1, upto)
            await bot.start()
            await fake.wait_until(
                lambda k=k: delivered(fake, expected) >= k, DELIVERY_TIMEOUT, f"{k} posts"
            )
            await bot.kill()
            kills.append((k, delivered(fake, expected)))
        await bot.start()
        finished = await wait_all_delivered(fake, db, expected)
        status = await bot.stop()
    tally = Delivery.count(fake, expected)
    where = f"seed={seed} kills at (asked, seen)={kills} outbox={states(db)}"
    in_doubt = len(bot.log_lines("in flight at a crash", run=0))
    found = len(bot.log_lines("was already delivered", run=0))
    print(f"{where} starts with posts in flight={in_doubt} found already posted={found} {tally}")
    assert finished, f"not everything arrived: {where}\n{tally}\n{bot.log(0)[-4000:]}"
    assert tally.clean, f"{where}\n{tally}"
    for channel, want in expected.items():
        assert titles(fake, channel) == want, f"{where}: {channel}"
    assert status == 0, f"{where}: SIGTERM exit status {status}\n{bot.log()[-2000:]}"
    assert len(kills) == 2, where


# --- 2. SIGKILL during a vote burst -----------------------------------------------------

VOTERS = 300


async def create_poll(fake: FakeSlack) -> str:
    """`/poll create` from a member in C1; return the ts of the poll's message."""
    payload = slash_command_payload(
        "/poll", 'create "Q?" "A" "B"', user_id="UCREATOR", response_url=fake.response_url()
    )
    await fake.wait_ack(await fake.push("slash_commands", payload), timeout=60)
    await fake.wait_until(lambda: bool(fake.posts("C1")), DELIVERY_TIMEOUT, "the poll's post")
    return str(fake.posts("C1")[0]["ts"])


def votes(db: Path) -> list[tuple[str, int]]:
    """(Slack user id, option) of every stored answer to poll #1."""
    rows = read_db(db, "SELECT voter, option FROM vote_answers WHERE run_id = 1")
    return [(voter.rsplit(":", 1)[1], option) for voter, option in rows]


async def test_sigkill_during_a_vote_burst_keeps_every_acknowledged_vote(
    fake: FakeSlack, tmp_path: Path
) -> None:
    seed, rng = seeded()
    db = tmp_path / "bot.db"
    config = write_config(tmp_path, db, {"slack": {"pace": 0.05}})
    intended = {f"U{i:04d}": i % 2 for i in range(1, VOTERS + 1)}
    kill_after = rng.randint(20, 250)
    sent: dict[str, str] = {}  # envelope id -> user

    def acked() -> set[str]:
        return {sent[e] for e in list(fake.acks) if e in sent}

    async with BotProcess(fake, config, tmp_path) as bot:
        await bot.start()
        ts = await create_poll(fake)

        async def press(user: str) -> None:
            payload = block_actions_payload(
                "poll.vote#0", f"1:{intended[user]}", user_id=user, channel_id="C1",
                message_ts=ts, response_url=fake.response_url(),
            )  # fmt: skip
            sent[await fake.push("interactive", payload)] = user

        burst = [asyncio.create_task(press(user)) for user in intended]
        await fake.wait_until(lambda: len(acked()) >= kill_after, 60, f"{kill_after} acks")
        await bot.kill()
        at_kill = len(acked())
        pushed = await asyncio.gather(*burst, return_exceptions=True)
        refused = sum(isinstance(p, BaseException) for p in pushed)
        await bot.start()  # envelopes to the dead connection are never delivered again
        acknowledged = acked()
        try:
            await wait_for(
                lambda: acknowledged <= {user for user, _ in votes(db)},
                DELIVERY_TIMEOUT,
                "every acknowledged vote in vote_answers",
                every=0.2,
            )
        except TimeoutError:
            pass  # counted below, with what is missing
        status = await bot.stop()
    stored = votes(db)
    per_voter = Counter(user for user, _ in stored)
    got = dict(stored)
    lost = sorted(u for u in acknowledged if got.get(u) != intended[u])
    doubled = sorted(u for u, n in per_voter.items() if n > 1)
    wrong = sorted(u for u, option in got.items() if intended.get(u) != option)
    unacked_counted = len(set(got) - acknowledged)
    held = read_db(db, "SELECT count(*) FROM intake WHERE done_at IS NULL")[0][0]
    summary = (
        f"seed={seed} kill_after={kill_after} acked_at_kill={at_kill} "
        f"acked={len(acknowledged)} pushes_refused={refused} stored={len(stored)} "
        f"unacked_counted={unacked_counted} lost={len(lost)} doubled={len(doubled)} "
        f"wrong={len(wrong)} intake_held={held}"
    )
    print(summary)
    assert not lost, f"{summary}: acknowledged but not counted as pressed: {lost[:20]}"
    assert not doubled, f"{summary}: counted twice: {doubled[:20]}"
    assert not wrong, f"{summary}: counted with another option: {wrong[:20]}"
    assert acknowledged == acked(), f"{summary}: acks for the burst came after the restart"
    assert status == 0, f"{summary}: SIGTERM exit status {status}\n{bot.log()[-2000:]}"


# --- 3. A revoked token -----------------------------------------------------------------

TOKEN_LINE = "SLACK_BOT_TOKEN"


async def test_a_revoked_token_pauses_posts_and_a_new_token_drains_them(
    fake: FakeSlack, feeds: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    expected = await subscribe(feeds, tmp_path, db, ["C1", "C2"], 12)
    total = sum(len(t) for t in expected.values())
    config = write_config(tmp_path, db, feed_config(pace=0.3))
    async with BotProcess(fake, config, tmp_path, token="xoxb-before") as bot:
        await bot.start()
        await fake.wait_until(lambda: delivered(fake, expected) >= 3, DELIVERY_TIMEOUT, "3 posts")
        fake.revoke("xoxb-before")
        await wait_for(lambda: bot.log_lines(TOKEN_LINE), DELIVERY_TIMEOUT, "the token line")
        # Settled: every row queued, none in flight, each one the fake has marked sent.
        posted = delivered(fake, expected)
        await wait_for(
            lambda: states(db) == {"sent": posted, "pending": total - posted},
            DELIVERY_TIMEOUT,
            f"{posted} rows sent and {total - posted} pending",
        )
        # Give it time to repeat itself: two more checks of each feed.
        checks = len(feeds.hits("C1.xml"))
        await wait_for(lambda: len(feeds.hits("C1.xml")) >= checks + 2, 60, "two more checks")
        paused = {"posts": delivered(fake, expected), "outbox": states(db)}
        lines = bot.log_lines(TOKEN_LINE)
        first = await bot.stop()

        bot.token = "xoxb-after"  # the revoked one stays revoked at the fake
        await bot.start()
        finished = await wait_all_delivered(fake, db, expected)
        second = await bot.stop()
    tally = Delivery.count(fake, expected)
    where = f"posted before the pause={posted} while paused={paused} token lines={lines}"
    print(f"{where} {tally}")
    assert paused == {"posts": posted, "outbox": {"sent": posted, "pending": total - posted}}, where
    assert len(lines) == 1, f"{where}\n{bot.log(1)[-3000:]}"
    assert "ERROR" in lines[0], where
    assert "Traceback" not in bot.log(1), bot.log(1)[-3000:]
    assert finished, f"{where}\n{tally}\n{bot.log(2)[-3000:]}"
    assert tally.clean, f"{where}\n{tally}"
    for channel, want in expected.items():
        assert titles(fake, channel) == want, f"{where}: {channel}"
    assert states(db) == {"sent": total}, where
    assert (first, second) == (0, 0), f"{where}: exit statuses {(first, second)}"


async def test_a_refused_token_stops_start_up_with_one_line(
    fake: FakeSlack, tmp_path: Path
) -> None:
    fake.revoke("xoxb-refused")
    config = write_config(tmp_path, tmp_path / "bot.db")
    async with BotProcess(fake, config, tmp_path, token="xoxb-refused") as bot:
        await bot.start(connect=False)
        status = await bot.wait_exit()
    text = bot.log()
    assert status != 0, text
    assert len(bot.log_lines(TOKEN_LINE)) == 1, text
    assert "Traceback" not in text, text
    assert fake.connections == 0, text


# --- 4. A short Slack outage ------------------------------------------------------------

OUTAGE = 10.0  # seconds of real time every Slack call answers 500


async def test_a_short_outage_delays_posts_but_delivers_each_once_in_order(
    fake: FakeSlack, feeds: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    expected = await subscribe(feeds, tmp_path, db, ["C1", "C2"], 12)
    config = write_config(tmp_path, db, feed_config(pace=0.3, backoff_base=0.5, backoff_max=2.0))
    async with BotProcess(fake, config, tmp_path) as bot:
        await bot.start()
        await fake.wait_until(lambda: delivered(fake, expected) >= 3, DELIVERY_TIMEOUT, "3 posts")
        fake.outage(status=500)
        before = delivered(fake, expected)
        await asyncio.sleep(OUTAGE)  # the deliberate fault window
        refused = sum(1 for c in fake.calls if c.status == 500)
        fake.recover()
        finished = await wait_all_delivered(fake, db, expected)
        status = await bot.stop()
    tally = Delivery.count(fake, expected)
    where = f"posts before the outage={before} calls refused={refused} outbox={states(db)}"
    print(f"{where} {tally}")
    assert refused > 0, where
    assert finished, f"{where}\n{tally}\n{bot.log()[-3000:]}"
    assert tally.clean, f"{where}\n{tally}"
    for channel, want in expected.items():
        assert titles(fake, channel) == want, f"{where}: {channel}"
    assert "failed" not in states(db), where
    assert status == 0, f"{where}: SIGTERM exit status {status}"
