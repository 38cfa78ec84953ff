"""The core's neutral Post and Form -> Slack Block Kit, as pure functions.

Every piece of content is escaped (`&`, `<`, `>`) before any Slack syntax is added, so
nothing a member or a feed wrote can ping (`<!channel>`, `<@U…>`, `<!subteam^…>`), fake a
date (`<!date^…>`) or become a link; the only `<…>` sequences in the output are the ones
made here: links from the markup's `[label](https://…)`, mentions of the members the post
lists in `Post.mentions` and of the user groups in `Post.mention_roles` (first, in the text
and in a block of their own), and localised times (see "Trusted and untrusted text" in
bot/model.py). A link whose label names another address, the post's linked title included,
shows its real address instead of hiding it.
`plain_text` objects (header, labels) are escaped too: Slack decodes the three entities
there as well, and nothing in the output then looks like a live tag.
Every Slack limit is respected; whatever is cut ends with a visible "…".
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from adapters.slack import translate
from bot import markup
from bot.markup import ELLIPSIS
from bot.model import Button, Field, Form, FormField, Post, Select, safe_url
from bot.timeutil import format_local

# Slack's published limits.
MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
FIELDS_PER_SECTION = 10
HEADER_TEXT = 150
CONTEXT_TEXT = 3000
BUTTON_LABEL = 75
BUTTON_VALUE = 2000
BUTTONS_PER_ACTIONS = 25
URL_LENGTH = 3000
ALT_TEXT = 2000
OPTION_TEXT = 75
OPTION_VALUE = 150
OPTIONS_PER_SELECT = 100
PLACEHOLDER = 150
ID_LENGTH = 255
MODAL_TITLE = 24
MODAL_BUTTON = 24
MODAL_BLOCKS = 100
INPUT_LABEL = 2000
INPUT_LENGTH = 3000
PRIVATE_METADATA = 3000
FALLBACK_TEXT = 3000  # Slack allows far more; a notification needs far less

Block = dict[str, Any]

# A moment shown in each reader's own zone and format, per the core's time styles.
_DATE_FORMATS = {
    "d": "{date_short_pretty}",
    "D": "{date_long_pretty}",
    "t": "{time}",
    "f": "{date_short_pretty} {time}",
    "F": "{date_long_pretty} {time}",
    "R": "{ago}",
}
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{1,20}$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]{1,20}$")
_BROADCAST = re.compile(r"@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^- ", re.MULTILINE)
_ITALIC = re.compile(r"(?<!\w)_(\S(?:.*?\S)?)_(?!\w)")
_PARTIAL_TAIL = re.compile(r"(?:<[^>]*|&[#a-zA-Z0-9]{0,8})$")


# --- Text --------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Make text inert for mrkdwn: no tag, no entity, no broadcast word survives."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Slack only turns bare @here into a ping when asked to (link_names); never let it.
    return _BROADCAST.sub("@\u200b", text)


_SLACK_CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,}")


def mrkdwn(text: str, zone: str = "UTC", mentions: tuple[str, ...] | list[str] = ()) -> str:
    """The core's markdown subset and markers -> escaped Slack mrkdwn. Only the members in
    `mentions` (the post's own list) are mentioned; any other mention marker is text."""
    text = _BULLET.sub("• ", escape(text))
    text = markup.links(text, _link)
    text = _BOLD.sub(r"*\1*", text)  # bold may span code: an error quoting input
    return markup.substitute(
        text,
        time=lambda moment, style: _date(moment, style, zone),
        mention=lambda user: _mention(user, mentions),
        channel=_channel,
    )


def _channel(channel: str) -> str:
    return f"<#{channel}>" if _SLACK_CHANNEL.fullmatch(channel) else f"#{channel}"


def plain(text: str, zone: str = "UTC") -> str:
    """For plain_text objects: markers as readable text, markdown dropped."""
    text = markup.substitute(
        text,
        time=lambda moment, style: format_local(moment, zone, style),
        mention=lambda user: f"@{user}",
    )
    return _ITALIC.sub(r"\1", markup.plain(text))


def cut(text: str, limit: int) -> str:
    """Truncate mrkdwn to `limit` with a visible "…", never leaving half a tag or entity."""
    if len(text) <= limit:
        return text
    kept = _PARTIAL_TAIL.sub("", text[: limit - len(ELLIPSIS)])
    return kept.rstrip() + ELLIPSIS


def plain_text(text: str, limit: int, zone: str = "UTC") -> dict[str, Any]:
    shown = cut(escape(plain(text, zone)), limit) or " "
    return {"type": "plain_text", "text": shown, "emoji": True}


def _link(label: str, url: str) -> str:
    # `label` and `url` are already escaped; `|` would end the url or split the label.
    return f"<{url.replace('|', '%7C')}|{label.replace('|', '¦')}>"


def _mention(user: str, allowed: tuple[str, ...] | list[str] = ()) -> str:
    if user in allowed and _SLACK_USER.match(user):
        return f"<@{user}>"
    return _BROADCAST.sub("@\u200b", f"@{user}")  # already escaped: it came from the text


def _date(moment: datetime, style: str, zone: str) -> str:
    fallback = escape(format_local(moment, zone, style)).replace("|", "/")
    return f"<!date^{int(moment.timestamp())}^{_DATE_FORMATS.get(style, _DATE_FORMATS['f'])}|{fallback}>"


def _mrkdwn_block(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut(text, limit) or " "}


def _is_web_url(url: str) -> bool:
    return url.startswith(("https://", "http://")) and len(url) <= URL_LENGTH


# --- Post -> message ---------------------------------------------------------------------


def render(post: Post) -> dict[str, Any]:
    """A Post as `{"text": fallback, "blocks": [...]}`, ready for chat.postMessage."""
    pings = _group_pings(post)
    # The pings have a block of their own first, as Discord's content above its embed.
    head = [{"type": "section", "text": _mrkdwn_block(pings, SECTION_TEXT)}] if pings else []
    body = head + _title(post) + _text(post) + _fields(post) + _image(post)
    tail = _actions(post) + _context(post)
    text = fallback(post)
    text = cut(f"{pings} {text}", FALLBACK_TEXT) if pings else text
    return {"text": text, "blocks": _fit(body, tail)}


def _group_pings(post: Post) -> str:
    """The user groups the post means to ping (a subteam id each; nothing else pings)."""
    return " ".join(f"<!subteam^{g}>" for g in post.mention_roles if _SLACK_GROUP.match(g))


def fallback(post: Post) -> str:
    """The notification text: escaped like the blocks, short."""
    source = post.title or post.text or post.footer
    if not source and post.fields:
        source = post.fields[0].name
    return cut(mrkdwn(source or "Message", post.zone, post.mentions), FALLBACK_TEXT)


def _title(post: Post) -> list[Block]:
    if not post.title:
        return []
    if _is_web_url(post.url):
        # A link's label cannot hold another tag (link, mention, time): plain text only.
        shown = plain(post.title, post.zone)
        label = cut(escape(shown), HEADER_TEXT).replace("|", "¦")
        url = escape(safe_url(post.url))
        if markup.disguises(shown, post.url):
            # The title names another address: show it, and the real one, unlinked.
            text = f"*{label}*\n<{url}>"
        else:
            text = f"*<{url}|{label}>*"
        if len(text) <= SECTION_TEXT:
            return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    return [{"type": "header", "text": plain_text(post.title, HEADER_TEXT, post.zone)}]


def _text(post: Post) -> list[Block]:
    if not post.text.strip():
        return []
    text = mrkdwn(post.text, post.zone, post.mentions)
    return [{"type": "section", "text": _mrkdwn_block(text, SECTION_TEXT)}]


def _field_text(field: Field, post: Post) -> str:
    name = mrkdwn(field.name, post.zone, post.mentions)
    value = mrkdwn(field.value, post.zone, post.mentions)
    return f"*{name}*\n{value}" if name else value


def _fields(post: Post) -> list[Block]:
    blocks: list[Block] = []
    row: list[dict[str, Any]] = []

    def flush() -> None:
        if row:
            blocks.append({"type": "section", "fields": list(row)})
            row.clear()

    for field in post.fields:
        text = _field_text(field, post)
        if not text.strip():
            continue
        if field.inline:
            row.append(_mrkdwn_block(text, FIELD_TEXT))
            if len(row) == FIELDS_PER_SECTION:
                flush()
        else:
            flush()
            blocks.append({"type": "section", "text": _mrkdwn_block(text, SECTION_TEXT)})
    flush()
    return blocks


def _image(post: Post) -> list[Block]:
    if not _is_web_url(post.image):
        return []
    alt = cut(escape(plain(post.title or "image", post.zone)), ALT_TEXT) or "image"
    return [{"type": "image", "image_url": post.image, "alt_text": alt}]


def _button(button: Button, index: int, zone: str) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain_text(button.label or "…", BUTTON_LABEL, zone),
    }
    if button.url:
        if not _is_web_url(button.url):
            raise ValueError(f"button {button.label!r}: not a web URL")
        element["url"] = button.url
        element["action_id"] = translate.action_id(translate.LINK_ACTION, index)
        return element
    if len(button.value) > BUTTON_VALUE:
        raise ValueError(f"button {button.label!r}: value longer than {BUTTON_VALUE}")
    element["action_id"] = _checked_id(translate.action_id(button.action, index))
    if button.value:
        element["value"] = button.value
    if button.style in ("primary", "success"):
        element["style"] = "primary"
    elif button.style == "danger":
        element["style"] = "danger"
    return element


def _select(select: Select, index: int, zone: str) -> Block:
    options = []
    for option in select.options[:OPTIONS_PER_SELECT]:
        if len(option.value) > OPTION_VALUE:
            raise ValueError(f"select option {option.label!r}: value longer than {OPTION_VALUE}")
        entry: dict[str, Any] = {
            "text": plain_text(option.label, OPTION_TEXT, zone),
            "value": option.value,
        }
        if option.description:
            entry["description"] = plain_text(option.description, OPTION_TEXT, zone)
        options.append(entry)
    element: dict[str, Any] = {
        "type": "static_select" if select.max_values <= 1 else "multi_static_select",
        "action_id": _checked_id(translate.action_id(select.action, index, select=True)),
        "options": options,
    }
    if select.max_values > 1:
        element["max_selected_items"] = min(select.max_values, len(options))
    if select.placeholder:
        element["placeholder"] = plain_text(select.placeholder, PLACEHOLDER, zone)
    block_id = _checked_id(translate.select_block_id(index, select.value))
    return {"type": "actions", "block_id": block_id, "elements": [element]}


def _actions(post: Post) -> list[Block]:
    buttons = [_button(b, i, post.zone) for i, b in enumerate(post.buttons)]
    blocks: list[Block] = [
        {
            "type": "actions",
            "block_id": f"buttons{n}",
            "elements": buttons[start : start + BUTTONS_PER_ACTIONS],
        }
        for n, start in enumerate(range(0, len(buttons), BUTTONS_PER_ACTIONS))
    ]
    blocks += [_select(s, i, post.zone) for i, s in enumerate(post.selects)]
    return blocks


def _context(post: Post) -> list[Block]:
    parts = [mrkdwn(post.footer, post.zone, post.mentions)] if post.footer.strip() else []
    if post.timestamp:
        parts.append(_date(post.timestamp, "f", post.zone))
    if not parts:
        return []
    return [{"type": "context", "elements": [_mrkdwn_block(" · ".join(parts), CONTEXT_TEXT)]}]


def _fit(body: list[Block], tail: list[Block]) -> list[Block]:
    """At most 50 blocks: keep the controls and footer, cut the body, and say so."""
    if len(body) + len(tail) <= MAX_BLOCKS:
        return body + tail
    room = MAX_BLOCKS - 1
    shown_tail = tail[:room]
    kept = body[: room - len(shown_tail)]
    hidden = len(body) - len(kept) + len(tail) - len(shown_tail)
    notice = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"{ELLIPSIS} ({hidden} more part(s) not shown)"}],
    }
    return kept + [notice] + shown_tail


def _checked_id(value: str) -> str:
    if len(value) > ID_LENGTH:
        raise ValueError(f"Slack id longer than {ID_LENGTH} characters: {value[:40]}…")
    return value


# --- Form -> modal -----------------------------------------------------------------------


def render_form(form: Form, private_metadata: str = "") -> dict[str, Any]:
    """A Form as a modal view for views.open; `callback_id` routes the submission back."""
    if len(private_metadata) > PRIVATE_METADATA:
        raise ValueError(f"form {form.id}: context longer than Slack keeps ({PRIVATE_METADATA})")
    return {
        "type": "modal",
        "callback_id": _checked_id(form.id),
        "title": plain_text(form.title, MODAL_TITLE),
        "submit": plain_text(form.submit_label, MODAL_BUTTON),
        "close": plain_text("Cancel", MODAL_BUTTON),
        "private_metadata": private_metadata,
        "blocks": [_input(f) for f in form.fields[:MODAL_BLOCKS]],
    }


def form_errors(errors: dict[str, str], view: dict[str, Any]) -> dict[str, str]:
    """Errors for a submitted modal's inputs. Slack refuses the whole answer if one names a
    block the modal lacks, so those go on its first input; none at all if it has no input."""
    inputs = [b["block_id"] for b in view.get("blocks") or [] if b.get("type") == "input"]
    if not inputs:
        return {}
    shown: dict[str, str] = {}
    for key, message in errors.items():
        target = key if key in inputs else inputs[0]
        shown[target] = f"{shown[target]} {message}" if target in shown else message
    return shown


def _input(field: FormField) -> Block:
    element: dict[str, Any] = {"action_id": _checked_id(field.id)}
    if field.kind == "select":
        options = [
            {"text": plain_text(o.label, OPTION_TEXT), "value": o.value}
            for o in field.options[:OPTIONS_PER_SELECT]
        ]
        element.update(type="static_select", options=options)
        initial = next((o for o in options if o["value"] == field.default), None)
        if initial:
            element["initial_option"] = initial
    else:
        max_length = max(1, min(field.max_length, INPUT_LENGTH))
        element.update(type="plain_text_input", multiline=field.kind == "paragraph")
        element["max_length"] = max_length
        if field.default:
            element["initial_value"] = field.default[:max_length]
    if field.placeholder:
        element["placeholder"] = plain_text(field.placeholder, PLACEHOLDER)
    return {
        "type": "input",
        "block_id": _checked_id(field.id),
        "label": plain_text(field.label, INPUT_LABEL),
        "optional": not field.required,
        "element": element,
    }
