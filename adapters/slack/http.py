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
refusal logs one line, never the body or the signature. Only then does bolt get the
request; its own signature check stays on (bolt's app is built with it), so bolt served
without this door still refuses forgeries. That is a second HMAC over a few kB per
request, microseconds, kept rather than turning bolt's check off.
"""

from __future__ import annotations

import heapq
import logging
import re

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock, SignatureVerifier

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # bytes
WINDOW = 5 * 60  # seconds a signed request stays valid either side of its timestamp
REMEMBERED = 100_000  # accepted signatures kept at most (about 10 MB)
TIMESTAMP = "X-Slack-Request-Timestamp"
SIGNATURE = "X-Slack-Signature"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


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
    ) -> None:
        self.bolt = bolt
        self.verifier = SignatureVerifier(signing_secret, clock or Clock())
        self.max_body = max_body
        self.seen = Seen()

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
            bolt_request = AsyncBoltRequest(
                body=text,
                query=request.query_string,
                headers=request.headers,  # type: ignore[arg-type]
            )
        except Exception as exc:  # whatever bolt's parsing raises, the body is unreadable
            why = f"a signed body bolt cannot read ({type(exc).__name__})"
            return _refuse(400, why, level=logging.WARNING)
        if not isinstance(bolt_request.body, dict):
            return _refuse(400, "a signed body that is not an object", level=logging.WARNING)
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))


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
