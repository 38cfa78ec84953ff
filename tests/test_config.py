"""Configuration: defaults, unknown keys and bad values named at start-up."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import config as configuration
from bot.cli import sections
from bot.errors import ConfigError


def load_text(tmp_path, text):
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return configuration.load(path, sections())


def test_no_file_means_every_default():
    config = configuration.load(None, sections())
    assert config.bot.timezone == "UTC" and config.scheduler.grace == timedelta(hours=6)


def test_values_are_read_and_durations_understood(tmp_path):
    config = load_text(
        tmp_path,
        '[bot]\ntimezone = "Europe/Oslo"\n[scheduler]\ngrace = "90m"\n'
        '[[community]]\nname = "itSMF Norway"\ntimezone = "Europe/Oslo"\n'
        'workspaces = ["slack:T1", "discord:42"]\nchannels = ["slack:T1:C1", "discord:42:7"]\n',
    )
    assert config.bot.timezone == "Europe/Oslo"
    assert config.scheduler.grace == timedelta(minutes=90)
    assert config.community[0].channels == ["slack:T1:C1", "discord:42:7"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[bot]\ntimezon = 'UTC'\n", "bot.timezon: unknown key"),
        ("[bots]\n", "bots: unknown key"),
        ("[bot]\ntimezone = 'Mars/Olympus'\n", "bot.timezone"),
        ("[outbox]\ncall_timeout = 0\n", "outbox.call_timeout"),
        ("[outbox]\ngive_up_after = 'never'\n", "outbox.give_up_after"),
        ("[scheduler]\ngrace = 'soon'\n", "scheduler.grace"),
        ("[slack]\nmode = 'carrier-pigeon'\n", "slack.mode"),
        ("[[community]]\nname = 'x'\nchannels = ['general']\n", "community.0.channels.0"),
    ],
)
def test_a_bad_file_is_a_clear_error_naming_the_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, text)
    assert named in str(err.value)


def test_broken_toml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_text(tmp_path, "[bot\n")
    with pytest.raises(ConfigError, match="no such configuration file"):
        configuration.load(tmp_path / "nope.toml", sections())


def test_the_example_file_is_valid_and_documents_every_section():
    from pathlib import Path

    example = Path(__file__).parent.parent / "config" / "example.toml"
    config = configuration.load(example, sections())
    text = example.read_text()
    for name in config.__struct_fields__:
        assert f"[{name}]" in text or f"[[{name}]]" in text, name


# --- What the configuration's own code checks (durations, checks across fields) ------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), (45, 45), (2.5, 2.5), (0, 0)],
)
def test_a_duration_is_written_with_units_or_as_seconds(tmp_path, written, seconds):
    text = f"[feeds]\ninterval = {written!r}\n".replace("'", '"')
    config = load_text(tmp_path, text)
    assert config.feeds.interval == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("'soon'", "feeds.interval: `soon` is not a duration; write it like 15m"),
        ("''", "feeds.interval: `` is not a duration"),
        ("-5", "feeds.interval: a duration cannot be negative, not -5"),
        ("true", "feeds.interval: Expected a duration (like 90s, 15m, 1h30m or a number of seconds), got `bool`"),
        ("['30m']", "feeds.interval: Expected a duration (like 90s, 15m, 1h30m or a number of seconds), got `list`"),
    ],
)  # fmt: skip
def test_a_bad_duration_says_how_to_write_one(tmp_path, value, says):
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, f"[feeds]\ninterval = {value}\n")
    assert says in str(err.value)


def test_a_bad_duration_in_a_list_names_its_place(tmp_path):
    with pytest.raises(ConfigError, match=r"event\.default_remind\.1: `x` is not a duration"):
        load_text(tmp_path, "[event]\ndefault_remind = ['1d', 'x']\n")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[scheduler]\nlease = '0s'\n", "scheduler.lease: should be at least 1s, not 0.0s"),
        ("[bot]\ntimezone = 'Europe/Olso'\n", "bot.timezone: `Europe/Olso` is not a time zone I know. Did you mean Europe/Oslo?"),
        ("[[community]]\nname = 'x'\ntimezone = 'Mars'\n", "community.0.timezone: `Mars` is not a time zone"),
        ("[[community]]\ntimezone = 'UTC'\n", "community.0.name: missing (this key has no default)"),
        ("[slack]\nmode = 'pigeon'\n", "slack.mode: Invalid enum value 'pigeon' (one of 'http', 'socket')"),
        ("bot = 3\n", "bot: Expected `table`, got `int`"),
        ("[discord]\nshard_ids = [0]\n", "discord: shard_ids needs shard_count"),
    ],
)  # fmt: skip
def test_checks_across_fields_and_missing_keys_name_the_full_key(tmp_path, text, says):
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, text)
    assert says in str(err.value)


def test_the_first_problem_is_the_one_reported(tmp_path):
    """msgspec stops at the first problem: the file names one, the next shows once fixed."""
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, "[bot]\ntimezon = 'UTC'\n[outbox]\ncall_timeout = 0\n")
    assert "bot.timezon: unknown key (check the spelling against config/example.toml)" in str(
        err.value
    )
    assert "outbox" not in str(err.value)
    with pytest.raises(ConfigError, match=r"outbox\.call_timeout: Expected `float` > 0\.0"):
        load_text(tmp_path, "[bot]\ntimezone = 'UTC'\n[outbox]\ncall_timeout = 0\n")


def test_the_public_url_loses_its_trailing_slash(tmp_path):
    config = load_text(tmp_path, "[web]\npublic_url = 'https://bot.example.org/'\n")
    assert config.web.public_url == "https://bot.example.org"
    assert config.web.base_url() == "https://bot.example.org"


def test_sections_never_change_once_read():
    import msgspec

    config = configuration.load(None, sections())
    with pytest.raises(AttributeError):
        config.bot.name = "other"  # type: ignore[misc]
    assert msgspec.structs.replace(config.bot, name="other").name == "other"


def test_check_config_shows_durations_as_they_are_written():
    config = configuration.load(None, sections())
    shown = configuration.plain(config)
    assert shown["feeds"]["interval"] == "30m"
    assert shown["event"]["default_remind"] == ["1d", "1h"]
    assert shown["community"] == []


def test_demo_web_turns_the_console_on_and_refuses_a_bad_port():
    import click

    from bot.cli import _with_web

    config = configuration.load(None, sections())
    web = _with_web(config, "8099").web
    assert web.enabled and (web.host, web.port) == ("127.0.0.1", 8099)
    assert config.web.enabled is False  # the configuration read stays as it was
    with pytest.raises(click.BadParameter, match="is not"):
        _with_web(config, "eighty")
