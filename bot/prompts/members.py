"""What members do with the prompt: answer it (button, form or command) and see their stats;
and the moderators' CSV export of every answer.

An answer belongs to the prompt of the day it is given, in the channel's zone: "what I did
today" never lands on last week's prompt, and an old prompt's button no longer takes one.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from bot.app import Context
from bot.errors import UserError
from bot.model import (
    Action,
    Attachment,
    ChannelRef,
    Ephemeral,
    Form,
    FormErrors,
    FormField,
    OpenForm,
    Post,
    Public,
    SelectOption,
    Submission,
    channel_tag,
    inert,
    time_tag,
)
from bot.prompts.bank import COMPETENCIES, competency_name
from bot.prompts.cli import answers_csv
from bot.prompts.habit import Streak, stats_post, streak
from bot.prompts.schedule import parse_date
from bot.prompts.store import PromptDay

if TYPE_CHECKING:
    from bot.prompts import JustDoIt

log = logging.getLogger(__name__)

ANSWER_FORM = "justdoit.answer"
MAX_ANSWER = 500


class Members:
    def __init__(self, feature: JustDoIt) -> None:
        self.feature = feature
        self.app = feature.app
        self.store = feature.store

    def register(self) -> None:
        self.app.on_action("justdoit.did", self.did)
        self.app.on_form(ANSWER_FORM, self.submit)

    # --- Answers -------------------------------------------------------------------------

    async def answer(self, ctx: Context, what: str, competency: str | None = None) -> list[Any]:
        today, zone = await self._today(ctx)
        day = await self.store.find_day(ctx.channel, today)
        if day is None:
            return [await self._closed(ctx, None, today, zone, what)]
        return await self._record(ctx, day, what, competency)

    async def did(self, ctx: Context, action: Action) -> OpenForm | Ephemeral:
        day = await self._day(ctx.channel, action.value)
        today, zone = await self._today(ctx)
        if day.day != today:
            return await self._closed(ctx, day, today, zone)
        existing = await self.store.answer_of(day, ctx.user)
        chosen = existing.competency if existing else day.prompt.competency
        options = [SelectOption(name, slug) for slug, name in COMPETENCIES.items()]
        return OpenForm(
            Form(
                ANSWER_FORM,
                "What did you do?",
                [
                    FormField(
                        "what", "What I did", "paragraph", max_length=MAX_ANSWER,
                        placeholder="One small thing, in a sentence or two",
                        default=existing.text if existing else "",
                    ),
                    FormField("competency", "Competency", "select", default=chosen, options=options),
                ],
                submit_label="Save",
                value=day.day.isoformat(),
            )
        )  # fmt: skip

    async def submit(self, ctx: Context, sub: Submission) -> Any:
        what = (sub.values.get("what") or "").strip()
        competency = (sub.values.get("competency") or "").strip() or None
        errors = {}
        if not what:
            errors["what"] = "Say in a sentence what you did."
        elif len(what) > MAX_ANSWER:
            errors["what"] = f"At most {MAX_ANSWER} characters, please ({len(what)} now)."
        if competency is not None and competency not in COMPETENCIES:
            errors["competency"] = "Choose one of the six competencies."
        if errors:
            return FormErrors(errors)
        day = await self._day(ctx.channel, sub.value)
        today, zone = await self._today(ctx)
        if day.day != today:  # the form stayed open past midnight
            return await self._closed(ctx, day, today, zone, what)
        return await self._record(ctx, day, what, competency)

    async def _day(self, channel: ChannelRef, value: str) -> PromptDay:
        day = await self.store.find_day(channel, parse_date(value)) if value else None
        if day is None:
            raise UserError("That prompt is not in this channel any more.")
        return day

    async def _today(self, ctx: Context) -> tuple[date, str]:
        return await self.feature.local_today(ctx.channel, ctx.tz, ctx.now)

    async def _closed(
        self, ctx: Context, asked: PromptDay | None, today: date, zone: str, what: str = ""
    ) -> Ephemeral:
        """Why no answer can be taken now, where the next one can go, and the member's
        text back so nothing typed is lost."""
        where = channel_tag(ctx.channel)
        if asked is not None:
            lines = [f"**The prompt of {asked.day:%a %d %b} is closed**: answers go to the "
                     "prompt of the day you give them."]  # fmt: skip
        elif await self.store.latest_day(ctx.channel) is None:
            lines = [f"**There is no prompt in this channel yet** ({where})."]
        else:
            lines = [f"**There is no prompt today in {where}.**"]
        current = await self.store.find_day(ctx.channel, today) if asked else None
        lines.append(await self._where_next(ctx, current))
        if what:
            lines.append(f"Your answer was not saved; here it is to send again:\n{inert(what)}")
        return Ephemeral(Post(text="\n".join(lines), zone=zone))

    async def _where_next(self, ctx: Context, current: PromptDay | None) -> str:
        if current is not None:
            return (f"Today's prompt: _{inert(current.prompt.text)}_\n"
                    'Answer it with its I did it button or /justdoit answer "what I did".')  # fmt: skip
        schedule = await self.store.schedule(ctx.channel)
        next_due = await self.feature.daily.next_due(ctx.channel)
        if schedule is not None and schedule.paused:
            return "The daily prompt is paused; a moderator can /justdoit resume it."
        if next_due is not None:
            return f"The next prompt comes {time_tag(next_due, 'f')}."
        return "Ask a moderator to schedule one: /justdoit schedule time=08:30"

    async def _record(
        self, ctx: Context, day: PromptDay, what: str, competency: str | None
    ) -> list[Any]:
        existing = await self.store.answer_of(day, ctx.user)
        chosen = competency or (existing.competency if existing else day.prompt.competency)
        new = await self.store.save_answer(day, ctx.user, chosen, what, ctx.now)
        name = inert(ctx.user.name or ctx.user.user)
        mine = await self.store.member_answers(ctx.channel, ctx.user)
        run = await self._streak(ctx, mine, day.day)  # an answer's day is today
        verb = "Saved" if new else "Updated"
        note = Ephemeral(Post(
            text=f"{verb} your answer to the prompt of {day.day.isoformat()} "
            f"({competency_name(chosen)}). Your streak: **{run.current}**. "
            "Answer again the same day to change it."
        ))  # fmt: skip
        if await self.feature.answers_private(ctx.channel):
            return [note]
        said = "did it" if new else "updated what they did"
        public = Post(
            text=f"✅ **{name}** {said}: {inert(what)}",
            footer=f"re: the prompt of {day.day:%a %d %b} · {competency_name(chosen)}",
        )
        return [Public(public), note]

    async def _streak(self, ctx: Context, mine: list[Any], today: date) -> Streak:
        days = await self.store.days(ctx.channel)
        return streak([(d.day, d.scheduled) for d in days], [a.day for a in mine], today)

    # --- Stats ---------------------------------------------------------------------------

    async def stats(self, ctx: Context) -> Ephemeral:
        mine = await self.store.member_answers(ctx.channel, ctx.user)
        today, zone = await self._today(ctx)
        result = await self._streak(ctx, mine, today)
        community = await self.store.community_answers(ctx.community.id)
        next_prompt = await self.feature.daily.next_due(ctx.channel)
        name = ctx.user.name or ctx.user.user
        return Ephemeral(stats_post(name, mine, result, community, next_prompt, zone))

    # --- Export --------------------------------------------------------------------------

    async def export(self, ctx: Context) -> Ephemeral:
        rows = await self.store.export_rows(ctx.community.id)
        data = answers_csv(rows).encode("utf-8")
        name = f"justdoit-answers-{ctx.now:%Y%m%d}.csv"
        return Ephemeral(Post(
            text=f"{len(rows)} answer{'s' if len(rows) != 1 else ''} from {community_words(ctx)}.",
            attachments=[Attachment(name, data, "text/csv")],
        ))  # fmt: skip


def community_words(ctx: Context) -> str:
    """The community in words: its configured name, or "this Slack workspace" for one the
    bot made itself on first sight of a workspace (named by its internal key)."""
    community, channel = ctx.community, ctx.channel
    if community.name == f"{channel.platform}:{channel.workspace}":
        return "this " + ctx.names.workspace_words(channel.platform)
    return inert(community.name)
