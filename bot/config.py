"""One TOML file; every key has a default; an unknown key or a bad value stops start-up.

Features and adapters declare their own sections (a frozen msgspec Struct each, subclassing
`Section`); the composition root gathers them into one Struct type, so a typo anywhere is
reported with its full key. Secrets never live here: they come from the environment.

Checking stops at the first problem (msgspec's way): a file with two mistakes is reported
one mistake at a time.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from bot import timeutil
from bot.errors import ConfigError, UsageError

UNKNOWN_KEY = "unknown key (check the spelling against config/example.toml)"


class Section(Struct, frozen=True, forbid_unknown_fields=True):
    """A configuration section: an unknown key in it is an error, and it never changes."""


class Duration(timedelta):
    """A length of time in a setting, written "90s", "15m", "1h30m", "2d" or as a number of
    seconds (`decode_hook` reads it)."""


class Problem(ValueError):
    """A check of several fields (a `__post_init__`) that names the field at fault, so the
    error names its full key and not only the section's."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def decode_hook(kind: type, value: Any) -> Any:
    """How msgspec reads the types it does not know: durations."""
    if kind is Duration:
        return _duration(value)
    raise NotImplementedError(kind)


def _duration(value: Any) -> Duration:
    if isinstance(value, str):
        value = timeutil.parse_duration(value)  # ValueError: says how to write one
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, not {value}")
        return Duration(seconds=value)
    if isinstance(value, timedelta):  # read from text, or given by code (a test, a copy)
        return Duration(value.days, value.seconds, value.microseconds)
    raise TypeError(
        f"Expected a duration (like 90s, 15m, 1h30m or a number of seconds),"
        f" got `{type(value).__name__}`"
    )


def check_zone(key: str, name: str) -> None:
    try:
        timeutil.zone(name)
    except UsageError as exc:
        raise Problem(key, f"{exc.message} {exc.hint}".strip()) from None


class BotSection(Section):
    name: str = "ITSM Community Bot"
    timezone: str = "UTC"
    database: str = "itsm-bot.db"
    log_level: Annotated[str, Meta(pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"

    def __post_init__(self) -> None:
        check_zone("timezone", self.timezone)


class OutboxSection(Section):
    give_up_after: Duration = Duration(days=3)
    backoff_base: Annotated[float, Meta(gt=0)] = 2.0
    backoff_max: Annotated[float, Meta(gt=0)] = 300.0
    edit_debounce: Annotated[float, Meta(ge=0)] = 1.0
    call_timeout: Annotated[float, Meta(gt=0)] = 30.0
    concurrency: Annotated[int, Meta(ge=1, le=256)] = 16


class SchedulerSection(Section):
    grace: Duration = Duration(hours=6)
    # How long a worker's claim on a batch of due jobs stands unrenewed (renewed halfway):
    # a worker that dies holding one has those jobs run by another this much later.
    lease: Duration = Duration(minutes=5)

    def __post_init__(self) -> None:
        if self.lease < timedelta(seconds=1):
            raise Problem("lease", f"should be at least 1s, not {self.lease.total_seconds()}s")


WorkspaceKey = Annotated[str, Meta(pattern=r"^[a-z]+:[^:]+$")]  # "platform:workspace"
ChannelKey = Annotated[str, Meta(pattern=r"^[a-z]+:[^:]+:[^:]+$")]  # "platform:workspace:channel"


class CommunitySection(Section):
    name: str
    timezone: str = "UTC"
    workspaces: list[WorkspaceKey] = []
    channels: list[ChannelKey] = []
    # Where prompt suggestions are reviewed and the bot's notices for moderators go.
    moderators: ChannelKey | None = None

    def __post_init__(self) -> None:
        check_zone("timezone", self.timezone)
        self._moderators_in_community()

    def _moderators_in_community(self) -> None:
        """A channel of one of the community's own workspaces (a click there must find this
        community), and a channel, not a member's direct messages."""
        if self.moderators is None:
            return
        platform, workspace, channel = self.moderators.split(":", 2)
        if channel.startswith("@"):
            raise Problem("moderators", "a channel, not a member's direct messages")
        if f"{platform}:{workspace}" not in self.workspaces:
            raise Problem(
                "moderators",
                f"the workspace {platform}:{workspace} is not one of this community's"
                " workspaces (add it to `workspaces`)",
            )


class CoreConfig(Section):
    bot: BotSection = BotSection()
    outbox: OutboxSection = OutboxSection()
    scheduler: SchedulerSection = SchedulerSection()
    community: list[CommunitySection] = []

    def section(self, name: str) -> Any:
        return getattr(self, name)


def model(sections: dict[str, type[Section]]) -> type[CoreConfig]:
    """The full configuration type: the core's sections plus features' and adapters'."""
    fields = [(name, cls, cls()) for name, cls in sections.items()]
    return msgspec.defstruct(
        "Config", fields, bases=(CoreConfig,), frozen=True, forbid_unknown_fields=True
    )


def convert(cls: type[Any], data: dict[str, Any], where: str = "configuration") -> Any:
    """`data` (a TOML file's tables) checked into `cls`; ConfigError naming the key if wrong."""
    try:
        return msgspec.convert(data, cls, dec_hook=decode_hook)
    except msgspec.ValidationError as exc:
        key, message = explain(exc, cls)
        dotted = ".".join(str(step) for step in key) or "(top level)"
        raise ConfigError(f"{where}: {dotted}: {message}") from None


def build(sections: dict[str, type[Section]], data: dict[str, Any] | None = None) -> CoreConfig:
    """A full configuration from tables given in code (tests, benchmarks)."""
    return convert(model(sections), data or {})


def load(path: str | Path | None, sections: dict[str, type[Section]]) -> CoreConfig:
    """Read and check a configuration file; no file means all defaults."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    url = os.environ.get("DATABASE_URL")
    if url:  # a host's database (a Procfile deploy) wins over the file's [bot] database
        data.setdefault("bot", {})["database"] = url
    return convert(model(sections), data, str(path or "configuration"))


# msgspec's message ends with where the problem is, as `$.community[0].moderators`.
_WHERE = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def explain(exc: msgspec.ValidationError, cls: type[Any]) -> tuple[list[str | int], str]:
    """The full key of a problem (names and list positions) in `cls`, and what is wrong
    there."""
    found = _WHERE.match(str(exc))
    assert found is not None  # the pattern matches any text
    message, path = found["message"], found["path"] or ""
    key: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]
    if unknown := _UNKNOWN.match(message):
        return [*key, unknown["field"]], UNKNOWN_KEY
    if missing := _MISSING.match(message):
        return [*key, missing["field"]], "missing (this key has no default)"
    if isinstance(exc.__cause__, Problem):  # raised by a __post_init__: name the field
        return [*key, exc.__cause__.key], message
    if message.startswith("Invalid enum value") and (choices := _choices(cls, key)):
        message += f" (one of {', '.join(map(repr, choices))})"
    return key, _in_toml_words(message)


def _choices(cls: type[Any], key: list[str | int]) -> tuple[Any, ...]:
    """The values a Literal setting at `key` allows (msgspec's message leaves them out)."""
    from msgspec import inspect  # on a mistake only

    info: Any = inspect.type_info(cls)
    for step in [*key, None]:  # None: the setting itself, maybe `Literal[...] | None`
        if isinstance(info, inspect.UnionType):
            info = next(t for t in info.types if not isinstance(t, inspect.NoneType))
        if isinstance(info, inspect.StructType) and isinstance(step, str):
            info = next((f.type for f in info.fields if f.name == step), None)
        elif isinstance(info, inspect.ListType) and isinstance(step, int):
            info = info.item_type
    return info.values if isinstance(info, inspect.LiteralType) else ()


def _in_toml_words(message: str) -> str:
    """msgspec speaks JSON: a TOML file has tables, and no null (a key left out is None)."""
    return message.replace(" | null`", "`").replace("`object`", "`table`")


def plain(value: Any) -> Any:
    """A section as TOML would write it: tables, lists, and durations as "1h30m"."""
    if isinstance(value, Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, timedelta):
        return timeutil.format_duration(value)
    return value
