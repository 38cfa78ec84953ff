"""A Post as HTML, for the console's previews and for what an action answered.

The same trust model as every renderer (bot/model.py): everything is escaped first, then
only the core's own markup becomes live: **bold**, _italic_, `code`, [label](https://…)
links (a label naming another address is written out), times in the community's zone
inside <time>, channels as #name. Nothing a feed or a member wrote can become a tag.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from markupsafe import Markup, escape

from bot import markup
from bot.model import Post
from bot.timeutil import format_local

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])_(?!\s)(.+?)(?<!\s)_(?!\w)")
_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def text_html(text: str, zone: str = "UTC") -> Markup:
    """One markup string as HTML (line breaks kept)."""
    text = markup.substitute(
        text,
        time=lambda moment, style: (
            f"\x00t{int(moment.timestamp())}:{format_local(moment, zone, style)}\x01"
        ),  # noqa: E501
        mention=lambda user: f"@{user}",
        channel=lambda channel: f"#{channel}",
    )
    links: list[tuple[str, str]] = []

    def keep_link(label: str, url: str) -> str:
        links.append((label, url))
        return f"\x02{len(links) - 1}\x03"

    text = markup.links(text, keep_link)
    html = str(escape(text))
    # Code spans step aside while bold and italic are read (bold may span them: an error
    # that quotes input in backticks is bold as a whole), then come back as <code>.
    spans: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        spans.append(match.group(2).replace(markup.MARK_OPEN, "[").replace(markup.MARK_CLOSE, "]"))
        return f"\x04{len(spans) - 1}\x05"

    html = _CODE.sub(keep_code, html)
    html = _ITALIC.sub(r"<em>\1</em>", _BOLD.sub(r"<strong>\1</strong>", html))
    html = re.sub(r"\x04(\d+)\x05", lambda m: f"<code>{spans[int(m.group(1))]}</code>", html)
    html = re.sub(
        r"\x00t(-?\d+):(.*?)\x01",
        lambda m: f'<time datetime="{_iso(int(m.group(1)))}">{m.group(2)}</time>',
        html,
    )
    html = re.sub(
        r"\x02(\d+)\x03",
        lambda m: _anchor(*links[int(m.group(1))]),
        html,
    )
    return Markup(html.replace("\n", "<br>\n"))


def _anchor(label: str, url: str) -> str:
    return f'<a href="{escape(url)}" rel="noopener nofollow" target="_blank">{escape(label)}</a>'


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def post_html(post: Post) -> Markup:
    """A whole post: title (linked to its URL), text, fields, footer, button labels."""
    zone = post.zone
    parts: list[str] = ['<article class="post">']
    if post.title:
        title = text_html(post.title, zone)
        if post.url.startswith(("http://", "https://")):
            title = Markup(f'<a href="{escape(post.url)}" rel="noopener nofollow" target="_blank">{title}</a>')  # fmt: skip
        parts.append(f"<h3>{title}</h3>")
    if post.text:
        parts.append(f"<p>{text_html(post.text, zone)}</p>")
    if post.fields:
        parts.append("<dl>")
        for field in post.fields:
            parts.append(f"<dt>{text_html(field.name, zone)}</dt><dd>{text_html(field.value, zone)}</dd>")  # fmt: skip
        parts.append("</dl>")
    if post.image.startswith(("http://", "https://")):
        parts.append(f'<img src="{escape(post.image)}" alt="" loading="lazy">')
    labels = [b.label for b in post.buttons] + [o.label for s in post.selects for o in s.options]
    if labels:
        parts.append('<p class="buttons">' + " ".join(f"<span class=\"button\">{escape(label)}</span>" for label in labels) + "</p>")  # fmt: skip
    if post.footer:
        parts.append(f"<footer>{text_html(post.footer, zone)}</footer>")
    parts.append("</article>")
    return Markup("\n".join(parts))
