"""The outbox under faults, through the real slack-sdk and discord.py against the fakes.

Hours of outage (5xx, and for Slack a stretch of 429s) under the fake clock, a give-up past
`give_up_after`, a revoked token, a failure at the head of a lane, a hung call, a call cut at
its deadline, a lost answer, a lookup that fails after a crash, and a permanent refusal. What
is checked each time is what members would see: every post once, in the order it was queued
in its channel, one channel never waiting on another; or one post failed, with a reason.

Counting is done at the fakes (what the platform received and stored). Time is the FakeClock;
the background runner is waited on through conditions, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.discord.transport import marker, nonce
from adapters.slack import create as create_slack
from bot.app import App
from bot.help import Help
from bot.model import ChannelRef, Post
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    Req,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_discord_surface import (  # noqa: F401
    _endpoints_restored,
    channel_of,
    logged_in,
)

C1 = ChannelRef("slack", "T1", "C1")
C2 = ChannelRef("slack", "T1", "C2")
HOUR = 3600.0
STEP = 300.0  # how far the clock moves between two drains: the capped backoff
WAIT = 30.0  # generous, for a busy machine; nothing here should take more than a second
SLACK_TRIES = ("chat.postMessage", "conversations.history")


# --- Building the apps ---------------------------------------------------------------------


async def _slack_app(
    make_app: Any,
    fake: FakeSlack,
    db: str = "bot.db",
    token: str = "xoxb-test",
    outbox: dict[str, Any] | None = None,
    **slack: Any,
) -> App:
    """An App with the Slack surface built as production builds it, its transport attached."""
    app = await make_app([Help], config={"slack": slack, "outbox": outbox or {}}, db=db)
    env = {"SLACK_BOT_TOKEN": token, "SLACK_APP_TOKEN": "xapp-test", "SLACK_API_URL": fake.base_url}
    surface = create_slack(app, app.config.section("slack"), env)
    app.outbox.attach(surface.transport)
    return app


async def _discord_app(
    make_app: Any, fake: FakeDiscord, db: str = "bot.db", outbox: dict[str, Any] | None = None
) -> App:
    """An App for Discord; `logged_in(app, fake)` attaches its transport."""
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0}, "outbox": outbox or {}}
    return await make_app([Help], config=config, db=db)


def _second_channel(fake: FakeDiscord) -> ChannelRef:
    """Another text channel in the fake guild."""
    cid = fake.snowflake()
    general = fake.channels[fake.channel_id]
    fake.channels[cid] = dict(general, id=str(cid), name="announcements", position=1)
    return ChannelRef("discord", str(fake.guild_id), str(cid))


# --- Queueing and driving --------------------------------------------------------------------


async def _queue(app: App, channel: ChannelRef, prefix: str, n: int) -> list[str]:
    """Queue `n` posts to `channel`; their keys, in queue order."""
    keys = [f"{prefix}:{i}" for i in range(n)]
    for i, key in enumerate(keys):
        assert await app.outbox.enqueue(channel, Post(text=f"{prefix} post #{i}"), key)
    return keys


async def _states(app: App, keys: list[str]) -> set[str | None]:
    return {await app.outbox.state(key) for key in keys}


async def _ride_out(app: App, clock: Any, seconds: float) -> int:
    """Drain, then move the clock one STEP, for `seconds` of simulated time; the rounds."""
    rounds = int(seconds // STEP)
    for _ in range(rounds):
        await app.outbox.drain()
        clock.advance(STEP)
    return rounds


async def _deliver(app: App, clock: Any, keys: list[str], step: float = 60.0) -> None:
    """Drain and move the clock until every key is sent (at most a simulated day)."""
    for _ in range(int(86400 // step)):
        await app.outbox.drain()
        if await _states(app, keys) == {"sent"}:
            return
        clock.advance(step)
    raise AssertionError(f"not all sent after a day: {await _states(app, keys)}")


async def _row(app: App, key: str) -> dict[str, Any]:
    raw = await app.db.fetchone("SELECT * FROM outbox WHERE key = ?", (key,))
    return dict(raw)


async def _eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll the database until `check()` holds (the runner works in tasks of its own)."""
    deadline = time.monotonic() + WAIT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT:g} s waiting for {what}")
        await asyncio.sleep(0.02)


async def _all_sent(app: App, keys: list[str]) -> None:
    async def check() -> bool:
        return await _states(app, keys) == {"sent"}

    await _eventually(check, f"{keys} sent")


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- What the fakes saw ----------------------------------------------------------------------


def _slack_tries(fake: FakeSlack, channel: str) -> list[tuple[str, str | None]]:
    """(method, key posted) of every delivery try for `channel`: posts and lookups."""
    return [
        (c.method, ((c.args.get("metadata") or {}).get("event_payload") or {}).get("key"))
        for c in fake.calls
        if c.method in SLACK_TRIES and c.args.get("channel") == channel
    ]


def _slack_posted(fake: FakeSlack, channel: str) -> list[str | None]:
    """Keys of every chat.postMessage sent for `channel`, failed ones included."""
    return [key for method, key in _slack_tries(fake, channel) if method == "chat.postMessage"]


def _discord_tries(fake: FakeDiscord, channel: ChannelRef) -> list[Req]:
    """Every send and every history read for `channel`, in arrival order."""
    path = f"/channels/{channel.channel}/messages"
    return sorted(
        fake.requests_to("POST", path) + fake.requests_to("GET", path), key=lambda r: r.at
    )


def _discord_sent_nonces(fake: FakeDiscord, channel: ChannelRef) -> list[str]:
    """The nonce of every send for `channel`, failed ones included."""
    path = f"/channels/{channel.channel}/messages"
    return [r.json["nonce"] for r in fake.requests_to("POST", path)]


def _discord_stored(fake: FakeDiscord, channel: ChannelRef) -> list[str | None]:
    """Nonces of the bot's messages stored in `channel`, oldest first."""
    return [m.get("nonce") for m in fake.posts(int(channel.channel))]


def _nonces(keys: list[str]) -> list[str]:
    return [nonce(key) for key in keys]


# --- 1. Hours of outage, then recovery ---------------------------------------------------------


async def test_slack_six_hours_of_outage_then_every_post_once_in_order(
    make_app: Any, fake_slack: FakeSlack, clock: Any
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake)
    first = await _queue(app, C1, "c1", 10)
    second = await _queue(app, C2, "c2", 5)

    fake.outage(status=500)
    rounds = await _ride_out(app, clock, 3 * HOUR)
    fake.outage(status=429, retry_after=30)  # Slack shedding load for an hour
    rounds += await _ride_out(app, clock, 1 * HOUR)
    fake.outage(status=500)
    rounds += await _ride_out(app, clock, 2 * HOUR)

    assert fake.posts("C1") == fake.posts("C2") == []
    assert await _states(app, first + second) == {"pending"}  # nothing given up
    for channel, keys in (("C1", first), ("C2", second)):
        tries = _slack_tries(fake, channel)
        # About one try per capped backoff (240-360 s) per lane: no hammering, no stall.
        assert rounds / 2 <= len(tries) <= rounds + 1, (channel, len(tries), rounds)
        assert _slack_posted(fake, channel) == [keys[0]]  # only the head; then lookups
    statuses = {c.status for c in fake.calls if c.method in SLACK_TRIES}
    assert statuses == {500, 429}

    fake.recover()
    await _deliver(app, clock, first + second)
    assert fake.post_keys("C1") == first
    assert fake.post_keys("C2") == second


async def test_discord_six_hours_of_outage_then_every_post_once_in_order(
    make_app: Any, fake_discord: FakeDiscord, clock: Any
) -> None:
    fake = fake_discord
    app = await _discord_app(make_app, fake)
    a, b = channel_of(fake), _second_channel(fake)
    async with logged_in(app, fake):
        first = await _queue(app, a, "a", 10)
        second = await _queue(app, b, "b", 5)
        fake.outage(status=503)  # a 500 discord.py itself retries, sleeping in real time
        rounds = await _ride_out(app, clock, 6 * HOUR)

        assert _discord_stored(fake, a) == _discord_stored(fake, b) == []
        assert await _states(app, first + second) == {"pending"}
        for channel, keys in ((a, first), (b, second)):
            tries = _discord_tries(fake, channel)
            assert rounds / 2 <= len(tries) <= rounds + 1, (channel, len(tries), rounds)
            assert {r.status for r in tries} == {503}
            assert _discord_sent_nonces(fake, channel) == [nonce(keys[0])]

        fake.recover()
        await _deliver(app, clock, first + second)
    assert _discord_stored(fake, a) == _nonces(first)
    assert _discord_stored(fake, b) == _nonces(second)


async def test_slack_a_post_failing_past_give_up_after_fails_with_its_reason(
    make_app: Any, fake_slack: FakeSlack, clock: Any
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake, outbox={"give_up_after": "2h"})
    await app.outbox.enqueue(C1, Post(text="too late"), "late")
    fake.outage(status=500)

    await _ride_out(app, clock, 2 * HOUR)
    assert await app.outbox.state("late") == "pending"  # not before its time
    await _ride_out(app, clock, 1 * HOUR)

    assert await app.outbox.state("late") == "failed"
    error = (await _row(app, "late"))["last_error"]
    assert error.startswith("still failing after 2 h") and "internal_error" in error
    health = await app.outbox.health()
    assert (health.failed, health.last_failure) == (1, error)
    tries = len(_slack_tries(fake, "C1"))
    fake.recover()
    await _ride_out(app, clock, 1 * HOUR)
    assert len(_slack_tries(fake, "C1")) == tries and fake.posts("C1") == []


async def test_discord_a_post_failing_past_give_up_after_fails_with_its_reason(
    make_app: Any, fake_discord: FakeDiscord, clock: Any
) -> None:
    fake = fake_discord
    app = await _discord_app(make_app, fake, outbox={"give_up_after": "2h"})
    channel = channel_of(fake)
    async with logged_in(app, fake):
        await app.outbox.enqueue(channel, Post(text="too late"), "late")
        fake.outage(status=503)
        await _ride_out(app, clock, 2 * HOUR)
        assert await app.outbox.state("late") == "pending"
        await _ride_out(app, clock, 1 * HOUR)
    assert await app.outbox.state("late") == "failed"
    error = (await _row(app, "late"))["last_error"]
    assert error.startswith("still failing after 2 h") and "503" in error


# --- 2. A revoked token ------------------------------------------------------------------------


async def test_slack_a_revoked_token_pauses_slack_keeps_every_post_and_a_restart_sends_them(
    make_app: Any, fake_slack: FakeSlack, clock: Any, caplog: Any
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake)
    first = await _queue(app, C1, "c1", 3)
    second = await _queue(app, C2, "c2", 2)
    fake.revoke("xoxb-test")

    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        assert await app.outbox.drain() == 0
    assert "SLACK_BOT_TOKEN" in app.outbox.paused["slack"]
    assert any("SLACK_BOT_TOKEN" in r.getMessage() for r in caplog.records)
    assert (await app.outbox.health()).paused == app.outbox.paused
    assert await _states(app, first + second) == {"pending"}
    calls = len(fake.calls)
    await _ride_out(app, clock, 1 * HOUR)  # paused: nothing is tried meanwhile
    assert len(fake.calls) == calls

    fake.valid_tokens = {"xoxb-fresh"}  # the app was reinstalled; the bot restarts
    again = await _slack_app(make_app, fake, token="xoxb-fresh")
    assert again.outbox.paused == {}
    await _deliver(again, clock, first + second)
    assert fake.post_keys("C1") == first
    assert fake.post_keys("C2") == second


async def test_discord_a_revoked_token_pauses_discord_keeps_every_post_and_a_restart_sends_them(
    make_app: Any, fake_discord: FakeDiscord, clock: Any, caplog: Any
) -> None:
    fake = fake_discord
    app = await _discord_app(make_app, fake)
    a, b = channel_of(fake), _second_channel(fake)
    async with logged_in(app, fake):
        first = await _queue(app, a, "a", 3)
        second = await _queue(app, b, "b", 2)
        fake.revoke()
        with caplog.at_level(logging.WARNING, logger="bot.outbox"):
            assert await app.outbox.drain() == 0
        assert "DISCORD_TOKEN" in app.outbox.paused["discord"]
        assert any("DISCORD_TOKEN" in r.getMessage() for r in caplog.records)
        assert await _states(app, first + second) == {"pending"}
        tries = len(_discord_tries(fake, a) + _discord_tries(fake, b))
        await _ride_out(app, clock, 1 * HOUR)
        assert len(_discord_tries(fake, a) + _discord_tries(fake, b)) == tries

    fake.unrevoke()  # a new token; the bot restarts on the same database
    again = await _discord_app(make_app, fake)
    async with logged_in(again, fake):
        await _deliver(again, clock, first + second)
    assert _discord_stored(fake, a) == _nonces(first)
    assert _discord_stored(fake, b) == _nonces(second)


# --- 3. Per-lane order after a failure -----------------------------------------------------------


async def test_slack_a_failing_head_is_not_overtaken_and_holds_back_no_other_channel(
    make_app: Any, fake_slack: FakeSlack, clock: Any
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake)
    keys = await _queue(app, C1, "c1", 3)
    fake.fail_next("chat.postMessage", status=500, times=2)
    assert await app.outbox.drain() == 0  # the head fails...
    clock.advance(10)
    assert await app.outbox.drain() == 0  # ...is looked up, sent again, and fails again
    assert fake.posts("C1") == []

    await app.outbox.enqueue(C2, Post(text="elsewhere"), "c2:0")
    assert await app.outbox.drain() == 1  # C1 waits out its backoff; C2 does not wait
    assert fake.post_keys("C2") == ["c2:0"] and fake.posts("C1") == []
    assert await _states(app, keys) == {"pending"}

    await _deliver(app, clock, keys)
    assert fake.post_keys("C1") == keys
    assert _slack_tries(fake, "C1") == [
        ("chat.postMessage", "c1:0"),
        ("conversations.history", None),
        ("chat.postMessage", "c1:0"),
        ("conversations.history", None),
        ("chat.postMessage", "c1:0"),
        ("chat.postMessage", "c1:1"),
        ("chat.postMessage", "c1:2"),
    ]


async def test_discord_a_failing_head_is_not_overtaken_and_holds_back_no_other_channel(
    make_app: Any, fake_discord: FakeDiscord, clock: Any
) -> None:
    fake = fake_discord
    app = await _discord_app(make_app, fake)
    a, b = channel_of(fake), _second_channel(fake)
    async with logged_in(app, fake):
        keys = await _queue(app, a, "a", 3)
        other = await _queue(app, b, "b", 1)
        fake.fail_next("POST", f"/channels/{a.channel}/messages", status=503, times=2)
        assert await app.outbox.drain() == 1  # only the other channel's post
        assert _discord_stored(fake, b) == _nonces(other) and _discord_stored(fake, a) == []
        clock.advance(10)
        assert await app.outbox.drain() == 0  # the head fails a second time
        assert _discord_stored(fake, a) == [] and await _states(app, keys) == {"pending"}
        await _deliver(app, clock, keys)
    assert _discord_stored(fake, a) == _nonces(keys)
    assert _discord_sent_nonces(fake, a) == [nonce(k) for k in ["a:0"] * 3 + keys[1:]]


# --- 4. A hung call; a call cut at its deadline ----------------------------------------------------


async def test_slack_a_hung_call_holds_back_no_other_channel(
    make_app: Any, fake_slack: FakeSlack
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake, pace=0)
    fake.hang("chat.postMessage", channel="C1")
    runner = asyncio.create_task(app.outbox.run())
    try:
        held = await _queue(app, C1, "c1", 2)
        await fake.wait_hung(1, timeout=WAIT)
        await app.outbox.enqueue(C2, Post(text="elsewhere"), "c2:0")
        await fake.wait_until(lambda: fake.post_keys("C2") == ["c2:0"], WAIT, "the C2 post")
        assert fake.hung == 1 and fake.posts("C1") == []
        assert await app.outbox.state("c1:0") == "sending"  # its call is still under way

        fake.release_hangs()  # answered, late but within the call's deadline
        await fake.wait_until(lambda: fake.post_keys("C1") == held, WAIT, "the C1 posts")
        await _all_sent(app, [*held, "c2:0"])
    finally:
        await _stop(runner)
    assert _slack_posted(fake, "C1") == held  # each sent once; nothing was in doubt
    assert fake.calls_to("conversations.history") == []


async def test_discord_a_hung_call_holds_back_no_other_channel(
    make_app: Any, fake_discord: FakeDiscord
) -> None:
    fake = fake_discord
    app = await _discord_app(make_app, fake)
    a, b = channel_of(fake), _second_channel(fake)
    async with logged_in(app, fake):
        fake.hang("POST", f"/channels/{a.channel}/messages")
        runner = asyncio.create_task(app.outbox.run())
        try:
            held = await _queue(app, a, "a", 2)
            await fake.wait_hung(1, timeout=WAIT)
            other = await _queue(app, b, "b", 1)
            await fake.wait_until(
                lambda: _discord_stored(fake, b) == _nonces(other), WAIT, "the other post"
            )
            assert fake.hung == 1 and _discord_stored(fake, a) == []
            assert await app.outbox.state("a:0") == "sending"

            fake.release_hangs()
            await fake.wait_until(
                lambda: _discord_stored(fake, a) == _nonces(held), WAIT, "the held posts"
            )
            await _all_sent(app, held + other)
        finally:
            await _stop(runner)
    assert _discord_sent_nonces(fake, a) == _nonces(held)


async def test_slack_a_call_cut_at_its_deadline_is_looked_up_before_it_is_sent_again(
    make_app: Any, fake_slack: FakeSlack, clock: Any
) -> None:
    fake = fake_slack
    outbox = {"call_timeout": 0.5, "backoff_base": 0.1}
    app = await _slack_app(make_app, fake, pace=0, outbox=outbox)
    fake.hang("chat.postMessage", channel="C1")
    runner = asyncio.create_task(app.outbox.run())
    try:
        keys = await _queue(app, C1, "c1", 2)
        await fake.wait_hung(1, timeout=WAIT)

        async def cut() -> bool:
            row = await _row(app, "c1:0")
            return row["state"] == "pending" and bool(row["in_doubt"])

        await _eventually(cut, "the deadline to cut the hung call")
        assert "no answer within 0.5 s" in (await _row(app, "c1:0"))["last_error"]
        fake.release_hangs()  # Slack gets to the request after all: the post exists now
        await fake.wait_until(lambda: fake.post_keys("C1") == keys[:1], WAIT, "the late post")
        clock.advance(60)  # past the backoff
        await fake.wait_until(lambda: fake.post_keys("C1") == keys, WAIT, "the next post")
        await _all_sent(app, keys)
    finally:
        await _stop(runner)
    assert _slack_tries(fake, "C1") == [
        ("chat.postMessage", "c1:0"),
        ("conversations.history", None),
        ("chat.postMessage", "c1:1"),
    ]
    assert await app.outbox.message_id("c1:0") == fake.posts("C1")[0]["ts"]


# --- 5. A lost answer ---------------------------------------------------------------------------


async def test_slack_a_lost_answer_is_looked_up_not_posted_again(
    make_app: Any, fake_slack: FakeSlack, clock: Any
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake)
    keys = await _queue(app, C1, "c1", 2)
    fake.lose_answer("chat.postMessage")

    assert await app.outbox.drain() == 0
    row = await _row(app, "c1:0")
    assert (row["state"], row["in_doubt"], row["message_id"]) == ("pending", 1, None)
    assert fake.post_keys("C1") == ["c1:0"]  # Slack has it; the bot does not know

    clock.advance(10)
    assert await app.outbox.drain() == 1  # found by the lookup; only the next one is sent
    clock.advance(1)
    await _deliver(app, clock, keys)
    assert fake.post_keys("C1") == keys
    assert _slack_posted(fake, "C1") == keys
    assert await app.outbox.message_id("c1:0") == fake.posts("C1")[0]["ts"]
    (lookup,) = fake.calls_to("conversations.history")
    assert float(lookup["oldest"]) <= float(fake.posts("C1")[0]["ts"])


async def test_discord_a_lost_answer_in_a_busy_channel_is_found_not_posted_again(
    make_app: Any, fake_discord: FakeDiscord, clock: Any
) -> None:
    fake = fake_discord
    fake.nonce_window = 0  # Discord's own nonce check cannot save the day
    app = await _discord_app(make_app, fake)
    channel = channel_of(fake)
    cid = int(channel.channel)
    async with logged_in(app, fake):
        fake.add_messages(cid, 250)  # chatter just before the post...
        await app.outbox.enqueue(channel, Post(text="the announcement"), "ann")
        await app.outbox.enqueue(channel, Post(text="the next one"), "next")
        fake.lose_answer("POST", "/channels/*/messages")
        assert await app.outbox.drain() == 0
        row = await _row(app, "ann")
        assert (row["state"], row["in_doubt"]) == ("pending", 1)
        assert _discord_stored(fake, channel) == [nonce("ann")]
        fake.add_messages(cid, 250)  # ...and after it, before the retry

        clock.advance(10)
        await _deliver(app, clock, ["ann", "next"])
    assert _discord_stored(fake, channel) == _nonces(["ann", "next"])
    assert _discord_sent_nonces(fake, channel) == _nonces(["ann", "next"])
    wanted = "the announcement" + marker("ann")
    mine = [m for m in fake.posts(cid) if m["embeds"][0]["description"] == wanted]
    assert [m["id"] for m in mine] == [await app.outbox.message_id("ann")]
    reads = fake.requests_to("GET", f"/channels/{cid}/messages")
    assert len(reads) >= 3 and all("after" in r.query for r in reads)  # 500+ messages paged


# --- 6. A lookup that fails ----------------------------------------------------------------------


async def test_slack_a_failing_lookup_after_a_crash_is_retried_and_the_post_sent_once(
    make_app: Any, fake_slack: FakeSlack, clock: Any
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake)
    keys = await _queue(app, C1, "c1", 2)
    # The first post reached Slack, and the process died before recording it: its row
    # is claimed, as the claim before the call leaves it.
    claimed = time.time()
    ts = await app.outbox.transports["slack"].send(C1, Post(text="c1 post #0"), "c1:0")
    await app.db.execute(
        "UPDATE outbox SET state = 'sending', attempts = 1, attempted_at = ?,"
        " claimed_by = 'gone', claimed_until = ? WHERE key = 'c1:0'",
        (claimed, clock.now().timestamp() + 90),
    )

    again = await _slack_app(make_app, fake)  # the restart, on the same database
    row = await _row(again, "c1:0")
    assert (row["state"], row["in_doubt"]) == ("pending", 1)
    fake.fail_next("conversations.history", status=500, times=3)
    await _deliver(again, clock, keys)

    assert fake.post_keys("C1") == keys
    assert await again.outbox.message_id("c1:0") == ts
    history = [c.status for c in fake.calls if c.method == "conversations.history"]
    assert history == [500, 500, 500, 200]
    assert await again.db.fetchval("SELECT count(*) FROM outbox WHERE state = 'sending'") == 0


async def test_discord_a_failing_lookup_after_a_crash_is_retried_and_the_post_sent_once(
    make_app: Any, fake_discord: FakeDiscord, clock: Any
) -> None:
    fake = fake_discord
    fake.nonce_window = 0
    app = await _discord_app(make_app, fake)
    channel = channel_of(fake)
    claimed = time.time()
    async with logged_in(app, fake) as surface:
        keys = await _queue(app, channel, "a", 2)
        sent = await surface.transport.send(channel, Post(text="a post #0"), "a:0")
        await app.db.execute(
            "UPDATE outbox SET state = 'sending', attempts = 1, attempted_at = ?,"
            " claimed_by = 'gone', claimed_until = ? WHERE key = 'a:0'",
            (claimed, clock.now().timestamp() + 90),
        )
    again = await _discord_app(make_app, fake)
    async with logged_in(again, fake):
        fake.fail_next("GET", f"/channels/{channel.channel}/messages", status=503, times=3)
        await _deliver(again, clock, keys)
    assert _discord_stored(fake, channel) == _nonces(keys)
    assert await again.outbox.message_id("a:0") == sent
    reads = fake.requests_to("GET", f"/channels/{channel.channel}/messages")
    assert [r.status for r in reads][:4] == [503, 503, 503, 200]
    assert await again.db.fetchval("SELECT count(*) FROM outbox WHERE state = 'sending'") == 0


# --- 7. A permanent refusal ------------------------------------------------------------------


async def test_slack_a_refused_post_fails_alone_and_its_lane_goes_on(
    make_app: Any, fake_slack: FakeSlack, clock: Any
) -> None:
    fake = fake_slack
    app = await _slack_app(make_app, fake)
    keys = await _queue(app, C1, "c1", 3)
    fake.fail_next("chat.postMessage", status=200, error="msg_too_long")

    await _deliver(app, clock, keys[1:])
    assert await app.outbox.state("c1:0") == "failed"
    assert fake.post_keys("C1") == keys[1:]
    assert _slack_posted(fake, "C1") == keys  # the refused one was not tried again
    health = await app.outbox.health()
    assert health.failed == 1 and "msg_too_long" in (health.last_failure or "")


async def test_discord_a_refused_post_fails_alone_and_its_lane_goes_on(
    make_app: Any, fake_discord: FakeDiscord, clock: Any
) -> None:
    fake = fake_discord
    app = await _discord_app(make_app, fake)
    channel = channel_of(fake)
    async with logged_in(app, fake):
        keys = await _queue(app, channel, "a", 3)
        fake.fail_next("POST", f"/channels/{channel.channel}/messages", status=400)
        await _deliver(app, clock, keys[1:])
    assert await app.outbox.state("a:0") == "failed"
    assert _discord_stored(fake, channel) == _nonces(keys[1:])
    assert _discord_sent_nonces(fake, channel) == _nonces(keys)
    health = await app.outbox.health()
    assert health.failed == 1 and "HTTP 400" in (health.last_failure or "")
