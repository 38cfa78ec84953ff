"""Hostile input from the outside review (issue 15), through the real parts: numbers too large
for SQLite, starts that are not dates, a Slack users.info answer that is not JSON, and
`itsm-bot run --db`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from click.testing import CliRunner

from adapters.slack import create
from bot import commands as cmd
from bot.cli import main
from bot.help import Help
from tests.fakes.fake_slack import FakeSlack
from tests.test_slack_surface import SECRET, Http, Toy, _env

HUGE = "99999999999999999999999999"
WENT_WRONG = "Something went wrong"


# --- 1. Numbers too large for the database -------------------------------------------------


@pytest.mark.parametrize(
    ("line", "option"),
    [
        (f"@mod! /feed remove {HUGE}", "id"),
        (f"@mod! /feed pause {HUGE}", "id"),
        (f"@mod! /poll close {HUGE}", "id"),
        (f"@mod! /event cancel {HUGE}", "id"),
        (f'@mod! /poll create "Q?" A B max={HUGE}', "max"),
        (f"@mod! /poll close -{HUGE}", "id"),
    ],
)
async def test_a_number_too_large_is_a_range_error_naming_the_option(console, line, option):
    said = await console.say(line)

    assert WENT_WRONG not in said
    assert f"`{option}`:" in said
    assert "must be at" in said


def test_every_whole_number_option_has_an_upper_bound_even_undeclared():
    command = cmd.Command(("x",), "x", handler=None, options=[cmd.Option("n", cmd.Kind.INT)])  # type: ignore[arg-type]
    place = cmd.Place(channel=None, tz="UTC", now=None)  # type: ignore[arg-type]

    assert cmd.coerce(command, {"n": str(cmd.INT_MAX)}, place) == {"n": cmd.INT_MAX}
    for too_far in (str(cmd.INT_MAX + 1), str(-cmd.INT_MAX - 1), "9" * 5000):
        with pytest.raises(cmd.UsageError) as err:
            cmd.coerce(command, {"n": too_far}, place)
        assert err.value.option == "n" and "must be at" in str(err.value)
    with pytest.raises(cmd.UsageError) as err:  # a typed value from a platform, too
        cmd.coerce(command, {"n": 2**63}, place)
    assert err.value.option == "n"


# --- 2. A start that is not a date ---------------------------------------------------------


@pytest.mark.parametrize("start", ["-1", "5", "1.5", "2027", "7 8", "one", "a", "1700000000"])
async def test_a_start_that_is_not_a_date_is_refused_saying_what_was_understood(console, start):
    said = await console.say(f'@mod! /event add title="X" start="{start}"')

    assert "`start`:" in said and f"`{start}`" in said
    assert "created" not in said and WENT_WRONG not in said
    assert await console.app.db.fetchval("SELECT count(*) FROM events") == 0


async def test_the_refusal_names_the_guess_it_would_have_made(console):
    said = await console.say('@mod! /event add title="X" start="-1"')

    assert "2027" in said  # what the date reader made of it: 23 Jan 2027
    assert "not a date" in said


async def test_the_event_form_refuses_a_bare_number_as_its_start(console):
    assert "Form: New event" in await console.say("@mod! /event add")
    said = await console.say('@mod! form title="X" start="-1"')

    assert "- start:" in said and "`-1`" in said
    assert await console.app.db.fetchval("SELECT count(*) FROM events") == 0


async def test_a_poll_closing_at_a_bare_number_is_refused(console):
    said = await console.say('@mod! /poll create "Q?" A B closes=-1')

    assert "`closes`:" in said and "`-1`" in said
    assert await console.app.db.fetchval("SELECT count(*) FROM vote_runs") == 0


@pytest.mark.parametrize(
    "start",
    [
        "2031-11-05 09:00",
        "2026-12-05",
        "2026-12-05T09:00+01:00",
        "20261205",
        "next tuesday 9am",
        "tomorrow 14:00",
        "tomorrow",
        "friday",
        "dec 5",
        "5 December 2026 09:00",
        "in 2 days",
        "next week",
        "today 17:00",
        "17:00",
        "3 pm",
        "noon",
        "12/05/2026",
        "2d",
        "1h30m",
    ],
)
async def test_the_supported_forms_still_work(console, start):
    said = await console.say(f'@mod! /event add title="X" start="{start}"')

    assert "`start`:" not in said
    assert "Event #1 X created" in said


# --- 3. Slack: users.info answered with something that is not JSON ------------------------


NOT_JSON = {
    "json-typed garbage": ("<html><body>502 Bad Gateway</body></html>", "application/json"),
    "plain text": ("upstream connect error", "text/plain"),
}


@pytest.fixture(params=list(NOT_JSON))
async def garbled(request, make_app) -> AsyncIterator[Http]:
    """The http surface against a fake whose users.info answers with a body that is not JSON:
    the fake's own handler runs (the call is recorded), then its answer is replaced."""
    body, content_type = NOT_JSON[request.param]
    fake = FakeSlack()
    real_api = fake._api

    async def api(req: web.Request) -> web.StreamResponse:
        answer = await real_api(req)
        if req.match_info["method"] == "users.info":
            return web.Response(status=200, body=body.encode(), content_type=content_type)
        return answer

    fake._api = api  # type: ignore[method-assign]  # the route is bound at start(), below
    await fake.start()
    config = {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0}}
    app = await make_app([Help, Toy], config=config)
    surface = create(app, app.config.section("slack"), _env(fake, SLACK_SIGNING_SECRET=SECRET))
    await surface.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Http(app, surface, fake, session)
    finally:
        await surface.stop()
        await fake.close()


async def test_a_users_info_answer_that_is_not_json_leaves_the_member_answered(
    garbled: Http, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack.moderators")

    await garbled.command("secret", user_id="U1")
    (refused,) = await garbled.fake.wait_for_response(1)
    await garbled.command("vote", user_id="U2", channel_id="C7")
    (posted,) = await garbled.fake.wait_for_call("chat.postMessage")

    assert "`/toy secret` is for moderators only." in refused["text"]
    assert garbled.toy.secrets == []
    assert "Pick one" in json.dumps(posted["blocks"])
    assert [c["user"] for c in garbled.fake.calls_to("users.info")] == ["U1", "U2"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("users.info for U1" in m for m in warned), warned


# --- 4. `itsm-bot run --db` ----------------------------------------------------------------


def test_run_takes_db_and_without_tokens_still_names_them(tmp_path, monkeypatch):
    for name in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)

    done = CliRunner().invoke(main, ["run", "--db", str(tmp_path / "bot.db")])

    assert done.exit_code != 0
    assert "No such option" not in done.output
    assert "No platform tokens found" in done.output and "itsm-bot demo" in done.output


def test_run_db_overrides_the_configured_database_and_names_it_when_bad(tmp_path):
    configured = tmp_path / "configured.db"
    config = tmp_path / "run.toml"
    config.write_text(f"[bot]\ndatabase = {json.dumps(str(configured))}\n")
    bad = tmp_path / "notes.db"
    bad.write_text("these are my meeting notes, not a database\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    env.update(
        {
            "DISCORD_TOKEN": "not-a-token",  # reaches nothing: the database fails first
            "DISCORD_API_URL": "http://127.0.0.1:9/api/v10",
            "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/",
        }
    )

    done = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config), "--db", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )

    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert str(bad) in line and "cannot use the database" in line
    assert "file is not a database" in line
    assert not configured.exists()  # the configured file was never opened
