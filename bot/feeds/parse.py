"""Feed bytes -> normalised items, run off the event loop (a thread of the bot, or a parser
process when `[feeds] parse_workers` asks for them; see bot/feeds/poller.py).

Everything here is a plain function of its arguments and returns picklable dataclasses.
Each item gets a stable key (guid, else link, else a hash of title + date), a summary
cleaned to plain text (nh3 strips every tag; entities decoded; whitespace collapsed;
trimmed at a sentence), and an image when the item carries one.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from bot.feeds.text import clean_text, safe_link, string, trim

# The parsers (feedparser, feedparser-rs) are imported by the first parse, not here: an
# idle bot, and one whose feeds are all unchanged, never loads them (about 5 MB).
FIRST_PASS = "feedparser-rs"
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml")
TITLE_CHARS = 250


@dataclass
class Item:
    key: str  # guid, link, or a hash of title + date
    key_hash: str  # short, fixed-length form of `key`, used in tables and outbox keys
    index: int  # position in the document
    title: str = ""
    link: str = ""
    summary: str = ""
    author: str = ""
    published: float | None = None  # UTC timestamp
    categories: tuple[str, ...] = ()
    image: str = ""


@dataclass(frozen=True)
class Want:
    """Which items the caller needs in full; of the others only the key comes back.

    Cleaning text costs about as much as feedparser itself, and a poll usually needs a
    handful of items: the unseen ones, or the newest few for a new subscription.
    """

    seen: frozenset[str] = frozenset()  # key hashes already known
    unseen: bool = True  # every item whose key is not in `seen`
    newest: int | None = None  # the newest N items; None means every item

    def wants(self, item: Item, rank_from_newest: int) -> bool:
        if self.newest is None or rank_from_newest < self.newest:
            return True
        return self.unseen and item.key_hash not in self.seen


@dataclass
class ParsedFeed:
    title: str = ""
    link: str = ""
    version: str = ""
    ttl: float | None = None  # seconds, from RSS <ttl>
    keys: list[str] = field(default_factory=list)  # every item's key hash, oldest first
    items: list[Item] = field(default_factory=list)  # the items wanted in full, oldest first
    error: str = ""  # set when the body is refused or is not a feed
    warning: str = ""  # the parser's complaint about an ill-formed but usable feed
    parser: str = ""  # which parser read it: FIRST_PASS or "feedparser"

    def chronological(self) -> list[Item]:
        return self.items


def _oldest_first(items: list[Item]) -> list[Item]:
    """By date when every item has one, else reversed document order (feeds list newest first)."""
    if items and all(i.published is not None for i in items):
        return sorted(items, key=lambda i: (i.published or 0.0, -i.index))
    return list(reversed(items))


# --- Safety checks on the raw bytes ---------------------------------------------------------

_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*\[(.*?)\]\s*>", re.S | re.I)
_ENTITY = re.compile(rb"<!ENTITY\s+(%\s*)?[\w.:-]+\s+(.*?)>", re.S | re.I)
_CHAR_REF = re.compile(rb"&#(x[0-9a-f]+|[0-9]+);", re.I)


def entity_problem(body: bytes) -> str:
    """Why the DTD is refused (entity expansion bombs, external entities), or ''."""
    # In UTF-16 and UTF-32 the markup is ASCII with NULs between: without them the
    # declarations are seen whatever the encoding.
    doctype = _DOCTYPE.search(body[:200_000].replace(b"\x00", b""))
    if not doctype:
        return ""
    entities = _ENTITY.findall(doctype.group(1))
    if len(entities) > 50:
        return "the feed declares too many XML entities"
    for parameter, value in entities:
        if parameter or re.match(rb"\s*(SYSTEM|PUBLIC)\b", value, re.I):
            return "the feed declares external XML entities"
        if b"&" in _CHAR_REF.sub(b"", value):
            return "the feed declares nested XML entities (an expansion bomb)"
    return ""


# --- Parsing ------------------------------------------------------------------------------


def parse_feed(
    body: bytes,
    url: str = "",
    content_type: str = "",
    summary_chars: int = 300,
    want: Want | None = None,
) -> ParsedFeed:
    """Parse downloaded bytes into normalised items. Never raises for bad input.

    The fast parser reads first; feedparser reads whatever it refuses, raises on or reads
    less well (see bot/feeds/first_pass.py). Either way an item's key comes out the same.
    """
    return _parse_feed(body, url, content_type, summary_chars, want, first_pass=True)


def _parse_feed(
    body: bytes,
    url: str,
    content_type: str,
    summary_chars: int,
    want: Want | None,
    first_pass: bool,
) -> ParsedFeed:
    problem = entity_problem(body)
    if problem:
        return ParsedFeed(error=f"refused: {problem}")
    from bot.feeds.first_pass import read as fast_read

    parsed = fast_read(body, url, content_type) if first_pass else None
    parser = FIRST_PASS
    if parsed is None:
        import feedparser

        parser = "feedparser"
        headers = {"content-location": url} if url else {}
        if content_type:
            headers["content-type"] = content_type
        try:
            # Every tag is stripped later (nh3), so feedparser's own sanitising is not needed.
            parsed = feedparser.parse(
                body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
            )
        except Exception as exc:  # feedparser should not raise; a bad feed must not stop us
            return ParsedFeed(error=f"unreadable feed: {type(exc).__name__}", parser=parser)
    return _build(parsed, url, summary_chars, want, parser)


def _build(parsed: Any, url: str, summary_chars: int, want: Want | None, parser: str) -> ParsedFeed:
    """A parser's result (feedparser's shape) -> ParsedFeed."""
    feed = parsed.get("feed") or {}
    version = parsed.get("version", "") or ""
    entries_in = parsed.get("entries") or []
    if not version and not entries_in:
        reason = "not a feed"
        if parsed.get("bozo"):
            reason += f" ({_short(parsed.get('bozo_exception'))})"
        return ParsedFeed(error=reason, parser=parser)
    result = ParsedFeed(
        title=trim(clean_text(string(feed.get("title"))), TITLE_CHARS),
        link=safe_link(feed.get("link"), url),
        version=version,
        ttl=_ttl(feed.get("ttl")),
        warning=_short(parsed.get("bozo_exception")) if parsed.get("bozo") else "",
        parser=parser,
    )
    entries: dict[str, Any] = {}
    keyed: list[Item] = []
    for index, entry in enumerate(entries_in):
        item = _keyed(entry, index, url)
        if item.key_hash not in entries:
            entries[item.key_hash] = entry
            keyed.append(item)
    ordered = _oldest_first(keyed)
    want = want or Want()
    newest_rank = len(ordered) - 1
    for rank, item in enumerate(ordered):
        if want.wants(item, newest_rank - rank):
            _fill(item, entries[item.key_hash], url, summary_chars)
            result.items.append(item)
    # Plain strings for the rest: cheap to send back and nothing for the collector to track.
    result.keys = [i.key_hash for i in ordered]
    return result


def _keyed(entry: Any, index: int, base: str) -> Item:
    """An item with only what identifies and orders it (cheap)."""
    link = safe_link(entry.get("link"), base)
    guid = string(entry.get("id")).strip()
    if guid:
        key = guid
    elif link:
        key = link
    else:
        title = string(entry.get("title")).strip()
        dated = string(entry.get("published") or entry.get("updated"))
        key = "h:" + hashlib.sha256(f"{title}\x00{dated}".encode()).hexdigest()
    return Item(
        key=key,
        key_hash=hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24],
        index=index,
        link=link,
        published=_timestamp(entry.get("published_parsed") or entry.get("updated_parsed")),
    )


def _fill(item: Item, entry: Any, base: str, summary_chars: int) -> None:
    """Clean every displayed field of one item (the costly part)."""
    summary = string(entry.get("summary"))
    if not summary and entry.get("content"):
        summary = string(entry.get("content")[0].get("value"))
    detail = entry.get("author_detail") or {}
    author = string(detail.get("name")) or string(entry.get("author"))
    categories = tuple(
        c for c in (clean_text(string(t.get("term"))) for t in entry.get("tags") or []) if c
    )
    item.title = trim(clean_text(string(entry.get("title"))), TITLE_CHARS)
    item.summary = trim(clean_text(summary), summary_chars)
    item.author = trim(clean_text(author), 100)
    item.categories = categories[:20]
    item.image = _image(entry, base)


def _image(entry: Any, base: str) -> str:
    candidates: list[Any] = []
    for media in entry.get("media_content") or []:
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            candidates.append(media.get("url"))
    candidates += [m.get("url") for m in entry.get("media_thumbnail") or []]
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            candidates.append(link.get("href"))
    image = entry.get("image")
    if image is not None and not isinstance(image, str) and hasattr(image, "get"):
        candidates.append(image.get("href"))
    for candidate in candidates:
        found = safe_link(candidate, base)
        if found:
            return found
    return ""


def _timestamp(parsed: Any) -> float | None:
    if not parsed:
        return None
    try:
        return float(calendar.timegm(parsed))
    except (TypeError, ValueError, OverflowError):
        return None


def _ttl(value: Any) -> float | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes * 60.0 if minutes > 0 else None


def _short(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}"[:200] if exc else ""


# --- Discovery ----------------------------------------------------------------------------


def _alternate_links() -> Any:
    """A page parser that collects the feeds it announces in `found`. html.parser (and with
    it html's entity tables, about 0.4 MB) is imported only when a page is read."""
    from html.parser import HTMLParser

    class AlternateLinks(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag != "link":
                return
            values = {k.lower(): (v or "") for k, v in attrs}
            rels = values.get("rel", "").lower().split()
            kind = values.get("type", "").lower().split(";")[0].strip()
            if "alternate" in rels and kind in FEED_TYPES and values.get("href"):
                self.found.append(values["href"])

    return AlternateLinks()


def discover(body: bytes, base: str) -> list[str]:
    """Feed URLs a web page announces with <link rel="alternate" type="...rss/atom...">."""
    finder = _alternate_links()
    try:
        finder.feed(body[:1_000_000].decode("utf-8", "replace"))
    except Exception:  # a broken page simply announces nothing
        return []
    links = [safe_link(href, base) for href in finder.found]
    return list(dict.fromkeys(link for link in links if link))


def looks_like_html(body: bytes, content_type: str) -> bool:
    """A web page rather than a feed; a feed served with the wrong type still counts as a feed."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml") or any(tag in head for tag in (b"<rss", b"<feed", b"<rdf:rdf")):
        return False
    if "html" in content_type.lower() and "xhtml" not in content_type.lower():
        return True
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")
