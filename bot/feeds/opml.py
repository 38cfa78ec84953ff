"""OPML import and export: the feed-reader world's way to move subscription lists.

Reading uses expat directly so that any DTD stops the parse as expat meets it, in
whatever encoding the file is written: no entity is ever declared, let alone expanded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.parsers import expat

from bot.fetch import check_url


@dataclass
class Outline:
    url: str
    title: str = ""
    html_url: str = ""


def read(data: bytes) -> list[Outline]:
    """Every feed outline (at any depth). Raises ValueError with a readable reason."""
    found: dict[str, Outline] = {}
    root: list[str] = []

    def refuse_dtd(*_: object) -> None:
        raise ValueError("the file declares a DTD or entities, which are refused")

    def element(tag: str, attrs: dict[str, str]) -> None:
        if not root:
            root.append(tag)
            if tag.lower() != "opml":
                raise ValueError(f"not an OPML file (its root is <{tag}>)")
        if tag == "outline":
            _add(found, attrs)

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = element
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    return list(found.values())


def _add(found: dict[str, Outline], attrs: dict[str, str]) -> None:
    """Keep an outline that names an http(s) feed, once per URL."""
    url = (attrs.get("xmlUrl") or attrs.get("xmlurl") or "").strip()
    try:
        check_url(url)
    except ValueError:
        return
    title = attrs.get("title") or attrs.get("text") or ""
    found.setdefault(url, Outline(url, title.strip(), (attrs.get("htmlUrl") or "").strip()))


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
