"""Text from feeds made safe to show: plain text out of HTML, trimmed at a sentence, and
links kept only when they are whole http(s) addresses. Shared by both feed parsers' paths."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

_BLOCK = re.compile(r"<(/?)(p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|pre|hr|table)\b", re.I)
_SPACE = re.compile(r"\s+")
_TAGLIKE = re.compile(r"<(?=[A-Za-z/!?@#])")
_SENTENCE_END = re.compile(r"[.!?…](?=\s)")


def clean_text(markup: str) -> str:
    """HTML or text -> one line of plain text; nothing that looks like a tag survives."""
    if not markup:
        return ""
    import html  # with nh3, loaded by the first text cleaned, not by an idle bot

    import nh3

    spaced = _BLOCK.sub(lambda m: f" <{m.group(1)}{m.group(2)}", markup)
    text = html.unescape(nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style"}))
    text = _TAGLIKE.sub("\u2039", text)  # a literal "<tag" in text is shown as "‹tag"
    return _SPACE.sub(" ", text).strip()


def trim(text: str, limit: int) -> str:
    """Cut at the last sentence end within `limit`, else at a word, marking the cut."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit * 0.4:
        return head[: ends[-1]].rstrip()
    cut = head[:limit].rsplit(" ", 1)[0] if " " in head[:limit] else head[: limit - 1]
    return cut.rstrip(" ,;:-") + "…"


def safe_link(url: Any, base: str = "") -> str:
    if not isinstance(url, str) or not url.strip():
        return ""
    try:
        full = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(full)
    except ValueError:  # e.g. "http://[" (an unclosed IPv6 address)
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    if any(c in full for c in " <>\"'\n\r\t"):
        return ""
    return full


def string(value: Any) -> str:
    """A parser's value when it is text, else "" (parsers give None, lists, dicts)."""
    return value if isinstance(value, str) else ""
