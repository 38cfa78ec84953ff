"""Run the real `itsm-bot run` as a child process against a FakeSlack in this event loop.

Fault tests and benchmarks need the bot exactly as it is deployed: its own process, its own
event loop, its own SQLite file, killed with SIGKILL at a random moment and started again on
the same file. This module does the plumbing and nothing else:

- `write_config` writes a TOML configuration into a directory (values as Python data);
- `subscribe_feed` subscribes a channel to a feed before the bot starts, through the
  `feeds import` command as an operator would;
- `BotProcess` starts `python -m bot run --config CFG` with its environment pointing at the
  fake (bot and app tokens, `SLACK_API_URL`, `ITSM_BOT_LOG_LEVEL=INFO`), waits until the fake
  sees it connected, kills it (SIGKILL) or stops it (SIGTERM), and keeps each run's stderr in
  a file of its own (never a pipe, which fills up and stalls a chatty child);
- `read_db` reads the bot's database read-only from outside while it runs;
- `Delivery` counts what reached the fake: lost, doubled and out-of-order posts.

The child runs in a session of its own, so after it is killed any helper process it had
(the feed parser's workers) is reaped with it, by its process group; nothing else is ever
signalled. `BotProcess` is an async context manager that always kills its child on the way
out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.fakes.fake_slack import TEAM_ID, FakeSlack
from tests.fakes.feed_server import FeedServer

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90.0  # seconds a child may take to connect on a busy machine
EXIT_TIMEOUT = 60.0  # seconds a child may take to exit after SIGTERM


# --- Configuration ---------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    """One TOML value: JSON's strings, numbers and arrays are valid TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_text(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """A TOML document of plain `[section]` tables."""
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def write_config(
    directory: Path, db: Path, sections: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """Write `bot.toml` in `directory` for the database `db`, with `sections` on top (the
    bot's defaults otherwise: feeds parse in its own thread, as a user's bot does)."""
    merged: dict[str, dict[str, Any]] = {"bot": {"database": str(db)}, "feeds": {}}
    for name, values in (sections or {}).items():
        merged.setdefault(name, {}).update(values)
    path = directory / "bot.toml"
    path.write_text(toml_text(merged))
    return path


def channel_ref(channel: str) -> str:
    """The bot's key for a channel of the fake's workspace (`slack:T1:C1`)."""
    return f"slack:{TEAM_ID}:{channel}"


# --- Outside the bot -------------------------------------------------------------------


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any platform token or bot setting of its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DISCORD_", "ITSM_BOT_", "PORT"))
    }
    env.update(PYTHONUNBUFFERED="1", ITSM_BOT_LOG_LEVEL="INFO")
    env.update(extra or {})
    return env


async def run_cli(*args: str, timeout: float = EXIT_TIMEOUT) -> tuple[int, str]:
    """Run `python -m bot ARGS` to the end; return its exit status and combined output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        cwd=REPO, env=child_env(), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(errors="replace")


async def subscribe_feed(
    directory: Path, db: Path, url: str, channel: str, backlog: int = 50, name: str = ""
) -> None:
    """Subscribe `channel` (a fake Slack channel id, e.g. "C1", or a channel key of any
    platform, e.g. "discord:GUILD:CHANNEL") to the feed at `url`, in `db`, with
    `itsm-bot feeds import` (one OPML file per feed and channel)."""
    opml = directory / f"{name or channel}.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>'
        f'<outline type="rss" text="{name or channel}" xmlUrl="{url}"/></body></opml>'
    )
    # The feeds are served on 127.0.0.1, which only `[feeds] allow_private` lets in.
    config = directory / "import.toml"
    config.write_text("[feeds]\nallow_private = true\n")
    status, out = await run_cli(
        "feeds", "import", str(opml), "--channel", channel if ":" in channel else channel_ref(channel),
        "--backlog", str(backlog), "--db", str(db), "--config", str(config),
    )  # fmt: skip
    if status != 0 or "1 new subscription" not in out:
        raise RuntimeError(f"feeds import failed ({status}): {out}")


def read_db(db: Path, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of `query` on the bot's SQLite file, opened read-only (the bot may be running:
    WAL lets a reader see the last commit without blocking the writer)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


async def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.1) -> None:
    """Poll `predicate()` (for state outside the fake: a database, a log file) until it
    holds; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(every)


# --- The bot's process -----------------------------------------------------------------


class BotExited(RuntimeError):
    """The child ended while it was expected to be running."""


@dataclass
class BotProcess:
    """`itsm-bot run` against `fake`, started and stopped as often as a test wants.

    Every start is a new process on the same configuration (so the same database); its
    stderr goes to `stderr-N.log` in `directory`. `token` is the bot token the next start
    uses (change it between starts, e.g. after revoking one).
    """

    fake: FakeSlack
    config: Path
    directory: Path
    token: str = "xoxb-process-test"
    app_token: str = "xapp-process-test"
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: asyncio.subprocess.Process | None = None
    runs: int = 0
    started_at: float = 0.0

    # --- Starting -----------------------------------------------------------------------

    async def start(self, connect: bool = True, timeout: float = START_TIMEOUT) -> None:
        """Start a new process; with `connect`, return once the fake has accepted its
        Socket Mode connection (BotExited if it ends first)."""
        if self.running:
            raise RuntimeError("the bot is still running")
        self.runs += 1
        connections = self.fake.connections
        env = child_env({**self.platform_env(), **self.extra_env})
        with self.stderr_path(self.runs).open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--config", str(self.config),
                cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        self.started_at = time.monotonic()
        if connect:
            await self.wait_connected(connections + 1, timeout)

    def platform_env(self) -> dict[str, str]:
        """The variables that point the bot at the fake (tests/discord_process.py: Discord's)."""
        return {
            "SLACK_BOT_TOKEN": self.token,
            "SLACK_APP_TOKEN": self.app_token,
            "SLACK_API_URL": self.fake.base_url,
        }

    async def wait_connected(self, count: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until the fake has seen `count` connections in all, or the child ended."""
        assert self.proc is not None
        connected = asyncio.ensure_future(self.fake.wait_connected(count, timeout))
        exited = asyncio.ensure_future(self.proc.wait())
        done, _ = await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
        if connected in done:
            exited.cancel()
            connected.result()  # a TimeoutError says what the fake saw meanwhile
            return
        connected.cancel()
        raise BotExited(f"the bot exited ({self.proc.returncode}) before connecting:\n{self.log()}")

    # --- Ending -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def kill(self) -> int:
        """SIGKILL the bot, as a crash or an OOM kill would; return its exit status."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        status = await self.proc.wait()
        self._reap_group()
        return status

    async def stop(self, timeout: float = EXIT_TIMEOUT) -> int:
        """SIGTERM the bot and wait for it to exit; return its exit status. A bot that does
        not exit in time is killed, and BotExited says so."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            return await self.wait_exit(timeout)
        except TimeoutError:
            await self.kill()
            raise BotExited(f"the bot did not exit within {timeout:g}s of SIGTERM") from None

    async def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Wait for the child to end by itself; return its exit status."""
        assert self.proc is not None
        status = await asyncio.wait_for(self.proc.wait(), timeout)
        self._reap_group()
        return status

    def _reap_group(self) -> None:
        """Kill what is left of the child's own process group (its helper processes)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def close(self) -> None:
        """Make sure no child outlives the test."""
        if self.proc is not None:
            await self.kill()

    async def __aenter__(self) -> BotProcess:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    # --- What it said -------------------------------------------------------------------

    def stderr_path(self, run: int) -> Path:
        return self.directory / f"stderr-{run}.log"

    def log(self, run: int | None = None) -> str:
        """The stderr of one run (default: the latest), or of every run with `run=0`."""
        runs = range(1, self.runs + 1) if run == 0 else [run or self.runs]
        parts = []
        for n in runs:
            path = self.stderr_path(n)
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def log_lines(self, needle: str, run: int | None = None) -> list[str]:
        return [line for line in self.log(run).splitlines() if needle in line]


# --- What reached the fake -------------------------------------------------------------


def arrival(message: Mapping[str, Any]) -> float:
    """A message's arrival at the fake, in epoch seconds (Slack's ts is the post time)."""
    return float(Decimal(str(message["ts"])))


def titles(fake: FakeSlack, channel: str) -> list[str]:
    """The text (a feed item's title) of every bot post in `channel`, in posting order."""
    return [str(m.get("text", "")) for m in fake.posts(channel)]


def in_order_count(positions: Sequence[int]) -> int:
    """The length of the longest increasing run of `positions` (not necessarily adjacent):
    the posts that can be called in order; every other one is out of order."""
    tails: list[int] = []
    for p in positions:
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if tails[mid] < p:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(tails):
            tails.append(p)
        else:
            tails[lo] = p
    return len(tails)


@dataclass
class Delivery:
    """Lost, doubled and out-of-order posts against what each channel should have got."""

    lost: int = 0
    doubled: int = 0
    doubled_keys: int = 0
    out_of_order: int = 0
    detail: dict[str, str] = field(default_factory=dict)

    @classmethod
    def count(cls, fake: FakeSlack, expected: Mapping[str, Sequence[str]]) -> Delivery:
        """Compare the fake's posts per channel with `expected` titles in queue order."""
        found = cls()
        for channel, wanted in expected.items():
            found.add(channel, list(wanted), titles(fake, channel), fake.post_keys(channel))
        return found

    def add(self, channel: str, wanted: list[str], got: list[str], keys: Iterable[str]) -> None:
        seen = Counter(got)
        lost = [t for t in wanted if seen[t] == 0]
        doubled = {t: n for t, n in seen.items() if n > 1}
        twice = {k: n for k, n in Counter(keys).items() if n > 1}
        place = {t: i for i, t in enumerate(wanted)}
        firsts = list(dict.fromkeys(t for t in got if t in place))
        disorder = len(firsts) - in_order_count([place[t] for t in firsts])
        self.lost += len(lost)
        self.doubled += sum(n - 1 for n in doubled.values())
        self.doubled_keys += sum(n - 1 for n in twice.values())
        self.out_of_order += disorder
        if lost or doubled or twice or disorder or len(got) != len(wanted):
            self.detail[channel] = (
                f"{len(got)} posts for {len(wanted)} items; lost={lost} doubled={doubled} "
                f"keys twice={twice} out_of_order={disorder}; got={got}"
            )

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.doubled_keys or self.out_of_order)

    def __str__(self) -> str:
        head = (
            f"lost={self.lost} doubled={self.doubled} doubled_keys={self.doubled_keys} "
            f"out_of_order={self.out_of_order}"
        )
        return "\n".join([head, *(f"  {c}: {d}" for c, d in self.detail.items())])


# --- Fixtures: a test module names them (`fake, feeds = process.fake, process.feeds`) ---


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack().start()
    try:
        yield slack
    finally:
        await slack.close()


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
