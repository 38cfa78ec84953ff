"""Secrets kept at rest (a Slack workspace's bot token) encrypted with a key from the
environment, so a copy of the database file alone gives nobody a working token.

Fernet (from `cryptography`) does the work: AES-128-CBC with an HMAC-SHA256 over each
value, a random IV per value, and a versioned format; hand-rolling this would be easy to
get subtly wrong. `ITSM_BOT_SECRET_KEY` holds one key, or several separated by commas to
rotate: the first encrypts, any of them decrypts. Make one with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.errors import ConfigError

KEY_ENV = "ITSM_BOT_SECRET_KEY"


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError(f"{KEY_ENV} is empty: {_HOW}")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except ValueError:  # not 32 url-safe base64-encoded bytes
            raise ConfigError(f"{KEY_ENV} is not a valid key: {_HOW}") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SecretBox:
        raw = env.get(KEY_ENV, "")
        if not raw.strip():
            raise ConfigError(f"{KEY_ENV} must be set to keep Slack tokens encrypted: {_HOW}")
        return cls([k for k in raw.split(",") if k.strip()])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """The secret; `ValueError` if it was sealed with another key or altered."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise ValueError(f"a stored secret does not open with {KEY_ENV}") from None


_HOW = (
    "a Fernet key (44 characters of url-safe base64), e.g. from "
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
