"""Commands declared once: name, options, who may use them.

Adapters generate Discord app commands and Slack slash commands from these declarations;
the core binds and checks the values whichever way they arrived (typed from Discord, raw
text from Slack and the console), so every surface gets the same errors.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot import textargs, timeutil
from bot.errors import UsageError
from bot.model import ChannelRef, RoleRef, UserRef

HELP = ("help",)  # the core's help command; each surface names it its own way (Slack: /itsm)

# What an option takes, said in a line by `/help COMMAND`, for forms a kind cannot say.
WORDS_OR_REGEX = 'words, commas between them meaning "or" (itil, cobit), or one /regex/'


class Kind(StrEnum):
    STR = "str"
    INT = "int"
    BOOL = "bool"
    CHOICE = "choice"
    DATETIME = "datetime"
    DURATION = "duration"
    CHANNEL = "channel"
    USER = "user"
    ROLE = "role"  # a Discord role or a Slack user group; "none" names none (RoleRef.role "")


@dataclass(frozen=True)
class Option:
    name: str
    kind: Kind = Kind.STR
    description: str = ""
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    positional: bool = False  # may be given without `name=`, in declaration order
    many: bool = False  # a list: the remaining positional words, or "a | b | c" / "a,b,c"
    min_value: int | None = None
    max_value: int | None = None
    max_length: int = 2000
    form: str = ""  # what it takes, in words, where the kind alone cannot say (see `takes`)

    def placeholder(self) -> str:
        label = self.name.upper() if self.kind is not Kind.BOOL else self.name
        if self.many:
            label += "..."
        if self.kind is Kind.BOOL:
            return f"[{label}]"
        if self.positional:
            return f"<{label.lower()}>" if self.required else f"[{label.lower()}]"
        shown = f"{self.name}={label}"
        return shown if self.required else f"[{shown}]"


Handler = Callable[..., Awaitable[Any]]


@dataclass
class Command:
    path: tuple[str, ...]
    description: str
    handler: Handler
    options: list[Option] = field(default_factory=list)
    moderator: bool = False
    examples: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def slash(self, help: str = "/help") -> str:
        """The command as typed on a surface whose help command is `help`."""
        return help if self.path == HELP else f"/{self.name}"

    def usage(self, help: str = "/help") -> str:
        return " ".join([self.slash(help), *(o.placeholder() for o in self.options)])


def takes(option: Option) -> str:
    """What an option takes, in words: its kind and form (for `/help COMMAND`)."""
    if option.form:
        return option.form
    kind = option.kind
    if kind is Kind.INT:
        low, high = option.min_value, option.max_value
        if low is not None and high is not None:
            said = f"a whole number from {low} to {high}"
        elif low is not None:
            said = f"a whole number, {low} or more"
        elif high is not None:
            said = f"a whole number, at most {high}"
        else:
            said = "a whole number"
    elif kind is Kind.BOOL:
        return (
            f"a yes/no switch: write `{option.name}` to turn it on "
            f"(or {option.name}=yes / {option.name}=no)"
        )
    elif kind is Kind.CHOICE:
        said = f"one of: {', '.join(option.choices)}"
    elif kind is Kind.DATETIME:
        said = (
            'a date and time (2026-12-05 09:00), a phrase like "next tuesday 9am", '
            "or a time from now like 2d or 1h30m"
        )
    elif kind is Kind.DURATION:
        said = "a duration like 15m, 1h30m, 2d or 1w"
    elif kind is Kind.CHANNEL:
        said = "a channel, like #general"
    elif kind is Kind.USER:
        said = "a member, like @name"
    elif kind is Kind.ROLE:
        said = "a role or user group, like @oncall (or none)"
    elif option.name == "tz":  # read as a zone by `coerce`
        said = "a time zone name, like Europe/London or UTC"
    elif option.many:
        said = f"a word or a phrase of up to {option.max_length} characters"
    else:
        said = f"text, up to {option.max_length} characters"
    if option.many:
        return f'several, each {said}: each in quotes ("a" "b c"), or separated by | or commas'
    return said


@dataclass
class Group:
    name: str
    description: str


class Registry:
    """Every command the bot has, by path; groups give the top-level names."""

    def __init__(self) -> None:
        self.commands: dict[tuple[str, ...], Command] = {}
        self.groups: dict[str, Group] = {}

    def group(self, name: str, description: str) -> None:
        self.groups.setdefault(name, Group(name, description))

    def add(self, command: Command) -> Command:
        if command.path in self.commands:
            raise ValueError(f"command /{command.name} declared twice")
        self.group(command.path[0], command.description)
        self.commands[command.path] = command
        return command

    def in_group(self, name: str) -> list[Command]:
        return [c for p, c in self.commands.items() if p[0] == name]

    def resolve(self, top: str, text: str, help: str = "/help") -> tuple[Command, str]:
        """The command meant by `/top text`, and the text left for its options. `help` is
        the help command of the surface it was typed on, for the hints."""
        top = top.lower().lstrip("/")
        if top not in self.groups:
            raise UsageError(f"There is no command `/{top}`.", hint=f"Type {help} to see them all.")
        head, _, rest = (text or "").strip().partition(" ")
        sub = self.commands.get((top, head.lower()))
        if sub:
            return sub, rest
        whole = self.commands.get((top,))
        if whole:
            return whole, text or ""
        subs = ", ".join(sorted(p[1] for p in self.commands if p[0] == top and len(p) > 1))
        said = f"`{head}` is not a" if head else "Missing the"
        raise UsageError(
            f"{said} subcommand of /{top}.",
            hint=f"Try one of: {subs}. Type {help} {top} for more." if subs else "",
        )


# --- Binding -----------------------------------------------------------------------------


def usage_hint(command: Command, help: str = "/help") -> str:
    """The hint of a usage error: how the command is typed, and where to read more."""
    more = f"Type {help} {command.name} to see what each option takes."
    return f"Usage: {command.usage(help)}" + ("" if command.path == HELP else f"\n{more}")


def bind_text(command: Command, text: str, help: str = "/help") -> dict[str, Any]:
    """Raw text -> option values (still strings), by the command's declaration."""
    args = textargs.parse(text)
    values: dict[str, Any] = {}
    for name, value in args.named.items():
        values[_known(command, name, help).name] = value
    for name in args.flags:
        option = _known(command, name, help)
        if option.kind is not Kind.BOOL:
            raise UsageError(f"`--{name}` needs a value: write {name}=...", option=name)
        values[option.name] = True
    slots = [o for o in command.options if o.positional and o.name not in values]
    for word in args.positional:
        bool_option = command.option(word.text.lower().replace("-", "_"))
        if not word.quoted and bool_option and bool_option.kind is Kind.BOOL:
            values[bool_option.name] = True  # a bare word naming a switch: `multi`, `anonymous`
            continue
        if not slots:
            raise UsageError(
                f"I don't know what to do with `{word.text}`.",
                hint=usage_hint(command, help),
            )
        slot = slots[0]
        if slot.many:
            values.setdefault(slot.name, []).append(word.text)
        else:
            values[slot.name] = word.text
            slots.pop(0)
    return values


def _known(command: Command, name: str, help: str = "/help") -> Option:
    option = command.option(name)
    if option is None:
        names = ", ".join(o.name for o in command.options) or "none"
        raise UsageError(
            f"`{name}` is not an option of {command.slash(help)}.",
            option=name,
            hint=f"Its options: {names}. {usage_hint(command, help)}",
        )
    return option


@dataclass
class Place:
    """What coercion needs to know about where a command was typed."""

    channel: ChannelRef
    tz: str
    now: datetime
    help: str = "/help"  # the surface's help command, named in usage hints


def coerce(command: Command, values: dict[str, Any], place: Place) -> dict[str, Any]:
    """Check and convert every value; fill defaults; raise UsageError naming the option."""
    for name in values:
        _known(command, name, place.help)
    tz = str(values.get("tz") or place.tz)
    if "tz" in values and values["tz"]:
        timeutil.zone(tz)
    out: dict[str, Any] = {}
    for option in command.options:
        value = values.get(option.name)
        if value is None or value == "" or value == []:
            if option.required:
                raise UsageError(
                    f"Missing `{option.name}`: {option.description}",
                    option=option.name,
                    hint=usage_hint(command, place.help),
                )
            out[option.name] = option.default
            continue
        try:
            if option.many:
                items = _split_many(value)
                out[option.name] = [_one(option, v, tz, place) for v in items]
            else:
                out[option.name] = _one(option, value, tz, place)
        except ValueError as exc:
            raise UsageError(
                f"`{option.name}`: {exc}", option=option.name, hint=usage_hint(command, place.help)
            ) from exc
    return out


def _split_many(value: Any) -> list[Any]:
    """A list typed as one text (a Discord option): `"a" "b c"` as its quoted words, else
    split on `|`, else on commas."""
    if isinstance(value, list | tuple):
        return [v for v in value if str(v).strip() != ""]
    text = str(value)
    if '"' in text and "|" not in text:
        try:
            return [w.text for w in textargs.split_words(text) if w.text.strip()]
        except UsageError:
            pass  # an unclosed quote: read the text as typed
    parts = text.split("|") if "|" in text else text.split(",")
    return [p.strip() for p in parts if p.strip()]


# The largest whole number an option may take unless it declares a bound of its own: the
# largest integer a JSON number (Discord, JavaScript) holds exactly, well inside SQLite's
# 64-bit INTEGER, so an id typed as 99999999999999999999 is a usage error, not a crash.
INT_MAX = 2**53 - 1
_WHOLE = re.compile(r"^[+-]?[0-9]+$")
_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}
_CHANNEL = re.compile(r"^<?#([A-Za-z0-9_-]+)(?:\|[^>]*)?>?$")
_USER = re.compile(r"^<?@!?([A-Za-z0-9_.-]+)(?:\|[^>]*)?>?$")


def _one(option: Option, value: Any, tz: str, place: Place) -> Any:
    kind = option.kind
    if kind is Kind.STR:
        text = str(value).strip()
        if len(text) > option.max_length:
            raise ValueError(f"at most {option.max_length} characters, got {len(text)}")
        return text
    if kind is Kind.INT:
        return _int(option, value)
    if kind is Kind.BOOL:
        return _bool(value)
    if kind is Kind.CHOICE:
        found = {c.lower(): c for c in option.choices}.get(str(value).strip().lower())
        if found is None:
            raise ValueError(f"`{value}` is not one of {', '.join(option.choices)}")
        return found
    if kind is Kind.DATETIME:
        return (
            value if isinstance(value, datetime) else timeutil.parse_when(str(value), tz, place.now)
        )
    if kind is Kind.DURATION:
        return value if isinstance(value, timedelta) else timeutil.parse_duration(str(value))
    if kind is Kind.CHANNEL:
        return _here(value, place) if isinstance(value, ChannelRef) else _channel(str(value), place)
    if kind is Kind.USER:
        return _here(value, place) if isinstance(value, UserRef) else _user(str(value), place)
    if kind is Kind.ROLE:
        return _here(value, place) if isinstance(value, RoleRef) else _role(str(value), place)
    raise ValueError(f"unsupported option kind {kind}")


def _int(option: Option, value: Any) -> int:
    """A whole number within the option's bounds; an option that declares none still gets
    +/- INT_MAX, so no number reaches the database (or a platform) that it cannot hold."""
    low = -INT_MAX if option.min_value is None else option.min_value
    high = INT_MAX if option.max_value is None else option.max_value
    text = str(value).strip()
    if isinstance(value, bool) or not _WHOLE.match(text):
        raise ValueError(f"`{value}` is not a whole number")
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > len(str(INT_MAX)):  # too long to be in range: never convert it
        raise ValueError(_out_of_range(text.startswith("-"), low, high))
    number = int(text)
    if number < low or number > high:
        raise ValueError(_out_of_range(number < low, low, high))
    return number


def _out_of_range(below: bool, low: int, high: int) -> str:
    return f"must be at least {low}" if below else f"must be at most {high}"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"`{value}` is not yes or no")


def _here(value: ChannelRef | UserRef | RoleRef, place: Place) -> Any:
    """A channel, member or role handed over already made (a Discord option, the web console)
    must be of the workspace the command came from, as a typed `#name` always is: another
    workspace's is another community's, and no command reaches into that."""
    if (value.platform, value.workspace) != (place.channel.platform, place.channel.workspace):
        raise ValueError("that is not in this workspace")
    return value


def _channel(text: str, place: Place) -> ChannelRef:
    match = _CHANNEL.match(text.strip())
    if not match:
        raise ValueError(f"`{text}` is not a channel; mention it like #general")
    return ChannelRef(place.channel.platform, place.channel.workspace, match.group(1))


def _user(text: str, place: Place) -> UserRef:
    match = _USER.match(text.strip())
    if not match:
        raise ValueError(f"`{text}` is not a member; mention them like @name")
    return UserRef(place.channel.platform, place.channel.workspace, match.group(1))


# A role as raw text carries it: Discord's `<@&ID>`, Slack's `<!subteam^ID|@handle>` (what
# Slack sends for a user group named in a slash command), or `@name` (the console's roles).
_ROLE_TAG = re.compile(r"^<@&(\d+)>$|^<!subteam\^([A-Z0-9]+)(?:\|@?([^>]*))?>$")
_ROLE_NAME = re.compile(r"^@?([A-Za-z0-9][A-Za-z0-9_.-]*)$")
_EVERYBODY = {"everyone", "here", "channel"}


def _role(text: str, place: Place) -> RoleRef:
    """A role or user group from raw text; "none" is RoleRef with no role. Never a member,
    a channel, or everyone: those are refused, so no option can make a post ping them."""
    text = text.strip()
    here = (place.channel.platform, place.channel.workspace)
    if text.lower() in ("none", "off", "-"):
        return RoleRef(*here, "")
    tag = _ROLE_TAG.match(text)
    if tag:
        return RoleRef(*here, tag.group(1) or tag.group(2), tag.group(3) or "")
    named = _ROLE_NAME.match(text)
    bare = text.lstrip("<@!").split("|")[0].rstrip(">").lower()
    if bare in _EVERYBODY or text.lower().startswith("<!"):
        raise ValueError("a post never pings everyone, here or the whole channel; name one role")
    if not named or text.startswith("<"):
        raise ValueError(f"`{text}` is not a role or user group; name one like @oncall")
    return RoleRef(*here, named.group(1), named.group(1))
