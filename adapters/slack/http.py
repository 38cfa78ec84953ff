"""Slack's HTTP mode: the door in front of bolt.

Bolt's aiohttp adapter parses a request's body before it checks the request's signature,
and remembers nothing of what it let in. So a body it could not parse (a malformed
`payload=` field, malformed JSON, JSON that is not an object, bytes that are not UTF-8) or
a timestamp that is not a number was a 500 with a traceback, signed or not; and the same
signed request sent again within Slack's five minutes was accepted again. This door reads
each request once and hands bolt only what passed every check below, in this order (each
check is made before any work the next one needs, so a hostile request costs little):

- **401** when `X-Slack-Request-Timestamp` or `X-Slack-Signature` is missing, given more
  than once, or not of Slack's form (ASCII digits; `v0=` and 64 lowercase hex digits),
  before any of the body is read.
- **413** when the body is over `MAX_BODY` (1 MiB; Slack's are a few kB): a declared
  `Content-Length` over it is refused before any of the body is read, a chunked body as
  soon as it passes it, and the connection is closed.
- **400** when the body is cut short (the client went away before its end; nobody reads
  that answer, but nothing is done and nothing but one line is logged).
- **400** when the body is not UTF-8: Slack sends UTF-8, and the signature is over text
  (so this comes before the signature check: such a body cannot even be verified).
- **401** when the signature is wrong or the timestamp more than five minutes away
  (slack_sdk's `SignatureVerifier`, the check bolt itself makes).
- **401** when the signature was accepted before: a replay. Each accepted signature (an
  HMAC over timestamp and body, so it names one request) is remembered until its
  timestamp leaves the five-minute window, when the check above refuses it anyway; at
  most `REMEMBERED` are kept, the nearest to expiry dropped first. Slack re-signs what it
  retries, so its own retries are not refused here (and a repeated trigger_id is still
  answered once by the durable intake).
- **400** when bolt cannot read the signed body: the request it would build raises
  (malformed JSON or `payload=`, JSON that is not an object, ...).

A refused request reaches nothing: no listener, no journal row, no Web API call. Each
refusal logs one line, never the body or the signature.

What passed is parsed once, here. A slash command or a click is journaled (`first`, the
surface's `take_first`) and answered 200 at once, and bolt routes it to its listener
after, in a task of its own, exactly as in Socket Mode (adapters/slack/intake.py): bolt's
dispatch costs more than the journal, and under a thousand clicks a second every ack
waited for the dispatch of all the clicks ahead of it. Nothing is answered before it is
journaled, so a kill right after the ack loses nothing. Bolt gets that request as Socket
Mode hands it over, already parsed and verified here. Anything else (a form submission
above all, whose answer travels in the ack) goes through bolt before it is answered, as a
raw body with bolt's own signature check on: bolt's app is built with it, so bolt served
without this door still refuses forgeries.
"""

from __future__ import annotations

import heapq
import json
import logging
import re
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol
from urllib.parse import unquote_plus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import Clock, SignatureVerifier

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # bytes
WINDOW = 5 * 60  # seconds a signed request stays valid either side of its timestamp
REMEMBERED = 100_000  # accepted signatures kept at most (about 10 MB)
TIMESTAMP = "X-Slack-Request-Timestamp"
SIGNATURE = "X-Slack-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class First(Protocol):
    """Who journals a command or a click before it is answered (the Slack surface)."""

    async def take_first(self, body: dict[str, Any]) -> bool:
        """Journal `body`; False if the same request was journaled before."""
        ...

    def track(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` after the acks of what is arriving."""
        ...


class Seen:
    """Signatures accepted within the window: a replay is one found here."""

    def __init__(self, window: float = WINDOW, cap: int = REMEMBERED) -> None:
        self.window = window
        self.cap = cap
        self._until: dict[str, float] = {}
        self._expiry: list[tuple[float, str]] = []  # a heap of (until, signature)

    def __len__(self) -> int:
        return len(self._until)

    def first(self, signature: str, timestamp: int, now: float) -> bool:
        """True the first time `signature` (of a request stamped `timestamp`) is seen
        while it is valid; remembers it until it is not."""
        while self._expiry and self._expiry[0][0] < now:
            del self._until[heapq.heappop(self._expiry)[1]]
        if signature in self._until:
            return False
        until = timestamp + self.window
        self._until[signature] = until
        heapq.heappush(self._expiry, (until, signature))
        while len(self._until) > self.cap:
            del self._until[heapq.heappop(self._expiry)[1]]
        return True


class Door:
    """One POST route for bolt, behind the checks the module describes."""

    def __init__(
        self,
        bolt: AsyncApp,
        signing_secret: str,
        clock: Clock | None = None,
        max_body: int = MAX_BODY,
        first: First | None = None,
    ) -> None:
        self.bolt = bolt
        self.verifier = SignatureVerifier(signing_secret, clock or Clock())
        self.max_body = max_body
        self.seen = Seen()
        self.first = first

    def web_app(self, path: str) -> web.Application:
        app = web.Application(client_max_size=self.max_body + 1)
        app.router.add_post(path, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        timestamp = _single(request, TIMESTAMP, _TIMESTAMP)
        signature = _single(request, SIGNATURE, _SIGNATURE)
        if timestamp is None or signature is None:
            return _refuse(401, "missing or malformed signature headers")
        declared = request.content_length
        if declared is not None and declared > self.max_body:
            return _refuse(413, f"a body of {declared} bytes declared", close=True)
        try:
            raw = await _read(request, self.max_body)
        except (ConnectionError, HttpProcessingError) as exc:
            return _refuse(400, f"a body cut short ({type(exc).__name__})", close=True)
        if raw is None:
            return _refuse(413, f"a body over {self.max_body} bytes", close=True)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _refuse(400, "a body that is not UTF-8")
        if not self.verifier.is_valid(text, timestamp, signature):
            return _refuse(401, "a wrong signature or a stale timestamp")
        if not self.seen.first(signature, int(timestamp), self.verifier.clock.now()):
            return _refuse(401, "a replay of a request accepted before", level=logging.WARNING)
        try:
            body = read_body(text, _content_type(request.headers))
            first = self.first is not None and isinstance(body, dict) and acked_first(body)
            bolt_request = AsyncBoltRequest(  # a journaled one as Socket Mode hands it over
                body=body if first else text,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
                mode="socket_mode" if first else "http",
            )
        except Exception as exc:  # whatever bolt's parsing raises, the body is unreadable
            why = f"a signed body bolt cannot read ({type(exc).__name__})"
            return _refuse(400, why, level=logging.WARNING)
        if not isinstance(body, dict):
            return _refuse(400, "a signed body that is not an object", level=logging.WARNING)
        if first:
            return await self._journal_first(bolt_request)
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def _journal_first(self, bolt_request: AsyncBoltRequest) -> web.Response:
        """Journal a command or a click, answer it, and let bolt route it afterwards (it was
        verified here: bolt gets it as Socket Mode hands one over, parsed)."""
        assert self.first is not None
        try:
            taken = await self.first.take_first(bolt_request.body)
        except Exception as exc:  # the journal could not take it: it is not acknowledged
            kind = _kind(bolt_request.body)
            log.error("slack: could not journal a request of type %s: %r", kind, exc)
            return web.json_response({"error": "not journaled"}, status=500)
        if taken:
            self.first.track(self._dispatch(bolt_request))
        return web.Response(status=200, content_type="text/plain")  # bolt's empty ack

    async def _dispatch(self, bolt_request: AsyncBoltRequest) -> None:
        response = await self.bolt.async_dispatch(bolt_request)
        if response.status != 200:
            why = f"bolt answered {response.status} to a journaled {_kind(bolt_request.body)}"
            log.warning("slack: %s; it is handled again at the next start", why)


def acked_first(body: Mapping[str, Any]) -> bool:
    """Whether a request is journaled and answered before bolt routes it: a slash command
    or a click, whose ack carries nothing (a form submission's carries its answer)."""
    return body.get("type") == "block_actions" or bool(body.get("command"))


def read_body(text: str, content_type: str | None) -> Any:
    """The body as bolt reads it (`parse_body`), the same result for every input; faster
    for an interaction, one `payload=` form field of URL-encoded JSON (the standard
    library's unquoting costs ~100 us for a click's 1.5 kB, the bulk of reading it)."""
    if text.startswith("payload=") and "&" not in text and content_type != "application/json":
        return json.loads(_unquote_plus(text[len("payload=") :]))
    return parse_body(text, content_type)


def _unquote_plus(value: str) -> str:
    """`urllib.parse.unquote_plus(value)`, in C when it can be: each %XX made a \\xXX
    escape and decoded by the unicode_escape codec (as bytes, then UTF-8). Only for pure
    ASCII without a backslash (no escape but ours), and any error (a stray %, bytes that
    are not UTF-8) leaves it to the standard library, which decides those."""
    if value.isascii() and "\\" not in value:
        try:
            escaped = value.replace("+", " ").replace("%", "\\x").encode("ascii")
            return escaped.decode("unicode_escape").encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
    return unquote_plus(value)


def _content_type(headers: Mapping[str, str]) -> str | None:
    """The content type as bolt reads it: the last header given, before any `;`."""
    values = headers.getall("Content-Type", [])  # type: ignore[attr-defined]
    return values[-1].split(";")[0] if values and values[-1] else None


def _kind(body: Mapping[str, Any]) -> str:
    return "command" if body.get("command") else str(body.get("type", "?"))


def _single(request: web.Request, name: str, form: re.Pattern[str]) -> str | None:
    values = request.headers.getall(name, [])
    if len(values) != 1 or not form.fullmatch(values[0]):
        return None
    return values[0]


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is longer than `limit`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(
    status: int, why: str, *, close: bool = False, level: int = logging.INFO
) -> web.Response:
    log.log(level, "slack: refused a request with %d: %s", status, why)
    response = web.json_response({"error": "invalid request"}, status=status)
    if close:
        response.force_close()
    return response
