"""The core's replies on Slack: each one its own way back to where the request came from.

An ephemeral answer goes through the request's response_url (or chat.postEphemeral), a public
one into the channel (or through the response_url where the bot may not post), a form as a
modal, an update in place of the clicked message (an ephemeral one through the response_url,
which alone can replace it); files meant for one member go to their direct messages, and
the answer says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import render as slack_render
from adapters.slack import translate
from adapters.slack.transport import FAILURES, SlackTransport, delivery_error, upload
from bot.errors import DeliveryError
from bot.model import (
    ChannelRef,
    Ephemeral,
    FormErrors,
    OpenForm,
    Post,
    Public,
    Reply,
    UpdateMessage,
    UserRef,
)

log = logging.getLogger("adapters.slack.surface")

_NOT_POSTABLE = {"not_in_channel", "channel_not_found"}


@dataclass
class Origin:
    """Where a request came from, so every reply goes back to the right place."""

    channel: ChannelRef
    user: UserRef
    respond: Responder | None = None
    trigger_id: str = ""
    message_ts: str = ""
    message_is_ephemeral: bool = False


class Responder:
    """Answers through a response_url on the surface's shared HTTP session: bolt's own
    `respond` opens a new connection for every answer, which a burst of votes cannot afford."""

    def __init__(self, url: str, session: aiohttp.ClientSession | None) -> None:
        self.url = url
        self._webhook = AsyncWebhookClient(url, session=session)

    async def __call__(self, **message: Any) -> None:
        response = await self._webhook.send(**message)
        if response.status_code != 200:
            log.warning("slack: response_url answered %s: %s", response.status_code, response.body)


def form_context(reply: OpenForm, origin: Origin) -> str:
    card = origin.respond.url if origin.respond and origin.message_is_ephemeral else ""
    return translate.form_metadata(reply.form.value, origin.channel, origin.message_ts, card)


class Replies:
    def __init__(self, client: AsyncWebClient, transport: SlackTransport) -> None:
        self.client = client
        self.transport = transport

    async def deliver(self, replies: list[Reply], origin: Origin) -> None:
        """Send each reply its own way; one failing reply does not stop the others."""
        for reply in replies:
            try:
                await self._deliver_one(reply, origin)
            except FAILURES as exc:
                log.warning(
                    "slack: could not deliver %s: %s", type(reply).__name__, delivery_error(exc)
                )
            except DeliveryError as exc:  # already put in Slack's terms by the transport
                log.warning("slack: could not deliver %s: %s", type(reply).__name__, exc)
            except ValueError as exc:  # a post Slack cannot show (the renderer says why)
                log.error("slack: could not render %s: %s", type(reply).__name__, exc)

    async def _deliver_one(self, reply: Reply, origin: Origin) -> None:
        if isinstance(reply, Ephemeral):
            await self._ephemeral(reply.post, origin)
        elif isinstance(reply, Public):
            await self._public(reply.post, origin)
        elif isinstance(reply, OpenForm):
            if not origin.trigger_id:
                log.warning("slack: cannot open form %s without a trigger_id", reply.form.id)
                return
            view = slack_render.render_form(reply.form, form_context(reply, origin))
            await self.client.views_open(trigger_id=origin.trigger_id, view=view)
        elif isinstance(reply, UpdateMessage):
            await self._update(reply.post, origin)
        elif isinstance(reply, FormErrors):
            await self._ephemeral(reply.post(), origin)

    async def _ephemeral(self, post: Post, origin: Origin) -> None:
        if post.attachments:  # an ephemeral message carries no file: they go to the DM
            post = await self._private_files(post, origin)
        message = slack_render.render(post)
        if origin.respond is not None:
            await origin.respond(
                text=message["text"],
                blocks=message["blocks"],
                response_type="ephemeral",
                replace_original=False,
            )
        else:
            await self.client.chat_postEphemeral(
                channel=origin.channel.channel,
                user=origin.user.user,
                text=message["text"],
                blocks=message["blocks"],
            )

    async def _public(self, post: Post, origin: Origin) -> None:
        message = slack_render.render(post)
        try:
            response = await self.client.chat_postMessage(
                channel=origin.channel.channel,
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in _NOT_POSTABLE or origin.respond is None:
                raise
            # A private channel the bot was not invited to: answer through the command.
            await origin.respond(
                text=message["text"], blocks=message["blocks"], response_type="in_channel"
            )
            return
        await upload(self.client, origin.channel.channel, post.attachments, str(response["ts"]))

    async def _update(self, post: Post, origin: Origin) -> None:
        message = slack_render.render(post)
        if origin.message_ts and not origin.message_is_ephemeral:
            await self.client.chat_update(
                channel=origin.channel.channel,
                ts=origin.message_ts,
                text=message["text"],
                blocks=message["blocks"],
            )
        elif origin.respond is not None:
            await origin.respond(
                text=message["text"], blocks=message["blocks"], replace_original=True
            )
        else:  # nothing to update (a form opened from a command): a new card instead
            await self._ephemeral(post, origin)

    async def _private_files(self, post: Post, origin: Origin) -> Post:
        """Files meant for one member go to a direct message with them; the answer, which
        follows, says where they went (or that they could not be sent), and carries none."""
        sent: list[str] = []
        try:
            im = await self.transport.conversation(ChannelRef.direct(origin.user))
            sent = [a.filename for a, _ in await upload(self.client, im.channel, post.attachments)]
        except DeliveryError as exc:
            log.warning("slack: could not open a direct message with %s: %s", origin.user.key, exc)
        lost = [a.filename for a in post.attachments if a.filename not in sent]
        notes = []
        if sent:
            notes.append(f"📎 {_names(sent)} {_is(sent)} sent to you in a direct message.")
        if lost:
            notes.append(
                f"📎 {_names(lost)} could not be sent to you in a direct message; "
                "please try again in a moment."
            )
        text = "\n".join([post.text, *notes]) if post.text else "\n".join(notes)
        return replace(post, text=text, attachments=[])


def _names(filenames: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in filenames)


def _is(filenames: list[str]) -> str:
    return "is" if len(filenames) == 1 else "are"
