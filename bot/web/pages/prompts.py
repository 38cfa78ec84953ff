"""The daily prompt: each channel's schedule, today's prompt and what members answered (the
last month of it), their streaks, and the queue of prompt suggestions to approve or decline.

Moderators only. Approving or declining presses the review card's own button: the action
and value the card carries, as the signed-in moderator, in the suggestion's channel, so
the member hears back by direct message as from chat. In chat the clicked card is replaced
by the adapter; here nothing was clicked, so the card is edited through the outbox, under
the key it was posted with, to show the decision instead of its buttons.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.model import Action, ChannelRef, Reply, UpdateMessage
from bot.prompts.bank import COMPETENCIES, competency_name
from bot.prompts.habit import streak
from bot.prompts.schedule import format_days
from bot.prompts.store import Answer, PromptDay, Schedule
from bot.prompts.suggestions import review_key

if TYPE_CHECKING:
    from bot.prompts import JustDoIt
    from bot.web.server import Visit, WebServer

MONTH = timedelta(days=31)  # how far back the page shows prompts and their answers
VERBS = {"approve": "justdoit.approve", "decline": "justdoit.reject"}


@dataclass
class DayView:
    """One prompt day of a channel and what members said they did."""

    day: PromptDay
    answers: list[Answer]


@dataclass
class MemberStreak:
    name: str
    answers: int
    current: int
    best: int


@dataclass
class ChannelView:
    channel: ChannelRef
    schedule: Schedule | None
    next_due: datetime | None
    today: date
    days: list[DayView] = field(default_factory=list)  # newest first, the last MONTH
    streaks: list[MemberStreak] = field(default_factory=list)

    @property
    def todays(self) -> DayView | None:
        return next((d for d in self.days if d.day.day == self.today), None)

    @property
    def earlier(self) -> list[DayView]:
        return [d for d in self.days if d.day.day != self.today]

    @property
    def upcoming_skips(self) -> list[date]:
        if self.schedule is None:
            return []
        return sorted(d for d in self.schedule.rule.skips if d >= self.today)


@dataclass
class Pending:
    """A suggestion waiting for the moderators, as the queue lists it."""

    id: int
    channel: ChannelRef
    member_name: str
    text: str
    competency: str | None
    created_at: float


def add(server: WebServer) -> None:
    server.page("/prompts", "Daily prompt", show)
    for verb in VERBS:
        server.post(f"/prompts/suggestions/{{id:\\d+}}/{verb}", decide(verb))


def _feature(visit: Visit) -> JustDoIt:
    return visit.app.features["justdoit"]  # type: ignore[return-value]


async def show(visit: Visit) -> web.StreamResponse:
    channels = [await channel_view(visit, c) for c in await prompt_channels(visit)]
    return visit.render(
        "prompts.html", channels=channels, pending=await pending(visit),
        competencies=COMPETENCIES, competency_name=competency_name,
        format_days=format_days,
    )  # fmt: skip


# --- Reading ----------------------------------------------------------------------------


async def prompt_channels(visit: Visit) -> list[ChannelRef]:
    """The community's channels with a schedule or a prompt posted (`/justdoit today` works
    in a channel with no schedule)."""
    rows = await visit.app.db.fetchall(
        "SELECT channel FROM justdoit_schedules WHERE community_id = ?"
        " UNION SELECT DISTINCT channel FROM justdoit_days WHERE community_id = ?",
        (visit.community.id, visit.community.id),
    )
    found = {ChannelRef.parse(r["channel"]) for r in rows}
    return sorted((c for c in found if visit.owns(c)), key=lambda c: c.key)


async def channel_view(visit: Visit, channel: ChannelRef) -> ChannelView:
    """One channel in a handful of queries, however many members and days it has."""
    feature = _feature(visit)
    store = feature.store
    schedule = await store.schedule(channel)
    zone = schedule.rule.tz if schedule else visit.community.timezone
    today = visit.app.clock.now().astimezone(ZoneInfo(zone)).date()
    view = ChannelView(channel, schedule, await feature.daily.next_due(channel), today)
    days = await store.days(channel)
    since = today - MONTH
    recent = await store.channel_answers(channel, since, today + timedelta(days=1))
    by_day: dict[date, list[Answer]] = defaultdict(list)
    for answer in recent:
        by_day[answer.day].append(answer)
    view.days = [DayView(d, by_day[d.day]) for d in reversed(days) if since <= d.day <= today]
    view.streaks = await streaks(visit, channel, days, today)
    return view


async def streaks(
    visit: Visit, channel: ChannelRef, days: list[PromptDay], today: date
) -> list[MemberStreak]:
    """Every member's streak in the channel, by the rule `/justdoit stats` uses. Only who
    answered which day is read (not the answers' text), over all time: a best streak may
    be older than the month the page shows."""
    rows = await visit.app.db.fetchall(
        "SELECT a.member, a.member_name, d.day FROM justdoit_answers a"
        " JOIN justdoit_days d ON d.id = a.day_id WHERE d.channel = ? ORDER BY d.day, a.id",
        (channel.key,),
    )
    answered: dict[str, list[date]] = defaultdict(list)
    names: dict[str, str] = {}
    for row in rows:
        answered[row["member"]].append(date.fromisoformat(row["day"]))
        names[row["member"]] = row["member_name"]  # the latest name they answered under
    prompt_days = [(d.day, d.scheduled) for d in days]
    found = []
    for member, member_days in answered.items():
        run = streak(prompt_days, member_days, today)
        found.append(MemberStreak(names[member], len(member_days), run.current, run.best))
    found.sort(key=lambda s: (-s.current, -s.best, s.name.lower()))
    return found


async def pending(visit: Visit) -> list[Pending]:
    """The suggestion queue: the community's suggestions nobody has decided yet."""
    rows = await visit.app.db.fetchall(
        "SELECT id, channel, member_name, text, competency, created_at"
        " FROM justdoit_suggestions WHERE community_id = ? AND state = 'pending' ORDER BY id",
        (visit.community.id,),
    )
    found = [
        Pending(r["id"], ChannelRef.parse(r["channel"]), r["member_name"], r["text"],
                r["competency"], r["created_at"])
        for r in rows
    ]  # fmt: skip
    return [p for p in found if visit.owns(p.channel)]


# --- Deciding ---------------------------------------------------------------------------


def decide(verb: str):  # noqa: ANN201 - a handler factory
    async def handle(visit: Visit) -> web.StreamResponse:
        suggestion_id = int(visit.request.match_info["id"])
        suggestion = await _feature(visit).suggestions.get(suggestion_id)
        if (
            suggestion is None
            or not visit.owns(suggestion.channel)
            or suggestion.community_id != visit.community.id
        ):
            raise web.HTTPNotFound(text="There is no such prompt suggestion here.")
        form = await visit.form()
        name, values = card_press(verb, suggestion.competency, form.get("competency"))
        action = Action(
            name, str(suggestion_id), visit.user(), suggestion.channel,
            is_moderator=visit.moderator, values=values,
        )  # fmt: skip
        replies = await visit.app.act(action)
        await show_decision_on_card(visit, suggestion_id, replies)
        visit.tell(replies)
        return visit.back("/prompts")

    return handle


def card_press(verb: str, suggested: str | None, chosen: str | None) -> tuple[str, list[str]]:
    """The press on the review card that means `verb` (its action id and chosen values):
    its Approve button when the competency stays the suggested one, its "Approve as…"
    select when the moderator files it under another (or the member named none), its
    Reject button to decline."""
    if verb == "approve" and chosen and chosen != suggested:
        return "justdoit.approve_as", [chosen]
    return VERBS[verb], []


async def show_decision_on_card(visit: Visit, suggestion_id: int, replies: list[Reply]) -> None:
    """What the card in chat becomes when its button is pressed there, by an edit."""
    updated = [r.post for r in replies if isinstance(r, UpdateMessage)]
    if not updated:
        return  # refused (decided already, say): the card stays as it is
    key = review_key(suggestion_id)
    if await visit.app.outbox.state(key) in (None, "failed"):
        return  # the card never reached chat: there is nothing to edit
    await visit.app.outbox.edit(key, updated[-1])
