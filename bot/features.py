"""The bot's features, in the order they start. An explicit list: no plugin discovery."""

from __future__ import annotations

from bot.app import Feature
from bot.digest import Digest
from bot.events import Events
from bot.feeds import Feeds
from bot.help import Help
from bot.members import My
from bot.polls import Polls, Surveys
from bot.prompts import JustDoIt
from bot.tenancy import Tenancy
from bot.web.feature import Web


def all_features() -> list[type[Feature]]:
    return [Tenancy, Help, My, Feeds, Polls, Surveys, Events, JustDoIt, Digest, Web]
