"""`itsm-bot discord-invite`: the OAuth2 link with the two scopes and only the needed permissions."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import discord
from click.testing import CliRunner

from bot.cli import main

APP_ID = 1150000000000000001


def _query(url: str) -> dict[str, list[str]]:
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "discord.com", "/oauth2/authorize")
    return parse_qs(parts.query)


def test_invite_from_client_id_asks_only_for_what_the_bot_uses() -> None:
    result = CliRunner().invoke(main, ["discord-invite"], env={"DISCORD_CLIENT_ID": str(APP_ID)})
    assert result.exit_code == 0, result.output
    query = _query(result.output.strip())
    assert query["client_id"] == [str(APP_ID)]
    assert query["scope"] == ["bot applications.commands"]
    granted = discord.Permissions(int(query["permissions"][0]))
    assert granted == discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        create_public_threads=True,
        send_messages_in_threads=True,
        manage_events=True,
    )
    assert query["permissions"] == ["317827697664"]  # the number the README shows


def test_invite_derives_the_id_from_the_token_and_asks_only_what_it_uses(
    tmp_path: Path,
) -> None:
    first = base64.urlsafe_b64encode(str(APP_ID).encode()).decode().rstrip("=")
    token = f"{first}.GhIjKl.secret-part-never-printed"
    config = tmp_path / "bot.toml"
    config.write_text("[discord]\nguild_id = 1\n")
    result = CliRunner().invoke(
        main, ["discord-invite", "--config", str(config)], env={"DISCORD_TOKEN": token}
    )
    assert result.exit_code == 0, result.output
    assert "secret-part" not in result.output
    query = _query(result.output.strip())
    assert query["client_id"] == [str(APP_ID)]
    granted = discord.Permissions(int(query["permissions"][0]))
    assert granted.send_messages and granted.embed_links and granted.attach_files
    assert granted.manage_events and granted.create_public_threads  # events: mirror, thread
    assert not granted.create_events  # Manage Events covers the bot's own events
    assert not granted.administrator and not granted.manage_messages
    assert not granted.manage_threads and not granted.create_private_threads


def test_invite_without_an_id_or_with_a_bad_token_says_what_to_set() -> None:
    runner = CliRunner()
    nothing = runner.invoke(
        main, ["discord-invite"], env={"DISCORD_CLIENT_ID": "", "DISCORD_TOKEN": ""}
    )
    assert nothing.exit_code != 0 and "DISCORD_CLIENT_ID" in nothing.output
    garbage = runner.invoke(
        main, ["discord-invite"], env={"DISCORD_CLIENT_ID": "", "DISCORD_TOKEN": "not-a-token"}
    )
    assert garbage.exit_code != 0 and "does not look like a bot token" in garbage.output
    assert "not-a-token" not in garbage.output
