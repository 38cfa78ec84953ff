"""Helpers every renderer shares: replacing time/mention/channel markers, links, honest cuts.

The renderers' half of the trust model described in `bot.model` ("Trusted and untrusted
text"): these functions read the core's markup subset and decide what becomes live.

- A `code` span is literal: no marker or link inside it becomes anything, and its content
  is shown `inert()` (plain brackets, a parted `](`). Input that an error message quotes in
  backticks therefore stays the text that was typed (unless the input holds backticks of
  its own that close the span: the quoting code must `inert()` it, as bot/model.py says).
- A link whose label names an address other than the one it opens is never shown as a
  link hiding that address: it is written out as "label (address)".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bot.model import MARK_CLOSE, MARK_OPEN, inert

_MARKER = re.compile(
    re.escape(MARK_OPEN)
    + r"(?:t:(-?\d+):([fFdDtR])|@:([^"
    + re.escape(MARK_CLOSE)
    + r"]+)|#:([\w.-]+))"
    + re.escape(MARK_CLOSE)
)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
ELLIPSIS = "…"


def outside_code(text: str, change: Callable[[str], str]) -> str:
    """Apply `change` to the text outside code spans; code spans keep their text, made
    `inert()` (a marker or a link inside code is text, on every platform)."""
    if "`" not in text:
        return change(text)
    out, last = [], 0
    for match in CODE_SPAN.finditer(text):
        out.append(change(text[last : match.start()]))
        out.append(inert(match.group(0)))
        last = match.end()
    out.append(change(text[last:]))
    return "".join(out)


def substitute(
    text: str,
    time: Callable[[datetime, str], str],
    mention: Callable[[str], str],
    channel: Callable[[str], str] = lambda channel: f"#{channel}",
) -> str:
    """Replace every time, mention and channel marker (outside code) with what the
    platform shows."""

    def one(match: re.Match[str]) -> str:
        if match.group(3) is not None:
            return mention(match.group(3))
        if match.group(4) is not None:
            return channel(match.group(4))
        return time(datetime.fromtimestamp(int(match.group(1)), UTC), match.group(2))

    def markers(part: str) -> str:
        # What is left of a marker that is not one (a stray bracket) is shown as text.
        shown = _MARKER.sub(one, part)
        return shown.replace(MARK_OPEN, "[").replace(MARK_CLOSE, "]")

    return outside_code(text, markers)


def truncate(text: str, limit: int, notice: str = ELLIPSIS) -> str:
    """Cut `text` to `limit` characters, ending with a visible notice when cut."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(notice))
    return text[:keep].rstrip() + notice


_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)([^\s/|<>()\[\]\\?#:@]+)", re.IGNORECASE)


def _host(name: str) -> str:
    return name.lower().rstrip(".").removeprefix("www.")


def disguises(label: str, url: str) -> bool:
    """True if `label` names a web address (scheme:// or www.) on a host other than `url`'s:
    shown as a link, it would hide where it goes."""
    if "://" not in label and "www." not in label.lower():
        return False
    try:
        target = _host(urlsplit(url).hostname or "")
    except ValueError:
        return True
    return any(_host(host) != target for host in _ADDRESS.findall(label))


def plain(text: str) -> str:
    """The markdown subset as plain text: bold dropped, links (outside code) as
    'label (url)'. Bold may span code (an error quoting input), so it is read across it."""
    text = outside_code(
        text, lambda part: _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", part)
    )
    return _BOLD.sub(r"\1", text)


def links(text: str, render: Callable[[str, str], str]) -> str:
    """Rewrite [label](url) links (http/https only, outside code) with a platform's link
    syntax; a link whose label names another address is written out as 'label (url)'."""

    def one(match: re.Match[str]) -> str:
        label, url = match.group(1), match.group(2)
        if disguises(label, url):
            return f"{label} ({url})"
        return render(label, url)

    return outside_code(text, lambda part: _LINK.sub(one, part))
