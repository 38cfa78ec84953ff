"""The Slack surface: a slack-bolt AsyncApp whose listeners ack at once and hand the core
neutral requests, then deliver the core's replies back where the request came from.

Socket Mode (an app-level token, no public URL) is the default; HTTP mode serves bolt's
aiohttp app, which checks every request's signature and age before any listener runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import render as slack_render
from adapters.slack import translate
from adapters.slack.moderators import Moderators
from adapters.slack.settings import SlackSettings
from adapters.slack.transport import (
    FAILURES,
    ShortRateLimitRetryHandler,
    SlackTransport,
    delivery_error,
    upload,
)
from bot.app import App
from bot.errors import ConfigError, DeliveryError, Failure, StartupError
from bot.model import (
    ChannelRef,
    Ephemeral,
    FormErrors,
    OpenForm,
    Post,
    Public,
    Reply,
    Submission,
    UpdateMessage,
    UserRef,
)

log = logging.getLogger(__name__)

PLATFORM = "slack"
ACK_BUDGET = 2.5  # seconds a form submission may take before the modal is closed anyway
# Requests worked on at once after their ack; the rest wait their turn in arrival order.
# Unbounded, a burst of votes fills the event loop with replies and the acks of later
# clicks queue behind them (p50 20-60 ms at 1,200 clicks/s, against 3-6 ms bounded).
WORK_SLOTS = 32
# Work after the ack waits while requests are still arriving (until none came for QUIET
# seconds, at most ARRIVALS_FIRST), so that in a burst every click is journaled and
# acknowledged first and the votes are counted after.
ARRIVALS_FIRST = 0.25
QUIET = 0.01
_ANY = re.compile(r".*")
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
        self._webhook = AsyncWebhookClient(url, session=session)

    async def __call__(self, **message: Any) -> None:
        response = await self._webhook.send(**message)
        if response.status_code != 200:
            log.warning("slack: response_url answered %s: %s", response.status_code, response.body)


@dataclass(frozen=True)
class Tokens:
    bot: str
    app: str = ""
    signing_secret: str = ""


class SlackSurface:
    def __init__(
        self, core: App, settings: SlackSettings, tokens: Tokens, api_url: str, mode: str, port: int
    ) -> None:
        self.core = core
        self.settings = settings
        self.mode = mode
        self.port = port
        self._tokens = tokens
        self.session: aiohttp.ClientSession | None = None  # opened by start()
        self.client = AsyncWebClient(token=tokens.bot, base_url=api_url)
        self.client.retry_handlers.append(ShortRateLimitRetryHandler(settings.rate_limit_wait))
        # The outbox's own client retries nothing by itself: a post whose answer was lost
        # must be looked up before it is sent again, and a 429 holds back only its lane.
        outbox_client = AsyncWebClient(token=tokens.bot, base_url=api_url, retry_handlers=[])
        self.transport = SlackTransport(outbox_client, settings.pace)
        self.moderators = Moderators(
            self.client,
            settings.moderator_users,
            settings.moderator_group,
            settings.moderator_cache,
        )
        self._identity: AuthorizeResult | None = None  # the bot's, from auth.test
        self._identity_lock = asyncio.Lock()
        self.bolt = AsyncApp(
            # No token of bolt's own: every request is authorized by `_authorize`, from the
            # one auth.test made at start. Bolt's own single-workspace authorization calls
            # auth.test for every request that arrives before its first answer came back: a
            # burst of clicks after a restart made a thousand of them.
            client=AsyncWebClient(base_url=api_url),
            authorize=lambda **_: self._authorize(),  # bolt passes arguments by name
            signing_secret=tokens.signing_secret or None,
            request_verification_enabled=mode == "http",
            # Answer as soon as a listener returns: every listener acks and hands its work
            # to a task first, and otherwise bolt polls for the ack every 10 ms.
            process_before_response=True,
        )
        self.bolt.command(_ANY)(self._on_command)
        self.bolt.action(_ANY)(self._on_action)
        self.bolt.view(_ANY)(self._on_view)
        self.bolt.error(self._on_error)
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self._work: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(WORK_SLOTS)
        self._last_arrival = 0.0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._watch: asyncio.Task[None] | None = None
        self._journaled: set[str] = set()  # taken at the socket, before bolt saw them

    # --- Life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        # One session for every call while connected, so connections (and TLS) are reused;
        # bolt hands it on to the clients it makes for each request. The SDK applies its
        # timeout only to sessions it makes itself, so this one carries it.
        timeout = aiohttp.ClientTimeout(total=self.client.timeout)
        self.session = aiohttp.ClientSession(timeout=timeout)
        self.client.session = self.transport.client.session = self.bolt.client.session = (
            self.session
        )
        await self.check_token()
        self.core.outbox.attach(self.transport)
        if self.mode == "socket":
            self._socket = JournalFirstHandler(self, self.bolt, app_token=self._tokens.app)
            await self._socket.connect_async()
            log.info("slack: connected in Socket Mode")
        else:
            runner = web.AppRunner(self.bolt.web_app(path=self.settings.path), access_log=None)
            self._runner = runner
            await runner.setup()
            await web.TCPSite(runner, self.settings.host, self.port).start()
            self.port = runner.addresses[0][1]  # the real one when 0 asked for any
            log.info(
                "slack: listening for HTTP requests on port %d%s", self.port, self.settings.path
            )
        await self.replay()

    async def check_token(self) -> None:
        """Ask Slack whether it takes the bot token (auth.test): a refusal stops start-up
        with the line that says what to fix; an unreachable Slack only delays the posts."""
        try:
            await self._authorize()
        except FAILURES as exc:
            error = delivery_error(exc)
            if error.failure is Failure.CREDENTIALS:
                raise StartupError(str(error)) from None
            log.warning("slack: could not check the bot token yet: %s", error)

    async def _authorize(self) -> AuthorizeResult:
        """Who the bot is in its workspace, asked of Slack once (and again only if start-up
        could not reach it)."""
        async with self._identity_lock:
            if self._identity is None:
                response = await self.client.auth_test()
                self._identity = AuthorizeResult.from_auth_test_response(
                    auth_test_response=response, bot_token=self._tokens.bot
                )
        return self._identity

    async def stop(self) -> None:
        self.core.outbox.detach(self.transport)
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._work:
            await asyncio.gather(*self._work, return_exceptions=True)
        if self.session is not None:
            self.client.session = self.transport.client.session = self.bolt.client.session = None
            await self.session.close()
            self.session = None

    async def settled(self) -> None:
        """Wait for work still running after its ack (tests, shutdown)."""
        while self._work:
            await asyncio.gather(*list(self._work), return_exceptions=True)

    # --- Listeners -----------------------------------------------------------------------

    def _responder(self, body: dict[str, Any]) -> Responder | None:
        url = str(body.get("response_url") or "")
        return Responder(url, self.session) if url else None

    async def _taken(self, body: dict[str, Any]) -> str | None:
        """Journal a request before it is acknowledged; its id, or None if Slack delivered
        it before (acknowledge it again and do nothing)."""
        rid = request_id(body)
        if rid in self._journaled:
            self._journaled.discard(rid)
            return rid
        self._arrived()
        held = await self.core.intake.hold(PLATFORM, rid, journaled(body))
        if not held:
            log.info("slack: request %s arrived again; answered once", rid)
            return None
        return rid

    async def take_first(self, body: dict[str, Any]) -> bool:
        """Journal a Socket Mode request before bolt sees it; False if it came before."""
        rid = await self._taken(body)
        if rid is None:
            return False
        self._journaled.add(rid)
        return True

    def _arrived(self) -> None:
        self._last_arrival = asyncio.get_running_loop().time()
        if self._quiet.is_set():
            self._quiet.clear()
            self._watch = asyncio.create_task(self._until_quiet())

    async def _until_quiet(self) -> None:
        loop = asyncio.get_running_loop()
        while (idle := loop.time() - self._last_arrival) < QUIET:
            await asyncio.sleep(QUIET - idle)
        self._quiet.set()

    async def _on_command(self, ack: Any, body: dict[str, Any]) -> None:
        rid = await self._taken(body)
        await ack()
        if rid is not None:
            self._track(self._handled(rid, self._command(body, self._responder(body))))

    async def _command(self, body: dict[str, Any], respond: Responder | None) -> None:
        moderator = await self.moderators.check(str(body.get("user_id", "")))
        inv = translate.invocation(body, moderator)
        replies = await self.core.invoke(inv)
        origin = Origin(inv.channel, inv.user, respond, str(body.get("trigger_id", "")))
        await self.deliver(replies, origin)

    async def _on_action(self, ack: Any, body: dict[str, Any]) -> None:
        rid = await self._taken(body)
        await ack()
        if rid is not None:
            self._track(self._handled(rid, self._action(body, self._responder(body), rid)))

    async def _action(self, body: dict[str, Any], respond: Responder | None, rid: str) -> None:
        user_id = str((body.get("user") or {}).get("id", ""))
        action = translate.action(body)
        if action is None:
            return  # a link button, or a control outside a message
        action.request_id = rid
        action.moderator_check = functools.partial(self.moderators.check, user_id)
        replies = await self.core.act(action)
        container = body.get("container") or {}
        origin = Origin(
            action.channel,
            action.user,
            respond,
            str(body.get("trigger_id", "")),
            action.message_id,
            bool(container.get("is_ephemeral")),
        )
        await self.deliver(replies, origin)

    async def _handled(self, rid: str, work: Any) -> None:
        """Run a journaled request's work; once it is done, it is not run again at start."""
        await work
        await self.core.intake.done(rid)

    async def replay(self) -> int:
        """Handle again what was acknowledged but not handled when the bot last stopped
        (a crash right after the ack). Answers go where they can still reach: a
        response_url lives for half an hour, after that only the effect remains."""
        held = await self.core.intake.held(PLATFORM)
        for rid, body in held:
            self._track(self._handled(rid, self._again(rid, body)))
        if held:
            log.warning("slack: handling %d request(s) again that a stop interrupted", len(held))
        return len(held)

    async def _again(self, rid: str, body: dict[str, Any]) -> None:
        kind = body.get("type")
        if kind == "block_actions":
            await self._action(body, self._responder(body), rid)
        elif kind == "view_submission":
            sub = translate.submission(body)
            meta = translate.read_form_metadata(
                (body.get("view") or {}).get("private_metadata", "")
            )
            origin = Origin(sub.channel, sub.user, message_ts=meta.get("m", ""))
            replies = [r for r in await self._submit(sub) if not isinstance(r, OpenForm)]
            await self.deliver(replies, origin)
        elif body.get("command"):
            await self._command(body, self._responder(body))

    async def _on_view(self, ack: Any, body: dict[str, Any]) -> None:
        """A modal submitted: errors and a follow-up form must travel in the ack itself, so
        the whole answer, the moderator check included, gets ACK_BUDGET and no more."""
        rid = await self._taken(body)
        if rid is None:
            await ack()
            return
        view = body.get("view") or {}
        sub = translate.submission(body)
        meta = translate.read_form_metadata(view.get("private_metadata", ""))
        origin = Origin(sub.channel, sub.user, message_ts=meta.get("m", ""))
        work = asyncio.create_task(self._submit(sub))
        done, _ = await asyncio.wait({work}, timeout=ACK_BUDGET)
        if not done:
            await ack()
            self._track(self._handled(rid, self._late(work, origin)))
            return
        await self.core.intake.done(rid)
        replies = work.result()
        errors: dict[str, str] = {}
        for reply in replies:
            if isinstance(reply, FormErrors):
                errors.update(reply.errors)
        inline = slack_render.form_errors(errors, view)
        if inline:
            await ack(response_action="errors", errors=inline)
            replies = [r for r in replies if not isinstance(r, FormErrors)]
        elif replies and isinstance(replies[0], OpenForm):
            form = replies[0].form
            following = slack_render.render_form(form, self._form_context(replies[0], origin))
            await ack(response_action="update", view=following)
            replies = replies[1:]
        else:
            await ack()
        if replies:
            self._track(self.deliver(replies, origin))

    async def _submit(self, sub: Submission) -> list[Reply]:
        sub.is_moderator = await self.moderators.check(sub.user.user)
        return await self.core.submit(sub)

    async def _late(self, work: asyncio.Task[list[Reply]], origin: Origin) -> None:
        await self.deliver(await work, origin)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack: a request of type %s failed: %r", body.get("type", "?"), error)

    def track(self, coro: Any) -> None:
        """Run `coro` after the acks of what is arriving (see `_guarded`)."""
        self._track(coro)

    def _track(self, coro: Any) -> None:
        task = asyncio.create_task(self._guarded(coro))
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _guarded(self, coro: Any) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), ARRIVALS_FIRST)
            async with self._slots:
                await coro
        except Exception:
            log.exception("slack: work after the ack failed")

    # --- Replies -------------------------------------------------------------------------

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
            view = slack_render.render_form(reply.form, self._form_context(reply, origin))
            await self.client.views_open(trigger_id=origin.trigger_id, view=view)
        elif isinstance(reply, UpdateMessage):
            await self._update(reply.post, origin)
        elif isinstance(reply, FormErrors):
            await self._ephemeral(reply.post(), origin)

    def _form_context(self, reply: OpenForm, origin: Origin) -> str:
        return translate.form_metadata(reply.form.value, origin.channel, origin.message_ts)

    async def _ephemeral(self, post: Post, origin: Origin) -> None:
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
        if post.attachments:
            await self._private_files(post, origin)

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
        else:
            log.warning("slack: nothing to update for %s", origin.user.key)

    async def _private_files(self, post: Post, origin: Origin) -> None:
        """Files meant for one member go to a direct message with them."""
        im = await self.transport.conversation(ChannelRef.direct(origin.user))
        await upload(self.client, im.channel, post.attachments)


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


def create(core: App, settings: SlackSettings, env: Mapping[str, str]) -> SlackSurface:
    """Build the surface from configuration and the environment's tokens (never logged)."""
    bot_token = env.get("SLACK_BOT_TOKEN", "")
    app_token = env.get("SLACK_APP_TOKEN", "")
    secret = env.get("SLACK_SIGNING_SECRET", "")
    if not bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN must be set to the app's bot token (xoxb-...).")
    mode = settings.mode
    if mode == "socket" and not app_token and secret:
        mode = "http"  # only a signing secret given: the deployment is behind a URL
    if mode == "socket" and not app_token.startswith("xapp-"):
        raise ConfigError(
            "Socket Mode needs SLACK_APP_TOKEN (an app-level token, xapp-..., with the "
            "connections:write scope); or set SLACK_SIGNING_SECRET for HTTP mode."
        )
    if mode == "http" and not secret:
        raise ConfigError("HTTP mode needs SLACK_SIGNING_SECRET (Basic Information page).")
    port = settings.port
    if env.get("PORT"):
        try:
            port = int(env["PORT"])
        except ValueError:
            raise ConfigError(f"PORT must be a number, not {env['PORT']!r}") from None
    api_url = env.get("SLACK_API_URL") or settings.api_url
    if not api_url.endswith("/"):
        api_url += "/"
    return SlackSurface(core, settings, Tokens(bot_token, app_token, secret), api_url, mode, port)
