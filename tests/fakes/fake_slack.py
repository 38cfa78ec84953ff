"""A local stand-in for Slack that the real slack-sdk and slack-bolt clients talk to.

It serves the Web API under ``/api/``, a Socket Mode websocket under ``/link``, file upload
URLs and ``response_url`` endpoints, all on 127.0.0.1 with a port picked by the OS. Every
request is recorded so tests can assert on what the bot actually sent, and waits are driven
by an ``asyncio.Condition`` so tests never sleep for a fixed time.

Where real Slack is strict in ways that bite in production (an app-level token on a bot
method, a message with neither text nor blocks, metadata only returned on request), the fake
is strict too, so a test that passes here does not hide the bug.

A message posted with ``thread_ts`` is a reply in that message's thread: kept out of the
channel's history, counted on its parent (``reply_count``) and read back, parent first, by
``conversations.replies``; ``replies`` lists a thread for tests.

It can also misbehave on demand, the way Slack does in production, so a delivery engine can
be tested against it: answer late (``latency``), limit ``chat.postMessage`` per channel
(``rate_limit``), fail every call for a while (``outage``/``recover``), post a message and
lose the answer (``lose_answer``), hold calls unanswered (``hang``/``release_hangs``) and
refuse a revoked or unknown token (``revoke``, ``valid_tokens``). ``posts`` and
``post_keys`` count what was really delivered: lost, doubled and out-of-order posts.

Workspaces install the app by OAuth v2 (``installs``: a code per workspace, traded once by
``oauth.v2.access`` for a bot token that knows its team, so ``auth.test`` and the messages it
posts carry that team); ``posted_with`` says which token posted into a channel, and
``app_uninstalled`` / ``tokens_revoked`` build the events that end an installation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest_asyncio
from aiohttp import BodyPartReader, WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.holds import Holds

TEAM_ID = "T1"
TEAM_DOMAIN = "fake-workspace"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "A1"
WORKSPACE_URL = f"https://{TEAM_DOMAIN}.slack.com/"

# Arguments that Slack accepts as JSON text in form bodies but as objects in JSON bodies;
# decoding them on arrival lets tests assert on one shape whichever transport the client used.
_JSON_ARGS = ("blocks", "attachments", "metadata", "view", "files")

JsonDict = dict[str, Any]


@dataclass
class Call:
    """One Web API request as the fake received it, and what it answered.

    A call is recorded when it arrives. ``status`` is 0 while it has no answer yet (held by
    ``hang``) and stays 0 if it never gets one (the fake closed while holding it). ``lost``
    is True when the call was processed but its answer withheld (``lose_answer``): the
    status and response are what the client would have got.
    """

    method: str
    args: JsonDict
    headers: dict[str, str]
    status: int = 200
    response: JsonDict = field(default_factory=dict)
    at: float = 0.0  # time.monotonic() when the call arrived
    lost: bool = False

    @property
    def token(self) -> str | None:
        """The token the client authenticated with (header first, then body)."""
        return _token_of(self.headers, self.args)


@dataclass
class UploadedFile:
    """A file announced by files.getUploadURLExternal, then uploaded and completed."""

    id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    initial_comment: str | None = None
    thread_ts: str | None = None
    completed: bool = False
    deleted: bool = False


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str | None
    remaining: int


@dataclass
class _Outage:
    status: int
    methods: frozenset[str] | None  # None: every method but apps.connections.open
    error: str
    retry_after: int

    def covers(self, method: str) -> bool:
        if self.methods is None:
            return method != "apps.connections.open"
        return method in self.methods


@dataclass
class _Hang:
    method: str
    channel: str | None
    remaining: int


@dataclass
class _Bucket:
    tokens: float
    refilled_at: float  # time.monotonic()


def _truthy(value: Any) -> bool:
    """Slack reads booleans from form bodies as "1"/"true"; JSON bodies send real booleans."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _token_of(headers: dict[str, str], args: JsonDict) -> str | None:
    for name, value in headers.items():
        if name.lower() == "authorization" and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip() or None
    token = args.get("token")
    return str(token) if token else None


def _ts_micros(ts: Any) -> int:
    """A Slack timestamp ("1700000000.000100", or whole seconds) as integer microseconds.

    Compared as integers, two timestamps never suffer float rounding."""
    return int(Decimal(str(ts)) * 1_000_000)


def _ts_text(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _history_cursor(micros: int) -> str:
    """Slack's cursors are opaque base64; for history they read "next_ts:<microseconds>"."""
    return base64.b64encode(f"next_ts:{micros}".encode()).decode()


def _cursor_micros(cursor: str) -> int:
    """The timestamp a history cursor points at; ValueError if it is not one of ours."""
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(cursor) from exc
    prefix, _, micros = text.partition(":")
    if prefix != "next_ts" or not micros.isdigit():
        raise ValueError(cursor)
    return int(micros)


@dataclass
class _Window:
    """The ``oldest``, ``latest``, ``inclusive``, ``limit`` and ``cursor`` of a read of
    messages (conversations.history and .replies), as Slack reads them."""

    oldest: int
    latest: int | None
    inclusive: bool
    limit: int
    start: int | None  # from the cursor: the message its page starts at

    @classmethod
    def of(cls, args: JsonDict, default_limit: int, max_limit: int) -> _Window | str:
        """The window the arguments ask for, or Slack's error for a bad one."""
        try:
            oldest = _ts_micros(args.get("oldest") or 0)
        except (ArithmeticError, ValueError):
            return "invalid_ts_oldest"
        try:
            latest = _ts_micros(args["latest"]) if args.get("latest") else None
        except (ArithmeticError, ValueError):
            return "invalid_ts_latest"
        try:
            limit = min(int(args.get("limit") or default_limit), max_limit)
        except ValueError:
            return "invalid_limit"
        try:
            start = _cursor_micros(str(args["cursor"])) if args.get("cursor") else None
        except ValueError:
            return "invalid_cursor"
        inclusive = _truthy(args.get("inclusive", False))
        return cls(oldest, latest, inclusive, limit if limit >= 1 else default_limit, start)

    def wanted(self, ts: int, newest_first: bool) -> bool:
        if ts < self.oldest or (ts == self.oldest and not self.inclusive and self.oldest):
            return False
        if self.latest is not None and (
            ts > self.latest or (ts == self.latest and not self.inclusive)
        ):
            return False
        if self.start is None:
            return True
        # The cursor's own message starts the page.
        return ts <= self.start if newest_first else ts >= self.start

    def page(self, found: list[JsonDict], args: JsonDict) -> JsonDict:
        """The first ``limit`` of ``found`` (in reading order) and the cursor to the rest."""
        page = [dict(m) for m in found[: self.limit]]
        if not _truthy(args.get("include_all_metadata", False)):
            # Slack only returns message metadata when asked with include_all_metadata.
            for shown in page:
                shown.pop("metadata", None)
        has_more = len(found) > self.limit
        next_cursor = _history_cursor(_ts_micros(found[self.limit]["ts"])) if has_more else ""
        return {
            "ok": True,
            "messages": page,
            "has_more": has_more,
            "response_metadata": {"next_cursor": next_cursor},
        }


def _error_answer(
    status: int, error: str, retry_after: int
) -> tuple[int, JsonDict, dict[str, str]]:
    """A failed call as Slack answers it: a 429 carries Retry-After in whole seconds."""
    if status == 429:
        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
    return status, {"ok": False, "error": error}, {}


def _drop_connection(request: web.Request) -> web.Response:
    """Close the connection without answering: the client sees the server disconnect.

    The returned response is never written (aiohttp drops it on a closed transport)."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=500)


def _decode_json_args(args: JsonDict) -> JsonDict:
    for key in _JSON_ARGS:
        value = args.get(key)
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                args[key] = json.loads(value)
            except ValueError:
                pass  # leave it as sent; the handler reports what Slack would
    return args


async def _read_args(request: web.Request) -> JsonDict:
    """Merge query string and body the way Slack does: slack-sdk sends both, per method."""
    args: JsonDict = dict(request.query)
    if not request.can_read_body:
        return _decode_json_args(args)
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            args.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            args[key] = value.file.read() if isinstance(value, web.FileField) else value
    return _decode_json_args(args)


class FakeSlack:
    """Web API, Socket Mode and response_url endpoints of Slack, recorded for assertions.

    ``latency`` (seconds, default 0) delays the answer of every Web API call; the call is
    recorded and takes effect when it arrives, only its answer is late. ``valid_tokens``
    (default None: any xoxb- token works) is the set of bot tokens Slack knows; any other
    xoxb- token gets ``invalid_auth``. ``rate_limited`` lists (time.monotonic(), channel)
    for every 429 the ``rate_limit`` limiter gave.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.latency: float = 0.0
        self.valid_tokens: set[str] | None = None
        self.rate_limited: list[tuple[float, str]] = []
        self.users: dict[str, JsonDict] = {}
        self.channels: dict[str, JsonDict] = {}
        self.messages: dict[str, list[JsonDict]] = {}
        self.ims: dict[str, str] = {}  # user id -> id of the bot's DM conversation with them
        self.views: dict[str, JsonDict] = {}
        self.uploads: dict[str, UploadedFile] = {}
        self.app_token_seen: list[str] = []
        self.connections = 0
        self.frames: list[JsonDict] = []
        self.acks: dict[str, JsonDict] = {}
        # perf_counter() when each envelope left and when its ack was read: ack latency as
        # Slack would see it, whatever the test's own tasks waited for.
        self.sent_at: dict[str, float] = {}
        self.acked_at: dict[str, float] = {}
        self._ack_waiters: dict[str, asyncio.Future[JsonDict]] = {}
        self.responses: list[tuple[str, JsonDict]] = []
        self.base_url = ""
        self.root_url = ""
        self._failures: dict[str, list[_Failure]] = {}
        self._outage: _Outage | None = None
        self._lost_answers: dict[str, int] = {}  # method -> answers still to lose
        self._hangs: list[_Hang] = []
        self._holds = Holds()  # calls held unanswered now
        self._revoked: dict[str, str] = {}  # token -> error it now gets
        self._rate: float | None = None  # chat.postMessage tokens per second per channel
        self._burst = 0
        self._rate_retry_after = 1
        self._buckets: dict[str, _Bucket] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._counter = itertools.count(1)
        self._ts_seconds = int(time.time())
        self._last_ts_micros = 0
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.open": self._conversations_open,
            "conversations.members": self._conversations_members,
            "reactions.get": self._reactions_get,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.delete": self._files_delete,
            "apps.connections.open": self._apps_connections_open,
            "oauth.v2.access": self._oauth_v2_access,
        }
        self._caller: str | None = None  # the token of the call being answered, its headers
        self._caller_headers: dict[str, str] = {}
        self.installs = Installs()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeSlack:
        """Listen on 127.0.0.1 with an OS-chosen port so parallel tests never collide."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link", self._link)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{n}", self._respond)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.root_url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root_url}/api/"
        return self

    async def close(self) -> None:
        """Close open websockets first: a live one would hold the server's shutdown.

        Calls held by ``hang`` are not processed: their connections are dropped, so closing
        never waits on them. A call still sleeping out ``latency`` gets at most a second
        before it is cancelled."""
        self._holds.close()
        for ws in self._sockets:
            if not ws.closed:
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ test controls

    def calls_to(self, method: str) -> list[JsonDict]:
        """Arguments of every call to ``method``, failed attempts included."""
        return [c.args for c in self.calls if c.method == method]

    async def wait_for_call(
        self, method: str, count: int = 1, timeout: float = 5.0
    ) -> list[JsonDict]:
        """Wait until ``method`` was called ``count`` times (listeners often run after ack)."""
        await self._wait_until(
            lambda: len(self.calls_to(method)) >= count, timeout, f"{count} call(s) to {method}"
        )
        return self.calls_to(method)

    def fail_next(
        self,
        method: str,
        status: int = 429,
        times: int = 1,
        retry_after: int = 0,
        error: str | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail, to exercise retry and error paths."""
        if status == 200 and not error:
            raise ValueError("a 200 failure needs an error code, e.g. error='channel_not_found'")
        self._failures.setdefault(method, []).append(_Failure(status, retry_after, error, times))

    def rate_limit(
        self, per_second: float | None = 1.0, burst: int = 2, retry_after: int = 1
    ) -> None:
        """Limit chat.postMessage per channel, as Slack does (about one message a second).

        A token bucket per channel: ``burst`` posts at once, then ``per_second``. A post over
        the limit is answered 429 ``ratelimited`` with ``Retry-After: retry_after`` (whole
        seconds, as Slack) and is not posted; it is listed in ``rate_limited``. Calling it
        again starts every bucket full; ``rate_limit(None)`` turns the limit off (the
        default)."""
        if per_second is not None and (per_second <= 0 or burst < 1):
            raise ValueError("per_second must be positive and burst at least 1")
        self._rate, self._burst, self._rate_retry_after = per_second, burst, retry_after
        self._buckets.clear()

    def outage(
        self,
        status: int = 500,
        methods: Iterable[str] | None = None,
        error: str = "internal_error",
        retry_after: int = 1,
    ) -> None:
        """Fail every call to ``methods`` until ``recover()``; nothing is processed meanwhile.

        ``methods=None`` means every method but ``apps.connections.open``. A 429 is answered
        like the rate limiter (``ratelimited``, ``Retry-After: retry_after``); other statuses
        with ``{"ok": false, "error": error}``. The calls are recorded with their status."""
        chosen = (
            None
            if methods is None
            else frozenset([methods] if isinstance(methods, str) else methods)
        )
        self._outage = _Outage(status, chosen, error, retry_after)

    def recover(self) -> None:
        """End the outage started by ``outage()``."""
        self._outage = None

    def lose_answer(self, method: str, times: int = 1) -> None:
        """Process the next ``times`` calls to ``method`` fully, then drop the connection
        instead of answering: the message is posted but the client sees the server
        disconnect (aiohttp's ServerDisconnectedError). Calls refused before processing
        (outage, rate limit, bad token) do not use one up."""
        self._lost_answers[method] = self._lost_answers.get(method, 0) + times

    def hang(self, method: str, times: int = 1, channel: str | None = None) -> None:
        """Hold the next ``times`` calls to ``method`` (only those for ``channel``, if given)
        unanswered and unprocessed until ``release_hangs()``; ``close()`` drops them."""
        self._hangs.append(_Hang(method, channel, times))

    def release_hangs(self) -> None:
        """Let every held call go on (processed and answered now, even if its client has
        given up) and disarm the ``hang`` rules not used yet."""
        self._hangs.clear()
        self._holds.end(released=True)

    @property
    def hung(self) -> int:
        """How many calls are held by ``hang`` right now."""
        return len(self._holds)

    async def wait_hung(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` calls are held by ``hang`` at once."""
        await self._wait_until(lambda: self.hung >= count, timeout, f"{count} held call(s)")

    def revoke(self, token: str, error: str = "token_revoked") -> None:
        """From now on every call made with ``token`` (auth.test too) answers HTTP 200
        ``{"ok": false, "error": error}``, as Slack does for an uninstalled app."""
        self._revoked[token] = error

    def posts(self, channel: str) -> list[JsonDict]:
        """The bot's top-level messages in ``channel``, in posting order (thread replies and
        other users' messages left out)."""
        return [
            m
            for m in self.messages.get(channel, [])
            if m.get("bot_id") == BOT_ID and m.get("thread_ts") in (None, m["ts"])
        ]

    def post_keys(self, channel: str) -> list[str]:
        """``metadata.event_payload.key`` of every bot message in ``channel`` that has one,
        in posting order: each key should appear once, in the order the posts were queued."""
        keys: list[str] = []
        for message in self.messages.get(channel, []):
            if message.get("bot_id") != BOT_ID:
                continue
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if "key" in payload:
                keys.append(str(payload["key"]))
        return keys

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "a condition"
    ) -> None:
        """Wait until ``predicate()`` holds; it is checked whenever the fake's state changes."""
        await self._wait_until(predicate, timeout, what)

    def response_url(self) -> str:
        """A fresh response_url pointing at the fake, for slash command and action payloads."""
        return f"{self.root_url}/respond/{next(self._counter)}"

    async def wait_for_response(self, count: int = 1, timeout: float = 5.0) -> list[JsonDict]:
        """Wait for ``count`` posts to response URLs; ``respond()`` runs after the ack."""
        await self._wait_until(
            lambda: len(self.responses) >= count, timeout, f"{count} response_url post(s)"
        )
        return [body for _, body in self.responses]

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` Socket Mode connections have been accepted in total."""
        await self._wait_until(
            lambda: self.connections >= count, timeout, f"{count} Socket Mode connection(s)"
        )

    async def push(
        self, type: str, payload: JsonDict, accepts_response_payload: bool = True
    ) -> str:
        """Send an envelope to the connected client as Slack would; return its envelope_id."""
        (envelope_id,) = await self.push_many(type, [payload], accepts_response_payload)
        return envelope_id

    async def push_many(
        self, type: str, payloads: list[JsonDict], accepts_response_payload: bool = True
    ) -> list[str]:
        """Send one envelope per payload, all written back to back (each serialised first),
        as Slack sends a burst; return their envelope_ids in order."""
        frames = []
        for payload in payloads:
            envelope: JsonDict = {
                "envelope_id": str(uuid.uuid4()),
                "type": type,
                "payload": payload,
                "accepts_response_payload": accepts_response_payload,
            }
            if type == "events_api":
                envelope.update(retry_attempt=0, retry_reason="")
            frames.append((envelope["envelope_id"], json.dumps(envelope)))
        ws = self._current_socket()
        for envelope_id, text in frames:
            await ws.send_str(text)
            self.sent_at[envelope_id] = time.perf_counter()
        return [envelope_id for envelope_id, _ in frames]

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> JsonDict:
        """The client's acknowledgement frame for one envelope.

        One future per envelope, so a thousand acks awaited at once wake one waiter each."""
        if envelope_id in self.acks:
            return self.acks[envelope_id]
        waiter = self._ack_waiters.setdefault(
            envelope_id, asyncio.get_running_loop().create_future()
        )
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            raise TimeoutError(f"timed out waiting for the ack of envelope {envelope_id}") from None

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the client to reconnect, as Slack does every few hours."""
        await self._current_socket().send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        )

    # ------------------------------------------------------------------ internals

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
        except TimeoutError:
            seen = [c.method for c in self.calls]
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what}; calls seen: {seen}, "
                f"connections: {self.connections}, responses: {len(self.responses)}"
            ) from None

    def _current_socket(self) -> web.WebSocketResponse:
        for ws in reversed(self._sockets):
            if not ws.closed:
                return ws
        raise RuntimeError("no Socket Mode client is connected to the fake")

    def _next_ts(self) -> str:
        """Real epoch time with microseconds, strictly increasing, as Slack stamps messages;
        so ``oldest``/``latest`` filters work against wall-clock bounds."""
        micros = max(self._last_ts_micros + 1, time.time_ns() // 1000)
        self._last_ts_micros = micros
        return _ts_text(micros)

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    def _take_hang(self, method: str, args: JsonDict) -> bool:
        for rule in self._hangs:
            if rule.method == method and rule.channel in (None, args.get("channel")):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._hangs.remove(rule)
                return True
        return False

    def _take_lost_answer(self, method: str) -> bool:
        if self._lost_answers.get(method, 0) <= 0:
            return False
        self._lost_answers[method] -= 1
        return True

    # ------------------------------------------------------------------ HTTP endpoints

    async def _api(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        method = request.match_info["method"]
        args = await _read_args(request)
        headers = dict(request.headers)
        call = Call(method, args, headers, status=0, at=arrived)
        self.calls.append(call)
        if self._take_hang(method, args) and not await self._holds.hold(self._notify):
            await self._notify()
            return _drop_connection(request)  # the fake is closing; never processed
        status, body, extra_headers, processed = self._answer(method, args, headers)
        call.status, call.response = status, body
        call.lost = processed and self._take_lost_answer(method)
        await self._notify()
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if call.lost:
            return _drop_connection(request)
        return web.json_response(body, status=status, headers=extra_headers)

    def _answer(
        self, method: str, args: JsonDict, headers: dict[str, str]
    ) -> tuple[int, JsonDict, dict[str, str], bool]:
        """Status, body and headers of the answer, and whether the method really ran.

        Checked in this order: outage, ``fail_next``, token, rate limit, then the method."""
        token = _token_of(headers, args)
        if method == "apps.connections.open":
            self.app_token_seen.append(token or "")
        if self._outage is not None and self._outage.covers(method):
            outage = self._outage
            return (*_error_answer(outage.status, outage.error, outage.retry_after), False)
        failure = self._take_failure(method)
        if failure is not None:
            error = failure.error or "internal_error"
            return (*_error_answer(failure.status, error, failure.retry_after), False)
        refused = self._token_error(method, token)
        if refused is not None:
            return 200, {"ok": False, "error": refused}, {}, False
        if method == "chat.postMessage" and not self._take_post_token(args):
            retry_after = self._rate_retry_after
            return (*_error_answer(429, "ratelimited", retry_after), False)
        handler = self._handlers.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}, False
        self._caller, self._caller_headers = token, headers
        return 200, handler(args), {}, True

    def _token_error(self, method: str, token: str | None) -> str | None:
        """The error Slack gives for this token on this method, or None if it is accepted."""
        if method == "oauth.v2.access":
            return None  # the app's client id and secret authenticate it, not a token
        if token is not None and token in self._revoked:
            return self._revoked[token]
        if method == "apps.connections.open":
            return None if (token or "").startswith("xapp-") else "invalid_auth"
        if not token:
            return "not_authed"
        if token.startswith("xapp-"):
            return "not_allowed_token_type"
        if (
            self.valid_tokens is not None
            and token.startswith("xoxb-")
            and token not in self.valid_tokens
        ):
            return "invalid_auth"
        return None

    def _take_post_token(self, args: JsonDict) -> bool:
        """Take one token from the channel's bucket; False (and recorded) when it is empty."""
        if self._rate is None:
            return True
        channel = str(args.get("channel") or "")
        now = time.monotonic()
        bucket = self._buckets.setdefault(channel, _Bucket(float(self._burst), now))
        bucket.tokens = min(
            float(self._burst), bucket.tokens + (now - bucket.refilled_at) * self._rate
        )
        bucket.refilled_at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        self.rate_limited.append((now, channel))
        return False

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="file not found", content_type="text/plain")
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            part = await reader.next()
            data = await part.read() if isinstance(part, BodyPartReader) else b""
        else:
            data = await request.read()
        upload.data = bytes(data)
        await self._notify()
        # Slack's upload host answers in plain text; slack-sdk only looks at the status.
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _respond(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        self.responses.append((request.path, body))
        await self._notify()
        return web.Response(text="ok", content_type="text/plain")

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.connections += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {
                    "host": "fake-slack",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": APP_ID},
            }
        )
        await self._notify()
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            self.frames.append(frame)
            if isinstance(frame, dict) and "envelope_id" in frame:
                self.acked_at.setdefault(frame["envelope_id"], time.perf_counter())
                self.acks[frame["envelope_id"]] = frame
                waiter = self._ack_waiters.pop(frame["envelope_id"], None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
            await self._notify()
        await self._notify()
        return ws

    # ------------------------------------------------------------------ Web API methods

    def _auth_test(self, args: JsonDict) -> JsonDict:
        return {
            "ok": True,
            "url": WORKSPACE_URL,
            "team": "Fake Workspace",
            "user": "itsm-bot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
            **self.installs.auth_test(self._caller),
        }

    def _oauth_v2_access(self, args: JsonDict) -> JsonDict:
        return self.installs.access(args, self._caller_headers)

    def posted_with(self, channel: str) -> list[str]:
        """The token of every chat.postMessage that posted into ``channel``, in order."""
        return [
            c.token or ""
            for c in self.calls
            if c.method == "chat.postMessage" and c.args.get("channel") == channel
            and c.response.get("ok")
        ]  # fmt: skip

    def _chat_post_message(self, args: JsonDict) -> JsonDict:
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message: JsonDict = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": self.installs.team_of(self._caller),
            "text": args.get("text") or "",
            "ts": ts,
        }
        for key in ("blocks", "attachments", "metadata", "thread_ts"):
            if args.get(key):
                message[key] = args[key]
        self.messages.setdefault(str(channel), []).append(message)
        if args.get("thread_ts"):
            self._count_reply(str(channel), str(args["thread_ts"]), message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _count_reply(self, channel: str, thread_ts: str, reply: JsonDict) -> None:
        """The parent of a new reply shows its thread, as Slack's parents do (``thread_ts``
        its own ts, ``reply_count``, ``reply_users``, ``latest_reply``)."""
        parent = self._stored(channel, thread_ts)
        if parent is None or parent is reply:
            return
        parent["thread_ts"] = thread_ts
        parent["reply_count"] = int(parent.get("reply_count") or 0) + 1
        users = parent.setdefault("reply_users", [])
        if reply["user"] not in users:
            users.append(reply["user"])
        parent["reply_users_count"] = len(users)
        parent["latest_reply"] = reply["ts"]

    def _chat_update(self, args: JsonDict) -> JsonDict:
        channel, ts = args.get("channel"), args.get("ts")
        if not channel or not ts:
            return {"ok": False, "error": "message_not_found"}
        # A message the fake never saw (e.g. from a hand-made action payload) is still
        # updatable, so tests need not post it first.
        message: JsonDict = next(
            (m for m in self.messages.get(str(channel), []) if m["ts"] == ts),
            {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts},
        )
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message.get("text", ""),
            "message": message,
        }

    def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_get_permalink(self, args: JsonDict) -> JsonDict:
        channel, ts = args.get("channel"), str(args.get("message_ts") or "")
        if not channel or not ts:
            return {"ok": False, "error": "message_not_found"}
        permalink = f"{WORKSPACE_URL}archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": permalink}

    def _store_view(self, view: JsonDict, view_id: str, previous: str | None) -> JsonDict:
        stored: JsonDict = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": view.get("type", "modal"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{self._ts_seconds}.{next(self._counter)}",
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "previous_view_id": previous,
            "root_view_id": view_id,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        self.views[view_id] = stored
        return stored

    def _views_open(self, args: JsonDict) -> JsonDict:
        view = args.get("view")
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = f"V{next(self._counter):08d}"
        return {"ok": True, "view": self._store_view(view, view_id, None)}

    def _views_update(self, args: JsonDict) -> JsonDict:
        view = args.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = args.get("view_id")
        if not view_id and args.get("external_id"):
            view_id = next(
                (k for k, v in self.views.items() if v["external_id"] == args["external_id"]),
                None,
            )
        if not view_id:
            return {"ok": False, "error": "not_found"}
        return {"ok": True, "view": self._store_view(view, str(view_id), None)}

    def _users_info(self, args: JsonDict) -> JsonDict:
        user_id = args.get("user")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        user: JsonDict = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": f"member-{str(user_id).lower()}",
            "real_name": f"Member {user_id}",
            "deleted": False,
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "tz": "UTC",
            "tz_offset": 0,
        }
        user.update(self.users.get(str(user_id), {}))
        user.setdefault("profile", {"real_name": user["real_name"], "display_name": user["name"]})
        return {"ok": True, "user": user}

    def _conversations_info(self, args: JsonDict) -> JsonDict:
        channel_id = args.get("channel")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        channel: JsonDict = {
            "id": channel_id,
            "name": f"channel-{str(channel_id).lower()}",
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_private": False,
            "is_archived": False,
            "is_member": True,
            "created": self._ts_seconds,
            "creator": "U1",
        }
        channel.update(self.channels.get(str(channel_id), {}))
        return {"ok": True, "channel": channel}

    def _conversations_members(self, args: JsonDict) -> JsonDict:
        """A channel's member ids (``channels[id]["members"]``; the bot alone by default), in
        pages of ``limit`` with Slack's cursor."""
        channel_id = str(args.get("channel") or "")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        members = list(self.channels.get(channel_id, {}).get("members", [BOT_USER_ID]))
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        end = start + limit
        following = str(end) if end < len(members) else ""
        return {
            "ok": True,
            "members": members[start:end],
            "response_metadata": {"next_cursor": following},
        }

    def _conversations_open(self, args: JsonDict) -> JsonDict:
        """Open (or reopen) the bot's DM with one member: the same D id every time, as Slack.

        A member set in ``users`` with ``"deleted": True`` cannot be written to."""
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if args.get("channel") or len(users) != 1:
            return {
                "ok": False,
                "error": "not_supported" if len(users) > 1 else "users_list_not_supplied",
            }
        (user_id,) = users
        if self.users.get(user_id, {}).get("deleted"):
            return {"ok": False, "error": "user_disabled"}
        already = user_id in self.ims
        channel_id = self.ims.setdefault(user_id, f"D{user_id}")
        channel: JsonDict = {"id": channel_id}
        response: JsonDict = {"ok": True, "channel": channel}
        if already:
            response.update(no_op=True, already_open=True)
        return response

    def _conversations_history(self, args: JsonDict) -> JsonDict:
        """Top-level messages newest first, between ``oldest`` and ``latest`` (both excluded
        unless ``inclusive``), ``limit`` a page (default 100, at most 999), as Slack does.

        When more match, ``has_more`` is true and ``response_metadata.next_cursor`` gives
        the next (older) page; the caller passes it back as ``cursor`` with the same
        arguments."""
        channel = args.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        window = _Window.of(args, default_limit=100, max_limit=999)
        if isinstance(window, str):
            return {"ok": False, "error": window}
        found = sorted(
            (
                m
                for m in self.messages.get(str(channel), [])
                # Thread replies live in conversations.replies, not in the channel history.
                if m.get("thread_ts") in (None, m["ts"])
                and window.wanted(_ts_micros(m["ts"]), newest_first=True)
            ),
            key=lambda m: _ts_micros(m["ts"]),
            reverse=True,
        )
        return {**window.page(found, args), "pin_count": 0}

    def _files_get_upload_url(self, args: JsonDict) -> JsonDict:
        filename, length = args.get("filename"), args.get("length")
        if not filename or length in (None, ""):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._counter):08d}"
        self.uploads[file_id] = UploadedFile(file_id, str(filename), int(length))
        return {"ok": True, "upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: JsonDict) -> JsonDict:
        entries = args.get("files")
        if not isinstance(entries, list) or not entries:
            return {"ok": False, "error": "invalid_arguments"}
        done: list[JsonDict] = []
        for entry in entries:
            upload = self.uploads.get(str(entry.get("id")))
            if upload is None:
                return {"ok": False, "error": "file_not_found"}
            upload.title = entry.get("title") or upload.filename
            upload.channel_id = args.get("channel_id")
            upload.initial_comment = args.get("initial_comment")
            upload.thread_ts = args.get("thread_ts")
            upload.completed = True
            done.append(self._file_object(upload))
        if args.get("channel_id"):
            # Sharing files posts a message with them (a thread reply under thread_ts).
            share: JsonDict = {
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": args.get("initial_comment") or "",
                "ts": self._next_ts(),
                "files": done,
            }
            if args.get("thread_ts"):
                share["thread_ts"] = args["thread_ts"]
            self.messages.setdefault(str(args["channel_id"]), []).append(share)
            if args.get("thread_ts"):
                self._count_reply(str(args["channel_id"]), str(args["thread_ts"]), share)
        return {"ok": True, "files": done}

    def _file_object(self, upload: UploadedFile) -> JsonDict:
        return {
            "id": upload.id,
            "name": upload.filename,
            "title": upload.title,
            "size": len(upload.data or b""),
            "user": BOT_USER_ID,
            "permalink": f"{WORKSPACE_URL}files/{BOT_USER_ID}/{upload.id}/{upload.filename}",
            "channels": [upload.channel_id] if upload.channel_id else [],
        }

    def _files_delete(self, args: JsonDict) -> JsonDict:
        upload = self.uploads.get(str(args.get("file") or ""))
        if upload is None or upload.deleted:
            return {"ok": False, "error": "file_not_found"}
        upload.deleted = True
        for messages in self.messages.values():
            for message in messages:
                message["files"] = [
                    {"id": f["id"], "mode": "tombstone"} if f.get("id") == upload.id else f
                    for f in message.get("files", [])
                ]
        return {"ok": True}

    def _conversations_replies(self, args: JsonDict) -> JsonDict:
        """The thread of message `ts`, oldest first: the parent leads the first page, then
        the replies within ``oldest``/``latest``, ``limit`` a page (default and most 1000),
        ``has_more`` and ``response_metadata.next_cursor`` for the next page, as Slack
        answers; ``thread_not_found`` for a message the channel does not have."""
        channel, ts = args.get("channel"), str(args.get("ts") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        parent = self._stored(str(channel), ts)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        window = _Window.of(args, default_limit=1000, max_limit=1000)
        if isinstance(window, str):
            return {"ok": False, "error": window}
        replies = sorted(
            (
                m
                for m in self.replies(str(channel), ts)
                if window.wanted(_ts_micros(m["ts"]), newest_first=False)
            ),
            key=lambda m: _ts_micros(m["ts"]),
        )
        return window.page(([parent] if window.start is None else []) + replies, args)

    def replies(self, channel: str, ts: str) -> list[JsonDict]:
        """Every reply in the thread of message ``ts`` (the bot's and members'), oldest
        first, as stored: the parent itself left out."""
        return sorted(
            (
                m
                for m in self.messages.get(channel, [])
                if m.get("thread_ts") == ts and m["ts"] != ts
            ),
            key=lambda m: _ts_micros(m["ts"]),
        )

    def _reactions_get(self, args: JsonDict) -> JsonDict:
        """A stored message with its reactions (``react``), as Slack answers reactions.get."""
        channel, ts = str(args.get("channel") or ""), str(args.get("timestamp") or "")
        message = self._stored(channel, ts)
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        shown = dict(message)
        shown.pop("metadata", None)
        return {"ok": True, "type": "message", "channel": channel, "message": shown}

    def _stored(self, channel: str, ts: str) -> JsonDict | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    def react(self, channel: str, ts: str, name: str, user: str) -> None:
        """Member `user` reacts with emoji `name` to message `ts` (once per member and emoji)."""
        message = self._stored(channel, ts)
        if message is None:
            raise KeyError(f"no message {ts} in {channel}")
        reactions = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if user not in reaction["users"]:
            reaction["users"].append(user)
            reaction["count"] += 1

    def reply(self, channel: str, ts: str, text: str, user: str) -> JsonDict:
        """Member `user` replies in the thread of message `ts`; the parent counts it in
        ``reply_count``, as Slack does."""
        parent = self._stored(channel, ts)
        if parent is None:
            raise KeyError(f"no message {ts} in {channel}")
        message = {"type": "message", "user": user, "text": text, "ts": self._next_ts(),
                   "thread_ts": ts}  # fmt: skip
        self.messages[channel].append(message)
        self._count_reply(channel, ts, message)
        return message

    def _apps_connections_open(self, args: JsonDict) -> JsonDict:
        ws_url = self.root_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_url}/link"}


# ---------------------------------------------------------------------- request builders


_triggers = itertools.count(1)


def new_trigger_id() -> str:
    """Slack gives every command, click and submission a trigger_id of its own (the bot's
    journal keys on it, so two payloads with one id are one request delivered twice)."""
    return f"{next(_triggers)}.{uuid.uuid4().int % 10**12}"


def signed_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send with ``body``, signed with ``secret`` (v0 HMAC-SHA256)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    content_type = (
        "application/json" if body.lstrip().startswith("{") else "application/x-www-form-urlencoded"
    )
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": ts,
        "x-slack-signature": signature or "",
    }


def slash_command_payload(
    command: str,
    text: str,
    user_id: str = "U1",
    user_name: str = "member1",
    channel_id: str = "C1",
    team_id: str = TEAM_ID,
    trigger_id: str = "",
    response_url: str = "",
) -> dict[str, str]:
    """The fields of a slash command; Socket Mode delivers them as this dict."""
    return {
        "token": "verification-token",
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }


def slash_command_body(
    command: str,
    text: str,
    user_id: str = "U1",
    user_name: str = "member1",
    channel_id: str = "C1",
    team_id: str = TEAM_ID,
    trigger_id: str = "",
    response_url: str = "",
) -> str:
    """A slash command as Slack POSTs it over HTTP: a urlencoded form."""
    return urlencode(
        slash_command_payload(
            command, text, user_id, user_name, channel_id, team_id, trigger_id, response_url
        )
    )


def _user(user_id: str, team_id: str) -> JsonDict:
    name = f"member-{user_id.lower()}"
    return {"id": user_id, "username": name, "name": name, "team_id": team_id}


def block_actions_payload(
    action_id: str,
    value: str,
    user_id: str = "U1",
    channel_id: str = "C1",
    message_ts: str = "1700000000.000100",
    team_id: str = TEAM_ID,
    trigger_id: str = "",
    response_url: str = "",
) -> JsonDict:
    """A button click on a bot message, shaped like Slack's block_actions payload."""
    return {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "general"},
        "message": {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": team_id,
            "text": "",
            "ts": message_ts,
            "blocks": [],
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": action_id,
                "text": {"type": "plain_text", "text": value, "emoji": True},
                "value": value,
                "action_ts": f"{int(time.time())}.000200",
            }
        ],
    }


def view_submission_payload(
    callback_id: str,
    values: dict[str, str],
    private_metadata: str = "",
    user_id: str = "U1",
    team_id: str = TEAM_ID,
) -> JsonDict:
    """A submitted modal of plain text inputs; each field key is both block_id and action_id."""
    state = {
        key: {key: {"type": "plain_text_input", "value": value}} for key, value in values.items()
    }
    blocks = [
        {
            "type": "input",
            "block_id": key,
            "label": {"type": "plain_text", "text": key},
            "element": {"type": "plain_text_input", "action_id": key},
        }
        for key in values
    ]
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": "verification-token",
        "trigger_id": new_trigger_id(),
        "view": {
            "id": "V00000001",
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks,
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": state},
            "hash": "1700000000.abcdef",
            "title": {"type": "plain_text", "text": "Form"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "submit": {"type": "plain_text", "text": "Submit"},
            "clear_on_close": False,
            "notify_on_close": False,
            "previous_view_id": None,
            "root_view_id": "V00000001",
            "external_id": "",
            "app_id": APP_ID,
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def interaction_body(payload: JsonDict) -> str:
    """An interactive payload as Slack POSTs it over HTTP: one ``payload`` form field."""
    return urlencode({"payload": json.dumps(payload)})


# ---------------------------------------------------------------------- install by link


@dataclass
class Installed:
    """A workspace's bot as oauth.v2.access hands it over."""

    team_id: str
    team_name: str
    bot_token: str
    bot_user_id: str
    scopes: str


class Installs:
    """Workspaces installing the app (OAuth v2): a test makes a `code` for a workspace
    (`code_for`), as Slack's authorize page would after the member approved, and the bot
    trades it once for the workspace's own bot token (`oauth.v2.access`). Every token knows
    its workspace, so `auth.test` and the messages it posts carry that team id.

    ``client_id``/``client_secret`` are what oauth.v2.access accepts (HTTP Basic, as
    slack-sdk sends them, or form fields); ``redirect_uris`` what it saw."""

    def __init__(self) -> None:
        self.client_id = "1234.5678"
        self.client_secret = "fake-client-secret"
        self._codes: dict[str, Installed] = {}
        self._by_token: dict[str, Installed] = {}
        self.redirect_uris: list[str | None] = []

    def code_for(self, team_id: str, team_name: str = "", scopes: str = "commands,chat:write") -> str:  # fmt: skip
        token = f"xoxb-{team_id.lower()}-{uuid.uuid4().hex[:12]}"
        installed = Installed(team_id, team_name or f"Workspace {team_id}", token, f"UBOT{team_id}", scopes)  # fmt: skip
        code = f"code-{uuid.uuid4().hex}"
        self._codes[code] = installed
        return code

    def token_of(self, team_id: str) -> str:
        """The bot token last given to `team_id`."""
        found = [i.bot_token for i in self._by_token.values() if i.team_id == team_id]
        assert found, f"{team_id} never installed the app"
        return found[-1]

    def tokens(self) -> set[str]:
        return set(self._by_token)

    def team_of(self, token: str | None) -> str:
        installed = self._by_token.get(token or "")
        return installed.team_id if installed else TEAM_ID

    def auth_test(self, token: str | None) -> JsonDict:
        installed = self._by_token.get(token or "")
        if installed is None:
            return {}
        return {"team_id": installed.team_id, "team": installed.team_name,
                "user_id": installed.bot_user_id}  # fmt: skip

    def access(self, args: JsonDict, headers: dict[str, str]) -> JsonDict:
        client_id, client_secret = _basic_auth(headers) or (args.get("client_id"), args.get("client_secret"))  # fmt: skip
        if client_id != self.client_id or client_secret != self.client_secret:
            return {"ok": False, "error": "invalid_client_id" if client_id != self.client_id else "bad_client_secret"}  # fmt: skip
        installed = self._codes.pop(str(args.get("code") or ""), None)  # a code works once
        if installed is None:
            return {"ok": False, "error": "invalid_code"}
        self.redirect_uris.append(args.get("redirect_uri"))
        self._by_token[installed.bot_token] = installed
        return {
            "ok": True, "app_id": APP_ID, "authed_user": {"id": "UINSTALLER"},
            "scope": installed.scopes, "token_type": "bot", "access_token": installed.bot_token,
            "bot_user_id": installed.bot_user_id,
            "team": {"id": installed.team_id, "name": installed.team_name},
            "enterprise": None, "is_enterprise_install": False,
        }  # fmt: skip


def _basic_auth(headers: dict[str, str]) -> tuple[str, str] | None:
    for name, value in headers.items():
        if name.lower() == "authorization" and value.startswith("Basic "):
            decoded = base64.b64decode(value.removeprefix("Basic ")).decode()
            client_id, _, secret = decoded.partition(":")
            return client_id, secret
    return None


def event_payload(team_id: str, event: JsonDict) -> JsonDict:
    """An Events API callback from `team_id`, as Socket Mode hands it over (HTTP: as JSON)."""
    return {
        "token": "verification-token", "team_id": team_id, "api_app_id": APP_ID,
        "event": {"event_ts": f"{int(time.time())}.000100", **event},
        "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()), "authorizations": [], "is_ext_shared_channel": False,
    }  # fmt: skip


def app_uninstalled(team_id: str) -> JsonDict:
    return event_payload(team_id, {"type": "app_uninstalled"})


def tokens_revoked(team_id: str, bot_users: list[str], users: list[str] | None = None) -> JsonDict:
    return event_payload(
        team_id, {"type": "tokens_revoked", "tokens": {"oauth": users or [], "bot": bot_users}}
    )


# ---------------------------------------------------------------------- pytest fixture


@pytest_asyncio.fixture(name="fake_slack")
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A started fake, closed after the test whatever happened in it.

    The explicit name lets a test module import it under an alias
    (``import fake_slack as fake_slack_fixture``), which keeps ruff's F811 quiet about
    test parameters that share the fixture's name.
    """
    fake = await FakeSlack().start()
    try:
        yield fake
    finally:
        await fake.close()


__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "Call",
    "FakeSlack",
    "UploadedFile",
    "app_uninstalled",
    "event_payload",
    "tokens_revoked",
    "block_actions_payload",
    "fake_slack",
    "interaction_body",
    "signed_headers",
    "slash_command_body",
    "slash_command_payload",
    "view_submission_payload",
]
