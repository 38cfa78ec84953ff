"""The fake Discord's Guild Scheduled Events: the REST routes and the interest events.

``POST/GET/PATCH/DELETE /guilds/{gid}/scheduled-events[/{id}]`` validate as Discord does:
a name of 1 to 100 characters, privacy level 2, an external event (entity type 3) needs
``entity_metadata.location`` (1 to 100) and an end time, no channel, a start in the future
(by ``now``, a test may set it to its own clock) and an end after the start, a description
of at most 1000 characters, and only Discord's status moves (scheduled to active or
cancelled, active to completed). ``manage_events = False`` refuses writes as Discord refuses
a bot without Manage Events (403, code 50013), and ``keeps_invisible = False`` drops
zero-width characters from descriptions (should Discord do so). Each change is announced on the gateway
(GUILD_SCHEDULED_EVENT_CREATE/UPDATE/DELETE), and ``interested(id, user, True|False)``
sends GUILD_SCHEDULED_EVENT_USER_ADD/REMOVE as a member's click in Discord's own UI does.

Wired into FakeDiscord by ``add_routes``; the events stay in ``fake.scheduled_events``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

MOVES = {1: {2, 4}, 2: {3}, 3: set(), 4: set()}  # status -> statuses it may go to
EXTERNAL = 3
INVISIBLE = "\u200b\u200c\u2060"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _error(status: int, message: str, code: int) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def _invalid(errors: dict[str, str]) -> web.Response:
    body = {k: {"_errors": [{"code": "INVALID", "message": m}]} for k, m in errors.items()}
    return _json({"message": "Invalid Form Body", "code": 50035, "errors": body}, status=400)


def _moment(value: Any) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


class GuildEvents:
    """The scheduled events of the fake's one guild, and who is interested in each."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.manage_events = True  # False: the bot lacks Manage Events
        self.keeps_invisible = True  # False: descriptions lose zero-width characters
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.users: dict[str, set[int]] = {}  # event id -> interested user ids

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.fake.scheduled_events

    def add_routes(self) -> None:
        r = self.fake._route
        r("GET", "/guilds/{gid}/scheduled-events", self._list)
        r("POST", "/guilds/{gid}/scheduled-events", self._create)
        r("GET", "/guilds/{gid}/scheduled-events/{eid}", self._get)
        r("PATCH", "/guilds/{gid}/scheduled-events/{eid}", self._edit)
        r("DELETE", "/guilds/{gid}/scheduled-events/{eid}", self._delete)

    def get(self, event_id: str | int) -> dict[str, Any] | None:
        return next((e for e in self.events if e["id"] == str(event_id)), None)

    async def interested(self, event_id: str | int, user_id: int, added: bool = True) -> None:
        """A member marks (or unmarks) the event as interesting in Discord's own UI."""
        event = self.get(event_id)
        assert event is not None, f"no scheduled event {event_id}"
        users = self.users.setdefault(event["id"], set())
        (users.add if added else users.discard)(user_id)
        event["user_count"] = len(users)
        name = "GUILD_SCHEDULED_EVENT_USER_" + ("ADD" if added else "REMOVE")
        data = {"guild_scheduled_event_id": event["id"], "user_id": str(user_id),
                "guild_id": str(self.fake.guild_id)}  # fmt: skip
        await self.fake.dispatch(name, data)

    # --- Routes --------------------------------------------------------------------------

    def _refused(self, p: dict[str, str], write: bool) -> web.Response | None:
        if p["gid"] != str(self.fake.guild_id):
            return _error(404, "Unknown Guild", 10004)
        if write and not self.manage_events:
            return _error(403, "Missing Permissions", 50013)
        return None

    async def _list(self, request: web.Request, req: Any, p: dict[str, str]) -> web.Response:
        return self._refused(p, False) or _json(self.events)

    async def _get(self, request: web.Request, req: Any, p: dict[str, str]) -> web.Response:
        refused = self._refused(p, False)
        event = self.get(p["eid"])
        if refused or event is None:
            return refused or _error(404, "Unknown Guild Scheduled Event", 10070)
        return _json(event)

    async def _create(self, request: web.Request, req: Any, p: dict[str, str]) -> web.Response:
        refused = self._refused(p, True)
        if refused:
            return refused
        body = req.json or {}
        problems = self._problems(body, creating=True)
        if problems:
            return _invalid(problems)
        event = {
            "id": str(self.fake.snowflake()),
            "guild_id": str(self.fake.guild_id),
            "channel_id": body.get("channel_id"),
            "creator_id": str(self.fake.bot_user_id),
            "creator": self.fake.bot_user(),
            "name": body["name"],
            "description": self._kept(body.get("description")),
            "scheduled_start_time": body["scheduled_start_time"],
            "scheduled_end_time": body.get("scheduled_end_time"),
            "privacy_level": body["privacy_level"],
            "status": 1,
            "entity_type": body["entity_type"],
            "entity_id": None,
            "entity_metadata": body.get("entity_metadata"),
            "user_count": 0,
            "image": None,
            "recurrence_rule": body.get("recurrence_rule"),
        }
        self.events.append(event)
        await self.fake.dispatch("GUILD_SCHEDULED_EVENT_CREATE", event)
        return _json(event)

    async def _edit(self, request: web.Request, req: Any, p: dict[str, str]) -> web.Response:
        refused = self._refused(p, True)
        event = self.get(p["eid"])
        if refused or event is None:
            return refused or _error(404, "Unknown Guild Scheduled Event", 10070)
        body = req.json or {}
        merged = {**event, **body}
        if "entity_metadata" in body:
            merged["entity_metadata"] = body["entity_metadata"]
        merged["description"] = self._kept(merged.get("description"))
        problems = self._problems(merged, creating=False, changed=body)
        if "status" in body and body["status"] not in MOVES[event["status"]]:
            problems["status"] = f"Cannot go from status {event['status']} to {body['status']}"
        if problems:
            return _invalid(problems)
        event.update(merged)
        await self.fake.dispatch("GUILD_SCHEDULED_EVENT_UPDATE", event)
        return _json(event)

    async def _delete(self, request: web.Request, req: Any, p: dict[str, str]) -> web.Response:
        refused = self._refused(p, True)
        event = self.get(p["eid"])
        if refused or event is None:
            return refused or _error(404, "Unknown Guild Scheduled Event", 10070)
        self.events.remove(event)
        await self.fake.dispatch("GUILD_SCHEDULED_EVENT_DELETE", event)
        return web.Response(status=204)

    def _kept(self, text: str | None) -> str | None:
        if text is None or self.keeps_invisible:
            return text
        return "".join(c for c in text if c not in INVISIBLE)

    def _problems(
        self, body: dict[str, Any], creating: bool, changed: dict[str, Any] | None = None
    ) -> dict[str, str]:
        """What Discord would refuse in `body` (a whole event), field by field."""
        changed = body if changed is None else changed
        problems: dict[str, str] = {}
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            problems["name"] = "Must be between 1 and 100 in length."
        if body.get("privacy_level") != 2:
            problems["privacy_level"] = "Value must be one of (2,)."
        if len(body.get("description") or "") > 1000:
            problems["description"] = "Must be 1000 or fewer in length."
        start = _moment(body.get("scheduled_start_time"))
        end = _moment(body.get("scheduled_end_time")) if body.get("scheduled_end_time") else None
        if start is None:
            problems["scheduled_start_time"] = "Not a valid ISO8601 timestamp."
        elif (creating or "scheduled_start_time" in changed) and start <= self.now():
            problems["scheduled_start_time"] = "Cannot schedule event in the past."
        if body.get("entity_type") == EXTERNAL:
            location = (body.get("entity_metadata") or {}).get("location")
            if not isinstance(location, str) or not 1 <= len(location) <= 100:
                problems["entity_metadata.location"] = "Required for an external event (1-100)."
            if end is None:
                problems["scheduled_end_time"] = "Required for an external event."
            if body.get("channel_id") is not None:
                problems["channel_id"] = "Must be null for an external event."
        elif body.get("entity_type") not in (1, 2):
            problems["entity_type"] = "Value must be one of (1, 2, 3)."
        if start is not None and end is not None and end <= start:
            problems["scheduled_end_time"] = "Must be after the start time."
        return problems
