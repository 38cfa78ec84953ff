"""A feed item as a `Post`: linked title, source, author, date, clean summary, image.

Every piece of feed text passes through `inert()`, so nothing a feed says can become a
time or mention marker; platform escaping (Slack `<!channel>`, Discord `@everyone`) is
the adapters' job on top of that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.feeds.parse import Item
from bot.model import Post, inert, time_tag

FEED_COLOR = 0x2F80ED
PLACEHOLDERS = ("title", "link", "summary", "author", "source", "date")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


def check_template(template: str) -> str:
    """Return the template, or raise ValueError naming an unknown placeholder."""
    for name in _PLACEHOLDER.findall(template):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}; use {known}")
    return template


def item_post(item: Item, source: str, template: str = "", zone: str = "UTC") -> Post:
    """The post for one item, as it appears in every subscribed channel."""
    when = datetime.fromtimestamp(item.published, UTC) if item.published is not None else None
    values = {
        "title": inert(item.title) or "(untitled)",
        "link": inert(item.link),
        "summary": inert(item.summary),
        "author": inert(item.author),
        "source": inert(source),
        "date": time_tag(when, "f") if when else "",
    }
    if template:
        # A moderator's text, so inert like the feed's own values: its markdown still shows.
        text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), inert(template))
        return Post(text=text.strip(), image=item.image, zone=zone)
    byline = " · ".join(v for v in (values["source"], _by(values["author"]), values["date"]) if v)
    text = "\n".join(part for part in (values["summary"], f"_{byline}_" if byline else "") if part)
    return Post(
        title=values["title"],
        url=item.link,
        text=text,
        image=item.image,
        color=FEED_COLOR,
        zone=zone,
    )


def _by(author: str) -> str:
    return f"by {author}" if author else ""


def notice_post(title: str, url: str, reason: str, sub_id: int) -> Post:
    """Told once in each subscribed channel when a feed is switched off."""
    return Post(
        title="Feed paused: " + (inert(title) or inert(url)),
        text=(
            f"I stopped checking this feed: {inert(reason)}.\n"
            f"A moderator can switch it back on with `/feed resume {sub_id}`, "
            f"or drop it with `/feed remove {sub_id}`."
        ),
        color=0xCC8800,
    )
