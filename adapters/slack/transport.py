"""The outbox's way onto Slack: post, edit, and find a post again by its idempotency key.

Each post carries its key in message metadata, so after a crash between "sent" and
"recorded" the outbox can look in the channel's history before posting again. Slack
errors become `DeliveryError`s the outbox understands: rate limits, server errors and
network trouble are transient; a missing, archived or forbidden channel is not.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import RetryState
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import render
from bot.errors import DeliveryError
from bot.model import Attachment, ChannelRef, Post

log = logging.getLogger(__name__)

EVENT_TYPE = "itsm_bot_post"
HISTORY_PAGES = 3  # how far back `find` looks: a crash leaves its post among the newest
TRANSIENT_ERRORS = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
}


# What a Web API call can raise: Slack's answer, or the network (timeouts included).
FAILURES = (SlackApiError, aiohttp.ClientError, OSError)


class ShortRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Wait out a short 429 in place; leave long ones to the caller (the outbox reschedules)."""

    def __init__(self, max_wait: float, max_retry_count: int = 2) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        return _retry_after(response.headers) <= self.max_wait


def _retry_after(headers: Any) -> float:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return 1.0
    return 1.0


def delivery_error(exc: Exception) -> DeliveryError:
    """A Slack or network failure as the outbox's DeliveryError (transient or final)."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"HTTP {status}")
        if status == 429:
            retry = _retry_after(exc.response.headers)
            return DeliveryError(f"slack: {error}", transient=True, retry_after=retry)
        transient = status >= 500 or error in TRANSIENT_ERRORS
        return DeliveryError(f"slack: {error}", transient=transient)
    if isinstance(exc, aiohttp.ClientError | OSError):  # TimeoutError is an OSError
        return DeliveryError(f"network: {type(exc).__name__}: {exc}", transient=True)
    raise exc


class SlackTransport:
    platform = "slack"

    def __init__(self, client: AsyncWebClient, pace: float = 1.0) -> None:
        self.client = client
        self.pace = pace

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str:
        message = render(post)
        try:
            response = await self.client.chat_postMessage(
                channel=channel.channel,
                text=message["text"],
                blocks=message["blocks"],
                metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
                unfurl_links=False,
                unfurl_media=False,
            )
        except FAILURES as exc:
            raise delivery_error(exc) from exc
        ts = str(response["ts"])
        await upload(self.client, channel.channel, post.attachments, thread_ts=ts)
        return ts

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None:
        message = render(post)
        try:
            await self.client.chat_update(
                channel=channel.channel,
                ts=message_id,
                text=message["text"],
                blocks=message["blocks"],
            )
        except FAILURES as exc:
            raise delivery_error(exc) from exc

    async def find(self, channel: ChannelRef, key: str) -> str | None:
        """The ts of the message posted with this key, if Slack has it."""
        cursor = None
        try:
            for _ in range(HISTORY_PAGES):
                page = await self.client.conversations_history(
                    channel=channel.channel, include_all_metadata=True, limit=200, cursor=cursor
                )
                for message in page.get("messages") or []:
                    meta = message.get("metadata") or {}
                    if (
                        meta.get("event_type") == EVENT_TYPE
                        and (meta.get("event_payload") or {}).get("key") == key
                    ):
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not page.get("has_more") or not cursor:
                    return None
        except FAILURES as exc:
            raise delivery_error(exc) from exc
        return None


async def upload(
    client: AsyncWebClient, channel_id: str, attachments: list[Attachment], thread_ts: str = ""
) -> None:
    """Upload files next to a message that is already posted.

    The message is what matters and it is delivered, so a failed upload is logged rather
    than retried (retrying would post the message twice).
    """
    for attachment in attachments:
        try:
            await client.files_upload_v2(
                channel=channel_id,
                file=attachment.data,
                filename=attachment.filename,
                title=attachment.filename,
                thread_ts=thread_ts or None,
            )
        except FAILURES as exc:
            log.warning("could not upload %s to %s: %s", attachment.filename, channel_id, exc)
