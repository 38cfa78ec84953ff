"""The one web server in the bot's process: the moderators' console, its sign-in, and any
other HTTP route a feature adds (calendar feeds).

Pages are small: each page module (bot/web/pages/) declares its routes on this server with
`page`, `get` and `post`; the server does everything they share. A page handler receives
a `Visit`: who is signed in, their community and its workspaces, and the helpers to render
a template or act. Every POST needs a moderator's session and the session's CSRF token;
every GET needs a session, and a member's session only where the page lets members read.
Acting goes through the bot's own commands (`Visit.command`), so a change made here is
the change `/feed pause` or `/event edit` makes in chat, announcements and all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from bot.communities import member_of
from bot.model import ChannelRef, Ephemeral, Invocation, Public, Reply, UpdateMessage, UserRef
from bot.timeutil import duration_words, local
from bot.web.render import post_html, text_html
from bot.web.signin import Session, SignIn

if TYPE_CHECKING:
    from bot.app import App
    from bot.communities import Community
    from bot.web.settings import WebSettings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "itsm_session"
Handler = Callable[["Visit"], Awaitable[web.StreamResponse]]


@dataclass
class NavItem:
    path: str
    title: str
    members: bool  # members (not only moderators) may read it


@dataclass
class Visit:
    """One request by a signed-in member, as a page handler sees it."""

    request: web.Request
    server: WebServer
    session: Session
    community: Community
    workspaces: list[tuple[str, str]]
    said: list[Markup] = field(default_factory=list)
    zone: str = "UTC"  # the signed-in member's zone for the page's times (bot/members.py)

    @property
    def app(self) -> App:
        return self.server.app

    @property
    def moderator(self) -> bool:
        return self.session.moderator

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("HX-Request") == "true"

    def owns(self, channel: ChannelRef) -> bool:
        """Whether a channel is this community's (the wall between communities)."""
        return (channel.platform, channel.workspace) in self.workspaces

    def user(self) -> UserRef:
        platform, workspace, user = self.session.member.split(":", 2)
        return UserRef(platform, workspace, user, self.session.name)

    async def form(self) -> dict[str, str]:
        data = await self.request.post()
        return {k: v for k, v in data.items() if isinstance(v, str)}

    async def command(self, path: tuple[str, ...], where: ChannelRef, /, **options: Any) -> list[Reply]:  # fmt: skip
        """Run one of the bot's commands as this moderator, as if typed in `where` (which
        must be the community's), and keep what it answered to show on the next page.
        `where` is positional only: a command may have a `channel` option of its own."""
        if not self.owns(where):
            raise web.HTTPNotFound()
        replies = await self.app.invoke(
            Invocation(path, self.user(), where, self.session.moderator, options=options)
        )
        self.tell(replies)
        return replies

    def tell(self, replies: list[Reply]) -> None:
        for reply in replies:
            if isinstance(reply, Ephemeral | Public | UpdateMessage):
                self.said.append(post_html(reply.post))
        self.server.flash(self.session, self.said)

    def render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        return self.server.render(template, self, status=status, **values)

    def back(self, path: str) -> web.StreamResponse:
        """After a POST: to the page again (htmx follows it, a plain form reloads)."""
        if self.htmx:
            return web.Response(headers={"HX-Redirect": path})
        raise web.HTTPSeeOther(path)


class WebServer:
    def __init__(self, app: App, settings: WebSettings, signin: SignIn) -> None:
        self.app = app
        self.settings = settings
        self.signin = signin
        self.nav: list[NavItem] = []
        self.base_url = settings.base_url()
        self._zone = "UTC"  # of the page being rendered (rendering never awaits)
        self._flashes: dict[str, list[Markup]] = {}
        self._runner: web.AppRunner | None = None
        # Routes an adapter hosts once it connects (Slack's install and events), after the
        # router is frozen: found by `_guard` before aiohttp's own routing answers.
        self._hosted: dict[tuple[str, str], Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}  # fmt: skip
        self.web = web.Application(middlewares=[self._guard])
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["markup"] = text_html
        self.templates.filters["post"] = post_html
        self.templates.filters["when"] = self._when
        self.templates.filters["duration"] = duration_words
        self.web.router.add_static("/static", HERE / "static", append_version=True)
        self.web.router.add_get("/", self._home)
        self.web.router.add_get("/signin/{token}", self._signin_page)
        self.web.router.add_post("/signin/{token}", self._signin)
        self.web.router.add_post("/signout", self._signout)

    # --- Declaring routes (page modules) --------------------------------------------------

    def page(self, path: str, title: str, handler: Handler, members: bool = False) -> None:
        """A page in the navigation."""
        self.nav.append(NavItem(path, title, members))
        self.get(path, handler, members)

    def get(self, path: str, handler: Handler, members: bool = False) -> None:
        self.web.router.add_get(path, self._visit(handler, members))

    def post(self, path: str, handler: Handler) -> None:
        """A change: moderators only, CSRF-checked by `_guard`."""
        self.web.router.add_post(path, self._visit(handler, members=False))

    def public(self, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:  # fmt: skip
        """A route anyone may open, with no session (a calendar feed behind its secret URL)."""
        self.web.router.add_get(path, handler)

    def host(self, method: str, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:  # fmt: skip
        """A route with no session that an adapter adds while the server runs (Slack's
        `/slack/install`, `/slack/oauth_redirect` and `/slack/events`); `unhost` removes it."""
        self._hosted[(method.upper(), path)] = handler

    def unhost(self, method: str, path: str) -> None:
        self._hosted.pop((method.upper(), path), None)

    # --- Serving ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.web, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        port = self.port
        self.base_url = self.settings.base_url(port)
        log.warning("web console listening on %s:%s (%s)", self.settings.host, port, self.base_url)

    @property
    def port(self) -> int:
        assert self._runner is not None
        for address in self._runner.addresses:
            return int(address[1])
        return self.settings.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _now(self) -> float:
        return self.app.clock.now().timestamp()

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- What every request shares ------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        handler = self._hosted.get((request.method, request.path), handler)
        response = await handler(request)
        # No page of the console may be framed, cached by a proxy or sniffed as another type.
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline';"
            " frame-ancestors 'none'; form-action 'self'",
        )
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def _visit(self, handler: Handler, members: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:  # fmt: skip
        async def serve(request: web.Request) -> web.StreamResponse:
            session = self.signin.session(request.cookies.get(COOKIE), self._now())
            if session is None:
                return self._refuse(request, 401, "You are not signed in, or your session has ended.")  # fmt: skip
            if request.method != "GET":
                data = await request.post()
                token = request.headers.get("X-CSRF-Token") or data.get("csrf")
                if not self.signin.csrf_ok(session, token if isinstance(token, str) else None):
                    return self._refuse(request, 403, "This form has expired. Reload the page and try again.")  # fmt: skip
            if not session.moderator and not members:
                return self._refuse(request, 403, "This page is for the community's moderators.")  # fmt: skip
            try:
                community = await self.app.communities.get(session.community_id)
            except KeyError:
                return self._refuse(request, 401, "Your community is no longer served here.")
            workspaces = await self.app.communities.workspaces(community.id)
            zone = await self._member_zone(session, community.timezone)
            visit = Visit(request, self, session, community, workspaces, zone=zone)
            visit.said.extend(self._flashes.pop(session.sid, []))
            return await handler(visit)

        return serve

    async def _member_zone(self, session: Session, community_zone: str) -> str:
        """The zone the signed-in member sees times in: their own (or their platform's,
        as /my timezone says), else the community's."""
        member = member_of(session.member)
        found = None
        if member is not None and self.app.member_zone is not None:
            found = await self.app.member_zone(member)
        return found or community_zone

    def flash(self, session: Session, said: list[Markup]) -> None:
        """What an action answered, kept for the page the browser is sent to next."""
        if said:
            self._flashes[session.sid] = list(said)[-5:]

    def render(self, template: str, visit: Visit | None, status: int = 200, **values: Any) -> web.Response:  # fmt: skip
        context = {
            "visit": visit,
            "nav": self._nav_for(visit),
            "csrf": self.signin.csrf(visit.session) if visit else "",
            "path": visit.request.path if visit else "",
            **values,
        }
        self._zone = visit.zone if visit else "UTC"
        html = self.templates.get_template(template).render(context)
        return web.Response(text=html, status=status, content_type="text/html")

    def _when(self, ts: float | None, zone: str | None = None) -> Markup:
        """A stored moment (epoch seconds) in the member's zone, machine-readable too."""
        if ts is None:
            return Markup("never")
        moment = datetime.fromtimestamp(ts, UTC)
        shown = local(moment, zone or self._zone).strftime("%Y-%m-%d %H:%M")
        return Markup(f'<time datetime="{moment.isoformat()}">{shown}</time>')

    def _nav_for(self, visit: Visit | None) -> list[NavItem]:
        if visit is None:
            return []
        return [n for n in self.nav if visit.moderator or n.members]

    def _refuse(self, request: web.Request, status: int, why: str) -> web.Response:
        return self.render("refused.html", None, status=status, why=why)

    # --- Sign-in ---------------------------------------------------------------------------

    async def _home(self, request: web.Request) -> web.StreamResponse:
        session = self.signin.session(request.cookies.get(COOKIE), self._now())
        if session is None:
            return self._refuse(request, 401, "Sign in with the link the bot gives you: type /web in chat.")  # fmt: skip
        first = next((n for n in self.nav if session.moderator or n.members), None)
        if first is None:
            return self._refuse(request, 403, "There is nothing here for members yet.")
        raise web.HTTPSeeOther(first.path)

    async def _signin_page(self, request: web.Request) -> web.StreamResponse:
        """Opening the link only asks: link previews (Slack's, Discord's) open links too,
        and must not use up a one-time link. The button below signs in."""
        token = request.match_info["token"]
        now = self.app.clock.now().timestamp()
        if not await self.signin.is_usable(token, now):
            return self._refuse(request, 410, "This sign-in link was used already or has expired. Type /web in chat for a new one.")  # fmt: skip
        return self.render("signin.html", None, token=token)

    async def _signin(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        session = await self.signin.use_link(token, self.app.clock.now().timestamp())
        if session is None:
            return self._refuse(request, 410, "This sign-in link was used already or has expired. Type /web in chat for a new one.")  # fmt: skip
        log.info("web console: %s signed in to community %s", session.member, session.community_id)
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            COOKIE, self.signin.cookie(session, self._now()), max_age=int(self.signin.session_seconds),
            httponly=True, samesite="Lax", secure=self.base_url.startswith("https://"), path="/",
        )  # fmt: skip
        raise response

    async def _signout(self, request: web.Request) -> web.StreamResponse:
        session = self.signin.session(request.cookies.get(COOKIE), self._now())
        data = await request.post()
        token = data.get("csrf")
        if session is not None and not self.signin.csrf_ok(session, token if isinstance(token, str) else None):  # fmt: skip
            return self._refuse(request, 403, "This form has expired. Reload the page and try again.")  # fmt: skip
        response = web.HTTPSeeOther("/")
        response.del_cookie(COOKIE, path="/")
        raise response
