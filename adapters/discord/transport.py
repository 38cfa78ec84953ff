"""The outbox's way onto Discord: send, edit, and find a post by its idempotency key.

Two guards against posting twice. Each post is sent with a nonce derived from its key and
`enforce_nonce`, so Discord itself answers a retried request with the message it already
created (for a few minutes). And because Discord does not return nonces in history, the
key is also written into the message as an invisible marker (zero-width characters at the
end of the embed text), which `find` looks for when a post is in doubt (a lost answer, a
crash), reading every message since the post's first try. Only a
marker at the very end counts: one copied into the text itself (a feed item can carry any
characters) cannot make another post look already sent.

An edit makes the message's files exactly the post's. A file already there with the same
name and bytes is kept by its id rather than uploaded again (an RSVP click edits an event
announcement without touching its calendar), and a changed one is replaced.

A reply (`thread`: its parent's message id) goes in the public thread on its parent, which
has the parent's id, as Discord makes it: the first reply creates it (named after the
parent's title), later ones post straight into it, and "already exists" (160004, a thread
made before a restart) means post into it. Where no thread can be made (no permission, a
deleted parent, a channel without threads) or it was deleted, the reply goes in the channel
with one log line, and that parent's later replies follow it there until a restart. A reply
is looked for, edited and found again in the thread first, then in the channel. Threads need
the Create Public Threads and Send Messages in Threads permissions.

A member's direct messages (`ChannelRef.direct`) go to the bot's DM channel with them, got
once per process with `Client.create_dm` (Discord returns the same channel every time). A
member who does not accept DMs (error 50007) is a final failure of that one post.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
import discord

from adapters.discord.render import flat, render
from bot.errors import DeliveryError, Failure
from bot.lanes import Engagement
from bot.model import Attachment, ChannelRef, Post

log = logging.getLogger(__name__)

PLATFORM = "discord"
_BITS = ("\u200b", "\u200c")  # zero-width space / non-joiner: 0 and 1
_MARK_START = "\u2060"  # word joiner: where a marker begins
CANNOT_MESSAGE_USER = 50007  # Discord's code for "this member does not accept your DMs"
MARKER_BITS = 48
DISCORD_EPOCH = 1420070400  # 2015-01-01, where snowflake time starts
LOOKUP_MARGIN = 60.0  # seconds a lookup reaches back before the first try (clock skew)
TOKEN_FIX = "set DISCORD_TOKEN to the bot's current token and restart"
READ_TIMEOUT = 2.0  # for reading back a file that may be unchanged; past it, upload anew
KNOWN_FILES = 1024  # attachment digests remembered
KNOWN_THREADS = 1024  # parents whose thread (or want of one) is remembered
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
UNKNOWN_CHANNEL = 10003
THREAD_NAME_MAX = 100
THREAD_ARCHIVE_MINUTES = 10080  # a week: reminders come days apart (a post unarchives it)
_ESCAPED = re.compile(r"\\(.)")  # the renderer's backslash escapes
# What a platform call can fail with; anything else is a bug and reaches the outbox as is.
PLATFORM_ERRORS = (
    discord.HTTPException,
    discord.RateLimited,
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
)


def nonce(key: str) -> str:
    """At most 25 characters, as Discord requires; the same key always gives the same nonce."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def marker(key: str) -> str:
    """An invisible, fixed-length code for `key` (48 bits of its hash)."""
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:6], "big")
    return _MARK_START + "".join(_BITS[(number >> i) & 1] for i in range(MARKER_BITS))


class DiscordTransport:
    platform = PLATFORM
    threads = True

    def __init__(self, client: discord.Client, pace: float) -> None:
        self.client = client
        self.pace = pace
        self._dms: dict[str, int] = {}  # direct ref key -> the DM channel's id
        # Parent message id -> True: its thread exists; False: its replies go in the channel.
        self._threads: OrderedDict[int, bool] = OrderedDict()

    def _channel(self, channel: ChannelRef) -> discord.PartialMessageable:
        guild_id = int(channel.workspace) if channel.workspace.isdigit() else None
        return self.client.get_partial_messageable(int(channel.channel), guild_id=guild_id)

    def _thread(self, channel: ChannelRef, parent: int) -> discord.PartialMessageable:
        """The thread on message `parent` (a thread made from a message has its id)."""
        guild_id = int(channel.workspace) if channel.workspace.isdigit() else None
        return self.client.get_partial_messageable(
            parent, guild_id=guild_id, type=discord.ChannelType.public_thread
        )

    async def _target(self, channel: ChannelRef) -> discord.PartialMessageable:
        """Where to post: the channel, or the DM channel with the member of a direct ref."""
        if not channel.is_direct:
            return self._channel(channel)
        dm_id = self._dms.get(channel.key)
        if dm_id is None:
            dm = await self.client.create_dm(discord.Object(id=int(channel.direct_user)))
            dm_id = self._dms[channel.key] = dm.id
        return self.client.get_partial_messageable(dm_id, type=discord.ChannelType.private)

    async def send(self, channel: ChannelRef, post: Post, key: str, *, thread: str = "") -> str:
        rendered = render(post, marker=marker(key))
        parent = int(thread) if thread.isdigit() and not channel.is_direct else 0
        try:
            target = await self._target(channel)
            if parent and await self._open_thread(channel, parent, post):
                try:
                    message = await self._thread(channel, parent).send(
                        nonce=nonce(key), **rendered.message_kwargs()
                    )
                    remember_files(message, post.attachments)
                    return str(message.id)
                except discord.NotFound as exc:
                    if exc.code != UNKNOWN_CHANNEL:
                        raise
                    self._no_thread(channel, parent, "its thread was deleted")
            message = await target.send(nonce=nonce(key), **rendered.message_kwargs())
        except PLATFORM_ERRORS as exc:
            raise delivery_error(exc, f"post {key} to {channel.key}") from exc
        remember_files(message, post.attachments)
        return str(message.id)

    async def _open_thread(self, channel: ChannelRef, parent: int, post: Post) -> bool:
        """Whether the thread on `parent` is there to post in, creating it if need be;
        False sends the reply to the channel. A passing failure (429, 5xx, the network) is
        raised, so the reply is tried again later, as a whole."""
        known = self._threads.get(parent)
        if known is not None:
            return known
        name = await self._thread_name(channel, parent, post)
        try:
            await self.client.http.start_thread_with_message(
                int(channel.channel), parent, name=name,
                auto_archive_duration=THREAD_ARCHIVE_MINUTES,
            )  # fmt: skip
        except discord.HTTPException as exc:
            if exc.code == THREAD_EXISTS:
                self._remember_thread(parent, True)
                return True
            if exc.status in (401, 429) or exc.status >= 500:
                raise
            # No permission (50013), a deleted parent, a channel without threads: the
            # reply matters more than where it goes.
            self._no_thread(channel, parent, f"HTTP {exc.status} {exc.text or ''}".strip())
            return False
        self._remember_thread(parent, True)
        return True

    async def _thread_name(self, channel: ChannelRef, parent: int, post: Post) -> str:
        """The parent's title as plain text (Discord shows a thread's name as typed), cut to
        Discord's 100 characters; the reply's own title if the parent cannot be read."""
        try:
            data = await self.client.http.get_message(int(channel.channel), parent)
            embeds = data.get("embeds") or [{}]
            shown = embeds[0].get("title") or (data.get("content") or "").split("\n", 1)[0]
            name = _ESCAPED.sub(r"\1", shown)
        except PLATFORM_ERRORS as exc:
            log.info("discord: could not read %s to name its thread: %r", parent, exc)
            name = flat(post.title, post.zone)
        name = " ".join(name.split()) or "Replies"
        return name[: THREAD_NAME_MAX - 1] + "…" if len(name) > THREAD_NAME_MAX else name

    def _no_thread(self, channel: ChannelRef, parent: int, why: str) -> None:
        log.warning("discord: replies to %s in %s go in the channel, not a thread: %s",
                    parent, channel.key, why)  # fmt: skip
        self._remember_thread(parent, False)

    def _remember_thread(self, parent: int, exists: bool) -> None:
        self._threads[parent] = exists
        self._threads.move_to_end(parent)
        while len(self._threads) > KNOWN_THREADS:
            self._threads.popitem(last=False)

    async def edit(
        self, channel: ChannelRef, message_id: str, post: Post, *, thread: str = ""
    ) -> None:
        """Edit in place; a reply in its thread, or in the channel where it went instead."""
        try:
            if thread.isdigit() and not channel.is_direct:
                try:
                    await self._edit_in(self._thread(channel, int(thread)), message_id, post)
                    return
                except discord.NotFound:
                    pass  # no thread, or the reply is not in it: it went in the channel
            await self._edit_in(await self._target(channel), message_id, post)
        except PLATFORM_ERRORS as exc:
            raise delivery_error(exc, f"edit {message_id} in {channel.key}") from exc

    async def _edit_in(
        self, where: discord.PartialMessageable, message_id: str, post: Post
    ) -> None:
        rendered = render(post)
        target = where.get_partial_message(int(message_id))
        files: list[discord.Attachment | discord.File] = []
        if post.attachments:
            current = await target.fetch()  # which files it has, to keep the unchanged
            files = await files_for_edit(current.attachments, post.attachments)
        edited = await target.edit(
            content=rendered.content or None,
            embeds=rendered.embeds,
            view=rendered.view,
            attachments=files,
            allowed_mentions=rendered.allowed_mentions,
        )
        remember_files(edited, post.attachments)

    async def find(
        self, channel: ChannelRef, key: str, since: float, *, thread: str = ""
    ) -> str | None:
        """The id of a message of ours carrying `key`'s marker, if there is one: every
        message after just before `since` is read (ids carry their time), so a busy channel
        cannot push the post out of reach. A reply is looked for in its parent's thread (if
        there is one), then in the channel, where it went if no thread could be made."""
        wanted = marker(key)
        after = discord.Object(id=discord.utils.time_snowflake(_moment(since - LOOKUP_MARGIN)))
        try:
            if thread.isdigit() and not channel.is_direct:
                try:
                    found = await self._search(self._thread(channel, int(thread)), wanted, after)
                except discord.NotFound:
                    found = None  # no thread was made
                if found:
                    return found
            return await self._search(await self._target(channel), wanted, after)
        except PLATFORM_ERRORS as exc:
            raise delivery_error(exc, f"search {channel.key} for {key}") from exc

    async def _search(
        self, where: discord.PartialMessageable, wanted: str, after: discord.Object
    ) -> str | None:
        me = self.client.user.id if self.client.user else None
        async for message in where.history(limit=None, after=after, oldest_first=True):
            if me is not None and message.author.id != me:
                continue
            texts = [message.content, *(e.description or "" for e in message.embeds)]
            if any(text.endswith(wanted) for text in texts):
                return str(message.id)
        return None

    async def engagement(self, channel: ChannelRef, message_id: str) -> Engagement | None:
        """Reactions (every emoji's count, the bot's own not counted) and the messages in
        the thread started from it, as a GET of the message gives them; None if it is gone.
        The payload is read as it comes: `Message.thread` needs the guild in the cache,
        which a message fetched over REST may not have."""
        try:
            target = await self._target(channel)
            data = await self.client.http.get_message(target.id, int(message_id))
        except discord.NotFound:
            return None
        except PLATFORM_ERRORS as exc:
            raise delivery_error(exc, f"read {message_id} in {channel.key}") from exc
        reactions = sum(
            int(r.get("count") or 0) - (1 if r.get("me") else 0)
            for r in data.get("reactions") or []
        )
        replies = int((data.get("thread") or {}).get("message_count") or 0)
        return Engagement(reactions=max(0, reactions), replies=replies)


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(max(seconds, DISCORD_EPOCH), UTC)


async def files_for_edit(
    current: Sequence[discord.Attachment], wanted: list[Attachment]
) -> list[discord.Attachment | discord.File]:
    """What an edit passes as `attachments` so the message ends with exactly `wanted`:
    each file already on it with the same name and bytes is kept by id, the rest uploaded."""
    spare = list(current)
    result: list[discord.Attachment | discord.File] = []
    for attachment in wanted:
        same = None
        for candidate in spare:
            if await _same_file(candidate, attachment):
                same = candidate
                break
        if same is not None:
            spare.remove(same)
            result.append(same)
        else:
            result.append(discord.File(io.BytesIO(attachment.data), filename=attachment.filename))
    return result


async def _same_file(existing: discord.Attachment, attachment: Attachment) -> bool:
    """Same name, size and bytes. Only a file that matches on name and size, and whose
    content is not remembered, is read back; one that cannot be read in time counts as
    different."""
    if existing.filename != attachment.filename or existing.size != len(attachment.data):
        return False
    if existing.id not in _digests:
        try:
            data = await asyncio.wait_for(existing.read(), READ_TIMEOUT)
        except PLATFORM_ERRORS as exc:
            log.info("could not read back %s (%r); uploading it again", existing.filename, exc)
            return False
        _remember(existing.id, data)
    return _digests[existing.id] == _digest(attachment.data)


# An attachment id's content never changes, so a digest learnt once (when the file was
# sent, or read back) spares every later edit of the message a download.
_digests: OrderedDict[int, str] = OrderedDict()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remember(attachment_id: int, data: bytes) -> None:
    _digests[attachment_id] = _digest(data)
    while len(_digests) > KNOWN_FILES:
        _digests.popitem(last=False)


def remember_files(message: discord.Message | None, sent: list[Attachment]) -> None:
    """Note the digests of the files a message was just given, matched by name."""
    data_by_name = {a.filename: a.data for a in sent}
    for attachment in message.attachments if message is not None else []:
        if attachment.filename in data_by_name:
            _remember(attachment.id, data_by_name[attachment.filename])


def delivery_error(exc: BaseException, what: str) -> DeliveryError:
    """A discord.py or network failure as the outbox's DeliveryError, by what it means."""
    if isinstance(exc, discord.RateLimited):
        return DeliveryError(
            f"{what}: rate limited", Failure.RATE_LIMITED, retry_after=exc.retry_after
        )
    if isinstance(exc, discord.HTTPException):
        status = exc.status
        said = f"{what}: HTTP {status} {exc.text or ''}".strip()
        if status == 429:
            return DeliveryError(said, Failure.RATE_LIMITED, retry_after=_retry_after(exc))
        if status == 401:
            return DeliveryError(
                f"Discord refused the bot token (401 Unauthorized): {TOKEN_FIX}",
                Failure.CREDENTIALS,
            )
        if exc.code == CANNOT_MESSAGE_USER:
            return DeliveryError(f"{what}: the member does not accept DMs", Failure.PERMANENT)
        if status >= 500:
            return DeliveryError(said, Failure.IN_DOUBT)  # the message may exist
        return DeliveryError(said, Failure.PERMANENT)  # missing access, unknown channel...
    if isinstance(exc, aiohttp.ClientConnectorError):  # never connected: nothing was sent
        return DeliveryError(f"{what}: {exc}", Failure.TRANSIENT)
    return DeliveryError(f"{what}: {exc!r}", Failure.IN_DOUBT)  # the answer was lost


def _retry_after(exc: discord.HTTPException) -> float | None:
    try:
        return float(exc.response.headers.get("Retry-After", ""))
    except (AttributeError, ValueError):
        return None
