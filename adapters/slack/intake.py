"""Durable intake on Slack: what is acknowledged is journaled first (bot/intake.py).

In Socket Mode a command or a click is journaled and acknowledged before bolt sees it; a
form submission, whose ack carries the answer, goes through bolt's listener first. In HTTP
mode bolt checks the signature first and the listeners journal. The journal keeps what
handling a request again needs, under Slack's own id for it, so a request delivered twice
is handled once.
"""

from __future__ import annotations

import asyncio
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
# seconds, at most ARRIVALS_FIRST), so that in a burst every click is journaled and
# acknowledged first and the votes are counted after.
ARRIVALS_FIRST = 0.25
QUIET = 0.01


class Arrivals:
    """Whether requests are still arriving: work after the ack lets them go first."""

    def __init__(self) -> None:
        self._last = 0.0
        self._quiet = asyncio.Event()
        self._quiet.set()

    def arrived(self) -> None:
        self._last = asyncio.get_running_loop().time()
        if self._quiet.is_set():
            self._quiet.clear()
            asyncio.get_running_loop().create_task(self._until_quiet())

    async def settled(self) -> None:
        """Return once no request came for QUIET seconds, or after ARRIVALS_FIRST."""
        try:
            await asyncio.wait_for(self._quiet.wait(), ARRIVALS_FIRST)
        except TimeoutError:
            pass

    async def _until_quiet(self) -> None:
        loop = asyncio.get_running_loop()
        while (idle := loop.time() - self._last) < QUIET:
            await asyncio.sleep(QUIET - idle)
        self._quiet.set()


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
