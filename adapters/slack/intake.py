"""Durable intake on Slack: what is acknowledged is journaled first (bot/intake.py).

A command or a click is journaled and acknowledged before bolt sees it: in Socket Mode by
`JournalFirstHandler`, in HTTP mode by the door once the signature is checked
(adapters/slack/http.py). A form submission, whose ack carries the answer, goes through
bolt's listener first, which journals it. The journal keeps what
handling a request again needs, under Slack's own id for it, so a request delivered twice
is handled once.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
from typing import TYPE_CHECKING, Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

if TYPE_CHECKING:
    from adapters.slack.surface import SlackSurface

# Work after the ack waits while requests are still arriving (until none came for QUIET
# seconds), so that in a burst every click is journaled and acknowledged first and the
# votes are counted after. Waiting work is let through in the order it came: while
# requests keep arriving, one piece every TRICKLE seconds, so none waits forever; once
# they stop, AT_ONCE pieces every STEP seconds (a pace the loop slows down when it is
# busy), so that work let through in a lull is not all running when the next click comes.
# (It used to be all of it, once quiet or after 0.25 s: under a thousand clicks spread over
# a second the work ran beside the acks from the first quarter second on, and every ack
# queued behind it.)
QUIET = 0.01
TRICKLE = 0.01
STEP = 0.005
AT_ONCE = 8


class Arrivals:
    """Whether requests are still arriving: work after the ack lets them go first."""

    def __init__(self) -> None:
        self._last = -QUIET
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._releasing: asyncio.Task[None] | None = None

    def arrived(self) -> None:
        self._last = asyncio.get_running_loop().time()

    async def settled(self) -> None:
        """Return when this caller's turn comes: at once if no request came for QUIET
        seconds and nothing else waits, else as the module's comment describes."""
        loop = asyncio.get_running_loop()
        if not self._waiting and loop.time() - self._last >= QUIET:
            return
        turn = loop.create_future()
        self._waiting.append(turn)
        if self._releasing is None or self._releasing.done():
            self._releasing = loop.create_task(self._release())
        await turn

    async def _release(self) -> None:
        loop = asyncio.get_running_loop()
        trickled = loop.time()
        while self._waiting:
            now = loop.time()
            idle = now - self._last
            if idle >= QUIET:
                self._let_through(AT_ONCE)
                await asyncio.sleep(STEP)
                continue
            if now - trickled >= TRICKLE:
                trickled = now
                self._let_through(1)
            await asyncio.sleep(min(QUIET - idle, trickled + TRICKLE - now))

    def _let_through(self, count: int) -> None:
        while count and self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():  # else its caller was cancelled: the next one's turn
                turn.set_result(None)
                count -= 1


class JournalFirstHandler(AsyncSocketModeHandler):
    """Socket Mode in which a command or a click is journaled and acknowledged before bolt
    runs: bolt's dispatch costs more than the journal, and in a burst every click's ack
    would wait for the dispatch of all the clicks ahead of it. Bolt then routes it to its
    listener as usual (its own ack goes nowhere). Other envelopes, a form submission above
    all, whose ack carries the answer, go through bolt first."""

    def __init__(self, surface: SlackSurface, app: AsyncApp, app_token: str) -> None:
        super().__init__(app, app_token=app_token)
        self.surface = surface

    async def handle(self, client: Any, req: SocketModeRequest) -> None:
        first = req.type == "slash_commands" or (
            req.type == "interactive" and req.payload.get("type") == "block_actions"
        )
        if not first:
            await super().handle(client, req)
            return
        taken = await self.surface.take_first(req.payload)
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        if taken:  # in a task of its own, so the acks of a whole batch go out first
            self.surface.track(run_async_bolt_app(self.app, req))


def journaled(body: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of a request: all that handling it again needs, without the
    verification token, and of the clicked message only its ts (its blocks are most of a
    click's bytes, and every byte is written before the ack)."""
    kept = {k: v for k, v in body.items() if k not in ("token", "state")}
    if isinstance(kept.get("message"), dict):
        kept["message"] = {"ts": kept["message"].get("ts")}
    return kept


def request_id(body: dict[str, Any]) -> str:
    """Slack's id for one command, click or submission: its trigger_id, the same in every
    delivery of it; the digest of the body where there is none."""
    trigger = str(body.get("trigger_id") or "")
    if trigger:
        return f"slack:{trigger}"
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"slack:sha256:{digest}"
