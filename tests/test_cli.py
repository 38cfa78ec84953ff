"""The command line: the demo end to end, config checks, and `run` without tokens."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from click.testing import CliRunner

from bot.cli import RedactSecrets, main

SCRIPT = """\
# a scripted console session
/help
@ann /help poll
@ann /frobnicate
@mod! /help
"""


def run_cli(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_scripted_demo_session_end_to_end():
    done = run_cli("demo", stdin=SCRIPT)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[only member sees this]" in out and "What I can do" in out
    for command in ("/feed", "/poll", "/survey", "/event", "/justdoit"):
        assert command in out
    assert "There is no command `/frobnicate`." in out
    assert "[only mod sees this]" in out


def test_demo_keeps_state_in_a_database_file(tmp_path):
    db = tmp_path / "demo.db"
    assert run_cli("demo", "--db", str(db), stdin="/help\n").returncode == 0
    assert db.exists() and db.stat().st_size > 0


def test_run_without_tokens_names_them_and_fails():
    done = run_cli("run")
    assert done.returncode != 0
    for name in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        assert name in done.stderr
    assert "itsm-bot demo" in done.stderr


def test_check_config_reports_the_bad_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[outbox]\nmax_atempts = 3\n")
    result = CliRunner().invoke(main, ["check-config", str(bad)])
    assert result.exit_code != 0
    assert "outbox.max_atempts: unknown key" in result.output
    good = tmp_path / "good.toml"
    good.write_text("[bot]\ntimezone = 'Europe/London'\n")
    result = CliRunner().invoke(main, ["check-config", str(good)])
    assert result.exit_code == 0 and "OK" in result.output


def test_unknown_option_is_refused():
    result = CliRunner().invoke(main, ["demo", "--colour", "red"])
    assert result.exit_code != 0 and "No such option" in result.output


def test_tokens_never_reach_a_log_line():
    secret = "xoxb-1234-secret-token"
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "connecting with %s", (secret,), None
    )
    RedactSecrets({"SLACK_BOT_TOKEN": secret}).filter(record)
    assert secret not in record.getMessage() and "***" in record.getMessage()
