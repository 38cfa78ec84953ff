"""The feed parser's processes die with the bot: `itsm-bot run` as a real process, with
`[feeds] parse_workers = 1` (rounds parse in one process, not in the thread), killed with
SIGKILL once it has parsed a feed; nothing it started is left running (not the worker,
not the forkserver, not multiprocessing's resource tracker).

The bot runs in a session of its own (tests/process.py), so whatever it started is in its
process group even once orphaned; the harness kills that group only on the way out, after
the checks here.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests import process
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.process import BotProcess, read_db, subscribe_feed, wait_for, write_config

fake, feeds = process.fake, process.feeds  # the fixtures
TIMEOUT = 90.0  # seconds, generous: the machine is shared


def group(pgid: int) -> dict[int, str]:
    """The live processes of process group `pgid` (pid -> command line); zombies, which
    are dead and only wait to be reaped, are left out."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found[int(entry)] = command.decode(errors="replace").strip()
    return found


async def test_sigkill_of_the_bot_leaves_no_parser_process_behind(
    fake: FakeSlack, feeds: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    url = feeds.set("f.xml", body=rss(entries(3)))
    await subscribe_feed(tmp_path, db, url, "C1", backlog=3)
    feeds_section = {"poll_every": "1s", "allow_private": True, "per_channel_cap": 100}
    sections = {"feeds": {**feeds_section, "parse_workers": 1}}  # a pool: its processes
    config = write_config(tmp_path, db, sections)
    async with BotProcess(fake, config, tmp_path) as bot:
        await bot.start()
        parsed = "SELECT count(*) FROM feed_sources WHERE content_hash IS NOT NULL"
        await wait_for(lambda: read_db(db, parsed)[0][0] == 1, TIMEOUT, "the feed parsed")
        helpers = {p: c for p, c in group(bot.pid).items() if p != bot.pid}
        assert any("forkserver" in c for c in helpers.values()), helpers
        assert len(helpers) >= 2, helpers  # the forkserver and its worker, at least
        os.kill(bot.pid, signal.SIGKILL)  # as a crash or an OOM kill would
        assert bot.proc is not None
        await bot.proc.wait()
        try:
            await wait_for(lambda: not group(bot.pid), TIMEOUT, "the bot's helpers to end")
        except TimeoutError:
            pytest.fail(f"left running after the bot was killed: {group(bot.pid)}")
