"""Where the Slack workspaces that installed the bot keep their bot tokens, and the OAuth
states of installs under way: slack-sdk's `AsyncInstallationStore` and
`AsyncOAuthStateStore`, over the bot's own database (so a backup or a move of the one
file takes the installations with it).

Tokens are sealed (`bot.secretbox`) before they are written and opened only when a request
or a post needs them; no token, sealed or not, is ever logged. Only bot tokens are kept:
the bot asks for no user scopes, so an installer's user token (if Slack ever sent one) is
dropped. The SQL is plain INSERT / UPDATE / SELECT / DELETE with `?` parameters and no
rowid, so it reads the same on PostgreSQL.

An OAuth state is good once and for `expiration_seconds` (bolt's 10 minutes): consuming it
is one DELETE of an unexpired row, so two callbacks with one state cannot both win.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.clock import Clock
from bot.secretbox import SecretBox
from bot.store import Database

log = logging.getLogger(__name__)

FEATURE = "slack-installations"  # its schema's name in schema_versions
MIGRATIONS = [
    """
    CREATE TABLE slack_installations (
        enterprise_id TEXT NOT NULL DEFAULT '',
        team_id TEXT NOT NULL,
        team_name TEXT NOT NULL DEFAULT '',
        app_id TEXT NOT NULL DEFAULT '',
        bot_id TEXT NOT NULL,
        bot_user_id TEXT NOT NULL,
        bot_scopes TEXT NOT NULL DEFAULT '',
        bot_token TEXT NOT NULL,
        bot_refresh_token TEXT,
        installer_user_id TEXT NOT NULL DEFAULT '',
        installed_at REAL NOT NULL,
        PRIMARY KEY (enterprise_id, team_id)
    );
    CREATE TABLE slack_oauth_states (
        state TEXT PRIMARY KEY,
        expires_at REAL NOT NULL
    );
    CREATE INDEX slack_oauth_states_expiry ON slack_oauth_states (expires_at)
    """,
]
COLUMNS = (
    "enterprise_id, team_id, team_name, app_id, bot_id, bot_user_id, bot_scopes, bot_token,"
    " bot_refresh_token, installer_user_id, installed_at"
)


class Installations(AsyncInstallationStore):
    """Bot installations by workspace. `on_change(team_id)` is told of every save and
    delete, so what caches a workspace's token (its clients) lets go of the old one."""

    def __init__(self, db: Database, box: SecretBox, clock: Clock) -> None:
        self.db = db
        self.box = box
        self.clock = clock
        self.on_change: Callable[[str], Any] | None = None

    @property
    def logger(self) -> logging.Logger:
        return log

    async def migrate(self) -> int:
        """Bring the tables up to date; how many scripts ran."""
        return await self.db.migrate(FEATURE, MIGRATIONS)

    async def async_save(self, installation: Installation) -> None:
        await self.async_save_bot(installation.to_bot(), installation.user_id or "")

    async def async_save_bot(self, bot: Bot, installer: str = "") -> None:
        if not bot.team_id or not bot.bot_token:
            raise ValueError("an installation without a team or a bot token cannot be kept")
        refresh = self.box.seal(bot.bot_refresh_token) if bot.bot_refresh_token else None
        row = (
            bot.enterprise_id or "", bot.team_id, bot.team_name or "", bot.app_id or "",
            bot.bot_id or "", bot.bot_user_id or "", ",".join(bot.bot_scopes or []),
            self.box.seal(bot.bot_token), refresh, installer, self.clock.now().timestamp(),
        )  # fmt: skip
        async with self.db.transaction() as tx:
            # A reinstall replaces the old token: delete and insert, in one transaction.
            await tx.execute(
                "DELETE FROM slack_installations WHERE enterprise_id = ? AND team_id = ?",
                (row[0], row[1]),
            )
            await tx.execute(
                f"INSERT INTO slack_installations ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", row
            )
        log.info("slack: workspace %s (%s) installed the bot", bot.team_id, bot.team_name or "?")
        self._changed(bot.team_id)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        row = await self._row(enterprise_id, team_id)
        if row is None:
            return None
        return Bot(
            app_id=row["app_id"] or None,
            enterprise_id=row["enterprise_id"] or None,
            team_id=row["team_id"],
            team_name=row["team_name"] or None,
            bot_token=self.box.open(row["bot_token"]),
            bot_id=row["bot_id"],
            bot_user_id=row["bot_user_id"],
            bot_scopes=row["bot_scopes"],
            bot_refresh_token=self._open(row["bot_refresh_token"]),
            installed_at=row["installed_at"],
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        bot = await self.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None:
            return None
        row = await self._row(enterprise_id, team_id)
        installer = row["installer_user_id"] if row is not None else ""
        if user_id is not None and user_id != installer:
            return None  # only the installer's installation is known (bot tokens only)
        return Installation(
            app_id=bot.app_id, enterprise_id=bot.enterprise_id, team_id=bot.team_id,
            team_name=bot.team_name, bot_token=bot.bot_token, bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id, bot_scopes=bot.bot_scopes,
            bot_refresh_token=bot.bot_refresh_token, user_id=installer or "",
            installed_at=bot.installed_at,
        )  # fmt: skip

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # the workspace's installation itself; a user's: none kept
            await self._delete(enterprise_id, team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(enterprise_id, team_id)

    async def teams(self) -> list[tuple[str, str]]:
        """(team id, team name) of every workspace the bot is installed in."""
        rows = await self.db.fetchall(
            "SELECT team_id, team_name FROM slack_installations ORDER BY team_id"
        )
        return [(r["team_id"], r["team_name"]) for r in rows]

    async def _row(self, enterprise_id: str | None, team_id: str | None) -> Any:
        return await self.db.fetchone(
            f"SELECT {COLUMNS} FROM slack_installations WHERE enterprise_id = ? AND team_id = ?",
            (enterprise_id or "", team_id or ""),
        )

    async def _delete(self, enterprise_id: str | None, team_id: str | None) -> None:
        gone = await self.db.execute(
            "DELETE FROM slack_installations WHERE enterprise_id = ? AND team_id = ?",
            (enterprise_id or "", team_id or ""),
        )
        if gone:
            log.warning("slack: workspace %s's installation is deleted", team_id)
        self._changed(team_id or "")

    def _open(self, sealed: str | None) -> str | None:
        return self.box.open(sealed) if sealed else None

    def _changed(self, team_id: str) -> None:
        if self.on_change is not None:
            self.on_change(team_id)


class OAuthStates(AsyncOAuthStateStore):
    """Single-use OAuth `state` values that expire (see the module's docstring)."""

    def __init__(self, db: Database, clock: Clock, expiration_seconds: int = 600) -> None:
        self.db = db
        self.clock = clock
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        now = self.clock.now().timestamp()
        state = secrets.token_urlsafe(32)
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM slack_oauth_states WHERE expires_at < ?", (now,))
            await tx.execute(
                "INSERT INTO slack_oauth_states (state, expires_at) VALUES (?, ?)",
                (state, now + self.expiration_seconds),
            )
        return state

    async def async_consume(self, state: str) -> bool:
        if not state:
            return False
        taken = await self.db.execute(
            "DELETE FROM slack_oauth_states WHERE state = ? AND expires_at >= ?",
            (state, self.clock.now().timestamp()),
        )
        if not taken:
            log.info("slack: an install came back with an unknown, used or expired state")
        return taken == 1
