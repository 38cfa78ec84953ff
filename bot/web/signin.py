"""Who is signed in to the web console: one-time links, and the session cookie they lead to.

A link is made by `/web` in chat, privately, for the member who typed it: random, stored
only as a hash, valid `[web] link_valid` (10 minutes), used once, bound to that member and
community. Using it sets a session cookie: signed (itsdangerous), HttpOnly, SameSite=Lax,
with the session's expiry inside the signature, so an edited or stale cookie is refused
whatever the browser says about its age (the bot's own clock decides). Every form carries a CSRF token derived from the
session; moderators act, members (where a page lets them) only read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from bot.store import Database

MIGRATIONS = [
    """
    CREATE TABLE web_links (
        token_hash TEXT PRIMARY KEY,
        member TEXT NOT NULL,
        member_name TEXT NOT NULL DEFAULT '',
        community_id INTEGER NOT NULL,
        moderator INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL
    );
    CREATE INDEX web_links_expiry ON web_links (expires_at)
    """,
]

SECRET_ENV = "ITSM_BOT_WEB_SECRET"


@dataclass(frozen=True)
class Session:
    sid: str
    member: str  # member key, "platform:workspace:user"
    name: str
    community_id: int
    moderator: bool

    @property
    def platform(self) -> str:
        return self.member.split(":", 1)[0]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignIn:
    def __init__(self, db: Database, secret: str, session_seconds: float) -> None:
        self.db = db
        self.secret = secret
        self.session_seconds = session_seconds
        # Imported here: the web feature imports this module whether the console is on or
        # not, and a bot without it need not carry itsdangerous.
        from itsdangerous import URLSafeSerializer

        self._cookies = URLSafeSerializer(secret, salt="itsm-bot web session")

    # --- One-time links -----------------------------------------------------------------

    async def make_link(
        self, member: str, name: str, community_id: int, moderator: bool, expires_at: float
    ) -> str:
        token = secrets.token_urlsafe(32)
        await self.db.execute(
            "INSERT INTO web_links (token_hash, member, member_name, community_id, moderator,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(token), member, name, community_id, int(moderator), expires_at),
        )
        return token

    async def is_usable(self, token: str, now: float) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM web_links WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
            (_digest(token), now),
        )
        return row is not None

    async def use_link(self, token: str, now: float) -> Session | None:
        """The session a link opens, once: a used, expired or unknown link gives None."""
        digest = _digest(token)
        used = await self.db.execute(
            "UPDATE web_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
            " AND expires_at > ?",
            (now, digest, now),
        )
        if not used:
            return None
        row = await self.db.fetchone("SELECT * FROM web_links WHERE token_hash = ?", (digest,))
        assert row is not None
        return Session(
            secrets.token_urlsafe(16), row["member"], row["member_name"],
            row["community_id"], bool(row["moderator"]),
        )  # fmt: skip

    async def prune(self, now: float) -> int:
        """Links a day past their expiry go (used or not: either way they open nothing)."""
        return await self.db.execute("DELETE FROM web_links WHERE expires_at < ?", (now - 86400,))

    # --- Session cookie -----------------------------------------------------------------

    def cookie(self, session: Session, now: float) -> str:
        """The signed cookie; its expiry is inside the signature (the bot's clock decides)."""
        expires = now + self.session_seconds
        return self._cookies.dumps(
            [session.sid, session.member, session.name, session.community_id,
             session.moderator, expires]
        )  # fmt: skip

    def session(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie carries; None for a missing, forged or expired one."""
        if not cookie:
            return None
        from itsdangerous import BadSignature  # loaded with the serializer, in __init__

        try:
            sid, member, name, community_id, moderator, expires = self._cookies.loads(cookie)
            if float(expires) <= now:
                return None
            return Session(str(sid), str(member), str(name), int(community_id), bool(moderator))
        except (BadSignature, ValueError, TypeError):
            return None

    def csrf(self, session: Session) -> str:
        return hmac.new(self.secret.encode(), f"csrf:{session.sid}".encode(), "sha256").hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(session), token or "")
