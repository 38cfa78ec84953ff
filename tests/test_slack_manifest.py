"""`itsm-bot slack-manifest`: a manifest generated from the commands the core declares."""

from __future__ import annotations

import json

from click.testing import CliRunner

from adapters.slack import manifest
from bot import commands as cmd
from bot.app import Context, Feature
from bot.cli import main
from bot.features import all_features
from bot.help import Help
from tests.conftest import make_config


class Toy(Feature):
    name = "toy"

    def register(self) -> None:
        async def handler(ctx: Context, **_: object) -> None:
            return None

        option = cmd.Option("what", positional=True, required=True)
        self.app.command(cmd.Command(("toy", "make"), "Make a toy", handler, [option]))
        self.app.command(cmd.Command(("toy", "break"), "Break a toy", handler))
        self.app.command(cmd.Command(("ping",), "Answer pong", handler, [option]))


def test_commands_come_from_the_registry_with_help_as_itsm() -> None:
    commands = manifest.registry(make_config(), [Help, Toy])
    data = manifest.manifest("Community Bot", commands)

    slash = {c["command"]: c for c in data["features"]["slash_commands"]}
    assert list(slash) == ["/ping", "/toy", "/itsm"]
    assert slash["/toy"]["usage_hint"] == "break | make"
    assert slash["/ping"]["usage_hint"] == "<what>"
    assert all(c["should_escape"] is True and "url" not in c for c in slash.values())
    assert data["settings"]["socket_mode_enabled"] is True
    assert data["settings"]["interactivity"] == {"is_enabled": True}
    scopes = data["oauth_config"]["scopes"]["bot"]
    assert {"commands", "chat:write", "users:read", "channels:history"} <= set(scopes)
    assert "reactions:read" in scopes  # the digest reads reactions on the bot's posts


def test_http_mode_manifest_points_commands_and_interactivity_at_the_url() -> None:
    url = "https://bot.example.org/slack/events"
    data = manifest.manifest("Bot", manifest.registry(make_config(), [Help]), request_url=url)

    assert data["settings"]["socket_mode_enabled"] is False
    assert data["settings"]["interactivity"]["request_url"] == url
    assert [c["url"] for c in data["features"]["slash_commands"]] == [url]


def test_cli_prints_json_for_every_installed_feature(tmp_path, monkeypatch) -> None:
    config = tmp_path / "bot.toml"
    config.write_text('[bot]\nname = "Our ITSM Bot"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["slack-manifest", "--config", str(config)])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["display_information"]["name"] == "Our ITSM Bot"
    expected = manifest.registry(make_config(), all_features())
    commands = [c["command"] for c in data["features"]["slash_commands"]]
    assert "/itsm" in commands and len(commands) == len(expected.groups)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.toml"]  # no database made


def test_distribution_manifest_has_the_oauth_redirect_and_the_uninstall_events() -> None:
    data = manifest.manifest(
        "Bot", manifest.registry(make_config(), [Help]), distribution="https://bot.example.org/"
    )

    assert data["oauth_config"]["redirect_urls"] == ["https://bot.example.org/slack/oauth_redirect"]
    settings = data["settings"]
    assert settings["org_deploy_enabled"] is False
    assert settings["is_hosted"] is False
    assert settings["token_rotation_enabled"] is False
    assert settings["event_subscriptions"] == {"bot_events": ["app_uninstalled", "tokens_revoked"]}
    assert settings["socket_mode_enabled"] is True  # events come over the socket too


def test_cli_distribution_in_http_mode_sends_events_to_the_request_url() -> None:
    url = "https://bot.example.org/slack/events"
    args = ["slack-manifest", "--request-url", url, "--distribution", "https://bot.example.org"]
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["settings"]["event_subscriptions"]["request_url"] == url
    assert data["oauth_config"]["redirect_urls"] == ["https://bot.example.org/slack/oauth_redirect"]


def test_cli_refuses_a_distribution_address_that_is_not_a_url() -> None:
    result = CliRunner().invoke(main, ["slack-manifest", "--distribution", "bot.example.org"])

    assert result.exit_code == 2
    assert "--distribution" in result.output and "public address" in result.output
