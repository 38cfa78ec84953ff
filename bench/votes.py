"""Votes benchmark: many members voting on one poll within about a second.

1,000 distinct members each press one option, and 100 of them press it twice more (200
repeated clicks; three presses of one option leave one vote). Clicks arrive spread evenly
over `--spread` seconds, twice: through `App.act` on a real SQLite file (the ack is the
ephemeral reply coming back), then through slack-bolt against the local fake Slack, which
runs with the clicking members in a process of its own. In Socket Mode (the default) each
click is an envelope and the ack is the frame answering it; with `--slack-mode http` each
is a signed request and the ack is the HTTP answer. Requests go as Slack sends them, over
HTTP/1.1 keep-alive connections (`--connections` of them at most, opened as needed), each
signed before its clock starts; the client is a few lines over asyncio streams, so the
time is the bot's and not an HTTP client library's. Afterwards the stored tally is
compared with what the clicks should give: `lost` members whose vote is missing or wrong,
`doubled` votes counted more than once.

    python bench/votes.py --votes 1000

    python bench/votes.py --votes 1000 --burst   # all 1,200 clicks at once

With `--burst` every click is sent at once instead of being spread. A click is
acknowledged only once it is journaled (bot/intake.py), so the ack times include that
commit. `cpu_ms_per_click` is the CPU each side spent per click: the bot's process (all
its threads) from the first click until every reply is out, and until the last click is
acknowledged (`bot_while_clicking`); Slack's side while clicking. It says where the time
goes on a machine shared with other work, where the ack times alone do not. The last
line is exactly `p99_ack_ms=X lost=L doubled=D`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot import config as configuration  # noqa: E402
from bot.app import App, freeze_startup_heap  # noqa: E402
from bot.cli import sections  # noqa: E402
from bot.model import Action, ChannelRef, Invocation, UserRef  # noqa: E402
from bot.polls import Polls  # noqa: E402

CHANNEL = ChannelRef("slack", "TBENCH", "CBENCH")
OPTIONS = ["Incident", "Change", "Problem", "Release"]

Click = Callable[[UserRef, int], Awaitable[str]]


def plan(votes: int, repeats: int) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """The clicks in arrival order, and the option each member should end up with."""
    members = [(f"U{i:05d}", i % len(OPTIONS)) for i in range(votes)]
    clicks = list(members)
    # Each repeater presses its option twice more, interleaved with everyone else.
    repeaters = members[: repeats // 2]
    for n, (user, option) in enumerate(repeaters):
        clicks.insert(min(len(clicks), 3 * n + 1), (user, option))
        clicks.insert(min(len(clicks), 7 * n + 5), (user, option))
    return clicks, dict(members)


async def run_clicks(click: Click, clicks: list[tuple[str, int]], spread: float) -> list[float]:
    """Fire the clicks at an even pace; return each one's ack time in milliseconds.

    Each click's task is made when it is due: making all of them up front stalls the loop
    and sends the first few dozen at once."""
    latencies: list[float] = []
    failures: list[str] = []

    async def one(user: str, option: int) -> None:
        began = time.perf_counter()
        text = await click(UserRef("slack", "TBENCH", user, user), option)
        latencies.append((time.perf_counter() - began) * 1000)
        if "Something went wrong" in text:
            failures.append(text)

    start = time.perf_counter()
    gap = spread / max(1, len(clicks))
    sent: list[asyncio.Task[None]] = []
    for k, (user, option) in enumerate(clicks):
        if gap:
            await asyncio.sleep(max(0.0, start + k * gap - time.perf_counter()))
        sent.append(asyncio.create_task(one(user, option)))
    await asyncio.gather(*sent)
    elapsed = time.perf_counter() - start
    print(f"clicks={len(clicks)} elapsed_s={elapsed:.3f} errors={len(failures)}")
    return latencies


async def tally(app: App, expected: dict[str, int]) -> tuple[int, int]:
    rows = await app.db.fetchall("SELECT voter, option FROM vote_answers WHERE run_id = 1")
    per_voter = Counter(r["voter"] for r in rows)
    doubled = sum(n - 1 for n in per_voter.values() if n > 1)
    got = {r["voter"].rsplit(":", 1)[1]: r["option"] for r in rows}
    lost = sum(1 for user, option in expected.items() if got.get(user) != option)
    return lost, doubled


def report(name: str, latencies: list[float]) -> float:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"[{name}] p50_ack_ms={statistics.median(ordered):.2f} p99_ack_ms={p99:.2f} "
        f"max_ack_ms={ordered[-1]:.2f}"
    )
    return p99


async def core(args: argparse.Namespace, tmp: Path) -> tuple[float, int, int]:
    """Through App.act and the store, as an adapter would call them."""
    config = configuration.build(sections())
    async with App.running(config, [Polls], db_path=str(tmp / "core.db"), background=False) as app:
        poll = " ".join(f'"{o}"' for o in OPTIONS)
        mod = UserRef("slack", "TBENCH", "MOD", "mod")
        await app.invoke(Invocation(("poll",), mod, CHANNEL, True, text=f'create "Bench?" {poll}'))
        freeze_startup_heap()  # as `itsm-bot run` does once connected

        async def click(user: UserRef, option: int) -> str:
            replies = await app.act(Action("poll.vote", f"1:{option}", user, CHANNEL, "m1"))
            return replies[0].post.text

        clicks, expected = plan(args.votes, args.repeats)
        latencies = await run_clicks(click, clicks, args.spread)
        await app.features["poll"].refresher.flush()
        edits = await app.db.fetchval("SELECT count(*) FROM outbox WHERE kind = 'edit'")
        print(f"[core] pending_edit_rows={edits} (one coalesced row per poll message)")
        lost, doubled = await tally(app, expected)
        return report("core", latencies), lost, doubled


def _member(user: str) -> UserRef:
    return UserRef("slack", "TBENCH", user, user)


async def socket_burst(fake: Any, payloads: list[dict]) -> list[float]:
    """Every click at once: the envelopes are written back to back, then each one's ack time
    is taken from the frame leaving to its ack being read, as Slack would see it."""
    start = time.perf_counter()
    envelopes = await fake.push_many("interactive", payloads)
    sent = time.perf_counter() - start
    await asyncio.gather(*(fake.wait_ack(e, timeout=60) for e in envelopes))
    print(f"clicks={len(envelopes)} sent_within_s={sent:.3f} errors=0")
    return [(fake.acked_at[e] - fake.sent_at[e]) * 1000 for e in envelopes]


class KeepAlive:
    """HTTP/1.1 keep-alive connections to one server, as Slack holds them to an app: a
    request goes on an idle connection, else on a new one while fewer than `size` are
    open, else waits for the first to come free."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.opened = 0
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """POST `body`; the answer's status once the whole answer is read."""
        request = (
            "".join(
                [f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"]
                + [f"{k}: {v}\r\n" for k, v in headers.items()]
                + [f"Content-Length: {len(body)}\r\n\r\n"]
            ).encode()
            + body
        )
        reader, writer = await self._acquire()
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
        await reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection") == "close":
            writer.close()
            self.opened -= 1
        else:
            self._release((reader, writer))
        return int(head[0].split(" ", 2)[1])

    async def _acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._idle:
            return self._idle.pop()
        if self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection(self.host, self.port)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return await waiter

    def _release(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


def slack_side(conn: Connection, mode: str, votes: int, repeats: int, spread: float,
               connections: int) -> None:  # fmt: skip
    """Slack's side, in a process of its own (as Slack and its members are not inside the bot):
    the fake Web API and response_url, and the members' clicks as signed block_actions."""
    asyncio.run(_slack_side(conn, mode, votes, repeats, spread, connections))


async def _slack_side(
    conn: Connection, mode: str, votes: int, repeats: int, spread: float, connections: int
) -> None:
    from urllib.parse import urlsplit

    from tests.fakes.fake_slack import (
        FakeSlack,
        block_actions_payload,
        interaction_body,
        signed_headers,
    )

    loop = asyncio.get_running_loop()
    fake = await FakeSlack().start()
    conn.send(fake.base_url)
    url = urlsplit(await loop.run_in_executor(None, conn.recv))  # the bot is up (connected)
    presses = itertools.count(1)

    def payload(user: UserRef, option: int) -> dict:
        # Slack gives every interaction its own trigger_id: the bot's journal keys on it.
        return block_actions_payload(
            "poll.vote#0", f"1:{option}", user_id=user.user, response_url=fake.response_url(),
            trigger_id=f"{next(presses)}.{user.user}",
        )  # fmt: skip

    clicks, _ = plan(votes, repeats)
    # Each click's request, signed before the clicking starts (within Slack's five minutes
    # of when it is sent): building and signing it is Slack's work, not the bot's.
    signed: dict[str, collections.deque[tuple[bytes, dict[str, str]]]] = {}
    for user, option in clicks:
        body = interaction_body(payload(_member(user), option))
        signed.setdefault(user, collections.deque()).append(
            (body.encode(), signed_headers("bench-secret", body))
        )
    pool = KeepAlive(url.hostname or "127.0.0.1", url.port or 80, connections)

    async def over_http(user: UserRef, option: int) -> str:
        body, headers = signed[user.user].popleft()
        status = await asyncio.wait_for(pool.post(url.path, body, headers), timeout=10)
        return "" if status == 200 else "Something went wrong"

    async def over_socket(user: UserRef, option: int) -> str:
        envelope = await fake.push("interactive", payload(user, option))
        await fake.wait_ack(envelope, timeout=30)
        return ""

    cpu = time.process_time()
    if mode == "socket" and not spread:
        latencies = await socket_burst(fake, [payload(_member(u), o) for u, o in clicks])
    else:
        click = over_socket if mode == "socket" else over_http
        latencies = await run_clicks(click, clicks, spread)
        if mode == "socket":  # as Slack sees it: from the frame leaving to its ack
            latencies = [(fake.acked_at[e] - fake.sent_at[e]) * 1000 for e in fake.sent_at]
    cpu = time.process_time() - cpu
    conn.send("clicked")
    pool.close()
    started = time.perf_counter()
    await fake.wait_for_response(len(clicks), timeout=120)
    replies_after = time.perf_counter() - started
    conn.send((latencies, replies_after, len(fake.calls_to("users.info")), cpu))
    await loop.run_in_executor(None, conn.recv)  # the bot is done with the fake
    await fake.close()


async def slack(args: argparse.Namespace, tmp: Path) -> tuple[float, int, int]:
    """Through slack-bolt against the fake: in Socket Mode (the default deployment) the ack is
    the frame answering each envelope; in HTTP mode, the HTTP answer to each request."""
    from adapters.slack import create

    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    conn, child_conn = spawn.Pipe()
    side = spawn.Process(
        target=slack_side,
        args=(
            child_conn,
            args.slack_mode,
            args.votes,
            args.repeats,
            args.spread,
            args.connections,
        ),  # fmt: skip
        daemon=True,
    )
    side.start()
    base_url = await loop.run_in_executor(None, conn.recv)
    config = configuration.build(
        sections(), {"slack": {"mode": args.slack_mode, "host": "127.0.0.1", "port": 0}}
    )
    env = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_APP_TOKEN": "xapp-bench",
           "SLACK_SIGNING_SECRET": "bench-secret", "SLACK_API_URL": base_url}  # fmt: skip
    async with App.running(config, [Polls], db_path=str(tmp / "slack.db")) as app:
        surface = create(app, config.section("slack"), env)
        await surface.start()
        freeze_startup_heap()
        try:
            channel = ChannelRef("slack", "T1", "C1")
            mod = UserRef("slack", "T1", "MOD", "mod")
            poll = " ".join(f'"{o}"' for o in OPTIONS)
            await app.invoke(Invocation(("poll",), mod, channel, True, text=f'create "Q?" {poll}'))
            cpu = time.process_time()
            conn.send(f"http://127.0.0.1:{surface.port}/slack/events")
            await loop.run_in_executor(None, conn.recv)  # the last click is acknowledged
            clicking = time.process_time() - cpu
            latencies, replies_after, lookups, slack_cpu = await loop.run_in_executor(
                None, conn.recv
            )
            await asyncio.wait_for(surface.settled(), timeout=120)
            cpu = time.process_time() - cpu
            print(f"[slack] all ephemeral replies in {replies_after:.2f}s after the last ack; "
                  f"users.info calls={lookups}")  # fmt: skip
            per_click = 1000 / len(latencies)
            print(f"[slack] cpu_ms_per_click bot={cpu * per_click:.2f} "
                  f"bot_while_clicking={clicking * per_click:.2f} "
                  f"slack_side={slack_cpu * per_click:.2f}")  # fmt: skip
            _, expected = plan(args.votes, args.repeats)
            lost, doubled = await tally(app, expected)
        finally:
            await surface.stop()
            conn.send("done")
            side.join(timeout=30)
    return report(f"slack-{args.slack_mode}", latencies), lost, doubled


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--votes", type=int, default=1000, help="distinct members")
    parser.add_argument("--repeats", type=int, default=200, help="repeated clicks")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds the clicks span")
    parser.add_argument(
        "--burst", action="store_true", help="send every click at once instead of spreading them"
    )
    parser.add_argument("--core-only", action="store_true", help="skip the Slack leg")
    parser.add_argument(
        "--connections", type=int, default=128,
        help="keep-alive connections Slack's side opens at most (HTTP mode)",
    )  # fmt: skip
    parser.add_argument(
        "--slack-mode", choices=["socket", "http"], default="socket",
        help="how the Slack leg connects (socket is the default deployment)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.burst:
        args.spread = 0.0
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-votes-") as tmp:
        results = [await core(args, Path(tmp))]
        if not args.core_only:
            results.append(await slack(args, Path(tmp)))
    p99 = max(r[0] for r in results)
    lost = sum(r[1] for r in results)
    doubled = sum(r[2] for r in results)
    print(f"p99_ack_ms={p99:.2f} lost={lost} doubled={doubled}")


if __name__ == "__main__":
    asyncio.run(main())
