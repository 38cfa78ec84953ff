"""Who counts as a moderator on Slack: workspace admins and owners, configured user ids,
and members of one configured user group. Answers are cached for a few minutes so a busy
channel does not cost a users.info call per click."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.transport import FAILURES, delivery_error

log = logging.getLogger(__name__)


class Moderators:
    """A lookup Slack cannot answer (an error, a timeout, a body that is not JSON) counts as
    "not a moderator" for that one check, with a warning in the log, and is not cached: the
    member is still answered (member commands run, moderator ones are refused as for any
    member), and the next check asks again. Failing closed keeps a broken lookup from
    granting moderator rights."""

    def __init__(
        self,
        client: AsyncWebClient,
        users: list[str] | None = None,
        group: str = "",
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.users = set(users or [])
        self.group = group
        self.ttl = ttl
        self.clock = clock
        self._admins: dict[str, tuple[float, bool]] = {}
        self._group: tuple[float, set[str]] | None = None

    async def check(self, user_id: str) -> bool:
        """True if this member may use moderator commands; False when Slack cannot say."""
        if user_id in self.users:
            return True
        if await self._is_admin(user_id):
            return True
        return bool(self.group) and user_id in await self._group_members()

    def forget(self) -> None:
        self._admins.clear()
        self._group = None

    async def _is_admin(self, user_id: str) -> bool:
        now = self.clock()
        cached = self._admins.get(user_id)
        if cached and cached[0] > now:
            return cached[1]
        try:
            user = (await self.client.users_info(user=user_id)).get("user")
        except Exception as exc:  # whatever Slack (or what stands in front of it) answered
            log.warning("users.info for %s failed: %s; not a moderator for now", user_id, _why(exc))
            return False
        if not isinstance(user, dict):
            log.warning("users.info for %s gave no user; not a moderator for now", user_id)
            return False
        admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._admins[user_id] = (now + self.ttl, admin)
        return admin

    async def _group_members(self) -> set[str]:
        now = self.clock()
        if self._group and self._group[0] > now:
            return self._group[1]
        try:
            response = await self.client.usergroups_users_list(usergroup=self.group)
            members = {str(u) for u in response.get("users") or []}
        except Exception as exc:  # as above: a failed lookup never leaves a member unanswered
            log.warning("members of user group %s unavailable: %s", self.group, _why(exc))
            return self._group[1] if self._group else set()
        self._group = (now + self.ttl, members)
        return members


def _why(exc: Exception) -> str:
    """A failed lookup in one line. A body that is not JSON comes as a SlackApiError whose
    response is aiohttp's own (no status_code), and text as a str body: say what it was."""
    if isinstance(exc, FAILURES):
        try:
            return str(delivery_error(exc))
        except Exception:  # an answer delivery_error cannot classify
            pass
    return f"{type(exc).__name__}: {exc}"
