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
import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import feedparser_rs
import nh3
from feedparser.encodings import convert_to_utf8
from feedparser.urls import _urifixer, _urljoin

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


# --- Text cleaning ------------------------------------------------------------------------

_BLOCK = re.compile(r"<(/?)(p|br|div|li|ul|ol|h[1-6]|tr|td|th|blockquote|pre|hr|table)\b", re.I)
_SPACE = re.compile(r"\s+")
_TAGLIKE = re.compile(r"<(?=[A-Za-z/!?@#])")
_SENTENCE_END = re.compile(r"[.!?…](?=\s)")


def clean_text(markup: str) -> str:
    """HTML or text -> one line of plain text; nothing that looks like a tag survives."""
    if not markup:
        return ""
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
    less well (see `_fast_read`). Either way an item's key comes out the same.
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
    parsed = _fast_read(body, url, content_type) if first_pass else None
    parser = FIRST_PASS
    if parsed is None:
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
        title=trim(clean_text(_str(feed.get("title"))), TITLE_CHARS),
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


# --- The fast first pass ------------------------------------------------------------------
#
# feedparser-rs reads most feeds about ten times faster than feedparser. What it reads must
# key every item exactly as feedparser would (a changed key reposts the item), so:
# - the bytes are first decoded by feedparser's own encoding rules (HTTP charset, BOM, XML
#   declaration, its fallbacks) and handed over as UTF-8: both parsers see the same text;
# - a guid or Atom id goes through feedparser's URI resolution against the feed's URL;
# - feedparser reads the feed instead when it is ill-formed (feedparser-rs sets bozo), has no
#   version or no entries, declares entities, uses xml:base, has an isPermaLink that could
#   leave a relative guid unresolved, is RSS 0.90/1.0 with relative ids, or has an item
#   keyed by the hash of its title and date (the raw text would have to match exactly).

FIRST_PASS = "feedparser-rs"

_XML_BASE = re.compile(rb"\bbase\s*=", re.I)
_PERMALINK_VALUE = re.compile(rb"ispermalink\s*=\s*[\"']([^\"']*)", re.I)


_FIRST_ITEM = re.compile(rb"<(?:[\w-]+:)?(?:item|entry)[\s>/]")
_IMAGE = re.compile(rb"<image[\s>/]")
_DATE = re.compile(rb"<(?:[\w-]+:)?(?:[a-z]*date|modified|issued|created|updated|published|lastmod)\b", re.I)  # fmt: skip
_ENTRY = re.compile(rb"<(?:[\w-]+:)?entry[\s>/]")
_AUTHOR = re.compile(rb"<(?:[\w-]+:)?(?:author|creator)[\s>/]")


def _segments(data: bytes, pattern: re.Pattern[bytes], count: int) -> list[tuple[int, int]] | None:
    """Where each of `count` entries starts and the next begins; None if they cannot be told."""
    starts = [m.start() for m in pattern.finditer(data)]
    if len(starts) != count:
        return None
    return list(zip(starts, starts[1:] + [len(data)], strict=True))


def _feed_author_only(data: bytes, parsed: Any, version: str, count: int) -> set[int] | None:
    """Entries that show the Atom feed's author only by inheritance (feedparser shows none).

    None when the entries cannot be told apart in the bytes.
    """
    feed = parsed.get("feed")
    if not version.startswith("atom") or not (feed and feed.get("author")):
        return set()
    spans = _segments(data, _ENTRY, count)
    if spans is None:
        return None
    return {i for i, (a, b) in enumerate(spans) if not _AUTHOR.search(data, a, b)}


def _several_rss_authors(data: bytes, start: int, count: int) -> bool:
    """An item with more than one <author>/<dc:creator>: which one shows is feedparser's rule."""
    if len(_RSS_AUTHOR.findall(data, start)) < 2:
        return False
    spans = _segments(data, _ITEM, count)
    return spans is None or any(len(_RSS_AUTHOR.findall(data, a, b)) > 1 for a, b in spans)


_ITEM = re.compile(rb"<(?:[\w-]+:)?item[\s>/]")
_RSS_AUTHOR = re.compile(rb"<(?:author|[\w-]+:creator)[\s>]")
_EMAIL = re.compile(r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?""")  # fmt: skip


def _rss_author_name(author: str) -> str:
    """The name feedparser takes from an RSS author such as "ed@example.org (Ed)"."""
    found = _EMAIL.search(author)  # feedparser's own expression and steps, kept as they are
    if found:
        author = author.replace(found.group(0), "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    return author


def _extra_slashes(uri: str) -> bool:
    """feedparser drops the slashes after "scheme://" (as in "http:///x"): safe_link does not."""
    found = _urifixer.match(uri)
    return bool(found and found.group(2))


class _Entry:
    """An entry of feedparser-rs with some fields as feedparser would give them."""

    __slots__ = ("_entry", "_fixed")

    def __init__(self, entry: Any, fixed: dict[str, str]) -> None:
        self._entry = entry
        self._fixed = fixed

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._fixed:
            return self._fixed[name]
        return self._entry.get(name, default)


def _fast_read(body: bytes, url: str, content_type: str) -> dict[str, Any] | None:
    """feedparser-rs's reading of the body, or None where feedparser must read it instead."""
    headers = {"content-location": url} if url else {}
    if content_type:
        headers["content-type"] = content_type
    decoding: dict[str, Any] = {}
    try:
        data = convert_to_utf8(headers, body, decoding)
    except Exception:  # feedparser's own path reports it
        return None
    if not decoding.get("encoding") or b"<!ENTITY" in data[:200_000]:
        return None
    lowered = data.lower()  # one pass, then plain substring tests (faster than re.I scans)
    if b"base" in lowered and _XML_BASE.search(data):
        return None
    permalink = b"ispermalink" in lowered
    if permalink and any(v not in (b"true", b"false") for v in _PERMALINK_VALUE.findall(data)):
        return None
    try:
        parsed = feedparser_rs.parse(data, sanitize_html=False, resolve_relative_uris=False)
    except Exception:  # refused: feedparser has its say
        return None
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if parsed.get("bozo") or not version or version.startswith("json") or not entries:
        return None  # JSON Feed included: feedparser does not read it, and neither do we
    first = _FIRST_ITEM.search(data)
    if first and _IMAGE.search(data, first.start()):
        return None  # an <image> inside an item: its <link> is not the item's for feedparser
    shared = _feed_author_only(data, parsed, version, len(entries))
    if shared is None:
        return None
    dated = bool(first and _DATE.search(data, first.start()))
    atom = version.startswith("atom")
    if not atom and first and _several_rss_authors(data, first.start(), len(entries)):
        return None
    out: list[Any] = []
    for index, entry in enumerate(entries):
        if not (entry.get("published_parsed") or entry.get("updated_parsed")) and dated:
            return None  # feedparser may find a date there (dcterms:modified, ...)
        guid = _str(entry.get("id")).strip()
        link = entry.get("link")
        fixed: dict[str, str] = {}
        if isinstance(link, str) and _extra_slashes(link.strip()):
            # Otherwise safe_link's own urljoin gives what feedparser's resolution would.
            fixed["link"] = _urljoin(url, link.strip())
        if guid:
            resolved = _urljoin(url, guid)
            if resolved != guid:
                if permalink or version in ("rss090", "rss10"):
                    return None
                fixed["id"] = resolved
        elif not safe_link(fixed.get("link", link), url):
            return None
        tags = entry.get("tags") or ()
        if len(tags) > 1 and len({t.get("term") for t in tags}) < len(tags):
            return None  # a repeated category: feedparser's de-duplication decides
        if index in shared:
            fixed["author"] = ""
            fixed["author_detail"] = ""
        elif atom:
            authors = entry.get("authors") or ()
            if len(authors) > 1:  # feedparser shows the last one
                last = authors[-1]
                fixed["author_detail"] = {"name": _str(last.get("name"))}  # type: ignore[assignment]
                fixed["author"] = _str(last.get("email"))
        else:
            author = _str(entry.get("author"))
            if "@" in author:
                name = _rss_author_name(author)
                fixed["author_detail"] = {"name": name} if name else {}  # type: ignore[assignment]
        out.append(_Entry(entry, fixed) if fixed else entry)
    error = decoding.get("bozo_exception")
    return {
        "feed": parsed.get("feed"),
        "version": version,
        "entries": out,
        "bozo": bool(error),
        "bozo_exception": error,
    }


def _keyed(entry: Any, index: int, base: str) -> Item:
    """An item with only what identifies and orders it (cheap)."""
    link = safe_link(entry.get("link"), base)
    guid = _str(entry.get("id")).strip()
    if guid:
        key = guid
    elif link:
        key = link
    else:
        title = _str(entry.get("title")).strip()
        dated = _str(entry.get("published") or entry.get("updated"))
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
    summary = _str(entry.get("summary"))
    if not summary and entry.get("content"):
        summary = _str(entry.get("content")[0].get("value"))
    detail = entry.get("author_detail") or {}
    author = _str(detail.get("name")) or _str(entry.get("author"))
    categories = tuple(
        c for c in (clean_text(_str(t.get("term"))) for t in entry.get("tags") or []) if c
    )
    item.title = trim(clean_text(_str(entry.get("title"))), TITLE_CHARS)
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


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _short(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}"[:200] if exc else ""


# --- Discovery ----------------------------------------------------------------------------


class _AlternateLinks(HTMLParser):
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


def discover(body: bytes, base: str) -> list[str]:
    """Feed URLs a web page announces with <link rel="alternate" type="...rss/atom...">."""
    finder = _AlternateLinks()
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
