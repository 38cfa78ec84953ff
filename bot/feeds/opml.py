"""OPML import and export: the feed-reader world's way to move subscription lists.

Reading uses expat directly so that any DTD stops the parse as expat meets it, in
whatever encoding the file is written: no entity is ever declared, let alone expanded.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.parsers import expat

from bot.fetch import BlockedAddress, check_address, check_url

MAX_URL = 2000  # characters: what /feed add takes as its url option
FEED_TYPES = ("rss", "atom", "feed", "rdf")
PRIVATE_HINT = "[feeds] allow_private = true allows it"
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)  # 2130706433, 0x7f.1, 127.1


@dataclass
class Outline:
    url: str
    title: str = ""
    html_url: str = ""


@dataclass
class Skipped:
    """An outline that named a feed (or tried to) and was not kept, and why."""

    url: str  # as written in the file; "" when it gave none
    title: str
    reason: str


@dataclass
class Reading:
    outlines: list[Outline] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def check_feed_url(url: str, allow_private: bool = False) -> str:
    """/feed add's rules for an address taken without fetching it; ValueError says which
    one it breaks. An http(s) URL with a host (`bot.fetch.check_url`), at most MAX_URL
    characters, and unless `allow_private`: no private, loopback, link-local or reserved
    address written as such (any IPv4 spelling, IPv6, IPv4-mapped), nor a localhost name.
    A name is checked again where it resolves, when the poller fetches it (as for /feed add).
    """
    url = check_url(url)
    if len(url) > MAX_URL:
        raise ValueError(f"the address is longer than {MAX_URL} characters")
    if allow_private:
        return url
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise ValueError(f"{host} is a loopback name; {PRIVATE_HINT}")
    try:
        check_address(_literal(host))
    except BlockedAddress as exc:
        raise ValueError(f"{exc}; {PRIVATE_HINT}") from None
    return url


def _literal(host: str) -> str:
    """An address in a legacy IPv4 spelling (one number, hex, short forms) as the dotted
    quad the resolver would connect to; anything else as it is."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(host)))
        except OSError:
            pass
    return host


def read(data: bytes, *, allow_private: bool = False, limit: int | None = None) -> list[Outline]:
    """The feed outlines kept by `parse`. Raises ValueError with a readable reason."""
    return parse(data, allow_private=allow_private, limit=limit).outlines


def parse(data: bytes, *, allow_private: bool = False, limit: int | None = None) -> Reading:
    """Every feed outline (at any depth) that passes `check_feed_url`, once per URL and at
    most `limit` of them, and every one left out with its reason. An outline that names no
    feed and has no feed type is a folder, neither kept nor skipped. Raises ValueError with
    a readable reason when the file itself is refused."""
    reading = Reading()
    seen: set[str] = set()
    root: list[str] = []

    def refuse_dtd(*_: object) -> None:
        raise ValueError("the file declares a DTD or entities, which are refused")

    def element(tag: str, attrs: dict[str, str]) -> None:
        if not root:
            root.append(tag)
            if tag.lower() != "opml":
                raise ValueError(f"not an OPML file (its root is <{tag}>)")
        if tag == "outline":
            _add(reading, seen, attrs, allow_private, limit)

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = element
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    return reading


def _add(
    reading: Reading,
    seen: set[str],
    attrs: dict[str, str],
    allow_private: bool,
    limit: int | None,
) -> None:
    """Keep an outline that names an acceptable feed, once per URL; note why not otherwise."""
    raw = attrs.get("xmlUrl", attrs.get("xmlurl"))
    title = (attrs.get("title") or attrs.get("text") or "").strip()
    if raw is None and (attrs.get("type") or "").strip().lower() not in FEED_TYPES:
        return  # a folder
    url = (raw or "").strip()
    reason = ""
    if not url:
        reason = "no xmlUrl (the feed's address)"
    else:
        try:
            check_feed_url(url, allow_private)
        except ValueError as exc:
            reason = str(exc)
    if not reason and url in seen:
        reason = "listed twice; the first is kept"
    if not reason and limit is not None and len(reading.outlines) >= limit:
        reason = f"over the limit of {limit} feeds per import ([feeds] import_max)"
    if reason:
        reading.skipped.append(Skipped(url, title, reason))
        return
    seen.add(url)
    reading.outlines.append(Outline(url, title, (attrs.get("htmlUrl") or "").strip()))


def write(outlines: list[Outline], title: str = "ITSM community feeds") -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for outline in outlines:
        attrs = {"type": "rss", "text": outline.title or outline.url, "xmlUrl": outline.url}
        if outline.title:
            attrs["title"] = outline.title
        if outline.html_url:
            attrs["htmlUrl"] = outline.html_url
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
