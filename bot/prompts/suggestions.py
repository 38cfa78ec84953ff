"""Prompt suggestions: any member proposes a prompt, moderators approve or reject it with
buttons (or file it under a competency with the select); approved prompts join the bank
of their community.

The member hears the outcome by direct message, once (through the outbox, keyed by the
suggestion): an approval is a thank-you, a rejection a kind word that it was not taken.
The rejection names no moderator: the review is the moderators' shared call, and a name
would turn a "no" about a prompt into a "no" from a person.

Review cards are the moderators' business, never the members': they go where
`review_channel` says (the community's moderators' channel, else the moderator who
scheduled the daily prompt, by direct message).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.app import App, Context
from bot.communities import member_of
from bot.errors import UserError
from bot.model import (
    Action,
    Button,
    ChannelRef,
    Ephemeral,
    Post,
    Select,
    SelectOption,
    UpdateMessage,
    UserRef,
    inert,
)
from bot.prompts.bank import COMPETENCIES, Prompt, competency_name, suggestion_prompt
from bot.prompts.store import PromptStore

log = logging.getLogger(__name__)

SUGGESTION_COLOR = 0x7B68EE


def review_key(suggestion_id: int) -> str:
    """The outbox key of a suggestion's review card (the web console edits it by this key)."""
    return f"justdoit:suggestion:{suggestion_id}"


@dataclass
class Suggestion:
    id: int
    community_id: int
    channel: ChannelRef
    member: UserRef
    text: str
    competency: str | None
    state: str


class Suggestions:
    """The `/justdoit suggest` command, the moderators' buttons, and their queries."""

    def __init__(self, app: App, store: PromptStore) -> None:
        self.app = app
        self.store = store

    def register(self) -> None:
        self.app.on_action("justdoit.approve", self.approve, moderator=True)
        self.app.on_action("justdoit.approve_as", self.approve, moderator=True)
        self.app.on_action("justdoit.reject", self.reject, moderator=True)

    async def suggest(self, ctx: Context, prompt: str, competency: str | None = None) -> Ephemeral:
        text = " ".join(prompt.split())
        if len(text) < 10:
            raise UserError(
                "That prompt is too short to act on.", hint="Say what to do, in a sentence."
            )
        suggestion_id = await self.add(
            ctx.community.id, ctx.channel, ctx.user, text, competency, ctx.now
        )
        where = await self.review_channel(ctx)
        await self.app.outbox.enqueue(
            where, review_post(suggestion_id, ctx.user.name or ctx.user.user, text, competency),
            review_key(suggestion_id),
        )  # fmt: skip
        return Ephemeral(Post(text=(
            "Thank you! Moderators will review your prompt suggestion; I will let you know "
            "by direct message whether it joins the bank."
        )))  # fmt: skip

    async def review_channel(self, ctx: Context) -> ChannelRef:
        """Where a suggestion made in `ctx.channel` is reviewed:

        1. the community's moderators' channel (`[[community]] moderators`), if configured;
        2. else the direct messages of the moderator who scheduled the community's daily
           prompt (of the channel the suggestion was made in, if it has a schedule, else of
           the community's main channel, else of its most recently set schedule);
        3. else, with neither known, where cards went before moderators' channels existed:
           the community's first channel, or the channel the suggestion was made in. That
           one is public: a community that wants its queue private names `moderators`.
        """
        if ctx.community.moderators is not None:
            return ctx.community.moderators
        prefer = [ctx.channel, *ctx.community.channels[:1]]
        moderator = member_of(await self.store.scheduled_by(ctx.community.id, prefer))
        if moderator is not None:
            return ChannelRef.direct(moderator)
        return ctx.community.channels[0] if ctx.community.channels else ctx.channel

    async def approve(self, ctx: Context, action: Action) -> Any:
        suggestion = await self._suggestion(action.value)
        competency = (action.values[0] if action.values else None) or suggestion.competency
        if competency not in COMPETENCIES:
            raise UserError("Choose the competency to file this prompt under.")
        return await self._decide(ctx, suggestion, "approved", competency)

    async def reject(self, ctx: Context, action: Action) -> Any:
        suggestion = await self._suggestion(action.value)
        return await self._decide(ctx, suggestion, "rejected", None)

    async def _suggestion(self, value: str) -> Suggestion:
        suggestion = await self.get(int(value)) if value.isdigit() else None
        if suggestion is None:
            raise UserError("That suggestion no longer exists.")
        return suggestion

    async def _decide(
        self, ctx: Context, suggestion: Suggestion, state: str, competency: str | None
    ) -> UpdateMessage:
        if suggestion.community_id != ctx.community.id:
            raise UserError("That suggestion belongs to another community.")
        if not await self.decide(suggestion.id, state, competency, ctx.user, ctx.now):
            raise UserError(f"That suggestion was already {suggestion.state}.")
        log.info("justdoit: suggestion %s %s by %s", suggestion.id, state, ctx.user.key)
        result = f"**{state.capitalize()}** by {inert(ctx.user.name or ctx.user.user)}"
        author = ChannelRef.direct(suggestion.member)
        if competency is not None:
            await self.app.outbox.enqueue(
                author, thanks_post(suggestion, competency),
                f"justdoit:suggestion:{suggestion.id}:thanks",
            )  # fmt: skip
            result += f" as {competency_name(competency)}; the member is thanked privately"
        else:
            await self.app.outbox.enqueue(
                author, declined_post(suggestion),
                f"justdoit:suggestion:{suggestion.id}:declined",
            )  # fmt: skip
            result += "; the member is told privately, without your name"
        member_name = suggestion.member.name or suggestion.member.user
        filed = competency or suggestion.competency
        return UpdateMessage(
            review_post(suggestion.id, member_name, suggestion.text, filed, result)
        )

    # --- Queries -------------------------------------------------------------------------

    async def add(
        self, community_id: int, channel: ChannelRef, member: UserRef, text: str,
        competency: str | None, now: datetime,
    ) -> int:  # fmt: skip
        new_id = await self.app.db.insert(
            "INSERT INTO justdoit_suggestions (community_id, channel, member, member_name, text,"
            " competency, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (community_id, channel.key, member.key, member.name or member.user, text, competency,
             now.timestamp()),
        )  # fmt: skip
        assert new_id is not None
        return new_id

    async def get(self, suggestion_id: int) -> Suggestion | None:
        row = await self.app.db.fetchone(
            "SELECT * FROM justdoit_suggestions WHERE id = ?", (suggestion_id,)
        )
        return None if row is None else _suggestion(row)

    async def decide(
        self, suggestion_id: int, state: str, competency: str | None, by: UserRef, now: datetime
    ) -> bool:
        """Approve or reject a pending suggestion; False if someone decided it already."""
        return bool(
            await self.app.db.execute(
                "UPDATE justdoit_suggestions SET state = ?, competency = coalesce(?, competency),"
                " decided_by = ?, decided_at = ? WHERE id = ? AND state = 'pending'",
                (state, competency, by.key, now.timestamp(), suggestion_id),
            )
        )

    async def approved_prompts(self, community_id: int) -> list[Prompt]:
        rows = await self.app.db.fetchall(
            "SELECT id, competency, text FROM justdoit_suggestions"
            " WHERE community_id = ? AND state = 'approved' ORDER BY id",
            (community_id,),
        )
        return [suggestion_prompt(r["id"], r["competency"], r["text"]) for r in rows]


def review_post(
    suggestion_id: int, member: str, text: str, competency: str | None, decided: str = ""
) -> Post:
    """The moderators' view of a suggestion, with Approve / Reject until it is decided."""
    filed = competency_name(competency) if competency else "no competency given"
    post = Post(
        title="Prompt suggestion",
        text=f"{inert(text)}\n_Suggested by {inert(member)} · {filed}_",
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


def thanks_post(suggestion: Suggestion, competency: str) -> Post:
    """The thank-you sent privately to the member whose suggestion was approved."""
    return Post(
        text="Thank you! Your prompt suggestion is now in the bank "
        f"({competency_name(competency)}) and will come round in the daily rotation.\n"
        f"_{inert(suggestion.text)}_",
        color=SUGGESTION_COLOR,
    )


def declined_post(suggestion: Suggestion) -> Post:
    """The private word that a suggestion was not taken; it names no moderator."""
    return Post(
        text="Thank you for your prompt suggestion. The moderators did not add this one to "
        "the bank this time; other ideas are always welcome with `/justdoit suggest`.\n"
        f"_{inert(suggestion.text)}_",
        color=SUGGESTION_COLOR,
    )


def _suggestion(row: Any) -> Suggestion:
    platform, workspace, user = row["member"].split(":", 2)
    return Suggestion(
        row["id"], row["community_id"], ChannelRef.parse(row["channel"]),
        UserRef(platform, workspace, user, row["member_name"]),
        row["text"], row["competency"], row["state"],
    )  # fmt: skip
