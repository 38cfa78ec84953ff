"""OPML import and export: the feed-reader world's way to move subscription lists.

Reading refuses any DTD (no entity can expand), then uses the standard ElementTree.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from bot.feeds.fetch import check_url

_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.I)


@dataclass
class Outline:
    url: str
    title: str = ""
    html_url: str = ""


def read(data: bytes) -> list[Outline]:
    """Every feed outline (at any depth). Raises ValueError with a readable reason."""
    if _DTD.search(data):
        raise ValueError("the file declares a DTD or entities, which are refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if root.tag.lower() != "opml":
        raise ValueError(f"not an OPML file (its root is <{root.tag}>)")
    found: dict[str, Outline] = {}
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip()
        if not url:
            continue
        try:
            check_url(url)
        except ValueError:
            continue
        title = node.get("title") or node.get("text") or ""
        found.setdefault(url, Outline(url, title.strip(), (node.get("htmlUrl") or "").strip()))
    return list(found.values())


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
