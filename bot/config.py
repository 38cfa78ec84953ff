"""One TOML file; every key has a default; an unknown key or a bad value stops start-up.

Features and adapters declare their own sections (a pydantic model each); the composition
root gathers them into one model, so a typo anywhere is reported with its full key.
Secrets never live here: they come from the environment.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from bot import timeutil
from bot.errors import ConfigError, UsageError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return timeutil.parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    return value


def _zone(value: Any) -> Any:
    try:
        timeutil.zone(str(value))
    except UsageError as exc:
        raise ValueError(exc.message) from None
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Zone = Annotated[str, BeforeValidator(_zone)]


class BotSection(Section):
    name: str = "ITSM Community Bot"
    timezone: Zone = "UTC"
    database: str = "itsm-bot.db"
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")


class OutboxSection(Section):
    give_up_after: Duration = timedelta(days=3)
    backoff_base: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=300.0, gt=0)
    edit_debounce: float = Field(default=1.0, ge=0)
    call_timeout: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=16, ge=1, le=256)


class SchedulerSection(Section):
    grace: Duration = timedelta(hours=6)
    # How long a worker's claim on a batch of due jobs stands unrenewed (renewed halfway):
    # a worker that dies holding one has those jobs run by another this much later.
    lease: Annotated[Duration, Field(ge=timedelta(seconds=1))] = timedelta(minutes=5)


WORKSPACE_KEY = r"^[a-z]+:[^:]+$"  # "platform:workspace"
CHANNEL_KEY = r"^[a-z]+:[^:]+:[^:]+$"  # "platform:workspace:channel"


class CommunitySection(Section):
    name: str
    timezone: Zone = "UTC"
    workspaces: list[Annotated[str, Field(pattern=WORKSPACE_KEY)]] = []
    channels: list[Annotated[str, Field(pattern=CHANNEL_KEY)]] = []
    # Where prompt suggestions are reviewed and the bot's notices for moderators go.
    moderators: Annotated[str, Field(pattern=CHANNEL_KEY)] | None = None

    @field_validator("moderators")
    @classmethod
    def _moderators_in_community(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A channel of one of the community's own workspaces (a click there must find this
        community), and a channel, not a member's direct messages."""
        if value is None:
            return None
        platform, workspace, channel = value.split(":", 2)
        if channel.startswith("@"):
            raise ValueError("a channel, not a member's direct messages")
        workspaces = info.data.get("workspaces")
        if workspaces is not None and f"{platform}:{workspace}" not in workspaces:
            raise ValueError(
                f"the workspace {platform}:{workspace} is not one of this community's"
                " workspaces (add it to `workspaces`)"
            )
        return value


class CoreConfig(Section):
    bot: BotSection = BotSection()
    outbox: OutboxSection = OutboxSection()
    scheduler: SchedulerSection = SchedulerSection()
    community: list[CommunitySection] = []

    def section(self, name: str) -> Any:
        return getattr(self, name)


def model(sections: dict[str, type[Section]]) -> type[CoreConfig]:
    """The full configuration model: the core's sections plus features' and adapters'."""
    fields: dict[str, Any] = {name: (cls, cls()) for name, cls in sections.items()}
    return create_model("Config", __base__=CoreConfig, **fields)


def load(path: str | Path | None, sections: dict[str, type[Section]]) -> CoreConfig:
    """Read and check a configuration file; no file means all defaults."""
    cls = model(sections)
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
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(str(path or "configuration"), exc)) from None


def _explain(where: str, exc: ValidationError) -> str:
    lines = [f"{where}: {exc.error_count()} problem(s):"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against config/example.toml)"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)
