"""Include / exclude filters: words or /regular expressions/ on title, summary, categories.

Expressions come from moderators, so one can be catastrophic (`(a+)+$` backtracks for
ever on a long run of "a"). Matching uses the `regex` package with a time limit and with
the interpreter lock released, and `Filter.select` is meant for a worker thread: a slow
expression costs a worker some time, never the event loop. An item a stuck expression
could not decide is held back (not posted) and reported; `/feed add` refuses expressions
that already stall on a few test strings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.feeds.parse import Item

if TYPE_CHECKING:
    import regex

log = logging.getLogger(__name__)

MAX_PATTERN = 200
MATCH_TIMEOUT = 0.1  # seconds one expression may spend on one item
MAX_TIMEOUTS = 3  # per batch: past this, the expression is taken as stuck for the batch
PROBE_LENGTH = 2000  # about the longest text a filter sees (title, summary, categories)


@dataclass
class Selection:
    """What a filter made of a batch: the items kept, and those it could not decide."""

    kept: list[Item] = field(default_factory=list)
    undecided: list[Item] = field(default_factory=list)
    stuck: str = ""  # the expression that ran out of time, as the moderator wrote it


@dataclass(frozen=True)
class Filter:
    include: tuple[regex.Pattern[str], ...] = ()
    exclude: tuple[regex.Pattern[str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.include and not self.exclude

    def matches(self, item: Item) -> bool:
        """Whether the item passes; raises `TimeoutError` if an expression runs too long."""
        haystack = "\n".join((item.title, item.summary, *item.categories))
        if self.include and not any(_search(p, haystack) for p in self.include):
            return False
        return not any(_search(p, haystack) for p in self.exclude)

    def select(self, items: list[Item], limit: int | None = None) -> Selection:
        """The items that pass, in the given order, up to `limit` of them (slow: call it in
        a worker thread). After `MAX_TIMEOUTS` time-outs the rest go undecided untried."""
        out = Selection()
        timeouts = 0
        for item in items:
            if limit is not None and len(out.kept) >= limit:
                break
            if timeouts >= MAX_TIMEOUTS:
                out.undecided.append(item)
                continue
            try:
                if self.matches(item):
                    out.kept.append(item)
            except _Stuck as stuck:
                timeouts += 1
                out.undecided.append(item)
                out.stuck = stuck.pattern
        return out


class _Stuck(TimeoutError):
    def __init__(self, pattern: str) -> None:
        super().__init__(f"the expression /{pattern}/ took too long")
        self.pattern = pattern


def _search(pattern: regex.Pattern[str], text: str) -> bool:
    try:
        return pattern.search(text, timeout=MATCH_TIMEOUT, concurrent=True) is not None
    except TimeoutError:
        raise _Stuck(pattern.pattern) from None


def compile_terms(spec: str) -> tuple[regex.Pattern[str], ...]:
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


def _compile(term: str) -> regex.Pattern[str]:
    import regex  # loaded by the first filter compiled: most feeds have none

    if not _is_regex(term):
        return regex.compile(rf"(?<!\w){regex.escape(term)}(?!\w)", regex.IGNORECASE)
    try:
        return regex.compile(term[1:-1], regex.IGNORECASE)
    except regex.error as exc:
        raise ValueError(f"`{term}` is not a valid regular expression: {exc}") from None


def make_filter(include: str, exclude: str) -> Filter:
    return Filter(compile_terms(include), compile_terms(exclude))


def stalling_pattern(patterns: tuple[regex.Pattern[str], ...]) -> str | None:
    """The first expression that runs out of time on a test string, else None.

    The test strings are long runs of the characters the expression names, then one that
    breaks the match: what makes nested repetition backtrack for ever. It is a cheap
    screen, not a proof; the time limit at matching time stays the real guard. Slow only
    for an expression that stalls, so call it in a worker thread.
    """
    for pattern in patterns:
        for probe in _probes(pattern.pattern):
            try:
                pattern.search(probe, timeout=MATCH_TIMEOUT, concurrent=True)
            except TimeoutError:
                return pattern.pattern
    return None


def _probes(source: str) -> list[str]:
    named = [c for c in dict.fromkeys(source) if c.isalnum() or c in " -_.,:;'\""]
    chars = list(dict.fromkeys([*named[:8], "a", "0", " "]))
    mixed = "".join(chars)
    runs = [c * PROBE_LENGTH for c in chars]
    runs.append((mixed * (PROBE_LENGTH // len(mixed) + 1))[:PROBE_LENGTH])
    return [run + tail for run in runs for tail in ("!", "\n")]
