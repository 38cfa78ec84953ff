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
    for name in config.model_dump():
        assert f"[{name}]" in text or f"[[{name}]]" in text, name
