"""The neutral objects that cross the core <-> adapter boundary.

Adapters turn platform payloads into `Invocation`, `Action` and `Submission`, and turn
`Post`, `Form` and the reply types into platform messages. The core never sees a platform
object; each incoming object keeps the original payload in `raw` for the adapter's own use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

DIRECT_PREFIX = "@"  # no platform's channel id starts with it: Slack C/G/D…, Discord digits


@dataclass(frozen=True)
class ChannelRef:
    """A channel on one platform, in one workspace (Slack team / Discord guild)."""

    platform: str
    workspace: str
    channel: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}"

    @classmethod
    def parse(cls, key: str) -> ChannelRef:
        platform, workspace, channel = key.split(":", 2)
        return cls(platform, workspace, channel)

    @classmethod
    def direct(cls, user: UserRef) -> ChannelRef:
        """The direct messages of one member, addressed like a channel ("@" + user id), so
        the outbox keys, paces and retries them as it does any channel."""
        if not user.user or user.user.startswith(DIRECT_PREFIX):
            raise ValueError(f"not a member id: {user.user!r}")
        return cls(user.platform, user.workspace, DIRECT_PREFIX + user.user)

    @property
    def is_direct(self) -> bool:
        return self.channel.startswith(DIRECT_PREFIX)

    @property
    def direct_user(self) -> str:
        """The member id of a direct ref; ValueError for a channel."""
        if not self.is_direct:
            raise ValueError(f"{self.key} is a channel, not a member's direct messages")
        return self.channel[len(DIRECT_PREFIX) :]


@dataclass(frozen=True)
class UserRef:
    """A member on one platform. `name` is for display only and never used as identity."""

    platform: str
    workspace: str
    user: str
    name: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.user}"


@dataclass(frozen=True)
class RoleRef:
    """A role (Discord) or user group (Slack subteam) a moderator named, to be pinged by a
    post that lists `role` in `Post.mention_roles`. An empty `role` names none ("none")."""

    platform: str
    workspace: str
    role: str
    name: str = field(default="", compare=False)


# --- Inline markers in Post text -----------------------------------------------------------
# Post.text uses a small markdown subset (**bold**, _italic_, `code`, [label](https://url),
# "- " bullets). Two things cannot be written in markdown because each platform shows them
# differently: a moment in time (shown in each reader's own zone) and a mention. The core
# writes them as markers; every renderer replaces them.
#
# Trusted and untrusted text. Every string in a Post, Form or reply is the core's markup,
# and the core's markup is trusted as far as the core wrote it, no further:
#   * Platform syntax is never trusted, wherever it comes from. The core never writes a
#     Slack `<…>` tag, a Discord `<@…>`/`<t:…>`, `@everyone` or platform-only markdown; every
#     renderer neutralises all of them in every text it is given (posts, replies, labels,
#     footers, errors). Nothing here has to think about it.
#   * The markup's own live parts (markers, links) are trusted only as the core built them:
#     `time_tag`, `mention_tag`, `channel_tag`, `link`. Any text the core did not write itself (what a
#     member typed, a moderator's template, a display name, a feed, a calendar, an error
#     that quotes input, and stored copies of all of these) goes through `inert()` where it
#     is put into a markup string, in replies exactly as in posts. `inert()` leaves the
#     text readable and changes nothing else.
#   * What renderers refuse even from the core: a mention marker pings only the members in
#     `Post.mentions`; a link (a markup link or a title linked to `Post.url`) whose label
#     names another address shows its real address; a `code` span shows its content as
#     typed, so input quoted in backticks cannot turn into a time, a mention or a link.

MARK_OPEN, MARK_CLOSE = "\u27e6", "\u27e7"  # ⟦ ⟧
TimeStyle = Literal["f", "F", "d", "D", "t", "R"]


def time_tag(moment: datetime, style: TimeStyle = "f") -> str:
    """A marker that renderers show in the reader's zone (Discord <t:..>, Slack <!date^..>)."""
    return f"{MARK_OPEN}t:{int(moment.timestamp())}:{style}{MARK_CLOSE}"


def mention_tag(user: UserRef) -> str:
    """A marker for a deliberate mention of one member (the only kind the bot ever makes);
    it pings only if the post also lists the member in `Post.mentions`."""
    return f"{MARK_OPEN}@:{user.user}{MARK_CLOSE}"


def channel_tag(channel: ChannelRef) -> str:
    """A marker for a channel, shown the way its platform names one (a clickable channel on
    Slack and Discord, "#name" on the console). It never pings anyone."""
    return f"{MARK_OPEN}#:{channel.channel}{MARK_CLOSE}"


def inert(text: str) -> str:
    """Make untrusted text unable to fake a time, a mention or a link: marker brackets become
    plain ones, and a zero-width space parts `](` so `[label](url)` stays text everywhere
    (our renderers and Discord's own markdown alike). Use it wherever text the core did not
    write goes into a Post, a reply or an error message."""
    return text.replace(MARK_OPEN, "[").replace(MARK_CLOSE, "]").replace("](", "]\u200b(")


# Characters that would end a link's address early, split it, or start markup inside it.
_URL_UNSAFE = {ch: f"%{ord(ch):02X}" for ch in " \t\n\r()[]<>|`\\\"'"}
_URL_UNSAFE.update({MARK_OPEN: "%E2%9F%A6", MARK_CLOSE: "%E2%9F%A7"})


def safe_url(url: str) -> str:
    """An address as it may go inside link syntax: characters that could end the link or
    start other markup are percent-encoded, so the link opens what the address says."""
    return "".join(_URL_UNSAFE.get(ch, ch) for ch in url.strip())


def link(label: str, url: str) -> str:
    """A markup link the core means to make, to an address it may not have written.

    The label is made inert (and keeps no brackets that would end it); the address is made
    safe with `safe_url`. A renderer still shows the real address if the label names another.
    """
    shown = inert(label).replace("[", "(").replace("]", ")")
    return f"[{shown}]({safe_url(url)})"


# --- Outgoing ----------------------------------------------------------------------------

ButtonStyle = Literal["primary", "secondary", "success", "danger", "link"]


@dataclass
class Button:
    """A button; `action` is a stable id the core routes on, `value` its argument."""

    label: str
    action: str = ""
    value: str = ""
    style: ButtonStyle = "secondary"
    url: str = ""  # for style "link": opens the URL and reaches no handler


@dataclass
class SelectOption:
    label: str
    value: str
    description: str = ""


@dataclass
class Select:
    action: str
    options: list[SelectOption]
    placeholder: str = ""
    min_values: int = 1
    max_values: int = 1
    value: str = ""  # context the handler needs (e.g. the poll id); chosen values come separately


@dataclass
class Field:
    name: str
    value: str
    inline: bool = True


@dataclass
class Attachment:
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass
class Post:
    """A rich message. Renderers respect each platform's limits and say when they truncate."""

    title: str = ""
    url: str = ""
    text: str = ""
    fields: list[Field] = field(default_factory=list)
    footer: str = ""
    timestamp: datetime | None = None
    image: str = ""
    buttons: list[Button] = field(default_factory=list)
    selects: list[Select] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    color: int | None = None
    zone: str = "UTC"  # display zone for renderers that cannot localise (console, fallbacks)
    mentions: list[str] = field(default_factory=list)  # user ids the bot means to ping
    # Role (Discord) or user group (Slack subteam) ids the bot means to ping, named by a
    # moderator (a feed subscription's `ping=`); renderers put them at the start of the
    # post and allow only them. Never @everyone, @here or the channel.
    mention_roles: list[str] = field(default_factory=list)
    # The outbox key of the post this one answers: it goes in that post's thread (Slack's
    # replies, a Discord thread on the message) once the parent has a message id, and in
    # the channel itself where there is none (see bot/lanes.py). Empty: in the channel.
    thread_of: str = ""


FieldKind = Literal["text", "paragraph", "select"]


@dataclass
class FormField:
    id: str
    label: str
    kind: FieldKind = "text"
    required: bool = True
    placeholder: str = ""
    default: str = ""
    max_length: int = 1000
    options: list[SelectOption] = field(default_factory=list)  # for kind "select"


@dataclass
class Form:
    """A modal. `id` routes the submission; `value` carries context back unchanged."""

    id: str
    title: str
    fields: list[FormField]
    submit_label: str = "Submit"
    value: str = ""


# --- Incoming ----------------------------------------------------------------------------


@dataclass
class Invocation:
    """A command: `path` like ("poll", "create"); `options` as the platform gave them."""

    path: tuple[str, ...]
    user: UserRef
    channel: ChannelRef
    is_moderator: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # raw argument text (Slack, console); parsed by the core
    raw: Any = None


@dataclass
class Action:
    """A button pressed or a select chosen on a message the bot posted.

    Where knowing a member's role costs a platform call (Slack's users.info, which is rate
    limited), the adapter gives `moderator_check` instead of `is_moderator`; the core calls
    it only for buttons declared moderator-only, so a burst of votes costs no lookups.
    """

    action: str
    value: str
    user: UserRef
    channel: ChannelRef
    message_id: str = ""
    is_moderator: bool = False
    values: list[str] = field(default_factory=list)  # chosen select values
    raw: Any = None
    request_id: str = ""  # the platform's id for this click: applied once, even if replayed
    moderator_check: Callable[[], Awaitable[bool]] | None = field(default=None, repr=False)


@dataclass
class Submission:
    form: str
    value: str
    values: dict[str, str]
    user: UserRef
    channel: ChannelRef
    is_moderator: bool = False
    raw: Any = None


# --- Replies -----------------------------------------------------------------------------


@dataclass
class Ephemeral:
    """Seen only by the member who acted."""

    post: Post


@dataclass
class Public:
    """Posted in the channel the request came from, as the direct answer to it."""

    post: Post


@dataclass
class OpenForm:
    form: Form


@dataclass
class UpdateMessage:
    """Replace the message whose button was pressed."""

    post: Post


@dataclass
class FormErrors:
    """Keep the form open and show these messages beside its fields."""

    errors: dict[str, str]

    def post(self) -> Post:
        """The errors as a message, for surfaces that cannot show them inside the form."""
        lines = "\n".join(f"- {field}: {message}" for field, message in self.errors.items())
        return Post(text=f"Please fix:\n{lines}")


Reply = Ephemeral | Public | OpenForm | UpdateMessage | FormErrors
