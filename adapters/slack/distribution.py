"""Install by link (`[slack] distribution = true`): any Slack workspace adds the bot through
`/slack/install`, and the bot then acts in each with that workspace's own bot token.

- **The OAuth v2 flow** is slack-bolt's (`AsyncOAuthSettings`, its `AsyncOAuthFlow`):
  `GET /slack/install` answers with a redirect to Slack's authorize page carrying a fresh
  single-use `state` (also set as a cookie, which bolt checks came back from the same
  browser); `GET /slack/oauth_redirect?code=…&state=…` trades the code for the workspace's
  bot token (`oauth.v2.access`) and keeps it. Both are served by the bot's one web server
  when the console is on, else beside `/slack/events` in HTTP mode.
- **Tokens** live in `Installations` (adapters/slack/installations.py), sealed with
  `ITSM_BOT_SECRET_KEY`; the app's `SLACK_CLIENT_SECRET` comes from the environment only.
- **Every request** is authorized by `TeamAuthorize` with its workspace's token, and every
  reply and moderator check uses a client of that workspace (`Workspaces`); **every post**
  the outbox makes goes through `TeamTransport`, which picks the channel's workspace's.
- **Uninstalled or revoked** (`app_uninstalled`, `tokens_revoked` with a bot token): bolt's
  own listener deletes the installation, the workspace's clients are dropped, and its work
  stops (`workspace_left`). Its posts wait in the outbox and its data stays; installing it
  again resumes both.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.listener.async_builtins import AsyncTokenRevocationListeners
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.installations import Installations, OAuthStates
from adapters.slack.manifest import BOT_SCOPES, REDIRECT_PATH
from adapters.slack.moderators import Moderators
from adapters.slack.replies import Replies
from adapters.slack.translate import team_of
from adapters.slack.transport import ShortRateLimitRetryHandler, SlackTransport
from bot.errors import ConfigError, DeliveryError, Failure, StartupError
from bot.lanes import Engagement
from bot.model import ChannelRef, Post, UserRef
from bot.secretbox import SecretBox
from bot.tenancy import Tenancy

if TYPE_CHECKING:
    from adapters.slack.surface import SlackSurface

log = logging.getLogger(__name__)

PLATFORM = "slack"
INSTALL_PATH = "/slack/install"
STATE_SECONDS = 600  # bolt's default: an install started 10 minutes ago must start again
HELD_RETRY = 60.0  # seconds between two looks at a post of a workspace without the bot
Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    box: SecretBox


def credentials(client_id: str, env: Mapping[str, str]) -> Credentials:
    """The app's OAuth credentials and the key that seals tokens; a clear error for each
    one missing."""
    client_id = env.get("SLACK_CLIENT_ID") or client_id
    if not client_id:
        raise ConfigError(
            "[slack] distribution needs the app's Client ID: [slack] client_id or "
            "SLACK_CLIENT_ID (Basic Information → App Credentials)."
        )
    secret = env.get("SLACK_CLIENT_SECRET", "")
    if not secret:
        raise ConfigError(
            "[slack] distribution needs SLACK_CLIENT_SECRET in the environment "
            "(Basic Information → App Credentials); it is never read from the file."
        )
    return Credentials(client_id, secret, SecretBox.from_env(env))


@dataclass
class Workspace:
    """What the bot acts with in one workspace, all on that workspace's bot token."""

    client: AsyncWebClient  # replies (a short 429 waited out in place)
    transport: SlackTransport  # the outbox's posts (retries nothing by itself)
    moderators: Moderators
    replies: Replies


class Workspaces:
    """Each installed workspace's `Workspace`, made on first use from its stored token and
    dropped when the installation changes (a reinstall's new token, an uninstall)."""

    def __init__(self, store: Installations, surface: SlackSurface, api_url: str) -> None:
        self.store = store
        self.surface = surface
        self.api_url = api_url
        self._made: dict[str, Workspace] = {}

    async def get(self, team_id: str) -> Workspace | None:
        made = self._made.get(team_id)
        if made is None:
            bot = await self.store.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is None:
                return None
            made = self._made[team_id] = self._make(bot.bot_token)
        return made

    def forget(self, team_id: str) -> None:
        self._made.pop(team_id, None)

    def _make(self, token: str) -> Workspace:
        settings = self.surface.settings
        session = self.surface.session
        client = AsyncWebClient(token=token, base_url=self.api_url, session=session)
        client.retry_handlers.append(ShortRateLimitRetryHandler(settings.rate_limit_wait))
        outbox = AsyncWebClient(
            token=token, base_url=self.api_url, session=session, retry_handlers=[]
        )
        transport = SlackTransport(outbox, settings.pace)
        moderators = Moderators(
            client, settings.moderator_users, settings.moderator_group, settings.moderator_cache
        )
        return Workspace(client, transport, moderators, Replies(client, transport))


class TeamAuthorize(AsyncAuthorize):
    """Bolt's authorize for every request: the bot as installed in the request's workspace
    (None, so bolt refuses the request, for a workspace without the bot). Each workspace's
    is read and opened once, then kept until its installation changes (`forget`): a burst of
    clicks costs no database read or decryption each."""

    def __init__(self, store: Installations) -> None:
        self.store = store
        self._known: dict[str, Bot] = {}

    def forget(self, team_id: str) -> None:
        self._known.pop(team_id, None)

    async def __call__(
        self,
        *,
        context: Any,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
    ) -> AuthorizeResult | None:
        bot = self._known.get(team_id or "")
        if bot is None:
            bot = await self.store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None:
            log.info("slack: a request from workspace %s, which has not installed the bot", team_id)
            return None
        self._known[bot.team_id or ""] = bot
        return AuthorizeResult(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
        )


class TeamTransport:
    """The outbox's one Slack transport: each call goes through the transport of its
    channel's workspace (`ChannelRef.workspace` is the team id).

    A post for a workspace without an installation (uninstalled, not yet back) waits in its
    lane, looked at again every `HELD_RETRY` seconds. A token Slack refuses is one
    workspace's trouble, not the platform's: rather than the pause of every Slack post that
    a refused SLACK_BOT_TOKEN means, that workspace is taken as uninstalled (`on_refused`:
    its installation deleted, the core's `left`), and its posts wait for it to come back."""

    platform = "slack"
    threads = True

    def __init__(self, workspaces: Workspaces, pace: float) -> None:
        self.workspaces = workspaces
        self.pace = pace
        self.on_refused: Callable[[str, str], Awaitable[None]] | None = None

    async def send(self, channel: ChannelRef, post: Post, key: str, *, thread: str = "") -> str:
        return await self._call(channel.workspace, "send", channel, post, key, thread=thread)  # type: ignore[no-any-return]  # fmt: skip

    async def edit(
        self, channel: ChannelRef, message_id: str, post: Post, *, thread: str = ""
    ) -> None:
        await self._call(channel.workspace, "edit", channel, message_id, post, thread=thread)

    async def find(
        self, channel: ChannelRef, key: str, since: float, *, thread: str = ""
    ) -> str | None:
        return await self._call(channel.workspace, "find", channel, key, since, thread=thread)  # type: ignore[no-any-return]  # fmt: skip

    async def engagement(self, channel: ChannelRef, message_id: str) -> Engagement | None:
        return await self._call(channel.workspace, "engagement", channel, message_id)  # type: ignore[no-any-return]  # fmt: skip

    async def members(self, channel: ChannelRef) -> list[UserRef] | None:
        return await self._call(channel.workspace, "members", channel)  # type: ignore[no-any-return]  # fmt: skip

    async def member_zone(self, user: UserRef) -> str | None:
        return await self._call(user.workspace, "member_zone", user)  # type: ignore[no-any-return]  # fmt: skip

    async def _call(self, team_id: str, name: str, *args: Any, **options: Any) -> Any:
        workspace = await self.workspaces.get(team_id)
        if workspace is None:
            raise _held(team_id, "has not installed the bot (or removed it)")
        try:
            return await getattr(workspace.transport, name)(*args, **options)
        except DeliveryError as exc:
            if exc.failure is not Failure.CREDENTIALS:
                raise
            if self.on_refused is not None:
                await self.on_refused(team_id, "has a bot token Slack refuses")
            raise _held(team_id, "has a bot token Slack refuses") from None


def _held(team_id: str, why: str) -> DeliveryError:
    return DeliveryError(
        f"slack: workspace {team_id} {why}; its posts wait until it installs the bot again",
        Failure.RATE_LIMITED,
        retry_after=HELD_RETRY,
    )


class Distribution:
    """The install flow, the per-workspace tokens and the uninstall events, for one surface."""

    def __init__(self, surface: SlackSurface, creds: Credentials, api_url: str) -> None:
        core = surface.core
        self.surface = surface
        self.store = Installations(core.db, creds.box, core.clock)
        self.states = OAuthStates(core.db, core.clock, STATE_SECONDS)
        self.workspaces = Workspaces(self.store, surface, api_url)
        self.store.on_change = self._forget
        self.authorize = TeamAuthorize(self.store)
        self.transport = TeamTransport(self.workspaces, surface.settings.pace)
        self.transport.on_refused = self._refused_token
        self.creds = creds
        self.oauth_settings = self._oauth_settings()
        self._revocations = AsyncTokenRevocationListeners(self.store)
        self._hosted: list[tuple[Any, str, str]] = []  # (web server, method, path)

    def _forget(self, team_id: str) -> None:
        """An installation changed: what was made from its old token goes."""
        self.workspaces.forget(team_id)
        self.authorize.forget(team_id)

    def bolt_options(self) -> dict[str, Any]:
        """What bolt's AsyncApp is built with: our authorize, store and OAuth settings
        (given, bolt makes no file-based stores of its own from SLACK_CLIENT_ID/SECRET)."""
        return {
            "authorize": self.authorize,
            "installation_store": self.store,
            "oauth_settings": self.oauth_settings,
        }

    def _oauth_settings(self) -> AsyncOAuthSettings:
        """Bolt's settings; the redirect URI is set at `start`, once the address is known."""
        return AsyncOAuthSettings(
            client_id=self.creds.client_id,
            client_secret=self.creds.client_secret,
            scopes=list(BOT_SCOPES),
            user_scopes=[],
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            install_page_rendering_enabled=False,  # straight to Slack: the link is the button
            installation_store=self.store,
            installation_store_bot_only=True,
            state_store=self.states,
            state_expiration_seconds=STATE_SECONDS,
            callback_options=AsyncCallbackOptions(success=self._installed, failure=self._refused),
            logger=log,
        )

    def listen(self) -> None:
        """Bolt's listeners for the events that end an installation."""
        bolt = self.surface.bolt
        bolt.event("app_uninstalled")(self._uninstalled)
        bolt.event("tokens_revoked")(self._revoked)

    async def start(self, web_server: Any) -> None:
        """Ready the tables and serve the install routes: on the bot's web server when it
        runs (its public address is where Slack sends the installer back), else beside
        `/slack/events` in HTTP mode (the surface adds them to its own server)."""
        if web_server is None and self.surface.mode != "http":
            raise StartupError(
                "[slack] distribution serves /slack/install on the web server: set [web] "
                'enabled = true (and public_url), or [slack] mode = "http".'
            )
        await self.store.migrate()
        base_url = ""  # unknown: Slack sends the installer to the app's one redirect URL
        if web_server is not None:
            self.host(web_server, self.routes())
            base_url = web_server.base_url
        flow = self.surface.bolt.oauth_flow
        assert flow is not None
        redirect = base_url + REDIRECT_PATH if base_url else None
        flow.redirect_uri = flow.settings.redirect_uri = redirect
        flow.settings.authorize_url_generator.redirect_uri = redirect
        teams = await self.store.teams()
        await self._check_key(teams)
        log.warning("slack: installed in %d workspace(s); the install link is %s%s",
                    len(teams), base_url or "(this server)", INSTALL_PATH)  # fmt: skip

    async def _check_key(self, teams: list[tuple[str, str]]) -> None:
        """A key that does not open the stored tokens stops start-up, rather than every
        request and post failing after it."""
        if not teams:
            return
        try:
            await self.store.async_find_bot(enterprise_id=None, team_id=teams[0][0])
        except ValueError as exc:
            raise StartupError(
                f"{exc}: set it to the key the workspaces were installed with (a list of keys,"
                " comma-separated, to move to a new one)"
            ) from None

    def host(self, web_server: Any, routes: list[Route]) -> None:
        for method, path, handler in routes:
            web_server.host(method, path, handler)
            self._hosted.append((web_server, method, path))

    def unhost(self) -> None:
        for web_server, method, path in self._hosted:
            web_server.unhost(method, path)
        self._hosted.clear()

    async def installed(self, body: dict[str, Any]) -> bool:
        """Whether the workspace a request comes from has the bot installed."""
        team = team_of(body)
        if await self.workspaces.get(team) is not None:
            return True
        log.info("slack: a request from workspace %s, which has not installed the bot", team)
        return False

    def routes(self) -> list[Route]:
        return [("GET", INSTALL_PATH, self._install), ("GET", REDIRECT_PATH, self._redirect)]

    async def _install(self, request: web.Request) -> web.StreamResponse:
        flow = self.surface.bolt.oauth_flow
        assert flow is not None
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))  # fmt: skip

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        flow = self.surface.bolt.oauth_flow
        assert flow is not None
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))  # fmt: skip

    async def _installed(self, args: AsyncSuccessArgs) -> BoltResponse:
        """Bolt kept the installation: the workspace's work starts (again), and the
        installer sees bolt's own page, which opens Slack."""
        await workspace_joined(self.surface, args.installation)
        return await args.default.success(args)

    async def _refused(self, args: AsyncFailureArgs) -> BoltResponse:
        log.warning("slack: an install was refused: %s", args.reason)
        return await args.default.failure(args)

    async def _refused_token(self, team_id: str, why: str) -> None:
        """Slack refused a workspace's token (an uninstall whose event never came, while the
        bot was down): the installation is dead, so it goes as an uninstall does."""
        await self.store.async_delete_bot(enterprise_id=None, team_id=team_id)
        await workspace_left(self.surface, team_id, why)

    async def _uninstalled(self, ack: Any, context: Any) -> None:
        await ack()
        await self._revocations.handle_app_uninstalled_events(context)
        await workspace_left(self.surface, str(context.team_id or ""), "uninstalled the app")

    async def _revoked(self, ack: Any, event: dict[str, Any], context: Any) -> None:
        await ack()
        await self._revocations.handle_tokens_revoked_events(event, context)
        if (event.get("tokens") or {}).get("bot"):
            await workspace_left(self.surface, str(context.team_id or ""), "revoked its token")


async def workspace_left(surface: SlackSurface, team_id: str, why: str) -> None:
    """A workspace's installation is gone (its clients went with it, `on_change`): the
    core's `left` holds its work (its posts wait in the outbox, its data stays) until it installs the bot again."""
    if not team_id:
        return
    log.warning("slack: workspace %s %s; its work stops, its posts and data are kept", team_id, why)
    tenancy = surface.core.features.get("tenancy")
    if isinstance(tenancy, Tenancy):
        await tenancy.left(PLATFORM, team_id)


async def workspace_joined(surface: SlackSurface, installation: Installation) -> None:
    """A workspace installed the bot (again): the core's `joined` makes or wakes its
    community, lifts the hold on its posts and welcomes the installer."""
    team_id = str(installation.team_id or "")
    tenancy = surface.core.features.get("tenancy")
    if isinstance(tenancy, Tenancy):
        by = installation.user_id or ""
        await tenancy.joined(PLATFORM, team_id, by, name=installation.team_name or "")
