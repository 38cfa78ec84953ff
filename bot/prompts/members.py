"""What members do with the prompt: answer it (button, form or command), see their stats,
suggest new prompts; and the moderators' review of those suggestions and the CSV export.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.app import Context
from bot.errors import UserError
from bot.model import (
    Action,
    Attachment,
    Button,
    ChannelRef,
    Ephemeral,
    Form,
    FormErrors,
    FormField,
    OpenForm,
    Post,
    Public,
    Select,
    SelectOption,
    Submission,
    UpdateMessage,
)
from bot.prompts.bank import COMPETENCIES, competency_name
from bot.prompts.habit import safe, stats_post, streak
from bot.prompts.schedule import parse_date
from bot.prompts.store import PromptDay

if TYPE_CHECKING:
    from bot.prompts import JustDoIt

log = logging.getLogger(__name__)

ANSWER_FORM = "justdoit.answer"
MAX_ANSWER = 500
SUGGESTION_COLOR = 0x7B68EE


class Members:
    def __init__(self, feature: JustDoIt) -> None:
        self.feature = feature
        self.app = feature.app
        self.store = feature.store

    def register(self) -> None:
        self.app.on_action("justdoit.did", self.did)
        self.app.on_form(ANSWER_FORM, self.submit)
        self.app.on_action("justdoit.approve", self.approve, moderator=True)
        self.app.on_action("justdoit.approve_as", self.approve, moderator=True)
        self.app.on_action("justdoit.reject", self.reject, moderator=True)

    # --- Answers -------------------------------------------------------------------------

    async def answer(self, ctx: Context, what: str, competency: str | None = None) -> list[Any]:
        day = await self.store.latest_day(ctx.channel)
        if day is None:
            raise UserError(
                "There is no prompt in this channel yet.",
                hint="Answers go with a daily prompt; ask a moderator to set one up.",
            )
        return await self._record(ctx, day, what, competency)

    async def did(self, ctx: Context, action: Action) -> OpenForm:
        day = await self._day(ctx.channel, action.value)
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
        return await self._record(ctx, day, what, competency)

    async def _day(self, channel: ChannelRef, value: str) -> PromptDay:
        day = await self.store.find_day(channel, parse_date(value)) if value else None
        if day is None:
            raise UserError("That prompt is not in this channel any more.")
        return day

    async def _record(
        self, ctx: Context, day: PromptDay, what: str, competency: str | None
    ) -> list[Any]:
        existing = await self.store.answer_of(day, ctx.user)
        chosen = competency or (existing.competency if existing else day.prompt.competency)
        new = await self.store.save_answer(day, ctx.user, chosen, what, ctx.now)
        name = safe(ctx.user.name or ctx.user.user)
        mine = await self.store.member_answers(ctx.channel, ctx.user)
        run = await self._streak(ctx, mine)
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
            text=f"✅ **{name}** {said}: {safe(what)}",
            footer=f"re: the prompt of {day.day:%a %d %b} · {competency_name(chosen)}",
        )
        return [Public(public), note]

    async def _streak(self, ctx: Context, mine: list[Any]) -> Any:
        days = await self.store.days(ctx.channel)
        zone = await self.feature.zone_of(ctx.channel, ctx.tz)
        today = ctx.now.astimezone(ZoneInfo(zone)).date()
        return streak([(d.day, d.scheduled) for d in days], [a.day for a in mine], today)

    # --- Stats ---------------------------------------------------------------------------

    async def stats(self, ctx: Context) -> Ephemeral:
        mine = await self.store.member_answers(ctx.channel, ctx.user)
        result = await self._streak(ctx, mine)
        community = await self.store.community_answers(ctx.community.id)
        jobs = await self.app.scheduler.pending(f"justdoit:post:{ctx.channel.key}:")
        zone = await self.feature.zone_of(ctx.channel, ctx.tz)
        name = ctx.user.name or ctx.user.user
        next_prompt = jobs[0].due_at if jobs else None
        return Ephemeral(stats_post(name, mine, result, community, next_prompt, zone))

    # --- Suggestions ---------------------------------------------------------------------

    async def suggest(self, ctx: Context, prompt: str, competency: str | None = None) -> Ephemeral:
        text = " ".join(prompt.split())
        if len(text) < 10:
            raise UserError(
                "That prompt is too short to act on.", hint="Say what to do, in a sentence."
            )
        suggestion_id = await self.store.add_suggestion(
            ctx.community.id, ctx.channel, ctx.user, text, competency, ctx.now
        )
        where = ctx.community.channels[0] if ctx.community.channels else ctx.channel
        await self.app.outbox.enqueue(
            where, review_post(suggestion_id, ctx.user.name or ctx.user.user, text, competency),
            f"justdoit:suggestion:{suggestion_id}",
        )  # fmt: skip
        return Ephemeral(Post(text="Thank you! Moderators will review your prompt suggestion."))

    async def approve(self, ctx: Context, action: Action) -> Any:
        suggestion = await self._suggestion(action.value)
        competency = (action.values[0] if action.values else None) or suggestion.competency
        if competency not in COMPETENCIES:
            raise UserError("Choose the competency to file this prompt under.")
        return await self._decide(ctx, suggestion, "approved", competency)

    async def reject(self, ctx: Context, action: Action) -> Any:
        suggestion = await self._suggestion(action.value)
        return await self._decide(ctx, suggestion, "rejected", None)

    async def _suggestion(self, value: str) -> Any:
        suggestion = await self.store.suggestion(int(value)) if value.isdigit() else None
        if suggestion is None:
            raise UserError("That suggestion no longer exists.")
        return suggestion

    async def _decide(
        self, ctx: Context, suggestion: Any, state: str, competency: str | None
    ) -> Any:
        if suggestion.community_id != ctx.community.id:
            raise UserError("That suggestion belongs to another community.")
        if not await self.store.decide(suggestion.id, state, competency, ctx.user, ctx.now):
            raise UserError(f"That suggestion was already {suggestion.state}.")
        who = ctx.user.name or ctx.user.user
        log.info("justdoit: suggestion %s %s by %s", suggestion.id, state, ctx.user.key)
        shown = competency_name(competency) if competency else ""
        result = f"**{state.capitalize()}** by {safe(who)}" + (f" as {shown}" if shown else "")
        filed = competency or suggestion.competency
        return UpdateMessage(
            review_post(suggestion.id, suggestion.member_name, suggestion.text, filed, result)
        )

    # --- Export --------------------------------------------------------------------------

    async def export(self, ctx: Context) -> Ephemeral:
        from bot.prompts.cli import answers_csv

        rows = await self.store.export_rows(ctx.community.id)
        data = answers_csv(rows).encode("utf-8")
        name = f"justdoit-answers-{ctx.now:%Y%m%d}.csv"
        return Ephemeral(Post(
            text=f"{len(rows)} answer{'s' if len(rows) != 1 else ''} from {ctx.community.name}.",
            attachments=[Attachment(name, data, "text/csv")],
        ))  # fmt: skip


def review_post(
    suggestion_id: int, member: str, text: str, competency: str | None, decided: str = ""
) -> Post:
    """The moderators' view of a suggestion, with Approve / Reject until it is decided."""
    filed = competency_name(competency) if competency else "no competency given"
    post = Post(
        title="Prompt suggestion",
        text=f"{safe(text)}\n_Suggested by {safe(member)} · {filed}_",
        color=SUGGESTION_COLOR,
    )
    if decided:
        post.text += f"\n{decided}"
        return post
    value = str(suggestion_id)
    if competency:
        post.buttons.append(Button("Approve", "justdoit.approve", value, "success"))
    post.buttons.append(Button("Reject", "justdoit.reject", value, "danger"))
    post.selects.append(
        Select(
            "justdoit.approve_as",
            [SelectOption(f"Approve as {name}", slug) for slug, name in COMPETENCIES.items()],
            placeholder="Approve as…",
            value=value,
        )
    )
    post.footer = "Moderators: approve to add it to the prompt bank."
    return post
