"""The Slack surface: a slack-bolt AsyncApp whose listeners ack at once and hand the core
neutral requests, then deliver the core's replies back where the request came from.

Socket Mode (an app-level token, no public URL) is the default; HTTP mode serves bolt's
aiohttp app, which checks every request's signature and age before any listener runs.

One workspace (SLACK_BOT_TOKEN) is the default; with `[slack] distribution` any workspace
installs the bot by link and is served with its own token (adapters/slack/distribution.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render as slack_render
from adapters.slack import translate
from adapters.slack.http import Door
from adapters.slack.intake import Arrivals, JournalFirstHandler, journaled, request_id
from adapters.slack.moderators import Moderators
from adapters.slack.replies import Origin, Replies, Responder, form_context
from adapters.slack.settings import SlackSettings
from adapters.slack.transport import (
    FAILURES,
    ShortRateLimitRetryHandler,
    SlackTransport,
    delivery_error,
)
from bot.app import App
from bot.errors import Failure, StartupError
from bot.model import (
    FormErrors,
    OpenForm,
    Reply,
    Submission,
)

if TYPE_CHECKING:
    from adapters.slack.distribution import Credentials, Distribution, TeamTransport

log = logging.getLogger(__name__)

PLATFORM = "slack"
ACK_BUDGET = 2.5  # seconds a form submission may take before the modal is closed anyway
# Requests worked on at once after their ack; the rest wait their turn in arrival order.
# Unbounded, a burst of votes fills the event loop with replies and the acks of later
# clicks queue behind them (p50 20-60 ms at 1,200 clicks/s, against 3-6 ms bounded).
WORK_SLOTS = 32
_ANY = re.compile(r".*")


@dataclass(frozen=True)
class Tokens:
    bot: str
    app: str = ""
    signing_secret: str = ""


class SlackSurface:
    def __init__(
        self,
        core: App,
        settings: SlackSettings,
        tokens: Tokens,
        api_url: str,
        mode: str,
        port: int,
        creds: Credentials | None = None,
    ) -> None:
        self.core = core
        # Slack has no /help: the core's texts name /itsm, Slack's own help command.
        core.name_surface(PLATFORM, translate.help_command(), translate.WORKSPACE_WORDS)
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
        self._outbox_client = outbox_client
        single = SlackTransport(outbox_client, settings.pace)
        self.transport: SlackTransport | TeamTransport = single
        self.moderators = Moderators(
            self.client,
            settings.moderator_users,
            settings.moderator_group,
            settings.moderator_cache,
        )
        self._identity: AuthorizeResult | None = None  # the bot's, from auth.test
        self._identity_lock = asyncio.Lock()
        # Install by link: each workspace's own token, from the installation store.
        self.distribution: Distribution | None = None
        bolt_auth: dict[str, Any] = {"authorize": lambda **_: self._authorize()}
        if creds is not None:
            from adapters.slack.distribution import Distribution

            self.distribution = Distribution(self, creds, api_url)
            self.transport = self.distribution.transport
            bolt_auth = self.distribution.bolt_options()
        self.bolt = AsyncApp(
            # Named, so bolt does not name the app after its caller's file by inspect.stack(),
            # which reads the source of every file on the stack into linecache (~0.8 MB kept).
            name="itsm-bot",
            # No token of bolt's own: every request is authorized by `_authorize`, from the
            # one auth.test made at start. Bolt's own single-workspace authorization calls
            # auth.test for every request that arrives before its first answer came back: a
            # burst of clicks after a restart made a thousand of them.
            client=AsyncWebClient(base_url=api_url),
            **bolt_auth,  # bolt passes the authorize function's arguments by name
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
        if self.distribution is not None:
            self.distribution.listen()
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self._work: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(WORK_SLOTS)
        self.arrivals = Arrivals()
        self.replies = Replies(self.client, single)
        self._journaled: set[str] = set()  # taken at the socket, before bolt saw them

    # --- Life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        # One session for every call while connected, so connections (and TLS) are reused;
        # bolt hands it on to the clients it makes for each request. The SDK applies its
        # timeout only to sessions it makes itself, so this one carries it.
        timeout = aiohttp.ClientTimeout(total=self.client.timeout)
        self.session = aiohttp.ClientSession(timeout=timeout)
        self.client.session = self._outbox_client.session = self.bolt.client.session = self.session
        web_server = self._web_server()
        if self.distribution is None:
            await self.check_token()
        else:
            await self.distribution.start(web_server)
        self.core.outbox.attach(self.transport)
        if self.mode == "http" and self.distribution is not None and web_server is not None:
            # One public address for everything Slack sends: the web server's.
            door = Door(self.bolt, self._tokens.signing_secret, first=self)
            self.distribution.host(web_server, [("POST", self.settings.path, door.handle)])
            self.port = web_server.port
        elif self.mode == "socket":
            self._socket = JournalFirstHandler(self, self.bolt, app_token=self._tokens.app)
            await self._socket.connect_async()
            log.info("slack: connected in Socket Mode")
        else:
            # Replays, malformed: 4xx; commands and clicks journaled and acked at the door.
            door = Door(self.bolt, self._tokens.signing_secret, first=self)
            door_app = door.web_app(self.settings.path)
            if self.distribution is not None:  # no web server: the install routes are here
                for method, path, handler in self.distribution.routes():
                    door_app.router.add_route(method, path, handler)
            runner = web.AppRunner(door_app, access_log=None)
            self._runner = runner
            await runner.setup()
            await web.TCPSite(runner, self.settings.host, self.port).start()
            self.port = runner.addresses[0][1]  # the real one when 0 asked for any
            log.info(
                "slack: listening for HTTP requests on port %d%s", self.port, self.settings.path
            )
        await self.replay()

    def _web_server(self) -> Any:
        """The bot's web server if it runs (the `[web]` console), else None."""
        web_feature = self.core.features.get("web")
        return getattr(web_feature, "server", None)

    async def _moderators(self, workspace: str) -> Moderators:
        """Who checks moderators in `workspace` (with its own token when installed by link)."""
        if self.distribution is None:
            return self.moderators
        made = await self.distribution.workspaces.get(workspace)
        return made.moderators if made is not None else self.moderators

    async def deliver(self, replies: list[Reply], origin: Origin) -> None:
        """Send replies back, with the token of the workspace they answer."""
        if self.distribution is None:
            await self.replies.deliver(replies, origin)
        elif made := await self.distribution.workspaces.get(origin.channel.workspace):
            await made.replies.deliver(replies, origin)

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
        if self.distribution is not None:
            self.distribution.unhost()
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._work:
            await asyncio.gather(*self._work, return_exceptions=True)
        if self.session is not None:
            self.client.session = self._outbox_client.session = self.bolt.client.session = None
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
        self.arrivals.arrived()
        held = await self.core.intake.hold(PLATFORM, rid, journaled(body))
        if not held:
            log.info("slack: request %s arrived again; answered once", rid)
            return None
        return rid

    async def take_first(self, body: dict[str, Any]) -> bool:
        """Journal a Socket Mode request before bolt sees it; False if it came before (or
        comes from a workspace without the bot: bolt would refuse it after the journal)."""
        if self.distribution is not None and not await self.distribution.installed(body):
            return False
        rid = await self._taken(body)
        if rid is None:
            return False
        self._journaled.add(rid)
        return True

    async def _on_command(self, ack: Any, body: dict[str, Any]) -> None:
        rid = await self._taken(body)
        await ack()
        if rid is not None:
            self._track(self._handled(rid, self._command(body, self._responder(body))))

    async def _command(self, body: dict[str, Any], respond: Responder | None) -> None:
        moderators = await self._moderators(str(body.get("team_id", "")))
        moderator = await moderators.check(str(body.get("user_id", "")))
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
        moderators = await self._moderators(action.channel.workspace)
        action.moderator_check = functools.partial(moderators.check, user_id)
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
            origin = self._form_origin(sub, meta)
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
        origin = self._form_origin(sub, meta)
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
            following = slack_render.render_form(form, form_context(replies[0], origin))
            await ack(response_action="update", view=following)
            replies = replies[1:]
        else:
            await ack()
        if replies:
            self._track(self.deliver(replies, origin))

    def _form_origin(self, sub: Submission, meta: dict[str, str]) -> Origin:
        """Where a form's answers go: back to the card it was opened from, when that card
        is one only the member sees (through the response_url it left in the form)."""
        card = meta.get("r", "")
        respond = Responder(card, self.session) if card else None
        return Origin(sub.channel, sub.user, respond, "", meta.get("m", ""), bool(card))

    async def _submit(self, sub: Submission) -> list[Reply]:
        moderators = await self._moderators(sub.user.workspace)
        sub.is_moderator = await moderators.check(sub.user.user)
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
            await self.arrivals.settled()
            async with self._slots:
                await coro
        except Exception:
            log.exception("slack: work after the ack failed")

    # --- Replies -------------------------------------------------------------------------
