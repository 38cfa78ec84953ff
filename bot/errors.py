"""Errors with a meaning the core and the adapters agree on."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a refused request: shown to the member as an ephemeral message."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class UsageError(UserError):
    """A command was typed wrongly; `option` names what was wrong, when one thing was."""

    def __init__(self, message: str, option: str = "", hint: str = "") -> None:
        super().__init__(message, hint)
        self.option = option


class PermissionDenied(UserError):
    pass


class DeliveryError(Exception):
    """A platform refused a post. Transient ones are retried by the outbox."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class ConfigError(Exception):
    """A configuration file or value is wrong; the message names the key."""


class StartupError(Exception):
    """The bot cannot start as it is set up (a refused token, an unusable database file, a
    second process on the same database). The message is one line saying what to fix; the
    command line prints it and exits non-zero."""
