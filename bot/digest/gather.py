"""What one week held, gathered from the other features for the digest.

Each part reads the feature it is about through that feature's own store (a feature that is
not installed gives an empty part): the week's feed posts ranked by the reactions and
thread replies members gave them (read back from each platform, a few at a time and within
a deadline, a read that fails counting nothing), the polls and surveys that closed with
their leading answer, the events of the next two weeks with their RSVPs, the daily prompt's
streaks and the answers members chose to share.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.communities import Community
from bot.digest.store import DigestStore, SentPost
from bot.lanes import Engagement
from bot.prompts.habit import streak

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

WEEK = timedelta(days=7)
AHEAD = timedelta(days=14)  # events shown: those starting within this of the digest
READS_PER_PLATFORM = 40  # the newest feed posts read back per platform (rate limits)
READS_AT_ONCE = 4
READ_DEADLINE = 20.0  # seconds for every read of one digest together
MIN_STREAK = 2  # days in a row before a streak is worth a mention


@dataclass
class Article:
    title: str
    url: str
    reactions: int = 0
    replies: int = 0
    channels: int = 0  # how many channels it was posted in
    newest: float = 0.0

    @property
    def total(self) -> int:
        return self.reactions + self.replies


@dataclass
class RunResult:
    kind: str  # 'poll' or 'survey'
    title: str
    question: str
    leaders: list[str]  # the option(s) with the most votes
    votes: int
    respondents: int


@dataclass
class Upcoming:
    title: str
    start: datetime
    url: str
    going: int
    interested: int


@dataclass
class Streaker:
    member: str  # member key
    name: str
    days: int
    named: bool = False


@dataclass
class SharedAnswer:
    name: str  # empty: the member did not choose to be named
    text: str
    competency: str
    day: date


@dataclass
class Week:
    """Everything one digest says, before it is written out."""

    since: datetime
    until: datetime
    articles: list[Article] = field(default_factory=list)
    feed_posts: int = 0  # every feed post of the week, read back or not
    results: list[RunResult] = field(default_factory=list)
    events: list[Upcoming] = field(default_factory=list)
    streaks: list[Streaker] = field(default_factory=list)
    answers: list[SharedAnswer] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.feed_posts or self.results or self.events or self.streaks
                    or self.answers)  # fmt: skip


class Gatherer:
    def __init__(self, app: App, store: DigestStore) -> None:
        self.app = app
        self.store = store

    async def week(self, community: Community, until: datetime, tz: str) -> Week:
        """The week that ends at `until`, for `community`, dated in zone `tz`."""
        week = Week(since=until - WEEK, until=until)
        week.articles, week.feed_posts = await self.articles(community, week.since, until)
        week.results = await self.results(community, week.since, until)
        week.events = await self.events(community, until)
        week.streaks, week.answers = await self.prompts(community, week.since, until, tz)
        return week

    # --- Articles --------------------------------------------------------------------

    async def articles(
        self, community: Community, since: datetime, until: datetime
    ) -> tuple[list[Article], int]:
        """The week's feed items, most discussed first (ties: the newest first), one entry
        per article however many channels it went to; and how many posts there were."""
        workspaces = await self.app.communities.workspaces(community.id)
        sent = await self.store.feed_posts(workspaces, since.timestamp(), until.timestamp())
        readings = await self._read_back(_newest_per_platform(sent))
        articles: dict[str, Article] = {}
        for post in sent:
            title = post.post.title or _first_line(post.post.text) or "(untitled)"
            article = articles.setdefault(post.post.url or title, Article(title, post.post.url))
            article.channels += 1
            article.newest = max(article.newest, post.sent_at)
            reading = readings.get(post.key + "|" + post.channel.key)
            if reading is not None:
                article.reactions += reading.reactions
                article.replies += reading.replies
        ranked = sorted(articles.values(), key=lambda a: (-a.total, -a.newest))
        return [a for a in ranked if a.total > 0], len(sent)

    async def _read_back(self, posts: list[SentPost]) -> dict[str, Engagement]:
        """Each post's reactions and replies, by "key|channel"; what is not read in time
        (or cannot be read) is left out."""
        if not posts:
            return {}
        slots = asyncio.Semaphore(READS_AT_ONCE)
        lanes = self.app.outbox.lanes

        async def read(post: SentPost) -> tuple[str, Engagement | None]:
            async with slots:
                found = await lanes.engagement(post.channel, post.message_id)
            return post.key + "|" + post.channel.key, found

        tasks = [asyncio.create_task(read(p)) for p in posts]
        done, late = await asyncio.wait(tasks, timeout=READ_DEADLINE)
        for task in late:
            task.cancel()
        if late:
            log.warning("digest: %d of %d read(s) took too long; counted as none",
                        len(late), len(posts))  # fmt: skip
        return {key: found for key, found in (t.result() for t in done) if found is not None}

    # --- Polls and surveys -----------------------------------------------------------

    async def results(
        self, community: Community, since: datetime, until: datetime
    ) -> list[RunResult]:
        polls = self.app.features.get("poll")
        if polls is None:
            return []
        votes = polls.store  # type: ignore[attr-defined]
        found = []
        for run in await self.store.closed_runs(community.id, since.timestamp(),
                                                until.timestamp()):  # fmt: skip
            result = await _headline(votes, run.id, run.kind, run.title)
            if result is not None:
                found.append(result)
        return found

    # --- Events ----------------------------------------------------------------------

    async def events(self, community: Community, until: datetime) -> list[Upcoming]:
        feature = self.app.features.get("event")
        if feature is None:
            return []
        store = feature.service.store  # type: ignore[attr-defined]
        found = []
        for event in await store.upcoming(until, community.id):
            if event.start < until or event.start > until + AHEAD:
                continue
            if event.announce_at is not None and event.announce_at > until:
                continue  # not announced yet: the digest does not give it away
            counts = await store.counts(event.id)
            found.append(Upcoming(event.title, event.start, event.url, counts.going,
                                  counts.interested))  # fmt: skip
        return found

    # --- The daily prompt ------------------------------------------------------------

    async def prompts(
        self, community: Community, since: datetime, until: datetime, tz: str
    ) -> tuple[list[Streaker], list[SharedAnswer]]:
        feature = self.app.features.get("justdoit")
        if feature is None:
            return [], []
        prompts = feature.store  # type: ignore[attr-defined]
        schedules = [s for s in await prompts.schedules() if s.community_id == community.id]
        streakers = await self._streaks(prompts, schedules, until)
        named = await self.store.named_among([s.member for s in streakers])
        for streaker in streakers:
            streaker.named = streaker.member in named
        first_day = since.astimezone(ZoneInfo(tz)).date()
        answers = await self._shared(prompts, [s.channel for s in schedules], first_day)
        return streakers, answers

    async def _streaks(self, prompts: Any, schedules: list[Any], until: datetime) -> list[Streaker]:
        """Each member's longest current streak over the community's prompt channels."""
        best: dict[str, Streaker] = {}
        for schedule in schedules:
            today = schedule.rule.local_day(until)
            days = [(d.day, d.scheduled) for d in await prompts.days(schedule.channel)]
            answered: dict[str, list[date]] = defaultdict(list)
            names: dict[str, str] = {}
            for answer in await prompts.channel_answers(schedule.channel, date.min,
                                                        today + timedelta(days=1)):  # fmt: skip
                answered[answer.member].append(answer.day)
                names[answer.member] = answer.member_name
            for member, answered_days in answered.items():
                current = streak(days, answered_days, today).current
                if current >= MIN_STREAK and current > best.get(member, Streaker("", "", 0)).days:
                    best[member] = Streaker(member, names[member], current)
        return sorted(best.values(), key=lambda s: (-s.days, s.name.lower()))

    async def _shared(self, prompts: Any, channels: list[Any], since: date) -> list[SharedAnswer]:
        """Answers their members shared, newest first, one per member."""
        found: list[SharedAnswer] = []
        seen: set[str] = set()
        shares = await self.store.shares(channels, since)
        named = await self.store.named_among(list({s.member for s in shares}))
        for share in shares:
            if share.member in seen:
                continue
            day_answers = await prompts.channel_answers(
                share.channel, share.day, share.day + timedelta(days=1)
            )
            answer = next((a for a in day_answers if a.member == share.member), None)
            if answer is None:
                continue  # shared, then the day's answer went: nothing to show
            seen.add(share.member)
            name = answer.member_name if share.member in named else ""
            found.append(SharedAnswer(name, answer.text, answer.competency, answer.day))
        return found


async def _headline(votes: Any, run_id: int, kind: str, title: str) -> RunResult | None:
    """A run's first choice question, and the answer(s) that led it."""
    question = next((q for q in await votes.questions(run_id) if q.kind != "text"), None)
    if question is None:
        return None
    tally = (await votes.tallies(run_id)).get(question.qid, {})
    respondents = await votes.respondents(run_id, question.qid)
    top = max(tally.values(), default=0)
    leaders = [label for i, label in enumerate(question.options) if top and tally.get(i) == top]
    return RunResult(kind, title, question.text, leaders, top, respondents)


def _newest_per_platform(posts: list[SentPost]) -> list[SentPost]:
    """At most READS_PER_PLATFORM posts of each platform, the newest (they come newest first)."""
    taken: dict[str, int] = defaultdict(int)
    kept = []
    for post in posts:
        if taken[post.channel.platform] < READS_PER_PLATFORM:
            taken[post.channel.platform] += 1
            kept.append(post)
    return kept


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
