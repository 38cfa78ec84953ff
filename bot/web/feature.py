"""The web console as a feature: `/web` in chat for a sign-in link, and the server's life.

The server and its templates are imported only when `[web] enabled` (or `demo --web`)
turns it on: a bot without a console pays nothing for it at start-up or in memory.
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from bot import commands as cmd
from bot.app import Context, Feature
from bot.errors import UserError
from bot.model import Button, Ephemeral, Post, UserRef, inert, link
from bot.timeutil import duration_words
from bot.web.settings import WebSettings
from bot.web.signin import MIGRATIONS, SECRET_ENV, SignIn

if TYPE_CHECKING:
    from bot.web.server import WebServer

log = logging.getLogger(__name__)


class Web(Feature):
    name = "web"
    migrations = MIGRATIONS
    Settings = WebSettings

    server: WebServer | None = None

    def register(self) -> None:
        self.app.command(cmd.Command(
            ("web",), "A private link that signs you in to the web console", self.link,
            examples=["/web"],
        ))  # fmt: skip

    async def start(self) -> None:
        settings: WebSettings = self.settings
        if not settings.enabled:
            return
        from bot.web.pages import add_pages
        from bot.web.server import WebServer

        signin = SignIn(self.app.db, await self._secret(), settings.session.total_seconds())
        self.server = WebServer(self.app, settings, signin)
        add_pages(self.server)
        for feature in self.app.features.values():
            # A feature may serve routes of its own (events: calendar feeds).
            add_routes = getattr(feature, "web_routes", None)
            if add_routes is not None:
                add_routes(self.server)
        await self.server.start()
        self.app.scheduler.timers.add_job(
            self._prune, "interval", hours=1, id="web-links-prune", replace_existing=True
        )

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    @property
    def base_url(self) -> str | None:
        """The console's public address while it serves, else None (features that link to
        it, like calendar feeds, say nothing of it then)."""
        return self.server.base_url if self.server is not None else None

    async def _secret(self) -> str:
        """What signs the session cookies: the environment's, or one made once and kept in
        the database, so sessions outlive a restart without any set-up."""
        if os.environ.get(SECRET_ENV):
            return os.environ[SECRET_ENV]
        kept = await self.app.settings.get("web", "secret")
        if not kept:
            kept = secrets.token_urlsafe(32)
            await self.app.settings.set("web", "secret", kept)
        return kept

    async def _prune(self) -> None:
        if self.server is not None:
            await self.server.signin.prune(self.app.clock.now().timestamp())

    # --- /web --------------------------------------------------------------------------

    async def sign_in_url(self, user: UserRef, community_id: int, moderator: bool) -> str:
        if self.server is None:
            raise UserError(
                "The web console is not switched on for this bot.",
                hint="Whoever runs the bot can turn it on with [web] enabled = true.",
            )
        valid: timedelta = self.settings.link_valid
        expires = self.app.clock.now().timestamp() + valid.total_seconds()
        token = await self.server.signin.make_link(user.key, user.name, community_id, moderator, expires)  # fmt: skip
        return self.server.url(f"/signin/{token}")

    async def link(self, ctx: Context) -> Ephemeral:
        url = await self.sign_in_url(ctx.user, ctx.community.id, ctx.is_moderator)
        valid = duration_words(self.settings.link_valid)
        role = "as a moderator" if ctx.is_moderator else "to read what members may (moderators can change things)"  # fmt: skip
        return Ephemeral(Post(
            title="Sign in to the web console",
            text=f"{link('Open the web console', url)} {role} for **{inert(ctx.community.name)}**.\n"
            f"The link works once, for you only, for {valid}. Don't share it.",
            buttons=[Button("Sign in", style="link", url=url)],
        ))  # fmt: skip
