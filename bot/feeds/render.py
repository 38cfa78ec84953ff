"""A feed item as a `Post`: linked title, source, author, date, clean summary, image; and
the notice moderators are told when feeds are switched off (one post for several), which
names the subscribed channel when it is told somewhere else (the moderators' channel, a DM).

Every piece of feed text passes through `inert()`, so nothing a feed says can become a
time or mention marker; platform escaping (Slack `<!channel>`, Discord `@everyone`) is
the adapters' job on top of that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.feeds.parse import Item
from bot.feeds.store import Notice
from bot.model import ChannelRef, Post, channel_tag, inert, time_tag

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
        "title": inert(item.title.strip()) or "(untitled)",
        "link": inert(item.link.strip()),
        "summary": inert(item.summary.strip()),
        "author": inert(item.author.strip()),
        "source": inert(source.strip()),
        "date": time_tag(when, "f") if when else "",
    }
    if template:
        # A moderator's text, so inert like the feed's own values: its markdown still shows.
        return Post(text=fill(inert(template), values), image=item.image, zone=zone)
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


# --- Templates: an empty value takes its words and separators with it ------------------------
#
# A line is read as words (runs of non-space) and separators (a word of punctuation only, such
# as "·", "-", "—", "|"). A word holding a placeholder is a *slot*; plain words before a slot
# belong to it ("by {author}", "Author: {author}", "New on {source}:"), plain words after the
# last slot of a run belong to that slot ("{author} writes"). A slot whose placeholders are all
# empty is dropped with the words that belong to it; a run left empty is dropped with one
# separator next to it; a line left empty is dropped. So "{title} by {author}: {link}" with no
# author reads "T https://…", and "{title} · {author} · {date}" reads "T · date".

_TOKEN = re.compile(r"\s+|\S+")
_SEPARATOR = re.compile(r"^[·•|/:,;»›→~\-–—]+$")  # a word that only separates


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with its placeholders replaced; what an empty value leaves is dropped."""
    lines = []
    for line in template.splitlines():
        had_slot = bool(_PLACEHOLDER.search(line))
        shown = _fill_line(line, values) if had_slot else line.rstrip()
        if shown or not had_slot:
            lines.append(shown)
    return "\n".join(lines).strip()


def _sub(word: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), word)


def _empty(word: str, values: dict[str, str]) -> bool:
    """A slot all of whose placeholders are empty (an unknown name is kept as typed)."""
    names = _PLACEHOLDER.findall(word)
    return bool(names) and all(name in values and not values[name] for name in names)


def _fill_line(line: str, values: dict[str, str]) -> str:
    indent = line[: len(line) - len(line.lstrip())]
    tokens = _TOKEN.findall(line.strip())
    words = tokens[0::2]  # tokens alternate word, space, word…
    spaces = tokens[1::2]
    # Runs of words between separators, as index lists.
    runs: list[list[int]] = [[]]
    seps: list[int] = []
    for i, word in enumerate(words):
        if _SEPARATOR.match(word) and not _PLACEHOLDER.search(word):
            seps.append(i)
            runs.append([])
        else:
            runs[-1].append(i)
    keep = [True] * len(words)
    run_kept: list[bool] = []
    for run in runs:
        slots = [i for i in run if _PLACEHOLDER.search(words[i])]
        owner: dict[int, int] = {}
        pending: list[int] = []
        for i in run:
            if i in slots:
                for j in pending:
                    owner[j] = i
                owner[i] = i
                pending = []
            else:
                pending.append(i)
        for j in pending:  # plain words after the last slot
            owner[j] = slots[-1] if slots else -1
        for i in run:
            if owner[i] >= 0 and _empty(words[owner[i]], values):
                keep[i] = False
        run_kept.append(any(keep[i] for i in run) or not run)
    # A run dropped takes one separator with it: the one before it, or after it if first.
    for n, kept in enumerate(run_kept):
        if kept:
            continue
        before = n - 1 if n > 0 else None
        after = n if n < len(seps) else None
        for s in (before, after) if n > 0 else (after, before):
            if s is not None and keep[seps[s]]:
                keep[seps[s]] = False
                break
    # A separator left at either end, or next to another, separates nothing.
    shown = [i for i in range(len(words)) if keep[i]]
    while shown and shown[0] in seps:
        keep[shown.pop(0)] = False
    while shown and shown[-1] in seps:
        keep[shown.pop()] = False
    out = ""
    for i in range(len(words)):
        if not keep[i]:
            continue
        if out:
            out += spaces[i - 1] if i > 0 else " "
        out += _sub(words[i], values)
    return (indent + out).rstrip() if out else ""


NOTICE_COLOR = 0xCC8800
NOTICE_BUDGET = 2500  # characters of names in one notice post: every platform shows it whole
_KIND_WORDS = {
    "failing": "after repeated failures",
    "gone": "because their sites say they are gone for good (HTTP 410)",
}


def notice_post(title: str, url: str, reason: str, sub_id: int, where: str = "") -> Post:
    """Told once when one feed is switched off; `where` (" in #channel") names the
    subscribed channel when the notice is told elsewhere."""
    return Post(
        title="Feed paused: " + (inert(title) or inert(url)),
        text=(
            f"I stopped checking this feed{where}: {inert(reason)}.\n"
            f"A moderator can switch it back on with `/feed resume {sub_id}`, "
            f"or drop it with `/feed remove {sub_id}`."
        ),
        color=NOTICE_COLOR,
    )


def where_words(channel: ChannelRef, told_in: ChannelRef | None) -> str:
    """ " in #channel" for a notice about `channel` told in `told_in`; "" when told in the
    channel itself. A channel of another workspace or platform is named in words (a
    channel marker means a channel of the workspace it is shown in), with where the
    `/feed` commands for it work."""
    if told_in is None or told_in == channel:
        return ""
    if (told_in.platform, told_in.workspace) == (channel.platform, channel.workspace):
        return f" in {channel_tag(channel)}"
    return f" in a {inert(channel.platform.title())} channel (use `/feed` there)"


def notices_post(notices: list[Notice], told_in: ChannelRef | None = None) -> Post:
    """One post telling of every feed in a notice group (one or many), shown in `told_in`
    (None: in the feeds' own channel)."""
    latest = {n.subscription_id: n for n in notices}  # switched off twice: told once
    told = sorted(latest.values(), key=lambda n: n.id)
    if len(told) == 1:
        one = told[0]
        where = where_words(one.channel, told_in)
        return notice_post(one.title, one.url, one.reason, one.subscription_id, where)
    channels = {n.channel for n in told}
    # One channel told elsewhere is named once; several are named after each feed.
    shared = where_words(told[0].channel, told_in) if len(channels) == 1 else ""
    kinds = list(dict.fromkeys(n.kind for n in told))
    count = len(told)
    if len(kinds) == 1 and kinds[0] in _KIND_WORDS:
        title = f"{count} feeds paused {_KIND_WORDS[kinds[0]]}"
    else:
        title = f"{count} feeds paused"
    lines, budget = [], NOTICE_BUDGET
    for kind in kinds:
        names = []
        for n in (n for n in told if n.kind == kind):
            where = "" if len(channels) == 1 else where_words(n.channel, told_in)
            name = f"**{_short(inert(n.title) or inert(n.url), 80)}** (#{n.subscription_id}{where})"
            if kind not in _KIND_WORDS:
                name += f": {_short(inert(n.reason), 120)}"
            if budget - len(name) < 0:
                break
            budget -= len(name) + 2
            names.append(name)
        unnamed = sum(1 for n in told if n.kind == kind) - len(names)
        listed = ", ".join(names) + (f", and {unnamed} more (see `/feed list`)" if unnamed else "")
        if len(kinds) == 1:
            lines.append(f"I stopped checking these feeds{shared}: {listed}.")
        elif kind in _KIND_WORDS:
            lines.append(f"Paused {_KIND_WORDS[kind]}: {listed}.")
        else:
            lines.append(f"Paused: {listed}.")
    if shared and len(kinds) > 1:
        lines.insert(0, f"These feeds post{shared}.")
    lines.append(
        "A moderator can switch one back on with `/feed resume ID`, or drop it with "
        "`/feed remove ID` (the ID is the number after its name); `/feed list` shows why "
        "each one stopped."
    )
    return Post(title=title, text="\n".join(lines), color=NOTICE_COLOR)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
