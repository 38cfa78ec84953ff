"""What a real process imports: `itsm-bot run` on one platform never loads the other
platform's library, nor what only some work needs (the feed parsers and filters before a
feed is parsed, the web console's templates while it is off, a chart or calendar library
before a chart or calendar is made, the PostgreSQL driver on SQLite: an idle bot's
memory, issue #16), nor pydantic at all (configuration is read with msgspec), and
`itsm-bot demo` loads neither platform library, yet prints what it always printed.

Each child runs with PYTHONPROFILEIMPORTTIME=1: Python itself then writes one line to
stderr for every module the process imports, first use included, so the check covers
the whole life of the process (start, a command answered, shutdown), not one moment.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_slack import FakeSlack, slash_command_payload
from tests.process import REPO, START_TIMEOUT, BotProcess, child_env, write_config

TRACE = {"PYTHONPROFILEIMPORTTIME": "1"}
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)\s*$")
SLACK_LIBRARIES = {"slack_bolt", "slack_sdk"}
# Loaded by the first feed parsed or filter compiled, never by a bot that has none to parse;
# xml also by `feeds import|export` (OPML), never by the bot itself.
FEED_PARSING = {"feedparser", "feedparser_rs", "nh3", "regex", "xml"}
# Not needed by a bot idle on one platform: the above, the web console's templates and
# cookie signing (only with [web] enabled, which the default configuration is not), and
# the near-miss matching of a mistyped time zone.
IDLE_UNNEEDED = FEED_PARSING | {"jinja2", "itsdangerous", "difflib"}
# Each loaded where its one use is (a chart drawn, an .ics written or read, a repeat rule or
# a typed date parsed), or by one configuration that the default is not: asyncpg with a
# postgresql:// database, cryptography with [slack] distribution (the workspaces' tokens).
IDLE_UNNEEDED |= {"matplotlib", "PIL", "icalendar", "recurring_ical_events", "dateutil"}
IDLE_UNNEEDED |= {"dateparser", "asyncpg", "cryptography"}
# Configuration is read with msgspec; pydantic, still installed where an older bot was, must
# stay unimported (with the bot's config models it cost an idle process about 10 MB).
IDLE_UNNEEDED |= {"pydantic", "pydantic_core"}


def imported(log: str) -> set[str]:
    """The top-level names of every module the process imported."""
    return {m.group(1).split(".")[0] for line in log.splitlines() if (m := IMPORT_LINE.match(line))}


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    try:
        yield fake
    finally:
        await fake.close()


async def test_run_on_slack_alone_never_imports_discord(slack: FakeSlack, tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "bot.db")
    async with BotProcess(slack, config, tmp_path, extra_env=TRACE) as bot:
        await bot.start()
        payload = slash_command_payload("/itsm", "", response_url=slack.response_url())
        await slack.wait_ack(await slack.push("slash_commands", payload), timeout=START_TIMEOUT)
        await slack.wait_for_response(1, timeout=START_TIMEOUT)  # the help, answered
        assert await bot.stop() == 0, bot.log()[-2000:]
    modules = imported(bot.log())
    assert SLACK_LIBRARIES <= modules  # the trace lists what was imported
    assert not {"discord"} & modules, sorted(m for m in modules if m == "discord")
    assert not IDLE_UNNEEDED & modules, sorted(IDLE_UNNEEDED & modules)
    assert "connected to slack" in bot.log()


async def test_run_on_discord_alone_never_imports_slack(
    discord_fake: FakeDiscord, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tmp_path / "bot.db")
    env = {
        "DISCORD_TOKEN": "startup-test-token",
        "DISCORD_API_URL": discord_fake.api_base,
        "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
        **TRACE,
    }
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(config),
            cwd=REPO, env=child_env(env), stdin=asyncio.subprocess.DEVNULL,
            stdout=log, stderr=log,
        )  # fmt: skip
    try:
        await discord_fake.wait_ready(timeout=START_TIMEOUT)
        await discord_fake.wait_for_request("PUT", "*/commands", timeout=START_TIMEOUT)
        sent = await discord_fake.send_interaction(discord_fake.slash_payload("help"))
        await discord_fake.wait_interaction_response(sent["id"], timeout=START_TIMEOUT)
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), START_TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = log_path.read_text(errors="replace")
    modules = imported(text)
    assert "discord" in modules  # the trace lists what was imported
    assert not SLACK_LIBRARIES & modules, sorted(SLACK_LIBRARIES & modules)
    assert not IDLE_UNNEEDED & modules, sorted(IDLE_UNNEEDED & modules)
    # html is the feeds' alone on Discord (cleaning text, reading a page); bolt brings it on Slack.
    assert "html" not in modules
    assert "connected to discord" in text


async def test_demo_imports_no_platform_library_and_prints_as_before(tmp_path: Path) -> None:
    files = tmp_path / "files"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo", "--files", str(files),
        cwd=REPO, env=child_env({"ITSM_BOT_LOG_LEVEL": "WARNING", **TRACE}),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(b"/help\n"), START_TIMEOUT)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    lines = out.decode().splitlines()
    modules = imported("\n".join(lines))
    assert "bot" in modules and "aiosqlite" in modules  # the trace lists what was imported
    assert not ({"discord"} | SLACK_LIBRARIES) & modules
    said = [line for line in lines if not line.startswith("import time:")]
    # The first thing said, before any seeded post: where the files go.
    assert said[0] == f"Files the bot sends (charts, exports, calendars) go to {files}"
    # Then the seeded posts, numbered from 1: the latest item of each sample feed and one
    # announcement (with its calendar file) per bundled event.
    from bot.events import DEMO_EVENTS, load_demo_events
    from bot.feeds.demo import demo_feeds

    events = [e["title"] for e in load_demo_events(DEMO_EVENTS)]
    posts = [line for line in said if re.match(r"#\d+ \[public\]$", line)]
    assert posts == [f"#{n} [public]" for n in range(1, len(demo_feeds()) + len(events) + 1)]
    for title in events:
        assert any(line.startswith(f"  ** 📅 {title} **") for line in said), title
    assert len(list(files.glob("*.ics"))) == len(events)
    # And the answer to the one line of the script.
    text = "\n".join(said)
    assert "What I can do" in text and "[only" in text
    for command in ("/feed", "/poll", "/survey", "/event", "/justdoit"):
        assert command in text
