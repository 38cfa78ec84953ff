"""Helpers every renderer shares: replacing time/mention markers, truncating honestly."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from bot.model import MARK_CLOSE, MARK_OPEN

_MARKER = re.compile(
    re.escape(MARK_OPEN)
    + r"(?:t:(-?\d+):([fFdDtR])|@:([^"
    + re.escape(MARK_CLOSE)
    + r"]+))"
    + re.escape(MARK_CLOSE)
)
ELLIPSIS = "…"


def substitute(
    text: str,
    time: Callable[[datetime, str], str],
    mention: Callable[[str], str],
) -> str:
    """Replace every time and mention marker with what the platform shows for it."""

    def one(match: re.Match[str]) -> str:
        if match.group(3) is not None:
            return mention(match.group(3))
        return time(datetime.fromtimestamp(int(match.group(1)), UTC), match.group(2))

    return _MARKER.sub(one, text)


def truncate(text: str, limit: int, notice: str = ELLIPSIS) -> str:
    """Cut `text` to `limit` characters, ending with a visible notice when cut."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(notice))
    return text[:keep].rstrip() + notice


_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def plain(text: str) -> str:
    """The markdown subset as plain text: bold dropped, links as 'label (url)'."""
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    return _BOLD.sub(r"\1", text)


def links(text: str, render: Callable[[str, str], str]) -> str:
    """Rewrite [label](url) links (http/https only) with a platform's link syntax."""
    return _LINK.sub(lambda m: render(m.group(1), m.group(2)), text)
