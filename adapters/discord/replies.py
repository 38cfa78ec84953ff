"""Answering one interaction with the core's replies, inside Discord's 3 seconds.

The core is given `defer_after` seconds; a fast answer goes out as the interaction's own
response (a message, a modal, an in-place edit), a slow one is deferred first and then
delivered as edits and follow-ups. Ephemeral replies reach only the member who acted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import discord

from adapters.discord.render import Rendered, render
from adapters.discord.transport import files_for_edit
from adapters.discord.views import FormMemory, ReopenForm, build_modal
from bot.app import ERROR_COLOR
from bot.model import (
    Ephemeral,
    Form,
    FormErrors,
    OpenForm,
    Post,
    Public,
    Reply,
    UpdateMessage,
)

log = logging.getLogger(__name__)


def _order(reply: Reply) -> int:
    # A modal and an in-place edit are only possible as the interaction's first response.
    return 0 if isinstance(reply, OpenForm) else 1 if isinstance(reply, UpdateMessage) else 2


class Answer:
    """The replies to one interaction, sent the way its state allows."""

    def __init__(
        self,
        interaction: discord.Interaction,
        memory: FormMemory,
        form: tuple[Form, dict[str, str]] | None = None,
        hold: Callable[[], Awaitable[bool]] | None = None,
        replayed: bool = False,
    ) -> None:
        self.interaction = interaction
        self.memory = memory
        self.form = form  # the form being submitted, for "fix my answers"
        self.thinking = False  # an ephemeral "thinking…" response waits for its content
        self.hold = hold  # journals the interaction before a deferral acknowledges it
        self.held = False
        if replayed:
            self._deferred_before()

    async def run(self, work: Awaitable[list[Reply]], defer_after: float) -> None:
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=defer_after)
        if not done and not self.interaction.response.is_done():
            if self.hold is not None:
                self.held = await self.hold()
            await self.defer()
        await self.send(await task)

    def _deferred_before(self) -> None:
        """An interaction handled again after a crash was deferred before it: its answers
        can only be follow-ups now (discord.py reads the state from this private field)."""
        response = self.interaction.response
        if self.interaction.type is discord.InteractionType.component:
            response._response_type = discord.InteractionResponseType.deferred_message_update
        else:
            response._response_type = discord.InteractionResponseType.deferred_channel_message
            self.thinking = True

    async def defer(self) -> None:
        interaction = self.interaction
        if interaction.type is discord.InteractionType.component:
            await interaction.response.defer()  # the clicked message stays as it is
        else:
            await interaction.response.defer(ephemeral=True, thinking=True)
            self.thinking = True

    async def send(self, replies: list[Reply]) -> None:
        for reply in sorted(replies, key=_order):
            if isinstance(reply, OpenForm):
                await self.open_form(reply.form)
            elif isinstance(reply, UpdateMessage):
                await self.update(reply.post)
            elif isinstance(reply, Public):
                await self.public(reply.post)
            elif isinstance(reply, FormErrors):
                await self.form_errors(reply.errors)
            elif isinstance(reply, Ephemeral):
                await self.ephemeral(reply.post)
        await self.finish()

    async def finish(self) -> None:
        """Acknowledge an interaction the core had nothing to say to; clear a stale "thinking"."""
        response = self.interaction.response
        if not response.is_done():
            if self.interaction.type is discord.InteractionType.application_command:
                await response.send_message("Done.", ephemeral=True)
            else:
                await response.defer()
        elif self.thinking:
            self.thinking = False
            await self.interaction.edit_original_response(content="Done.")

    # --- One reply each ----------------------------------------------------------------

    async def ephemeral(self, post: Post, extra: discord.ui.Item[Any] | None = None) -> None:
        rendered = render(_say_attached(post))
        if extra is not None:
            rendered.view = rendered.view or discord.ui.View(timeout=None)
            rendered.view.add_item(extra)
        response = self.interaction.response
        if not response.is_done():
            await response.send_message(ephemeral=True, **rendered.message_kwargs())
        elif self.thinking:
            self.thinking = False
            await self.interaction.edit_original_response(**_edit_kwargs(rendered))
        else:
            await self.interaction.followup.send(ephemeral=True, **rendered.message_kwargs())

    async def public(self, post: Post) -> None:
        rendered = render(post)
        response = self.interaction.response
        if not response.is_done():
            await response.send_message(**rendered.message_kwargs())
            return
        if self.thinking:
            # A deferred response keeps the ephemeral state it was deferred with.
            self.thinking = False
            await self.interaction.edit_original_response(content="Posted in the channel.")
        await self.interaction.followup.send(**rendered.message_kwargs())

    async def update(self, post: Post) -> None:
        interaction = self.interaction
        if interaction.message is None:
            await self.ephemeral(post)
            return
        rendered = render(post)
        kwargs = _edit_kwargs(rendered)
        # Files the message already has unchanged are kept, not uploaded again on each click.
        kwargs["attachments"] = await files_for_edit(
            interaction.message.attachments, post.attachments
        )
        if not interaction.response.is_done():
            await interaction.response.edit_message(**kwargs)
        elif interaction.type is discord.InteractionType.component and not self.thinking:
            await interaction.edit_original_response(**kwargs)
        else:
            await interaction.message.edit(**kwargs)

    async def open_form(self, form: Form, values: dict[str, str] | None = None) -> None:
        interaction = self.interaction
        if not interaction.response.is_done() and interaction.type in (
            discord.InteractionType.application_command,
            discord.InteractionType.component,
        ):
            await interaction.response.send_modal(build_modal(form, self.memory, values))
            return
        # A modal can only be the first answer, and never the answer to a modal.
        token = self.memory.new(form, values)
        note = Post(text=f"**{form.title}**\nPress the button to open the form.")
        await self.ephemeral(note, ReopenForm(token, "Open the form"))

    async def form_errors(self, errors: dict[str, str]) -> None:
        labels = {f.id: f.label for f in self.form[0].fields} if self.form else {}
        lines = [f"- **{labels.get(key, key)}**: {message}" for key, message in errors.items()]
        post = Post(
            title="Please check your answers",
            text="\n".join(lines) or "Something in the form was not accepted.",
            color=ERROR_COLOR,
        )
        if self.form is None:
            post.footer = "Start the form again to retry."
            await self.ephemeral(post)
            return
        form, values = self.form
        await self.ephemeral(post, ReopenForm(self.memory.new(form, values)))


def _say_attached(post: Post) -> Post:
    """An answer only its member sees carries its files itself (an export): it says so."""
    if not post.attachments:
        return post
    names = ", ".join(f"`{a.filename}`" for a in post.attachments)
    verb = "is" if len(post.attachments) == 1 else "are"
    note = f"📎 {names} {verb} attached to this message."
    return replace(post, text=f"{post.text}\n{note}" if post.text else note)


def _edit_kwargs(rendered: Rendered) -> dict[str, Any]:
    """Edits replace the whole message: content, embeds, components and attachments."""
    return {
        "content": rendered.content or None,
        "embeds": rendered.embeds,
        "view": rendered.view,
        "attachments": rendered.files,
        "allowed_mentions": rendered.allowed_mentions,
    }
