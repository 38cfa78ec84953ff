"""Slack payloads -> the core's neutral requests, as pure functions.

Slash commands become an `Invocation` carrying the raw text for the core's parser;
`block_actions` an `Action`; `view_submission` a `Submission`. Each keeps the payload in
`raw`. The id encodings shared with the renderer (unique action ids within a message,
select context in the block id, form context in `private_metadata`) live here too, so the
way there and the way back sit side by side.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.model import Action, ChannelRef, Invocation, Submission, UserRef

PLATFORM = "slack"
# Slash commands whose name differs from the core command they run.
SLASH_ALIASES = {"itsm": "help"}
LINK_ACTION = "link"  # url buttons still report a click; nothing handles it
WORKSPACE_WORDS = "Slack workspace"

_SUFFIX = re.compile(r"#s?\d+$")
_URL = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|[^>]*)?>")


# --- Ids shared with the renderer ------------------------------------------------------


def slash_name(top: str) -> str:
    """The Slack slash command for a top-level core command (`help` is `/itsm`)."""
    for slash, core in SLASH_ALIASES.items():
        if core == top:
            return slash
    return top


def help_command() -> str:
    """Slack's help command, as the core's texts should name it: `/itsm`."""
    return "/" + slash_name("help")


def action_id(action: str, index: int, select: bool = False) -> str:
    """Slack wants action ids unique within a message: suffix the element's position."""
    return f"{action}#{'s' if select else ''}{index}"


def core_action(slack_action_id: str) -> str:
    return _SUFFIX.sub("", slack_action_id)


def select_block_id(index: int, value: str) -> str:
    """A select has no value of its own; its block id carries the core's context."""
    return f"select{index}|{value}"


def select_value(block_id: str) -> str:
    return block_id.partition("|")[2] if block_id.startswith("select") else ""


def form_metadata(
    value: str, channel: ChannelRef, message_ts: str = "", response_url: str = ""
) -> str:
    """What a modal must remember until it is submitted: context, channel, source message,
    and for a card only its member sees, the response_url that can replace it (Slack's only
    way to change an ephemeral message; a submission carries none of its own)."""
    meta = {"v": value, "c": channel.key, "m": message_ts}
    if response_url:
        meta["r"] = response_url
    return json.dumps(meta, separators=(",", ":"))


def read_form_metadata(text: str) -> dict[str, str]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


# --- Payloads -> requests --------------------------------------------------------------


def slash_text(text: str) -> str:
    """Slack escapes what members type (&amp; &lt; &gt;) and wraps links; undo both."""
    text = _URL.sub(lambda m: m.group(1), text or "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def invocation(payload: dict[str, Any], is_moderator: bool = False) -> Invocation:
    """A slash command (HTTP form fields or the Socket Mode payload) -> Invocation."""
    team = str(payload.get("team_id") or "")
    top = str(payload.get("command") or "").lstrip("/").lower()
    return Invocation(
        path=(SLASH_ALIASES.get(top, top),),
        user=UserRef(PLATFORM, team, str(payload["user_id"]), str(payload.get("user_name", ""))),
        channel=ChannelRef(PLATFORM, team, str(payload["channel_id"])),
        is_moderator=is_moderator,
        text=slash_text(str(payload.get("text") or "")),
        raw=payload,
    )


def team_of(payload: dict[str, Any]) -> str:
    team = payload.get("team") or {}
    user = payload.get("user") or {}
    view = payload.get("view") or {}
    return str(
        team.get("id") or payload.get("team_id") or user.get("team_id") or view.get("team_id", "")
    )


def user_of(payload: dict[str, Any]) -> UserRef:
    """The member behind any interactive payload."""
    user = payload.get("user") or {}
    user_id = user.get("id") or payload.get("user_id", "")
    name = user.get("username") or user.get("name") or payload.get("user_name", "")
    return UserRef(PLATFORM, team_of(payload), str(user_id), str(name))


def action(payload: dict[str, Any]) -> Action | None:
    """The first action of a `block_actions` payload, or None for a link or a non-message."""
    actions = payload.get("actions") or []
    container = payload.get("container") or {}
    channel_id = (payload.get("channel") or {}).get("id") or container.get("channel_id")
    if not actions or not channel_id:
        return None
    first = actions[0]
    name = core_action(str(first.get("action_id", "")))
    if name == LINK_ACTION or not name:
        return None
    chosen: list[str] = []
    if first.get("selected_option"):
        chosen = [str(first["selected_option"]["value"])]
    elif first.get("selected_options") is not None:
        chosen = [str(o["value"]) for o in first["selected_options"]]
    value = str(first["value"]) if "value" in first else select_value(first.get("block_id", ""))
    message = payload.get("message") or {}
    return Action(
        action=name,
        value=value,
        user=user_of(payload),
        channel=ChannelRef(PLATFORM, team_of(payload), str(channel_id)),
        message_id=str(container.get("message_ts") or message.get("ts") or ""),
        values=chosen,
        raw=payload,
    )


def submission(payload: dict[str, Any]) -> Submission:
    """A `view_submission` -> Submission; every input's value by its block id (field id)."""
    view = payload.get("view") or {}
    meta = read_form_metadata(view.get("private_metadata", ""))
    team = team_of(payload)
    channel = ChannelRef.parse(meta["c"]) if meta.get("c") else ChannelRef(PLATFORM, team, "")
    values: dict[str, str] = {}
    for block_id, elements in ((view.get("state") or {}).get("values") or {}).items():
        for element in elements.values():
            values[block_id] = _input_value(element)
    return Submission(
        form=str(view.get("callback_id", "")),
        value=str(meta.get("v", "")),
        values=values,
        user=user_of(payload),
        channel=channel,
        raw=payload,
    )


def _input_value(element: dict[str, Any]) -> str:
    if element.get("selected_option"):
        return str(element["selected_option"].get("value", ""))
    if element.get("selected_options"):
        return ",".join(str(o.get("value", "")) for o in element["selected_options"])
    return str(element.get("value") or "")
