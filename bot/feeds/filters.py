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
    """Comma-separated terms, each a word or phrase or a `/regular expression/`.

    A spec that is one `/.../` as a whole is one expression (commas and all). Words match
    whole words; everything is case-insensitive. Raises ValueError on a bad expression.
    """
    spec = spec.strip()
    if not spec:
        return ()
    if len(spec) > MAX_PATTERN:
        raise ValueError(f"at most {MAX_PATTERN} characters")
    terms = [spec] if _is_regex(spec) else [t.strip() for t in spec.split(",") if t.strip()]
    return tuple(_compile(t) for t in terms)


def _is_regex(term: str) -> bool:
    return len(term) >= 2 and term.startswith("/") and term.endswith("/")


def _compile(term: str) -> re.Pattern[str]:
    if not _is_regex(term):
        return re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.IGNORECASE)
    try:
        return re.compile(term[1:-1], re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"`{term}` is not a valid regular expression: {exc}") from None


def make_filter(include: str, exclude: str) -> Filter:
    return Filter(compile_terms(include), compile_terms(exclude))
