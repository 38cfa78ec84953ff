"""A Post as terminal text: numbered, with its buttons shown as [LABEL].

Times are shown once, in the post's zone (the community's): the terminal has one reader,
in that zone, and no clock to say "in 3 days" by, so a relative time written beside the
same moment ("⟦F⟧ (⟦R⟧)", which chat platforms show as "Monday 15:00 (in 3 days)") is
left out rather than printed as the same time again.
"""

from __future__ import annotations

import re

from bot import markup
from bot.model import MARK_CLOSE, MARK_OPEN, Post
from bot.timeutil import format_local, local

_OPEN, _CLOSE = re.escape(MARK_OPEN), re.escape(MARK_CLOSE)
# A time marker followed by "(relative time)" of the same moment.
_TIME_THEN_RELATIVE = re.compile(rf"({_OPEN}t:(-?\d+):[fFdDt]{_CLOSE})\s*\({_OPEN}t:\2:R{_CLOSE}\)")


def render(post: Post, number: int, audience: str, edited: bool = False, reply_to: int = 0) -> str:
    """`audience` is 'public', the name of the one member who sees it, or "@name" for a
    direct message to that member; `reply_to` the number of the message whose thread it
    is in (0: none)."""
    head = f"#{number}" + (" (edited)" if edited else "")
    if audience == "public":
        head += " [public]"
    elif audience.startswith("@"):
        head += f" [direct to {audience[1:]}]"
    else:
        head += f" [only {audience} sees this]"
    if reply_to:
        head += f" (reply to #{reply_to})"
    lines = [head]
    if post.mention_roles:  # the roles the post pings (a feed's `ping=`), first as on chat
        lines.append("  " + " ".join(f"@{role}" for role in post.mention_roles))
    if post.title:
        lines.append(f"  ** {_text(post.title, post)} **" + (f" <{post.url}>" if post.url else ""))
    for line in _text(post.text, post).splitlines():
        lines.append(f"  {line}")
    for field in post.fields:
        value = _text(field.value, post).replace("\n", "\n      ")
        lines.append(f"  - {_text(field.name, post)}: {value}")
    if post.image:
        lines.append(f"  (image: {post.image})")
    for attachment in post.attachments:
        lines.append(f"  (attached: {attachment.filename}, {len(attachment.data)} bytes)")
    controls = [f"[{b.label}]" + (f"<{b.url}>" if b.url else "") for b in post.buttons]
    for select in post.selects:
        controls.extend(f"[{o.label}]" for o in select.options)
    if controls:
        lines.append("  " + " ".join(controls))
    footer = _text(post.footer, post)
    if post.timestamp:
        stamp = local(post.timestamp, post.zone).strftime("%d %b %Y %H:%M %Z")
        footer = f"{footer} · {stamp}" if footer else stamp
    if footer:
        lines.append(f"  -- {footer}")
    return "\n".join(lines)


def _text(text: str, post: Post) -> str:
    text = markup.outside_code(text, lambda part: _TIME_THEN_RELATIVE.sub(r"\1", part))
    text = markup.substitute(
        text,
        time=lambda moment, style: format_local(moment, post.zone, style),
        mention=lambda user: f"@{user}",
    )
    return markup.plain(text)
