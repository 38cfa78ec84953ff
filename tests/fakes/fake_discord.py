"""A local stand-in for Discord's REST API and gateway, for tests.

The real discord.py client talks to it over real sockets on 127.0.0.1, so tests exercise the
library's own request, rate-limit, websocket and interaction code instead of mocks. Every REST
request and gateway frame is recorded so tests can assert on exactly what the bot sent.

It can misbehave on demand the way Discord does, for testing a delivery engine: answer late
(``latency``), fail for a while (``outage``/``recover``), create a message and lose the answer
(``lose_answer``), hold requests unanswered (``hang``/``release_hangs``), refuse a revoked token
(``revoke``/``unrevoke``); it enforces nonces as Discord does (``nonce_window``), fills a busy
channel (``add_messages``), and ``posts`` lists what the bot really created, each message with
the ``nonce`` it came with, so tests can count lost, doubled and out-of-order posts.

Threads on a message (``POST /channels/{channel}/messages/{message}/threads``) are public
threads whose id is the message's, as Discord makes them; a message posted in one is stored
with the thread's id as its ``channel_id`` and counted in the thread's ``message_count``; a
second thread on the same message is refused with code 160004, and ``threads_allowed = False``
refuses them all as a bot without Create Public Threads is refused (403, code 50013).

The gateway takes several connections at once, one session each: a client that IDENTIFYs
with ``shard: [id, count]`` gets only the events of the servers on that shard (their
GUILD_CREATE, interactions, scheduled events), as from Discord
(tests/fakes/discord_gateway.py); ``connections`` counts the sessions opened.

Guild scheduled events (``fake.guild_events``, in tests/fakes/fake_discord_events.py) take
Discord's routes and rules, and send members' "Interested" over the gateway.

Usage in a test module::

    from tests.fakes.fake_discord import fake_discord, discord_endpoints  # noqa: F401

    async def test_something(discord_endpoints):
        fake = discord_endpoints  # discord.py now points at the fake until the test ends
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest
import pytest_asyncio
import yarl
from aiohttp import WSMsgType, web

from tests.fakes.discord_gateway import Session, Sessions, guild_of
from tests.fakes.fake_discord_events import GuildEvents
from tests.fakes.holds import Holds

DISCORD_EPOCH_MS = 1420070400000
ATTACHMENT_SIZE_LIMIT = 25 * 1024 * 1024
HEARTBEAT_INTERVAL_MS = 41250
# Permissions of the bot's managed role: everything a community bot needs, short of admin.
BOT_PERMISSIONS = str(
    discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        add_reactions=True,
        manage_messages=True,
        manage_events=True,
        create_events=True,
        use_application_commands=True,
        send_polls=True,
    ).value
)
EVERYONE_PERMISSIONS = str(
    discord.Permissions(
        view_channel=True,
        send_messages=True,
        read_message_history=True,
        add_reactions=True,
        use_application_commands=True,
    ).value
)

JsonHandler = Callable[["web.Request", "Req", dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass
class FakeFile:
    """One file part of a multipart request, kept whole so tests can compare bytes."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Req:
    """One REST request as the fake received it (path is relative to the API base).

    Recorded when it arrives: ``status`` is 0 until it is processed or refused, and stays 0
    for a request held by ``hang`` and dropped when the fake closed. ``lost`` is True when
    it was processed but its answer withheld (``lose_answer``); ``status`` is then the
    answer the client would have got.
    """

    method: str
    path: str
    json: Any
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    files: list[FakeFile] = field(default_factory=list)
    status: int = 0
    at: float = 0.0  # time.monotonic() when the request arrived
    lost: bool = False


@dataclass
class _Failure:
    method: str
    path_glob: str
    status: int
    times: int
    retry_after: float


@dataclass
class _Rule:
    """Which requests a ``hang`` or ``lose_answer`` applies to, and how many more times."""

    method: str
    path_glob: str
    times: int

    def take(self, req: Req) -> bool:
        if (
            self.times > 0
            and self.method == req.method
            and fnmatch.fnmatchcase(req.path, self.path_glob)
        ):
            self.times -= 1
            return True
        return False


@dataclass
class _Outage:
    status: int
    path_glob: str
    method: str | None  # None: every method
    retry_after: float

    def covers(self, req: Req) -> bool:
        return self.method in (None, req.method) and fnmatch.fnmatchcase(req.path, self.path_glob)


@dataclass
class _Interaction:
    payload: dict[str, Any]
    responded: bool = False
    original_message_id: int | None = None


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # Not web.json_response and not text=...: both add "; charset=utf-8", and discord.py only
    # parses a body whose Content-Type is exactly "application/json".
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return web.Response(body=json.dumps(data).encode(), status=status, headers=all_headers)


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json_response({"message": message, "code": code}, status=status)


def _field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _invalid_form(errors: dict[str, Any]) -> web.Response:
    return _json_response(
        {"message": "Invalid Form Body", "code": 50035, "errors": errors}, status=400
    )


def _rate_limited(retry_after: float, bucket: str) -> web.Response:
    """A 429 as Discord sends it: without ``Via`` discord.py takes it for a Cloudflare ban."""
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(max(0, int(retry_after + 0.999))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": "fake-bucket-" + re.sub(r"\W", "", bucket),
        "X-RateLimit-Scope": "user",
    }
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return _json_response(body, status=429, headers=headers)


def _drop_connection(request: web.Request) -> web.Response:
    """Close the connection without answering: the client sees the server disconnect.

    The returned response is never written (aiohttp drops it on a closed transport)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Discord shows it later: the nonce only comes back on create."""
    return {k: v for k, v in message.items() if k != "nonce"}


class FakeDiscord:
    """One guild with one text channel, one bot user, and an aiohttp server pretending to be Discord.

    ``latency`` (seconds, default 0) delays every REST answer; the request is recorded and
    takes effect on arrival, only the answer is late. ``nonce_window`` (seconds, default 300)
    is how long a nonce sent with ``enforce_nonce`` makes Discord return the message it
    already created instead of a new one.
    """

    def __init__(self) -> None:
        self.application_id = 1_150_000_000_000_000_001
        self.bot_user_id = 1_150_000_000_000_000_002
        self.guild_id = 1_150_000_000_000_000_003
        self.channel_id = 1_150_000_000_000_000_004
        self.owner_user_id = 1_150_000_000_000_000_005
        self.bot_role_id = 1_150_000_000_000_000_006
        self.api_base = ""
        self.gateway_url = ""
        self.base_url = ""

        self.requests: list[Req] = []
        self.attachment_reads: list[int] = []  # ids of files read back from the "CDN"
        self.registered_commands: dict[Any, list[dict[str, Any]]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.interaction_responses: list[dict[str, Any]] = []
        self.followups: list[dict[str, Any]] = []
        self.scheduled_events: list[dict[str, Any]] = []
        self.guild_events = GuildEvents(self)  # its routes, rules and interest events
        self.attachments: dict[int, FakeFile] = {}
        self.gateway_frames: list[dict[str, Any]] = []  # every frame the client sent, in order
        self.identify_payloads: list[dict[str, Any]] = []
        self.identify_times: list[float] = []  # time.time() of each IDENTIFY's arrival
        self.resume_payloads: list[dict[str, Any]] = []
        self.roles: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.dm_channels: dict[int, dict[str, Any]] = {}  # the bot's DMs, by channel id
        self.threads: dict[int, dict[str, Any]] = {}  # threads on messages, by id (the message's)
        self.threads_allowed = True  # False: the bot lacks Create Public Threads
        self.closed_dms: set[int] = set()  # users who do not accept DMs from the bot

        self.latency: float = 0.0
        self.nonce_window: float = 300.0

        self._failures: list[_Failure] = []
        self._outage: _Outage | None = None
        self._hangs: list[_Rule] = []
        self._lost_answers: list[_Rule] = []
        self._holds = Holds()  # calls held unanswered now
        self._revoked = False
        # (channel id, nonce) -> (message id, time.monotonic() it was created)
        self._nonces: dict[tuple[str, str], tuple[int, float]] = {}
        self._interactions: dict[str, _Interaction] = {}  # by token
        self._responses_by_interaction: dict[str, dict[str, Any]] = {}
        self._command_ids: dict[tuple[Any, str], int] = {}
        self._snowflake_last = 0
        self._token_counter = itertools.count(1)
        self._routes: list[tuple[str, re.Pattern[str], JsonHandler]] = []

        self._changed: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._ws: web.WebSocketResponse | None = None  # the newest socket
        self._all_ws: set[web.WebSocketResponse] = set()
        self._ws_lock: asyncio.Lock | None = None
        # One per shard connected (tests/fakes/discord_gateway.py), each replayed on RESUME.
        self._sessions = Sessions()
        self._resumes = 0

        self.roles[self.guild_id] = self._role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        bot_role = self._role(self.bot_role_id, "Fake Bot", BOT_PERMISSIONS, 1)
        bot_role["managed"] = True
        bot_role["tags"] = {"bot_id": str(self.bot_user_id)}
        self.roles[self.bot_role_id] = bot_role
        self.channels[self.channel_id] = self._text_channel(self.channel_id, "general", 0)
        self._add_routes()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeDiscord:
        """Serve REST and the gateway from one loopback port chosen by the OS."""
        self._changed = asyncio.Condition()
        self._ws_lock = asyncio.Lock()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_get("/attachments/{aid}/{filename}", self._attachment)
        app.router.add_route("*", "/{tail:.*}", self._rest)
        # A short shutdown timeout: close() must not wait on requests slept in by ``latency``.
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_base = f"{self.base_url}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self

    async def close(self) -> None:
        """Drop every websocket and stop the server.

        Requests held by ``hang`` are not processed: their connections are dropped, so
        closing never waits on them. A request still sleeping out ``latency`` gets at most a
        second before it is cancelled."""
        self._holds.close()
        for ws in list(self._all_ws):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001), 1.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ waiting

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Wait until predicate() is truthy; the condition is notified on every state change."""
        assert self._changed is not None, "call start() first"
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                seen = [f"{r.method} {r.path} -> {r.status}" for r in self.requests[-15:]]
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}; last requests: {seen}"
                ) from None
        return predicate()

    def requests_to(self, method: str, path_glob: str) -> list[Req]:
        """Requests whose method matches and whose path matches the glob (fnmatch: '*' also spans '/')."""
        return [
            r
            for r in self.requests
            if r.method == method.upper() and fnmatch.fnmatchcase(r.path, path_glob)
        ]

    async def wait_for_request(
        self, method: str, path_glob: str, count: int = 1, timeout: float = 5.0
    ) -> list[Req]:
        """Wait until at least ``count`` matching requests have been answered (or processed
        with their answer lost); returns every matching request, pending ones included."""

        def enough() -> list[Req] | None:
            found = self.requests_to(method, path_glob)
            return found if len([r for r in found if r.status]) >= count else None

        return await self._wait(enough, timeout, f"{count} x {method} {path_glob}")

    @property
    def _ready(self) -> bool:
        return any(session.ready for session in self._sessions.current)

    @property
    def connections(self) -> int:
        """Gateway sessions opened (IDENTIFY answered with READY), in all."""
        return self._sessions.opened

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` gateway sessions have been opened in all."""
        await self._wait(lambda: self.connections >= count, timeout, f"{count} gateway session(s)")

    def shards_identified(self) -> list[list[int] | None]:
        """The ``shard`` of every IDENTIFY, in order (None: the client sent none)."""
        return [payload.get("shard") for payload in self.identify_payloads]

    async def wait_ready(self, timeout: float = 5.0, guild_id: int | None = None) -> None:
        """Wait until the session that gets a server's events (default: the fake's own
        guild) was sent READY and its GUILD_CREATEs."""
        await self._wait_session(guild_id or self.guild_id, timeout)

    async def _wait_session(self, guild_id: int | None, timeout: float = 5.0) -> None:
        await self._wait(lambda: self._sessions.ready_for(guild_id), timeout, "IDENTIFY/READY")

    async def wait_interaction_response(
        self, interaction_id: str, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Wait for the callback body the bot POSTed for this interaction."""
        key = str(interaction_id)
        return await self._wait(
            lambda: self._responses_by_interaction.get(key),
            timeout,
            f"callback for interaction {key}",
        )

    def fail_next(
        self,
        method: str,
        path_glob: str,
        status: int = 429,
        times: int = 1,
        retry_after: float = 0.0,
    ) -> None:
        """Answer the next ``times`` matching requests with an error instead of handling them."""
        self._failures.append(_Failure(method.upper(), path_glob, status, times, retry_after))

    def outage(
        self,
        status: int = 500,
        path_glob: str = "*",
        method: str | None = None,
        retry_after: float = 1.0,
    ) -> None:
        """Fail every matching REST request until ``recover()``; nothing is processed meanwhile.

        ``method=None`` matches every method. A 429 is answered as ``fail_next`` answers one
        (``Via`` header, JSON ``retry_after``, bucket headers)."""
        self._outage = _Outage(status, path_glob, method.upper() if method else None, retry_after)

    def recover(self) -> None:
        """End the outage started by ``outage()``."""
        self._outage = None

    def lose_answer(self, method: str, path_glob: str, times: int = 1) -> None:
        """Process the next ``times`` matching requests (the message is created and stored),
        then drop the connection instead of answering: the client sees the server disconnect.
        Requests refused before processing (outage, ``fail_next``, revoked token) do not use
        one up."""
        self._lost_answers.append(_Rule(method.upper(), path_glob, times))

    def hang(self, method: str, path_glob: str, times: int = 1) -> None:
        """Hold the next ``times`` matching requests unanswered and unprocessed until
        ``release_hangs()``; ``close()`` drops them."""
        self._hangs.append(_Rule(method.upper(), path_glob, times))

    def release_hangs(self) -> None:
        """Let every held request go on (processed and answered now, even if its client has
        given up) and disarm the ``hang`` rules not used yet."""
        self._hangs.clear()
        self._holds.end(released=True)

    @property
    def hung(self) -> int:
        """How many requests are held by ``hang`` right now."""
        return len(self._holds)

    async def wait_hung(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` requests are held by ``hang`` at once."""
        await self._wait(lambda: self.hung >= count, timeout, f"{count} held request(s)")

    def revoke(self) -> None:
        """Revoke the bot token: every REST request answers 401 and a gateway IDENTIFY (or
        RESUME) is closed with 4004 "Authentication failed", until ``unrevoke()``."""
        self._revoked = True

    def unrevoke(self) -> None:
        """Accept the bot token again."""
        self._revoked = False

    async def wait_until(
        self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "a condition"
    ) -> Any:
        """Wait until ``predicate()`` is truthy (checked on every state change); return it."""
        return await self._wait(predicate, timeout, what)

    def posts(self, channel_id: int) -> list[dict[str, Any]]:
        """The bot's messages in ``channel_id`` as stored, oldest first (ephemeral ones left
        out); each carries the ``nonce`` it was created with, if any."""
        bot = str(self.bot_user_id)
        return sorted(
            (
                m
                for m in self.messages.values()
                if m["channel_id"] == str(channel_id)
                and m["author"]["id"] == bot
                and not (m.get("flags") or 0) & 64
            ),
            key=lambda m: int(m["id"]),
        )

    def add_messages(
        self, channel_id: int, n: int, author_id: int | None = None, content: str = "chatter"
    ) -> list[dict[str, Any]]:
        """Store ``n`` messages from a member (user 1001 unless ``author_id``), as if people
        were talking in the channel; ids come from ``snowflake()``, so they are newer than
        everything before. Returns them oldest first."""
        uid = 1001 if author_id is None else author_id
        author = self.bot_user() if uid == self.bot_user_id else self.user(uid)
        added = []
        for _ in range(n):
            message = self._message(channel_id, {"content": content})
            message["author"] = author
            self.messages[int(message["id"])] = message
            added.append(message)
        return added

    def react(self, message_id: int, emoji: str, count: int = 1, me: bool = False) -> None:
        """``count`` more members react with ``emoji`` (``me``: the bot among them) to a
        stored message, shown in its ``reactions`` as Discord returns them."""
        reactions = self.messages[message_id].setdefault("reactions", [])
        reaction = next((r for r in reactions if r["emoji"]["name"] == emoji), None)
        if reaction is None:
            reaction = {"count": 0, "count_details": {"burst": 0, "normal": 0}, "me": False,
                        "me_burst": False, "burst_colors": [], "emoji": {"id": None, "name": emoji}}  # fmt: skip
            reactions.append(reaction)
        reaction["count"] += count
        reaction["count_details"]["normal"] += count
        reaction["me"] = reaction["me"] or me

    def reply_in_thread(self, message_id: int, count: int = 1) -> dict[str, Any]:
        """``count`` more messages in the public thread started from a stored message (the
        thread's id is the message's, as Discord makes it); the message carries the thread
        with its ``message_count``, as a GET of it shows."""
        message = self.messages[message_id]
        thread = message.get("thread") or self._open_thread(message, "replies", 1440)
        thread["message_count"] += count
        thread["total_message_sent"] += count
        return thread

    def thread_of(self, message_id: int) -> dict[str, Any] | None:
        """The thread started from message ``message_id``, if one was."""
        return self.threads.get(message_id)

    def _open_thread(self, message: dict[str, Any], name: str, archive: int) -> dict[str, Any]:
        """A public thread on a stored message, with the message's id; the message shows it."""
        thread = {
            "id": message["id"], "guild_id": str(self.guild_id), "type": 11,
            "parent_id": message["channel_id"], "owner_id": str(self.bot_user_id),
            "name": name, "last_message_id": None, "rate_limit_per_user": 0,
            "message_count": 0, "member_count": 1, "total_message_sent": 0, "flags": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": archive,
                                "archive_timestamp": _now_iso(), "locked": False},
        }  # fmt: skip
        message["thread"] = thread
        self.threads[int(message["id"])] = thread
        return thread

    @property
    def intents(self) -> int | None:
        """Intents of the latest IDENTIFY."""
        return self.identify_payloads[-1].get("intents") if self.identify_payloads else None

    # ------------------------------------------------------------------ ids and shapes

    def snowflake(self) -> int:
        """A fresh, increasing id with a realistic timestamp part."""
        self._snowflake_last = max(self.snowflake_at(time.time()), self._snowflake_last + 1)
        return self._snowflake_last

    def snowflake_at(self, unix_seconds: float) -> int:
        """The lowest id Discord could give at ``unix_seconds``, e.g. for ``after=`` bounds."""
        return (int(unix_seconds * 1000) - DISCORD_EPOCH_MS) << 22

    def _role(self, role_id: int, name: str, permissions: str, position: int) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": permissions,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def add_role(self, name: str, permissions: str = "0") -> dict[str, Any]:
        """Add a guild role (seen in GUILD_CREATE sent afterwards and in GET /guilds/{id}/roles)."""
        role = self._role(self.snowflake(), name, permissions, len(self.roles))
        self.roles[int(role["id"])] = role
        return role

    def _text_channel(self, channel_id: int, name: str, position: int) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }

    def bot_user(self) -> dict[str, Any]:
        """The bot's user object as GET /users/@me returns it."""
        return {
            "id": str(self.bot_user_id),
            "username": "fake-bot",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "public_flags": 0,
            "flags": 0,
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
        }

    def user(self, user_id: int) -> dict[str, Any]:
        """A human user object."""
        return {
            "id": str(user_id),
            "username": f"user{user_id}",
            "discriminator": "0",
            "global_name": f"User {user_id}",
            "avatar": None,
            "public_flags": 0,
        }

    def member(
        self, user_id: int, roles: list[str] | None = None, permissions: str | None = None
    ) -> dict[str, Any]:
        """A guild member; ``permissions`` is only present in interaction payloads, as on Discord."""
        data: dict[str, Any] = {
            "user": self.bot_user() if user_id == self.bot_user_id else self.user(user_id),
            "roles": list(roles or []),
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            data["permissions"] = permissions
        return data

    def guild_payload(self) -> dict[str, Any]:
        """The full GUILD_CREATE body."""
        return {
            "id": str(self.guild_id),
            "name": "Fake Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_user_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "channels": [c for c in self.channels.values() if c["guild_id"] == str(self.guild_id)],
            "threads": [],
            "members": [self.member(self.bot_user_id, roles=[str(self.bot_role_id)])],
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": list(self.scheduled_events),
            "soundboard_sounds": [],
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "lazy": True,
        }

    def application_payload(self) -> dict[str, Any]:
        """The body of GET /oauth2/applications/@me."""
        return {
            "id": str(self.application_id),
            "name": "Fake Bot",
            "description": "",
            "icon": None,
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.user(self.owner_user_id),
            "team": None,
            "summary": "",
            "verify_key": "0" * 64,
            "flags": 0,
            "tags": [],
            "interactions_endpoint_url": None,
            "bot": self.bot_user(),
        }

    # ------------------------------------------------------------------ interaction payloads

    def _new_interaction(
        self,
        type_: int,
        data: dict[str, Any],
        user_id: int,
        permissions: str,
        roles: list[str] | None,
    ) -> dict[str, Any]:
        token = f"fake-interaction-token-{next(self._token_counter)}"
        payload: dict[str, Any] = {
            "id": str(self.snowflake()),
            "application_id": str(self.application_id),
            "type": type_,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(self.channel_id),
            "channel": dict(self.channels[self.channel_id]),
            "member": self.member(user_id, roles=roles, permissions=permissions),
            "token": token,
            "version": 1,
            "app_permissions": BOT_PERMISSIONS,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        self._interactions[token] = _Interaction(payload)
        return payload

    def slash_payload(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        user_id: int = 1001,
        permissions: str = "0",
        roles: list[str] | None = None,
        *,
        guild_command: bool | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE body for a slash command.

        ``guild_command=None`` marks it as a guild command only when it was synced to the guild
        and not globally, because discord.py looks guild commands up by ``data.guild_id``.
        """
        if guild_command is None:
            in_guild = any(
                c["name"] == name for c in self.registered_commands.get(self.guild_id, [])
            )
            in_global = any(c["name"] == name for c in self.registered_commands.get("global", []))
            guild_command = in_guild and not in_global
        scope: Any = self.guild_id if guild_command else "global"
        data: dict[str, Any] = {"id": str(self._command_id(scope, name)), "name": name, "type": 1}
        if options:
            data["options"] = options
        if guild_command:
            data["guild_id"] = str(self.guild_id)
        return self._new_interaction(2, data, user_id, permissions, roles)

    def component_payload(
        self,
        custom_id: str,
        message_id: int,
        component_type: int = 2,
        values: list[str] | None = None,
        user_id: int = 1001,
        permissions: str = "0",
        in_dm: bool = False,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE body for a click (type 2) or select (types 3, 5-8) on a message;
        `in_dm`: on a message in the bot's DM with the member, which carries no guild."""
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values or [])
        payload = self._new_interaction(3, data, user_id, permissions, None)
        if in_dm:
            self._from_direct_messages(payload, user_id)
        message = self.messages.get(int(message_id))
        if message is None:
            message = self._message(self.channel_id, {"content": ""}, message_id=int(message_id))
        payload["message"] = message
        self._interactions[payload["token"]].original_message_id = int(message_id)
        return payload

    def _from_direct_messages(self, payload: dict[str, Any], user_id: int) -> None:
        """As Discord sends an interaction from a DM: no guild, a user not a member."""
        channel = self.dm_channel_of(user_id)
        assert channel is not None, f"the bot has no DM with {user_id} yet"
        for key in ("guild_id", "guild", "member", "guild_locale"):
            payload.pop(key, None)
        payload.update(user=self.user(user_id), channel_id=channel["id"], channel=dict(channel))
        payload["context"] = 1  # BOT_DM

    def modal_submit_payload(
        self,
        custom_id: str,
        fields: dict[str, str],
        user_id: int = 1001,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE body for a modal submit: one action row per text input. A modal
        opened from a button carries that button's message (`message_id`), as Discord's do."""
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in fields.items()
        ]
        payload = self._new_interaction(
            5, {"custom_id": custom_id, "components": rows}, user_id, "0", None
        )
        if message_id is not None:
            payload["message"] = self.messages[int(message_id)]
            self._interactions[payload["token"]].original_message_id = int(message_id)
        return payload

    def last_modal(self) -> dict[str, Any]:
        """The ``data`` of the latest type-9 (modal) callback: custom_id, title, components."""
        for body in reversed(self.interaction_responses):
            if body.get("type") == 9:
                return body["data"]
        raise LookupError("no modal was sent")

    # ------------------------------------------------------------------ gateway

    async def _send_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        assert self._ws_lock is not None
        async with self._ws_lock:
            # A socket that is closing drops the frame; dispatches are replayed on RESUME anyway.
            with contextlib.suppress(ConnectionError, RuntimeError):
                if not ws.closed:
                    await ws.send_str(json.dumps(frame))

    async def dispatch(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send any DISPATCH event on the session whose shard holds its server (shard 0 for
        none); if its socket is down it is replayed when the client resumes. With no such
        session (nobody identified for that shard) it goes nowhere, as on Discord."""
        session = self._sessions.holding(guild_of(event, data))
        if session is None:
            return {"op": 0, "t": event, "s": None, "d": data}
        return await self._send_on(session, event, data)

    async def _send_on(self, session: Session, event: str, data: dict[str, Any]) -> dict[str, Any]:
        frame = session.frame(event, data)
        if session.live:
            assert session.ws is not None
            await self._send_frame(session.ws, frame)
        return frame

    async def send_interaction(self, data: dict[str, Any]) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE over the gateway; id and token are filled in if missing."""
        payload = dict(data)
        payload.setdefault("id", str(self.snowflake()))
        payload.setdefault("token", f"fake-interaction-token-{next(self._token_counter)}")
        self._interactions.setdefault(payload["token"], _Interaction(payload))
        await self._wait_session(guild_of("INTERACTION_CREATE", payload))
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def restart_gateway(self, *, wait: bool = True, timeout: float = 5.0) -> None:
        """Close the live websocket as Discord does on a restart; the client resumes its session."""
        ws = self._ws
        if ws is None:
            return
        resumes, identifies = self._resumes, len(self.identify_payloads)
        await ws.close(code=4000, message=b"fake restart")
        if wait:

            def back() -> bool:
                reidentified = len(self.identify_payloads) > identifies and self._ready
                return self._resumes > resumes or reidentified

            await self._wait(back, timeout, "the client to resume or identify again")

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._all_ws.add(ws)
        self._ws = ws
        try:
            await self._send_frame(
                ws,
                {
                    "op": 10,
                    "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS},
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.gateway_frames.append(frame)
                await self._on_frame(ws, frame)
                await self._notify()
        finally:
            self._all_ws.discard(ws)
            if self._ws is ws:
                self._ws = None
            await self._notify()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data = frame.get("d")
        if op == 1:
            await self._send_frame(ws, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            self.identify_times.append(time.time())
            if self._revoked:
                self.identify_payloads.append(data)
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            await self._identify(ws, data)
        elif op == 6:
            if self._revoked:
                self.resume_payloads.append(data)
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            await self._resume(ws, data)
        elif op == 8:
            await self._send_member_chunk(ws, data)

    def guilds_at_identify(self) -> list[dict[str, Any]]:
        """The GUILD_CREATE of every server the bot is in, as a new session gets them."""
        return [self.guild_payload()]

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        """A new session for the shard asked for: READY names the servers of that shard
        (unavailable), then each one's GUILD_CREATE follows, as from Discord."""
        self.identify_payloads.append(data)
        session_id = f"fake-session-{self.snowflake()}"
        session = self._sessions.open(ws, data.get("shard"), session_id)
        guilds = [g for g in self.guilds_at_identify() if session.holds(int(g["id"]))]
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot_user(),
            "guilds": [{"id": g["id"], "unavailable": True} for g in guilds],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "session_type": "normal",
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "application": {"id": str(self.application_id), "flags": 0},
            "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_on(session, "READY", ready)
        for guild in guilds:
            await self._send_on(session, "GUILD_CREATE", guild)
        session.ready = True
        self._sessions.opened += 1

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        self.resume_payloads.append(data)
        session = self._sessions.by_id(data.get("session_id"))
        if session is None:
            await self._send_frame(ws, {"op": 9, "d": False, "s": None, "t": None})
            return
        session.ws = ws
        last_seen = data.get("seq") or 0
        for frame in session.sent:
            if frame["s"] > last_seen:
                await self._send_frame(ws, frame)
        self._resumes += 1
        await self._send_on(session, "RESUMED", {"_trace": ["fake-discord"]})

    async def _send_member_chunk(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        chunk = {
            "guild_id": str(self.guild_id),
            "members": [
                self.member(self.bot_user_id, roles=[str(self.bot_role_id)]),
                self.member(1001),
            ],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ REST plumbing

    def _route(self, method: str, pattern: str, handler: JsonHandler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    def _add_routes(self) -> None:
        r = self._route
        r("GET", "/users/@me", self._get_me)
        r("GET", "/users/{uid}", self._get_user)
        r("POST", "/users/@me/channels", self._open_dm)
        r("GET", "/oauth2/applications/@me", self._get_application)
        r("GET", "/applications/@me", self._get_application)
        r("GET", "/gateway", self._get_gateway)
        r("GET", "/gateway/bot", self._get_gateway_bot)
        r("PUT", "/applications/{app}/commands", self._put_commands)
        r("GET", "/applications/{app}/commands", self._get_commands)
        r("PUT", "/applications/{app}/guilds/{gid}/commands", self._put_commands)
        r("GET", "/applications/{app}/guilds/{gid}/commands", self._get_commands)
        r("GET", "/channels/{cid}", self._get_channel)
        r("GET", "/channels/{cid}/messages", self._history)
        r("POST", "/channels/{cid}/messages", self._create_message)
        r("GET", "/channels/{cid}/messages/{mid}", self._get_message)
        r("PATCH", "/channels/{cid}/messages/{mid}", self._edit_message)
        r("DELETE", "/channels/{cid}/messages/{mid}", self._delete_message)
        r("POST", "/channels/{cid}/messages/{mid}/threads", self._start_thread)
        r("PUT", "/channels/{cid}/messages/{mid}/reactions/{emoji}/@me", self._no_content)
        r("DELETE", "/channels/{cid}/messages/{mid}/reactions/{emoji}/@me", self._no_content)
        r("POST", "/interactions/{iid}/{token}/callback", self._interaction_callback)
        r("POST", "/webhooks/{app}/{token}", self._followup)
        r("GET", "/webhooks/{app}/{token}/messages/{mid}", self._get_webhook_message)
        r("PATCH", "/webhooks/{app}/{token}/messages/{mid}", self._edit_webhook_message)
        r("DELETE", "/webhooks/{app}/{token}/messages/{mid}", self._delete_webhook_message)
        r("GET", "/guilds/{gid}", self._get_guild)
        r("GET", "/guilds/{gid}/roles", self._get_roles)
        r("GET", "/guilds/{gid}/channels", self._get_channels)
        self.guild_events.add_routes()  # /guilds/{gid}/scheduled-events[/{id}]

    async def _read_body(self, request: web.Request) -> tuple[Any, list[FakeFile]]:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            body: Any = None
            files: list[FakeFile] = []
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                raw = await part.read()  # type: ignore[union-attr]
                name = part.name or ""  # type: ignore[union-attr]
                if name == "payload_json":
                    body = json.loads(raw)
                else:
                    files.append(
                        FakeFile(name, part.filename, part.headers.get("Content-Type"), bytes(raw))
                    )  # type: ignore[union-attr]
            return body, files
        raw_text = await request.text()
        if not raw_text:
            return None, []
        try:
            return json.loads(raw_text), []
        except ValueError:
            return raw_text, []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        path = request.path
        if path.startswith("/api/v10"):
            path = path[len("/api/v10") :] or "/"
        body, files = await self._read_body(request)
        req = Req(
            request.method,
            path,
            body,
            dict(request.headers),
            dict(request.query),
            files,
            at=arrived,
        )
        self.requests.append(req)
        if any(rule.take(req) for rule in self._hangs) and not await self._holds.hold(self._notify):
            await self._notify()
            return _drop_connection(request)  # the fake is closing; never processed
        processed = False
        try:
            response = self._refusal(req)
            if response is None:
                processed = True
                response = await self._handle(request, req)
        except Exception as exc:  # a bug in the fake must surface as a readable 500, not a hang
            response = _error(500, f"fake_discord error: {exc!r}")
        req.status = response.status
        req.lost = processed and any(rule.take(req) for rule in self._lost_answers)
        await self._notify()
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if req.lost:
            return _drop_connection(request)
        return response

    def _refusal(self, req: Req) -> web.Response | None:
        """The answer for a request refused before it is processed: outage, revoked token,
        ``fail_next`` (checked in that order); None lets it through."""
        if self._outage is not None and self._outage.covers(req):
            return self._failure_response(self._outage.status, self._outage.retry_after, "outage")
        if self._revoked:
            return _error(401, "401: Unauthorized")
        return self._injected_failure(req)

    def _injected_failure(self, req: Req) -> web.Response | None:
        for failure in self._failures:
            if (
                failure.times > 0
                and failure.method == req.method
                and fnmatch.fnmatchcase(req.path, failure.path_glob)
            ):
                failure.times -= 1
                return self._failure_response(
                    failure.status, failure.retry_after, failure.path_glob
                )
        return None

    def _failure_response(self, status: int, retry_after: float, bucket: str) -> web.Response:
        if status == 429:
            return _rate_limited(retry_after, bucket)
        if status >= 500:
            return _error(status, f"{status}: Server Error")
        return _error(status, f"{status}: injected failure", code=50001 if status == 403 else 0)

    async def _handle(self, request: web.Request, req: Req) -> web.StreamResponse:
        for method, regex, handler in self._routes:
            if method != req.method:
                continue
            match = regex.match(req.path)
            if match:
                return await handler(request, req, match.groupdict())
        return _error(404, "404: Not Found")

    async def _no_content(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        return web.Response(status=204)

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        self.attachment_reads.append(int(request.match_info["aid"]))
        stored = self.attachments.get(int(request.match_info["aid"]))
        if stored is None:
            return _error(404, "404: Not Found")
        return web.Response(
            body=stored.data, content_type=stored.content_type or "application/octet-stream"
        )

    # ------------------------------------------------------------------ REST handlers

    async def _get_me(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bot "):
            return _error(401, "401: Unauthorized")
        return _json_response(self.bot_user())

    async def _get_user(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        uid = int(p["uid"])
        return _json_response(self.bot_user() if uid == self.bot_user_id else self.user(uid))

    async def _get_application(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        return _json_response(self.application_payload())

    async def _get_gateway(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        return _json_response({"url": self.gateway_url})

    async def _get_gateway_bot(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    def _command_id(self, scope: Any, name: str) -> int:
        key = (scope, name)
        if key not in self._command_ids:
            self._command_ids[key] = self.snowflake()
        return self._command_ids[key]

    async def _put_commands(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if int(p["app"]) != self.application_id:
            return _error(404, "Unknown Application", 10002)
        scope: Any = int(p["gid"]) if "gid" in p else "global"
        stored = []
        for cmd in req.json or []:
            full = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                **cmd,
                "id": str(self._command_id(scope, cmd["name"])),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
            }
            if scope != "global":
                full["guild_id"] = str(scope)
            stored.append(full)
        self.registered_commands[scope] = stored
        return _json_response(stored)

    async def _get_commands(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        scope: Any = int(p["gid"]) if "gid" in p else "global"
        return _json_response(self.registered_commands.get(scope, []))

    def _channel_or_404(self, cid: str) -> dict[str, Any] | None:
        if not cid.isdigit():
            return None
        found = self.channels.get(int(cid)) or self.dm_channels.get(int(cid))
        return found or self.threads.get(int(cid))

    def dm_channel_of(self, user_id: int) -> dict[str, Any] | None:
        """The bot's DM channel with `user_id`, once opened."""
        return next(
            (c for c in self.dm_channels.values() if int(c["recipients"][0]["id"]) == user_id),
            None,
        )

    async def _open_dm(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        """Create or get the DM channel with a user; like Discord, opening always works and
        a user who does not accept DMs is refused only when a message is sent."""
        recipient = str((req.json or {}).get("recipient_id", ""))
        if not recipient.isdigit():
            return _error(400, "Invalid Form Body", 50035)
        channel = self.dm_channel_of(int(recipient))
        if channel is None:
            cid = self.snowflake()
            channel = {
                "id": str(cid),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.user(int(recipient))],
            }
            self.dm_channels[cid] = channel
        return _json_response(channel)

    async def _get_channel(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        channel = self._channel_or_404(p["cid"])
        if channel is None:
            return _error(404, "Unknown Channel", 10003)
        return _json_response(channel)

    async def _history(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        """GET /channels/{cid}/messages: at most ``limit`` (1-100, default 50), newest first.

        ``before``: the newest messages older than that id. ``after``: the ``limit`` messages
        right after that id (still newest first). ``around``: ``limit // 2`` older messages and
        the rest from that id on (the message itself included), which is how Spacebar, a
        Discord re-implementation, reads Discord's undocumented split. Discord documents the
        three as mutually exclusive; given several, ``around`` wins, then ``after``.
        Ephemeral messages are never in history, and nonces are not shown."""
        if self._channel_or_404(p["cid"]) is None:
            return _error(404, "Unknown Channel", 10003)
        errors: dict[str, Any] = {}
        anchors: dict[str, int] = {}
        for name in ("around", "after", "before"):
            if name in req.query:
                if req.query[name].isdigit():
                    anchors[name] = int(req.query[name])
                else:
                    errors[name] = _field_error("NUMBER_TYPE_COERCE", "Value is not snowflake.")
        raw_limit = req.query.get("limit", "50")
        limit = int(raw_limit) if raw_limit.lstrip("-").isdigit() else None
        if limit is None:
            errors["limit"] = _field_error("NUMBER_TYPE_COERCE", "Value is not int.")
        elif limit < 1:
            errors["limit"] = _field_error(
                "NUMBER_TYPE_MIN", "int value should be greater than or equal to 1."
            )
        elif limit > 100:
            errors["limit"] = _field_error(
                "NUMBER_TYPE_MAX", "int value should be less than or equal to 100."
            )
        if errors or limit is None:
            return _invalid_form(errors)
        newest_first = sorted(
            (
                m
                for m in self.messages.values()
                if m["channel_id"] == p["cid"] and not (m.get("flags") or 0) & 64
            ),
            key=lambda m: int(m["id"]),
            reverse=True,
        )
        if "around" in anchors:
            older = [m for m in newest_first if int(m["id"]) < anchors["around"]]
            rest = [m for m in newest_first if int(m["id"]) >= anchors["around"]]
            page = rest[-(limit - limit // 2) :] + older[: limit // 2]
        elif "after" in anchors:
            page = [m for m in newest_first if int(m["id"]) > anchors["after"]][-limit:]
        elif "before" in anchors:
            page = [m for m in newest_first if int(m["id"]) < anchors["before"]][:limit]
        else:
            page = newest_first[:limit]
        return _json_response([_public(m) for m in page])

    def _message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[FakeFile] | None = None,
        *,
        message_id: int | None = None,
        webhook: bool = False,
        message_type: int = 0,
    ) -> dict[str, Any]:
        mid = message_id if message_id is not None else self.snowflake()
        message: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "type": 19 if body.get("message_reference") and message_type == 0 else message_type,
            "author": self.bot_user(),
            "content": "",
            "embeds": [],
            "components": [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "flags": 0,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
        }
        if webhook:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
        self._apply_edit(message, body, files or [])
        return message

    def _apply_edit(
        self, message: dict[str, Any], body: dict[str, Any], files: list[FakeFile]
    ) -> None:
        for key in ("content", "embeds", "components", "tts", "message_reference"):
            if key in body:
                message[key] = (
                    body[key]
                    if body[key] is not None
                    else ([] if key in ("embeds", "components") else "")
                )
        if "flags" in body and body["flags"] is not None:
            message["flags"] = body["flags"]
        if body.get("poll"):
            message["poll"] = self._poll(body["poll"])
        if "attachments" in body or files:
            message["attachments"] = self._attachments(message, body.get("attachments"), files)

    def _poll(self, poll: dict[str, Any]) -> dict[str, Any]:
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=float(poll.get("duration", 24)))
        return {
            "question": poll.get("question", {}),
            "answers": [
                {"answer_id": i + 1, **answer} for i, answer in enumerate(poll.get("answers", []))
            ],
            "expiry": expiry.isoformat(),
            "allow_multiselect": poll.get("allow_multiselect", False),
            "layout_type": poll.get("layout_type", 1),
            "results": {"is_finalized": False, "answer_counts": []},
        }

    def _attachments(
        self, message: dict[str, Any], wanted: list[dict[str, Any]] | None, files: list[FakeFile]
    ) -> list[dict[str, Any]]:
        existing = {a["id"]: a for a in message.get("attachments", [])}
        by_field = {f.field: f for f in files}
        result: list[dict[str, Any]] = []
        listed = wanted if wanted is not None else [{"id": i} for i in range(len(files))]
        for entry in listed:
            key = str(entry.get("id"))
            if key in existing:
                result.append(existing[key])
                continue
            upload = by_field.get(f"files[{entry.get('id')}]")
            if upload is None:
                continue
            aid = self.snowflake()
            filename = entry.get("filename") or upload.filename or f"file{aid}"
            self.attachments[aid] = upload
            url = f"{self.base_url}/attachments/{aid}/{filename}"
            attachment = {
                "id": str(aid),
                "filename": filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": upload.content_type,
            }
            if entry.get("description"):
                attachment["description"] = entry["description"]
            result.append(attachment)
        return result

    async def _create_message(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        channel = self._channel_or_404(p["cid"])
        if channel is None:
            return _error(404, "Unknown Channel", 10003)
        if channel.get("type") == 1 and int(channel["recipients"][0]["id"]) in self.closed_dms:
            return _error(403, "Cannot send messages to this user", 50007)
        body = req.json or {}
        if not (
            body.get("content")
            or body.get("embeds")
            or body.get("components")
            or body.get("poll")
            or req.files
            or body.get("sticker_ids")
        ):
            return _error(400, "Cannot send an empty message", 50006)
        nonce = body.get("nonce")
        key = (p["cid"], str(nonce)) if nonce is not None else None
        if key is not None and body.get("enforce_nonce") is True:
            # Discord: the same nonce from the same author within a few minutes gets the
            # message already created back, not a second one.
            seen = self._nonces.get(key)
            if (
                seen is not None
                and time.monotonic() - seen[1] < self.nonce_window
                and seen[0] in self.messages
            ):
                return _json_response(self.messages[seen[0]])
        message = self._message(int(p["cid"]), body, req.files)
        if nonce is not None:
            message["nonce"] = nonce  # echoed on create, as Discord does
        self.messages[int(message["id"])] = message
        if channel.get("type") == 11:  # in a thread: its count, as its starter message shows
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
            channel["last_message_id"] = message["id"]
        if key is not None:
            self._nonces[key] = (int(message["id"]), time.monotonic())
        return _json_response(message)

    def _message_in(self, cid: str, mid: str) -> dict[str, Any] | None:
        message = self.messages.get(int(mid)) if mid.isdigit() else None
        if message is None or message["channel_id"] != cid:
            return None
        return message

    async def _get_message(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        message = self._message_in(p["cid"], p["mid"])
        return (
            _json_response(_public(message)) if message else _error(404, "Unknown Message", 10008)
        )

    async def _edit_message(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        message = self._message_in(p["cid"], p["mid"])
        if message is None:
            return _error(404, "Unknown Message", 10008)
        self._apply_edit(message, req.json or {}, req.files)
        message["edited_timestamp"] = _now_iso()
        return _json_response(_public(message))

    async def _delete_message(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if self._message_in(p["cid"], p["mid"]) is None:
            return _error(404, "Unknown Message", 10008)
        del self.messages[int(p["mid"])]
        return web.Response(status=204)

    async def _start_thread(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        """POST /channels/{cid}/messages/{mid}/threads: a public thread on a message of a
        guild text channel, with the message's id, announced by THREAD_CREATE."""
        channel = self._channel_or_404(p["cid"])
        if channel is None:
            return _error(404, "Unknown Channel", 10003)
        if channel.get("type") != 0:
            return _error(400, "Cannot execute action on this channel type", 50024)
        message = self._message_in(p["cid"], p["mid"])
        if message is None:
            return _error(404, "Unknown Message", 10008)
        if not self.threads_allowed:
            return _error(403, "Missing Permissions", 50013)
        body = req.json or {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            wrong = _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            return _invalid_form({"name": wrong})
        archive = body.get("auto_archive_duration") or channel["default_auto_archive_duration"]
        if archive not in (60, 1440, 4320, 10080):
            wrong = _field_error("BASE_TYPE_CHOICES", "Value must be one of 60, 1440, 4320, 10080.")
            return _invalid_form({"auto_archive_duration": wrong})
        if int(p["mid"]) in self.threads:
            return _error(400, "A thread has already been created for this message", 160004)
        thread = self._open_thread(message, name, archive)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json_response(thread)

    async def _interaction_callback(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        body = req.json or {}
        state = self._interactions.get(p["token"])
        if state is None:
            state = self._interactions[p["token"]] = _Interaction(
                {"id": p["iid"], "type": 2, "token": p["token"]}
            )
        if state.responded:
            return _error(400, "Interaction has already been acknowledged.", 40060)
        state.responded = True
        self.interaction_responses.append(body)
        self._responses_by_interaction[p["iid"]] = body

        cb_type = body.get("type")
        data = body.get("data") or {}
        channel_id = int(state.payload.get("channel_id", self.channel_id))
        interaction_info: dict[str, Any] = {"id": p["iid"], "type": state.payload.get("type", 2)}
        resource: dict[str, Any] = {"type": cb_type}
        message: dict[str, Any] | None = None
        if cb_type in (4, 5):
            msg_body = dict(data)
            if cb_type == 5:
                msg_body = {"content": "", "flags": (data.get("flags") or 0) | 128}
            msg_type = 20 if state.payload.get("type") == 2 else 0
            message = self._message(
                channel_id, msg_body, req.files, webhook=True, message_type=msg_type
            )
            message["interaction_metadata"] = self._interaction_metadata(state.payload)
            self.messages[int(message["id"])] = message
            state.original_message_id = int(message["id"])
            interaction_info["response_message_loading"] = cb_type == 5
            interaction_info["response_message_ephemeral"] = bool((message.get("flags") or 0) & 64)
        elif cb_type in (6, 7):
            mid = state.original_message_id
            message = self.messages.get(mid) if mid is not None else None
            if message is not None and cb_type == 7:
                self._apply_edit(message, data, req.files)
                message["edited_timestamp"] = _now_iso()
        if message is not None:
            interaction_info["response_message_id"] = message["id"]
            resource["message"] = message
        if req.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        return _json_response({"interaction": interaction_info, "resource": resource})

    def _interaction_metadata(self, interaction: dict[str, Any]) -> dict[str, Any]:
        member = interaction.get("member") or {}
        user = member.get("user") or interaction.get("user") or self.user(1001)
        meta: dict[str, Any] = {
            "id": str(interaction["id"]),
            "type": interaction.get("type", 2),
            "user": user,
            "authorizing_integration_owners": interaction.get("authorizing_integration_owners", {}),
        }
        if interaction.get("type") == 2 and isinstance(interaction.get("data"), dict):
            meta["name"] = interaction["data"].get("name")
        return meta

    def _check_webhook(self, p: dict[str, str]) -> web.Response | None:
        if p["app"] != str(self.application_id):
            return _error(404, "Unknown Webhook", 10015)
        return None

    async def _followup(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if (bad := self._check_webhook(p)) is not None:
            return bad
        body = req.json or {}
        self.followups.append(body)
        state = self._interactions.get(p["token"])
        channel_id = (
            int(state.payload.get("channel_id", self.channel_id)) if state else self.channel_id
        )
        message = self._message(channel_id, body, req.files, webhook=True)
        self.messages[int(message["id"])] = message
        if req.query.get("wait") in ("1", "true", "True"):
            return _json_response(message)
        return web.Response(status=204)

    def _webhook_message(self, p: dict[str, str]) -> dict[str, Any] | None:
        if p["mid"] == "@original":
            state = self._interactions.get(p["token"])
            mid = state.original_message_id if state else None
        else:
            mid = int(p["mid"]) if p["mid"].isdigit() else None
        return self.messages.get(mid) if mid is not None else None

    async def _get_webhook_message(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if (bad := self._check_webhook(p)) is not None:
            return bad
        message = self._webhook_message(p)
        return _json_response(message) if message else _error(404, "Unknown Message", 10008)

    async def _edit_webhook_message(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if (bad := self._check_webhook(p)) is not None:
            return bad
        message = self._webhook_message(p)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        body = req.json or {}
        self.followups.append(body)
        self._apply_edit(message, body, req.files)
        message["flags"] = (message.get("flags") or 0) & ~128  # no longer "thinking"
        message["edited_timestamp"] = _now_iso()
        return _json_response(message)

    async def _delete_webhook_message(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if (bad := self._check_webhook(p)) is not None:
            return bad
        message = self._webhook_message(p)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        del self.messages[int(message["id"])]
        return web.Response(status=204)

    def _is_our_guild(self, gid: str) -> bool:
        return gid == str(self.guild_id)

    async def _get_guild(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if not self._is_our_guild(p["gid"]):
            return _error(404, "Unknown Guild", 10004)
        guild = self.guild_payload()
        for key in (
            "channels",
            "members",
            "threads",
            "voice_states",
            "presences",
            "joined_at",
            "large",
            "member_count",
        ):
            guild.pop(key, None)
        return _json_response(guild)

    async def _get_roles(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if not self._is_our_guild(p["gid"]):
            return _error(404, "Unknown Guild", 10004)
        return _json_response(list(self.roles.values()))

    async def _get_channels(
        self, request: web.Request, req: Req, p: dict[str, str]
    ) -> web.StreamResponse:
        if not self._is_our_guild(p["gid"]):
            return _error(404, "Unknown Guild", 10004)
        return _json_response(list(self.channels.values()))


# ---------------------------------------------------------------------- pointing discord.py at it


@contextlib.contextmanager
def pointed_at(fake: FakeDiscord) -> Iterator[FakeDiscord]:
    """Point discord.py's process-wide REST base and gateway URL at ``fake``, restoring them after."""
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield fake
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


# The fixtures are defined under *_fixture names and registered under the short names, so a test
# module can import them without its parameters shadowing the import (ruff F811):
#     from tests.fakes.fake_discord import discord_endpoints_fixture, fake_discord_fixture  # noqa: F401
# The short names are kept as aliases for ``from ... import fake_discord, discord_endpoints``.


@pytest_asyncio.fixture(name="fake_discord")
async def fake_discord_fixture() -> AsyncIterator[FakeDiscord]:
    """A started FakeDiscord, closed after the test."""
    fake = await FakeDiscord().start()
    try:
        yield fake
    finally:
        await fake.close()


@pytest.fixture(name="discord_endpoints")
def discord_endpoints_fixture(fake_discord: FakeDiscord) -> Iterator[FakeDiscord]:
    """The started fake, with discord.py pointed at it for the duration of the test only."""
    with pointed_at(fake_discord):
        yield fake_discord


fake_discord = fake_discord_fixture
discord_endpoints = discord_endpoints_fixture
