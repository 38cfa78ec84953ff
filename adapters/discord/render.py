"""A neutral Post as a Discord message: one embed, persistent components, files.

Pure: no network. Every Discord limit is respected with a visible "…", times become
`<t:UNIX:STYLE>` so each reader sees their own zone, and nothing from content can ping:
only the ids in `post.mentions` and the roles in `post.mention_roles` are allowed to,
everything else is neutralised twice (AllowedMentions and a zero-width space inside
`@everyone`, `<@…>`, `<@&…>`, `<#…>`).
Platform syntax typed by anyone is shown as text in every field: a raw `<t:0:F>` shows no
date, `</cmd:1>` no command. A link whose label names another address (a markup link, or
the title linked to `post.url`) shows its real address (see "Trusted and untrusted text"
in bot/model.py).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import discord

from adapters.discord.views import CoreComponent, custom_id_for
from bot import markup
from bot.model import Button, Post, Select, safe_url
from bot.timeutil import format_local

log = logging.getLogger(__name__)

CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
BUTTON_LABEL_MAX = 80
BUTTONS_PER_ROW = 5
ROWS_MAX = 5
SELECT_OPTIONS_MAX = 25
SELECT_TEXT_MAX = 100
PLACEHOLDER_MAX = 150
ZWSP = "\u200b"
ELLIPSIS = markup.ELLIPSIS

_BUTTON_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "secondary": discord.ButtonStyle.secondary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
}


@dataclass
class Rendered:
    """What `Messageable.send` and the interaction responses take, ready to pass."""

    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)
    view: discord.ui.View | None = None
    files: list[discord.File] = field(default_factory=list)
    allowed_mentions: discord.AllowedMentions = field(default_factory=discord.AllowedMentions.none)

    def message_kwargs(self, *, files: bool = True) -> dict[str, Any]:
        """Keyword arguments for send/edit calls; `files=False` where files cannot go."""
        kwargs: dict[str, Any] = {
            "content": self.content or None,
            "embeds": self.embeds,
            "allowed_mentions": self.allowed_mentions,
        }
        if self.view is not None:
            kwargs["view"] = self.view
        if files and self.files:
            kwargs["files"] = self.files
        return kwargs


def render(post: Post, marker: str = "") -> Rendered:
    """The Discord form of `post`. Never raises for content: what does not fit is cut visibly.

    `marker` (invisible, from `transport.marker`) is appended to the embed's text, or to the
    content when there is no embed, so the message can be recognised later.
    """
    mentions = [m for m in post.mentions if m.isdigit()]
    roles = [r for r in post.mention_roles if r.isdigit()]  # a role's id: nothing else pings
    pings = " ".join([*(f"<@&{r}>" for r in roles), *(f"<@{m}>" for m in mentions)])
    view, dropped = _view(post.buttons, post.selects)
    note = f"\n_{dropped} more choice(s) do not fit on Discord._" if dropped else ""
    embed = _embed(post, set(mentions), len(marker), note)
    files = [discord.File(io.BytesIO(a.data), filename=a.filename) for a in post.attachments]
    allowed = (
        discord.AllowedMentions(
            everyone=False,
            roles=[discord.Object(int(r)) for r in roles] if roles else False,
            replied_user=False,
            users=[discord.Object(int(m)) for m in mentions] if mentions else False,
        )
        if mentions or roles
        else discord.AllowedMentions.none()
    )
    content = markup.truncate(pings, CONTENT_MAX - len(marker))
    if embed is None and not content and view is None and not files:
        content = "(empty message)"
    if marker and embed is not None:
        embed.description = (embed.description or "") + marker
    elif marker:
        content += marker
    return Rendered(content, [embed] if embed else [], view, files, allowed)


# --- Text ----------------------------------------------------------------------------------

_EVERYONE = re.compile(r"@(everyone|here)", re.IGNORECASE)
# Discord's own `<…>` syntax: user/role/channel mentions, timestamps, slash-command
# mentions and guild navigation. A zero-width space after `<` leaves each one text.
_ANGLE_TAG = re.compile(r"<(?=@[!&]?\d|#\d|t:-?\d|/[\w-]|id:)")
_CODE_SPAN = markup.CODE_SPAN
_LINE_START = re.compile(r"^(\s*)(#{1,3} |-# |>>> |> )", re.MULTILINE)
_LONE_STAR = re.compile(r"(?<!\*)\*(?!\*)")


def neutralise(text: str) -> str:
    """Make @everyone, @here, raw user/role/channel mentions and raw timestamps inert,
    whatever the client."""
    text = _EVERYONE.sub(lambda m: f"@{ZWSP}{m.group(1)}", text)
    return _ANGLE_TAG.sub(f"<{ZWSP}", text)


def escape_discord_only(text: str) -> str:
    """Escape Discord markdown that the core's subset does not have, outside code spans.

    The subset (**bold**, _italic_, `code`, links, "- " bullets) means the same on Discord;
    headings, quotes, subtext, ~~strike~~, ||spoilers||, __underline__ and lone `*` would
    change what member or feed text says, so they are shown literally.
    """
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape_prose(text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape_prose(text[last:]))
    return "".join(out)


def _escape_prose(text: str) -> str:
    text = text.replace("~~", r"\~\~").replace("||", r"\|\|").replace("__", r"\_\_")
    text = _LONE_STAR.sub(r"\*", text)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def rich(text: str, mentions: set[str]) -> str:
    """Text for places Discord renders markdown, timestamps and mentions (description, values)."""
    text = escape_discord_only(neutralise(text))
    text = markup.links(text, lambda label, url: f"[{label}]({url})")
    return markup.substitute(
        text,
        time=lambda moment, style: f"<t:{int(moment.timestamp())}:{style}>",
        mention=lambda user: f"<@{user}>" if user in mentions else f"@{user}",
        channel=lambda channel: f"<#{channel}>" if channel.isdigit() else f"#{channel}",
    )


def flat(text: str, zone: str) -> str:
    """Text for places without timestamps or markdown (footer, labels): local time, plain."""
    text = markup.substitute(
        neutralise(text),
        time=lambda moment, style: format_local(moment, zone, style),
        mention=lambda user: f"@{user}",
    )
    return markup.plain(text).replace("`", "")


# --- Embed ---------------------------------------------------------------------------------


def _embed(
    post: Post, mentions: set[str], reserve: int = 0, note: str = ""
) -> discord.Embed | None:
    """One embed, or None when the post has nothing an embed shows; `reserve` keeps room
    for a marker at the end of the description, `note` says what did not fit."""
    shown_title = flat(post.title, post.zone)
    title = markup.truncate(escape_discord_only(shown_title), TITLE_MAX)
    url = post.url if title and post.url.startswith(("https://", "http://")) else ""
    text = rich(post.text, mentions)
    if url and markup.disguises(shown_title, url):
        # The title names another address: it is not linked, and the real one is shown.
        text = f"<{safe_url(url)}>" + (f"\n{text}" if text else "")
        url = ""
    description = markup.truncate(text, DESCRIPTION_MAX - reserve - len(note)) + note
    footer = markup.truncate(flat(post.footer, post.zone), FOOTER_MAX)
    fields = _fields(post, mentions)
    image = post.image if post.image.startswith(("https://", "http://")) else ""
    if not (title or description or fields or footer or image or post.timestamp):
        return None
    description, fields = _fit_total(title, description, fields, footer, reserve)
    embed = discord.Embed(
        title=title or None,
        description=description or None,
        url=safe_url(url) if url else None,
        color=post.color,
        timestamp=post.timestamp,
    )
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
    if footer:
        embed.set_footer(text=footer)
    if image:
        embed.set_image(url=image)
    return embed


def _fields(post: Post, mentions: set[str]) -> list[tuple[str, str, bool]]:
    return [
        (
            markup.truncate(escape_discord_only(flat(f.name, post.zone)), FIELD_NAME_MAX) or ZWSP,
            markup.truncate(rich(f.value, mentions), FIELD_VALUE_MAX) or ZWSP,
            f.inline,
        )
        for f in post.fields
    ]


DESCRIPTION_KEPT = 2048  # with many fields, the text still keeps this much
NOTE_ROOM = 30  # room for the closing "… N more not shown" field


def _fit_total(
    title: str,
    description: str,
    fields: list[tuple[str, str, bool]],
    footer: str,
    reserve: int = 0,
) -> tuple[str, list[tuple[str, str, bool]]]:
    """Keep the embed within 25 fields and 6000 characters in all.

    The text gives way first (down to DESCRIPTION_KEPT), then fields are kept in order
    while they fit; the last slot then says how many were left out.
    """
    fixed = len(title) + len(footer) + reserve
    wanted = sum(len(n) + len(v) for n, v, _ in fields)
    over = fixed + len(description) + wanted - EMBED_TOTAL_MAX
    if over > 0 and len(description) > DESCRIPTION_KEPT:
        keep = max(DESCRIPTION_KEPT, len(description) - over)
        description = markup.truncate(description, keep)
    budget = EMBED_TOTAL_MAX - fixed - len(description)
    kept: list[tuple[str, str, bool]] = []
    for index, (name, value, inline) in enumerate(fields):
        last = index == len(fields) - 1
        slots_left = FIELDS_MAX - len(kept) - (0 if last else 1)
        room = budget - (0 if last else NOTE_ROOM) - len(name)
        if slots_left <= 0 or room < 2:
            break
        if len(value) > room:
            kept.append((name, markup.truncate(value, room), inline))
            if not last:
                break
            continue
        kept.append((name, value, inline))
        budget -= len(name) + len(value)
    hidden = len(fields) - len(kept)
    if hidden:
        kept.append((ELLIPSIS, f"{hidden} more not shown", False))
    return description, kept


# --- Components ----------------------------------------------------------------------------


def _view(buttons: list[Button], selects: list[Select]) -> tuple[discord.ui.View | None, int]:
    """Buttons in rows of five and one row per select, in at most five rows.

    Returns the view and how many buttons, selects or options had to be left out.
    """
    if not buttons and not selects:
        return None, 0
    view = discord.ui.View(timeout=None)
    seen: set[str] = set()
    dropped = 0
    select_rows = min(len(selects), ROWS_MAX - (1 if buttons else 0))
    button_rows = ROWS_MAX - select_rows
    usable = buttons[: button_rows * BUTTONS_PER_ROW]
    dropped += len(buttons) - len(usable)
    for index, button in enumerate(usable):
        item = _button(button, seen)
        item.row = index // BUTTONS_PER_ROW
        view.add_item(item)
    first_select_row = (len(usable) + BUTTONS_PER_ROW - 1) // BUTTONS_PER_ROW
    dropped += len(selects) - select_rows
    for offset, select in enumerate(selects[:select_rows]):
        item, cut = _select(select, seen)
        dropped += cut
        if item is not None:
            item.row = first_select_row + offset
            view.add_item(item)
    return (view if view.children else None), dropped


def _label(text: str, limit: int) -> str:
    return markup.truncate(markup.plain(neutralise(text)).strip(), limit) or "·"


def _button(button: Button, seen: set[str]) -> discord.ui.Item[Any]:
    label = _label(button.label, BUTTON_LABEL_MAX)
    if button.url or button.style == "link":
        if button.url.startswith(("https://", "http://")):
            return discord.ui.Button(label=label, url=button.url)
        return discord.ui.Button(label=label, disabled=True, custom_id=_dead(seen))
    style = _BUTTON_STYLES.get(button.style, discord.ButtonStyle.secondary)
    custom_id = custom_id_for(button.action, button.value, seen)
    if custom_id is None:
        log.error("button %r: action and value do not fit in a custom id", button.action)
        return discord.ui.Button(label=label, style=style, disabled=True, custom_id=_dead(seen))
    return CoreComponent(discord.ui.Button(label=label, style=style, custom_id=custom_id))


def _dead(seen: set[str]) -> str:
    """A unique id for a disabled button that reaches no handler."""
    dead = f"itsm-off:{len(seen)}"
    seen.add(dead)
    return dead


def _select(select: Select, seen: set[str]) -> tuple[discord.ui.Item[Any] | None, int]:
    options, values = [], set()
    for option in select.options:
        value = option.value[:SELECT_TEXT_MAX]
        if value in values:
            continue
        values.add(value)
        options.append(
            discord.SelectOption(
                label=_label(option.label, SELECT_TEXT_MAX),
                value=value,
                description=_label(option.description, SELECT_TEXT_MAX)
                if option.description
                else None,
            )
        )
    cut = max(0, len(options) - SELECT_OPTIONS_MAX)
    options = options[:SELECT_OPTIONS_MAX]
    custom_id = custom_id_for(select.action, select.value, seen)
    if not options or custom_id is None:
        log.error("select %r cannot be shown on Discord", select.action)
        return None, 1
    max_values = max(1, min(select.max_values, len(options)))
    inner = discord.ui.Select(
        custom_id=custom_id,
        placeholder=_label(select.placeholder, PLACEHOLDER_MAX) if select.placeholder else None,
        min_values=max(0, min(select.min_values, max_values)),
        max_values=max_values,
        options=options,
    )
    return CoreComponent(inner), cut
