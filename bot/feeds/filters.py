"""Include / exclude filters: words or /regular expressions/ on title, summary, categories."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.feeds.parse import Item

MAX_PATTERN = 200


@dataclass(frozen=True)
class Filter:
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    def matches(self, item: Item) -> bool:
        haystack = "\n".join((item.title, item.summary, *item.categories))
        if self.include and not any(p.search(haystack) for p in self.include):
            return False
        return not any(p.search(haystack) for p in self.exclude)


def compile_terms(spec: str) -> tuple[re.Pattern[str], ...]:
    """`/regex/` is one expression; otherwise comma-separated words or phrases.

    Words match whole words, case-insensitively. Raises ValueError on a bad expression.
    """
    spec = spec.strip()
    if not spec:
        return ()
    if len(spec) > MAX_PATTERN:
        raise ValueError(f"at most {MAX_PATTERN} characters")
    if len(spec) >= 2 and spec.startswith("/") and spec.endswith("/"):
        try:
            return (re.compile(spec[1:-1], re.IGNORECASE),)
        except re.error as exc:
            raise ValueError(f"`{spec}` is not a valid regular expression: {exc}") from None
    words = [w.strip() for w in spec.split(",") if w.strip()]
    return tuple(re.compile(rf"(?<!\w){re.escape(w)}(?!\w)", re.IGNORECASE) for w in words)


def make_filter(include: str, exclude: str) -> Filter:
    return Filter(compile_terms(include), compile_terms(exclude))
