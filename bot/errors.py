"""Errors with a meaning the core and the adapters agree on."""

from __future__ import annotations

import enum


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


class Failure(enum.Enum):
    """What a failed platform call means for the post it carried (one table per adapter
    maps the platform's answers onto these)."""

    RATE_LIMITED = "rate limited"  # wait as long as the platform asks; not counted as a try
    TRANSIENT = "transient"  # not delivered (an outage, a refused connection): back off, retry
    IN_DOUBT = "in doubt"  # may have been delivered (no answer, a 5xx): look before resending
    PERMANENT = "permanent"  # this post can never be delivered here: fail it, tell moderators
    CREDENTIALS = "credentials"  # the platform refuses the bot's token: pause the platform


class DeliveryError(Exception):
    """A platform call for the outbox failed; `failure` says what the outbox does next."""

    def __init__(self, message: str, failure: Failure, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.retry_after = retry_after


class ConfigError(Exception):
    """A configuration file or value is wrong; the message names the key."""


class StartupError(Exception):
    """The bot cannot start as it is set up (a refused token, an unusable database file, a
    second process on the same database). The message is one line saying what to fix; the
    command line prints it and exits non-zero."""
