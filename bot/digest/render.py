"""The week as one post, the same on every platform.

It must fit one message everywhere (Slack: 50 blocks, 3,000 characters a section; Discord:
an embed of 6,000 characters, 25 fields of 1,024, a description of 4,096), so rather than
leave the renderers to cut it, each part keeps only its top few lines and stops short of
the smallest of those limits, saying how many it left out. Five fields of at most 1,000
characters, a short title, text and footer stay under Discord's 6,000 together. A line is
measured as long as a renderer may make it (`rendered_size`): Slack writes `&`, `<` and `>`
as entities, Discord escapes markdown it does not share with us, one character more each.

Everything members, moderators or feeds wrote is made inert; names appear only for the
members who chose to be named (`/digest named yes`).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from bot import markup
from bot.digest.gather import Article, RunResult, SharedAnswer, Streaker, Upcoming, Week
from bot.model import Field, Post, inert, link, time_tag
from bot.polls.results import percent
from bot.prompts.bank import competency_name
from bot.prompts.habit import preview
from bot.timeutil import local

TOP_ARTICLES = 5
TOP_RESULTS = 3
TOP_EVENTS = 6
TOP_STREAKS = 5
TOP_ANSWERS = 3
FIELD_ROOM = 1000  # under Discord's 1,024 a field value (Slack allows 3,000 a section)
TITLE_ROOM = 100  # an article, poll or event title in a line
ANSWER_ROOM = 160
URL_ROOM = 300  # a longer address is left out: the title is shown, unlinked
DIGEST_COLOR = 0x3B6EA5
FOOTER = (
    "Weekly digest · members: /digest named yes to be named, /digest share to share "
    "your prompt answer"
)


def digest_post(week: Week, community: str, tz: str) -> Post | None:
    """The digest of `week` for the community called `community` (empty: none configured);
    None for a week with nothing to tell."""
    if week.empty:
        return None
    fields = [
        f
        for f in (
            _articles(week),
            _results(week.results),
            _events(week.events),
            _streaks(week.streaks),
            _answers(week.answers),
        )
        if f is not None
    ]
    return Post(
        title=f"The week in {markup.truncate(inert(community), 80)}"
        if community
        else "This week in the community",
        text=f"**{_span(week.since, week.until, tz)}**: what members read and talked about, "
        "what they decided and did, and what is coming up.",
        fields=fields,
        footer=FOOTER,
        color=DIGEST_COLOR,
        zone=tz,
    )


def _span(since: datetime, until: datetime, tz: str) -> str:
    first, last = local(since, tz), local(until, tz)
    return f"{first:%d %b} to {last:%d %b %Y}"


ENTITIES = frozenset("&<>")  # Slack: "&amp;", "&lt;", "&gt;" (4 characters more at most)
ESCAPED = frozenset("~|_*@#-`\\")  # Discord: a backslash or a zero-width space before it


def rendered_size(text: str) -> int:
    """At least as long as `text` becomes on any platform, once escaped."""
    return len(text) + sum(4 if ch in ENTITIES else 1 if ch in ESCAPED else 0 for ch in text)


def fit(lines: list[str], room: int = FIELD_ROOM) -> str:
    """As many whole lines as fit in `room` (measured as rendered), then a line saying how
    many were left out."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        left = len(lines) - index - 1
        tail = len(f"\n…and {left} more") if left else 0
        size = rendered_size(line) + 1
        if used + size + tail > room:
            kept.append(f"…and {len(lines) - index} more")
            break
        kept.append(line)
        used += size
    return "\n".join(kept)


def _short(text: str) -> str:
    return markup.truncate(" ".join(inert(text).split()), TITLE_ROOM)


def _label(title: str, url: str) -> str:
    """The title, linked to its address unless that is too long to leave room for others.
    A backtick in a link's label would start a code span that no link may cross."""
    if url and len(url) <= URL_ROOM:
        return link(_short(title).replace("`", "'"), url)
    return f"**{_short(title)}**"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# --- The parts -------------------------------------------------------------------------


def _articles(week: Week) -> Field | None:
    if not week.feed_posts:
        return None
    if not week.articles:
        value = (f"{_plural(week.feed_posts, 'article was', 'articles were')} posted this "
                 "week; none has reactions or replies yet.")  # fmt: skip
        return Field("Most discussed articles", value, inline=False)
    lines = [_article(i, a) for i, a in enumerate(week.articles[:TOP_ARTICLES], 1)]
    if len(week.articles) > TOP_ARTICLES:
        lines.append(f"…and {len(week.articles) - TOP_ARTICLES} more discussed")
    lines.append(f"_Of {_plural(week.feed_posts, 'feed post', 'feed posts')} this week._")
    return Field("Most discussed articles", fit(lines), inline=False)


def _article(rank: int, article: Article) -> str:
    said = [_plural(article.reactions, "reaction", "reactions")]
    said.append(_plural(article.replies, "reply", "replies"))
    return f"{rank}. {_label(article.title, article.url)} · " + " · ".join(said)


def _results(results: list[RunResult]) -> Field | None:
    if not results:
        return None
    lines = [_result(r) for r in results[:TOP_RESULTS]]
    if len(results) > TOP_RESULTS:
        lines.append(f"…and {len(results) - TOP_RESULTS} more closed")
    return Field("Polls and surveys closed this week", fit(lines), inline=False)


def _result(result: RunResult) -> str:
    title = f"**{_short(result.title)}**"
    if result.kind == "survey":
        title += f" (survey) · {_short(result.question)}"
    if not result.leaders:
        return f"- {title}: no answers"
    leaders = " / ".join(f"**{_short(label)}**" for label in result.leaders)
    share = percent(result.votes, result.respondents)
    each = " each" if len(result.leaders) > 1 else ""
    return f"- {title}: {leaders}, {share}{each} of {result.respondents} answering"


def _events(events: list[Upcoming]) -> Field | None:
    if not events:
        return None
    lines = [
        f"- {_label(e.title, e.url)} · {time_tag(e.start, 'f')} · {e.going} going"
        f" · {e.interested} interested"
        for e in events[:TOP_EVENTS]
    ]
    if len(events) > TOP_EVENTS:
        lines.append(f"…and {len(events) - TOP_EVENTS} more: /event list")
    return Field("Coming up in the next two weeks", fit(lines), inline=False)


def _streaks(streakers: list[Streaker]) -> Field | None:
    """Named members by name; the others only counted, by the length of their streak."""
    if not streakers:
        return None
    lines: list[str] = []
    unnamed = Counter(s.days for s in streakers if not s.named)
    said: set[int] = set()
    for streaker in streakers:
        if len(lines) == TOP_STREAKS:
            break
        if streaker.named:
            lines.append(f"- **{_short(streaker.name)}**: {streaker.days} days in a row")
        elif streaker.days not in said:
            said.add(streaker.days)
            members = _plural(unnamed[streaker.days], "member", "members")
            lines.append(f"- {members} on a {streaker.days}-day streak")
    return Field("Just do it: streaks", fit(lines), inline=False)


def _answers(answers: list[SharedAnswer]) -> Field | None:
    if not answers:
        return None
    lines = [
        f"- **{_short(a.name) if a.name else 'A member'}**: _{preview(a.text, ANSWER_ROOM)}_"
        f" ({competency_name(a.competency)})"
        for a in answers[:TOP_ANSWERS]
    ]
    return Field("Shared by members", fit(lines), inline=False)
