"""Discord app commands generated from the core's command declarations.

A group of core commands (`/poll create`, `/poll close`) becomes an `app_commands.Group`
with subcommands; a command that stands alone (`/help`) becomes a plain command. Each gets
one generic callback whose signature is built from the declared options, so discord.py
itself produces the typed options Discord shows and hands back the values. The core then
checks and converts every value exactly as it does for Slack and the console.
"""

from __future__ import annotations

import inspect
import logging
import zoneinfo
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import discord
from discord import app_commands

from bot import commands as cmd
from bot import markup

log = logging.getLogger(__name__)

DESCRIPTION_MAX = 100
CHOICES_MAX = 25
STRING_MAX = 6000

Run = Callable[[discord.Interaction, tuple[str, ...], dict[str, Any]], Awaitable[None]]
"""What a generated command calls: the interaction, the core path and the raw values."""

_HINTS = {
    cmd.Kind.DATETIME: " (e.g. 2026-12-01 18:00, tomorrow 9am, 2d)",
    cmd.Kind.DURATION: " (e.g. 15m, 1h30m, 2d)",
}


def build(
    registry: cmd.Registry, run: Run
) -> list[app_commands.Command[Any, ..., Any] | app_commands.Group]:
    """One top-level Discord command per core group, in declaration order."""
    built: list[app_commands.Command[Any, ..., Any] | app_commands.Group] = []
    for name, group in registry.groups.items():
        members = registry.in_group(name)
        alone = registry.commands.get((name,))
        subs = [c for c in members if len(c.path) > 1]
        if not subs:
            if alone is not None:
                built.append(_command(alone, run, top_level=True))
            continue
        if alone is not None:
            log.warning("/%s has subcommands, so /%s alone is not offered on Discord", name, name)
        top = app_commands.Group(
            name=name, description=_describe(group.description, name), guild_only=True
        )
        for spec in subs:
            parent = top
            if len(spec.path) > 2:
                parent = _subgroup(top, spec.path[1])
            parent.add_command(_command(spec, run))
        built.append(top)
    return built


def _subgroup(top: app_commands.Group, name: str) -> app_commands.Group:
    existing = top.get_command(name)
    if isinstance(existing, app_commands.Group):
        return existing
    group = app_commands.Group(name=name, description=_describe("", name))
    top.add_command(group)
    return group


def _describe(text: str, fallback: str) -> str:
    return markup.truncate(markup.plain(text).replace("`", "").strip(), DESCRIPTION_MAX) or fallback


def _command(
    spec: cmd.Command, run: Run, top_level: bool = False
) -> app_commands.Command[Any, ..., Any]:
    path = spec.path

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        await run(interaction, path, values)

    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    descriptions: dict[str, str] = {}
    choices: dict[str, list[app_commands.Choice[str]]] = {}
    completers: dict[str, Any] = {}
    for option in spec.options:
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation(option),
                default=inspect.Parameter.empty if option.required else None,
            )
        )
        descriptions[option.name] = _option_description(option)
        if option.kind is cmd.Kind.CHOICE and option.choices and not option.many:
            if len(option.choices) <= CHOICES_MAX:
                choices[option.name] = [
                    app_commands.Choice(name=c, value=c) for c in option.choices
                ]
            else:
                completers[option.name] = _complete_from(option.choices)
        elif option.name == "tz" and option.kind is cmd.Kind.STR and not option.many:
            # `tz` is the one option name the core reads a command's zone from.
            completers[option.name] = complete_zone
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    if descriptions:
        app_commands.describe(**descriptions)(callback)
    if choices:
        app_commands.choices(**choices)(callback)
    if completers:
        app_commands.autocomplete(**completers)(callback)
    if top_level:
        app_commands.guild_only()(callback)
    return app_commands.Command(
        name=path[-1],
        description=_describe(spec.description, path[-1]),
        callback=callback,
        extras={"path": path},
    )


def annotation(option: cmd.Option) -> Any:
    """The Python type discord.py turns into the Discord option type for `option`."""
    kind = option.kind
    if option.many or kind in (cmd.Kind.DATETIME, cmd.Kind.DURATION, cmd.Kind.CHOICE):
        return str
    if kind is cmd.Kind.INT:
        if option.min_value is None and option.max_value is None:
            return int
        return app_commands.Range[int, option.min_value, option.max_value]
    if kind is cmd.Kind.BOOL:
        return bool
    if kind is cmd.Kind.CHANNEL:
        return app_commands.Transform[app_commands.AppCommandChannel, TextChannelOption]
    if kind is cmd.Kind.USER:
        return discord.User
    if kind is cmd.Kind.ROLE:
        return discord.Role
    if option.max_length <= STRING_MAX:
        return app_commands.Range[str, None, option.max_length]
    return str


class TextChannelOption(app_commands.Transformer):
    """A text or announcement channel, as Discord resolved it (cached guild or not)."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news]

    async def transform(self, interaction: discord.Interaction, value: Any, /) -> Any:
        return value


def _option_description(option: cmd.Option) -> str:
    text = markup.plain(option.description).replace("`", "").strip() or option.name
    if option.many:
        text += " (separate with |)"
    text += _HINTS.get(option.kind, "")
    return markup.truncate(text, DESCRIPTION_MAX)


def _complete_from(
    values: tuple[str, ...],
) -> Callable[..., Awaitable[list[app_commands.Choice[str]]]]:
    async def complete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=v, value=v) for v in matching(values, current)]

    return complete


async def complete_zone(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """IANA zone names for a `tz` option: prefix matches first, 25 at most."""
    return [app_commands.Choice(name=z, value=z) for z in matching(zones(), current)]


@cache
def zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def matching(values: tuple[str, ...], current: str) -> list[str]:
    needle = current.strip().lower().replace(" ", "_")
    starts = [v for v in values if v.lower().startswith(needle)]
    within = [v for v in values if needle in v.lower() and v not in starts]
    return (starts + within)[:CHOICES_MAX]
