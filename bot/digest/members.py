"""What members choose about the weekly digest: whether it names them, and which of their
daily prompt answers it may quote.

Both are off until a member turns them on. Unnamed, a member still counts ("3 members on a
5-day streak") and a shared answer is quoted as "A member". Sharing marks the member's most
recent answer in this channel from the last seven days; `undo` takes back every share of
that week.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bot import commands as cmd
from bot.app import Context
from bot.errors import UsageError, UserError
from bot.model import Ephemeral, Post
from bot.prompts.habit import preview

if TYPE_CHECKING:
    from bot.digest.store import DigestStore

SHARE_WINDOW = timedelta(days=7)


class MemberChoices:
    def __init__(self, app: Any, store: DigestStore) -> None:
        self.app = app
        self.store = store

    def register(self) -> None:
        add = self.app.command
        add(cmd.Command(
            ("digest", "named"), "Be named in the weekly digest (yes), or only counted (no)",
            self.named,
            options=[cmd.Option("on", cmd.Kind.BOOL, "yes to be named, no to be counted only",
                                positional=True)],
            examples=["/digest named yes"],
        ))  # fmt: skip
        add(cmd.Command(
            ("digest", "share"), "Let the weekly digest quote your latest prompt answer",
            self.share,
            options=[cmd.Option("undo", cmd.Kind.BOOL, "take this week's shares back",
                                default=False)],
            examples=["/digest share", "/digest share undo"],
        ))  # fmt: skip

    async def named(self, ctx: Context, on: bool | None = None) -> Ephemeral:
        if on is not None:
            await self.store.set_named(ctx.user, on, ctx.now)
        named = await self.store.is_named(ctx.user)
        if named:
            text = ("The weekly digest **names you** among the prompt's streaks and with the "
                    "answers you share. `/digest named no` to be counted only.")  # fmt: skip
        else:
            text = ("The weekly digest **does not name you**: your streak is only counted and "
                    "a shared answer is quoted as \"A member\". `/digest named yes` to be named.")  # fmt: skip
        return Ephemeral(Post(text=text))

    async def share(self, ctx: Context, undo: bool = False) -> Ephemeral:
        prompts = self.app.features.get("justdoit")
        if prompts is None:
            raise UserError("The daily prompt is not on in this bot, so there is nothing to share.")
        today, zone = await prompts.local_today(ctx.channel, ctx.tz, ctx.now)
        mine = await prompts.store.member_answers(ctx.channel, ctx.user)
        recent = [a for a in mine if a.day > today - SHARE_WINDOW]
        if undo:
            taken = [a for a in recent if await self.store.unshare(ctx.channel, a.day, ctx.user)]
            said = "Taken back: the digest will not quote" if taken else "Nothing was shared of"
            return Ephemeral(Post(text=f"{said} your answers of this week here."))
        if not recent:
            raise UsageError(
                "You have no answer from this week in this channel to share.",
                hint='Answer the prompt first: /justdoit answer "what I did"',
            )
        answer = recent[-1]
        await self.store.share(ctx.channel, answer.day, ctx.user, ctx.now)
        who = "with your name" if await self.store.is_named(ctx.user) else 'as "A member"'
        return Ephemeral(Post(
            text=f"The weekly digest may quote your answer of {answer.day:%a %d %b} {who}:\n"
            f"_{preview(answer.text)}_\nTake it back with /digest share undo.",
            zone=zone,
        ))  # fmt: skip
