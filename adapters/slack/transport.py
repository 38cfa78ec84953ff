"""The outbox's way onto Slack: post, edit, and find a post again by its idempotency key.

Each post carries its key in message metadata, so when a post is in doubt (its answer was
lost, or a crash came between "sent" and "recorded") the outbox can look in the channel's
history, from the post's first try on, before posting again. Slack's answers become
`DeliveryError`s by what they mean: a rate limit, a passing failure, a failure after which
the post may exist (a 5xx, a lost answer), a refused token, or a refusal of this post (a
missing, archived or forbidden channel).

Files go in the post's thread. A Slack file cannot be edited in place, so when an edit
changes a file (an event's .ics after its time moved) the new copy is uploaded in the same
thread with a note, and the bot's old copy is deleted: nobody can pick up a stale calendar,
and the channel gets no second message. Which files a post carries is kept as name and
SHA-256 in the post's own metadata, so an edit that leaves them alone (an RSVP click)
uploads nothing, without reading any file back.

A reply (`thread`: its parent's ts) is posted in the parent's thread with `thread_ts`, its
files beside it there; it is found again among the parent's replies (`conversations.replies`,
since a channel's history shows only the parent). An edit of a reply leaves its files as they
are (the bot's replies carry none).

A member's direct messages (`ChannelRef.direct`) are the bot's IM conversation with them:
it is opened once with `conversations.open` (which needs the `im:write` scope), its id kept
for the life of the process, and then posted to, edited and searched like any channel.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import RetryState
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import render
from bot.errors import DeliveryError, Failure
from bot.lanes import Engagement
from bot.model import Attachment, ChannelRef, Post, UserRef

log = logging.getLogger(__name__)

EVENT_TYPE = "itsm_bot_post"
LOOKUP_MARGIN = 60.0  # seconds a lookup reaches back before the first try (clock skew)
METADATA_REMEMBERED = 1000  # posts whose metadata is kept in memory (saves a history read)
REPLACED_NOTE = "Updated {name}: the post above changed, and this copy replaces the earlier one."
# Slack's answers, by what they mean for the post (anything not listed is a refusal of it).
CREDENTIALS_ERRORS = {
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
}
MAYBE_DONE_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
PASSING_ERRORS = {"team_added_to_org"}
GONE_ERRORS = {"message_not_found", "thread_not_found", "channel_not_found"}  # nothing to read
TOKEN_FIX = "set SLACK_BOT_TOKEN to the app's current bot token (xoxb-...) and restart"


# What a Web API call can raise: Slack's answer, or the network (timeouts included).
FAILURES = (SlackApiError, aiohttp.ClientError, OSError)
MEMBERS_PAGE = 200  # conversations.members' own recommended page size
# Answers meaning "Slack will not list this channel's members" (the caller falls back).
NOT_TOLD_ERRORS = {
    "missing_scope",
    "channel_not_found",
    "not_in_channel",
    "method_not_supported_for_channel_type",
}


class ShortRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Wait out a short 429 in place; leave long ones to the caller (replies only: the
    outbox's own client retries nothing, each lane waits for itself)."""

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
    """A Slack or network failure as the outbox's DeliveryError, by what it means."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"HTTP {status}")
        if status == 429 or error == "ratelimited":
            retry = _retry_after(exc.response.headers)
            return DeliveryError(f"slack: {error}", Failure.RATE_LIMITED, retry_after=retry)
        if error in CREDENTIALS_ERRORS:
            return DeliveryError(
                f"Slack refused the bot token ({error}): {TOKEN_FIX}", Failure.CREDENTIALS
            )
        if status >= 500 or error in MAYBE_DONE_ERRORS:
            # Slack: "it's possible some aspect of the operation succeeded".
            return DeliveryError(f"slack: {error}", Failure.IN_DOUBT)
        if error in PASSING_ERRORS:
            return DeliveryError(f"slack: {error}", Failure.TRANSIENT)
        return DeliveryError(f"slack: {error}", Failure.PERMANENT)
    if isinstance(exc, aiohttp.ClientConnectorError):  # never connected: nothing was sent
        return DeliveryError(f"network: {exc}", Failure.TRANSIENT)
    if isinstance(exc, aiohttp.ClientError | OSError):  # TimeoutError is an OSError
        return DeliveryError(f"network: {type(exc).__name__}: {exc}", Failure.IN_DOUBT)
    raise exc


class SlackTransport:
    platform = "slack"
    threads = True

    def __init__(self, client: AsyncWebClient, pace: float = 1.0) -> None:
        self.client = client
        self.pace = pace
        self._metadata: OrderedDict[str, dict[str, Any]] = OrderedDict()  # by channel:ts
        self._ims: dict[str, str] = {}  # direct ref key -> the IM conversation's id
        self._me: dict[str, str] = {}  # workspace -> the bot's own user id (not to remind)

    async def conversation(self, channel: ChannelRef) -> ChannelRef:
        """`channel` itself, or for a member's direct messages the IM conversation with
        them (opened once per process; Slack gives the same id every time)."""
        if not channel.is_direct:
            return channel
        im = self._ims.get(channel.key)
        if im is None:
            try:
                response = await self.client.conversations_open(users=channel.direct_user)
            except FAILURES as exc:
                raise delivery_error(exc) from exc
            im = self._ims[channel.key] = str(response["channel"]["id"])
        return ChannelRef(channel.platform, channel.workspace, im)

    async def send(self, channel: ChannelRef, post: Post, key: str, *, thread: str = "") -> str:
        message = _rendered(post)
        channel = await self.conversation(channel)
        payload: dict[str, Any] = {"key": key}
        if post.attachments:
            payload["files"] = _digests(post.attachments)
        metadata = {"event_type": EVENT_TYPE, "event_payload": payload}
        try:
            response = await self.client.chat_postMessage(
                channel=channel.channel,
                text=message["text"],
                blocks=message["blocks"],
                metadata=metadata,
                unfurl_links=False,
                unfurl_media=False,
                thread_ts=thread or None,
            )
        except FAILURES as exc:
            raise delivery_error(exc) from exc
        ts = str(response["ts"])
        # Slack threads are one level deep: a reply's files go in its parent's thread.
        files_thread = thread or ts
        uploaded = await upload(
            self.client, channel.channel, post.attachments, thread_ts=files_thread
        )
        if post.attachments:
            # A file that did not go up is not recorded, so the next edit uploads it.
            payload["files"] = _digests([a for a, _ in uploaded])
            self._remember(channel, ts, metadata)
        return ts

    async def edit(
        self, channel: ChannelRef, message_id: str, post: Post, *, thread: str = ""
    ) -> None:
        message = _rendered(post)
        channel = await self.conversation(channel)
        update: dict[str, Any] = {}
        if post.attachments and thread:
            log.info("slack: the files of reply %s in %s are left as they are", message_id,
                     channel.key)  # fmt: skip
        elif post.attachments:
            metadata = await self._follow_files(channel, message_id, post.attachments)
            if metadata is not None:
                update["metadata"] = metadata
        try:
            await self.client.chat_update(
                channel=channel.channel,
                ts=message_id,
                text=message["text"],
                blocks=message["blocks"],
                **update,
            )
        except FAILURES as exc:
            raise delivery_error(exc) from exc

    async def _follow_files(
        self, channel: ChannelRef, ts: str, attachments: list[Attachment]
    ) -> dict[str, Any] | None:
        """Bring the files in the post's thread in line with `attachments`; return the
        metadata recording them (None if the post's metadata cannot be read now).

        File trouble never fails the edit: the text is what members read first, and a
        file left behind is tried again at the next edit, since it is not recorded."""
        metadata = await self._read_metadata(channel, ts)
        if metadata is None:
            return None
        payload = metadata["event_payload"]
        recorded = {f["name"]: f for f in payload.get("files") or []}
        wanted = _digests(attachments)
        if list(recorded.values()) == wanted:
            return metadata
        changed = [
            a for a, d in zip(attachments, wanted, strict=True) if recorded.get(d["name"]) != d
        ]
        replacing = [a for a in changed if a.filename in recorded]
        uploaded = await upload(self.client, channel.channel, replacing, ts, REPLACED_NOTE)
        uploaded += await upload(
            self.client, channel.channel, [a for a in changed if a.filename not in recorded], ts
        )
        gone = set(recorded) - {d["name"] for d in wanted}
        done = {a.filename for a, _ in uploaded}
        await self._delete_old(channel, ts, done | gone, keep={file_id for _, file_id in uploaded})
        # What the thread now holds: a file whose new copy did not go up keeps its old
        # record, so the next edit tries again.
        files = []
        for digest in wanted:
            name = digest["name"]
            if name in done or recorded.get(name) == digest:
                files.append(digest)
            elif name in recorded:
                files.append(recorded[name])
        payload["files"] = files
        self._remember(channel, ts, metadata)
        return metadata

    async def _read_metadata(self, channel: ChannelRef, ts: str) -> dict[str, Any] | None:
        remembered = self._metadata.get(f"{channel.channel}:{ts}")
        if remembered is not None:
            return remembered
        try:
            page = await self.client.conversations_history(
                channel=channel.channel, latest=ts, inclusive=True, limit=1,
                include_all_metadata=True,
            )  # fmt: skip
        except FAILURES as exc:
            log.warning(
                "slack: could not read %s in %s to sync its files: %s", ts, channel.key, exc
            )
            return None
        for message in page.get("messages") or []:
            metadata = message.get("metadata") or {}
            if message.get("ts") == ts and metadata.get("event_type") == EVENT_TYPE:
                return self._remember(channel, ts, metadata)
        log.warning(
            "slack: %s in %s carries no post metadata; files left as they are", ts, channel.key
        )
        return None

    def _remember(self, channel: ChannelRef, ts: str, metadata: dict[str, Any]) -> dict[str, Any]:
        key = f"{channel.channel}:{ts}"
        self._metadata[key] = metadata
        self._metadata.move_to_end(key)
        while len(self._metadata) > METADATA_REMEMBERED:
            self._metadata.popitem(last=False)
        return metadata

    async def _delete_old(
        self, channel: ChannelRef, ts: str, names: set[str], keep: set[str]
    ) -> None:
        """Delete the bot's own earlier copies of `names` in the post's thread."""
        if not names:
            return
        try:
            thread = await self.client.conversations_replies(channel=channel.channel, ts=ts)
            messages = thread.get("messages") or []
            owner = messages[0].get("user") if messages else None  # the post is the bot's
            for message in messages[1:]:
                for file in message.get("files") or []:
                    mine = file.get("user") == owner and owner is not None
                    if mine and file.get("name") in names and file.get("id") not in keep:
                        await self.client.files_delete(file=file["id"])
        except FAILURES as exc:
            log.warning(
                "slack: could not remove old files under %s in %s: %s", ts, channel.key, exc
            )

    async def find(
        self, channel: ChannelRef, key: str, since: float, *, thread: str = ""
    ) -> str | None:
        """The ts of the message posted with this key, if Slack has it: every message from
        just before `since` on is read, however many there are. A reply is looked for in
        the thread of `thread` (a thread Slack does not know holds nothing)."""
        channel = await self.conversation(channel)
        oldest = f"{max(0.0, since - LOOKUP_MARGIN):.6f}"
        read = self.client.conversations_history
        if thread:
            read = functools.partial(self.client.conversations_replies, ts=thread)
        cursor = None
        try:
            while True:
                page = await read(
                    channel=channel.channel, oldest=oldest, inclusive=True, limit=200,
                    include_all_metadata=True, cursor=cursor,
                )  # fmt: skip
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
        except SlackApiError as exc:
            if thread and exc.response.get("error") == "thread_not_found":
                return None
            raise delivery_error(exc) from exc
        except FAILURES as exc:
            raise delivery_error(exc) from exc

    async def member_zone(self, user: UserRef) -> str | None:
        """The zone of the member's Slack profile (`users.info` `tz`, under the `users:read`
        scope the moderator check already has); None if Slack does not say. The core asks
        once per member and keeps the answer (bot/members.py)."""
        try:
            response = await self.client.users_info(user=user.user)
        except FAILURES as exc:
            raise delivery_error(exc) from exc
        found = response.get("user")
        zone = found.get("tz") if isinstance(found, dict) else None
        return zone if isinstance(zone, str) and zone else None

    async def members(self, channel: ChannelRef) -> list[UserRef] | None:
        """Who is in `channel` (`conversations.members`, page by page), the bot left out;
        None where Slack will not tell: without the `channels:read` / `groups:read` scope
        the manifest asks for, or a conversation the bot cannot see."""
        found: list[str] = []
        cursor = ""
        try:
            if channel.workspace not in self._me:
                me = (await self.client.auth_test()).get("user_id")
                self._me[channel.workspace] = str(me or "")
            while True:
                page = await self.client.conversations_members(
                    channel=channel.channel, limit=MEMBERS_PAGE, cursor=cursor or None
                )
                found += page.get("members") or []
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
                if not cursor:
                    break
        except SlackApiError as exc:
            if exc.response.get("error") in NOT_TOLD_ERRORS:
                return None
            raise delivery_error(exc) from exc
        except FAILURES as exc:
            raise delivery_error(exc) from exc
        me = self._me[channel.workspace]
        return [UserRef(channel.platform, channel.workspace, u) for u in found if u != me]

    async def engagement(self, channel: ChannelRef, message_id: str) -> Engagement | None:
        """Reactions (`reactions.get`, every emoji's count but the bot's own) and thread
        replies (`conversations.replies`, the parent's `reply_count`) of the bot's message
        `message_id`; None if Slack no longer has it. Needs the `reactions:read` scope."""
        channel = await self.conversation(channel)
        try:
            reacted = await self.client.reactions_get(
                channel=channel.channel, timestamp=message_id, full=True
            )
            thread = await self.client.conversations_replies(
                channel=channel.channel, ts=message_id, limit=1
            )
        except SlackApiError as exc:
            if exc.response.get("error") in GONE_ERRORS:
                return None
            raise delivery_error(exc) from exc
        except FAILURES as exc:
            raise delivery_error(exc) from exc
        message = reacted.get("message") or {}
        bot_user = message.get("user")
        reactions = sum(
            int(r.get("count") or 0) - (1 if bot_user in (r.get("users") or []) else 0)
            for r in message.get("reactions") or []
        )
        parent = (thread.get("messages") or [{}])[0]
        return Engagement(reactions=max(0, reactions), replies=int(parent.get("reply_count") or 0))


def _rendered(post: Post) -> dict[str, Any]:
    try:
        return render(post)
    except ValueError as exc:  # a post Slack cannot show: no retry will change that
        raise DeliveryError(f"slack: cannot show this post: {exc}", Failure.PERMANENT) from exc


async def upload(
    client: AsyncWebClient,
    channel_id: str,
    attachments: list[Attachment],
    thread_ts: str = "",
    note: str = "",
) -> list[tuple[Attachment, str]]:
    """Upload files next to a message that is already posted; return each uploaded one
    with its Slack file id. `note` (with {name}) is said with each file.

    The message is what matters and it is delivered, so a failed upload is logged rather
    than retried (retrying would post the message twice).
    """
    uploaded = []
    for attachment in attachments:
        try:
            response = await client.files_upload_v2(
                channel=channel_id,
                file=attachment.data,
                filename=attachment.filename,
                title=attachment.filename,
                thread_ts=thread_ts or None,
                initial_comment=note.format(name=attachment.filename) if note else None,
            )
        except FAILURES as exc:
            log.warning("could not upload %s to %s: %s", attachment.filename, channel_id, exc)
            continue
        files = response.get("files") or [response.get("file") or {}]
        uploaded.append((attachment, str(files[0].get("id", ""))))
    return uploaded


def _digests(attachments: list[Attachment]) -> list[dict[str, str]]:
    """Name and SHA-256 of each file, as recorded in a post's metadata."""
    return [{"name": a.filename, "sha256": hashlib.sha256(a.data).hexdigest()} for a in attachments]
