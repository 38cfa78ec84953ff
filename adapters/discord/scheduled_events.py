"""Discord's Scheduled Events: the transport's `MirrorsEvents` (bot/events/mirror.py), and
members' "Interested" read from the gateway.

A mirror is an external event (entity_type 3) seen by the server's members (privacy_level
2) with its place in `entity_metadata.location` and both times, as Discord requires for an
external event. Its description ends with an invisible marker of its key (as the bot's
posts do, see transport.py), which `find_mirror` looks for among the server's events when
a create's answer was lost (then its name and start, should Discord drop the marker). Cancelling sets status 4 (CANCELED); one that Discord will no
longer cancel (it has started) is deleted instead.

Inbound, GUILD_SCHEDULED_EVENT_USER_ADD and _REMOVE (intent GUILD_SCHEDULED_EVENTS) carry
only ids. discord.py drops them unless the event and the user are in its cache, which a
bot without the members intent rarely has, so the connection state hands the raw payload
over as `native_interest`, and the surface passes it to the core as an action.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import discord

from adapters.discord.transport import PLATFORM_ERRORS, DiscordTransport, delivery_error, marker
from bot.events.mirror import INTEREST_ACTION, NativeEvent
from bot.model import Action, ChannelRef, UserRef

log = logging.getLogger(__name__)

EXTERNAL = 3
GUILD_ONLY = 2
SCHEDULED, CANCELED = 1, 4
NAME_MAX = 100
LOCATION_MAX = 100
DESCRIPTION_MAX = 1000


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _cut(text: str, limit: int, one_line: bool = True) -> str:
    """At most `limit` characters, a visible "…" where cut; a name or place on one line."""
    text = " ".join(text.split()) if one_line else text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(event: NativeEvent, mark: str) -> dict[str, Any]:
    """The JSON Discord takes, cut to its limits (the marker always kept whole)."""
    description = _cut(event.description, DESCRIPTION_MAX - len(mark) - 1, one_line=False)
    return {
        "name": _cut(event.name, NAME_MAX) or "Event",
        "description": f"{description}\n{mark}" if description else mark,
        "entity_type": EXTERNAL,
        "privacy_level": GUILD_ONLY,
        "channel_id": None,
        "entity_metadata": {"location": _cut(event.location, LOCATION_MAX) or "-"},
        "scheduled_start_time": event.start.isoformat(),
        "scheduled_end_time": event.end.isoformat(),
    }


class EventsTransport(DiscordTransport):
    """The outbox's transport, which also mirrors events (unless `[discord]
    scheduled_events = false`)."""

    def __init__(self, client: discord.Client, pace: float, scheduled_events: bool = True) -> None:
        super().__init__(client, pace)
        self.mirrors_events = scheduled_events

    async def mirror_event(self, channel: ChannelRef, event: NativeEvent, native_id: str) -> str:
        body = payload(event, marker(event.key))
        guild = int(channel.workspace)
        try:
            if native_id:
                data = await self.client.http.edit_scheduled_event(guild, int(native_id), **body)
            else:
                data = await self.client.http.create_guild_scheduled_event(guild, **body)
        except PLATFORM_ERRORS as exc:
            raise delivery_error(exc, f"mirror {event.key} in guild {guild}") from exc
        return str(data["id"])

    async def find_mirror(self, channel: ChannelRef, event: NativeEvent) -> str | None:
        """One of the bot's events in the guild carrying `event`'s marker; failing that
        (a description Discord took without it), one with its very name and start."""
        body = payload(event, marker(event.key))
        me = str(self.client.user.id) if self.client.user else None
        try:
            found = await self.client.http.get_scheduled_events(int(channel.workspace), False)
        except PLATFORM_ERRORS as exc:
            raise delivery_error(exc, f"look for {event.key} in {channel.workspace}") from exc
        ours = [d for d in found if me is None or str(d.get("creator_id")) == me]
        for data in ours:
            if (data.get("description") or "").endswith(marker(event.key)):
                return str(data["id"])
        for data in ours:
            same_start = _moment(data.get("scheduled_start_time")) == event.start
            if data.get("name") == body["name"] and same_start and data.get("status") == SCHEDULED:
                return str(data["id"])
        return None

    async def cancel_mirror(self, channel: ChannelRef, native_id: str) -> None:
        guild = int(channel.workspace)
        try:
            try:
                await self.client.http.edit_scheduled_event(guild, int(native_id), status=CANCELED)
            except discord.NotFound:
                return  # deleted on Discord already
            except discord.HTTPException as exc:
                if exc.status != 400:
                    raise
                # Started (or over): Discord cancels only a scheduled one; remove it.
                await self.client.http.delete_scheduled_event(guild, int(native_id))
        except discord.NotFound:
            return
        except PLATFORM_ERRORS as exc:
            raise delivery_error(exc, f"cancel {native_id} in guild {guild}") from exc


class InterestState:
    """Mixed into the connection state: the raw interest payloads, before discord.py's own
    parsing (which still runs, for its cache)."""

    def parse_guild_scheduled_event_user_add(self, data: Any) -> None:
        self.dispatch("native_interest", data, True)  # type: ignore[attr-defined]
        super().parse_guild_scheduled_event_user_add(data)  # type: ignore[misc]

    def parse_guild_scheduled_event_user_remove(self, data: Any) -> None:
        self.dispatch("native_interest", data, False)  # type: ignore[attr-defined]
        super().parse_guild_scheduled_event_user_remove(data)  # type: ignore[misc]


async def interest_action(
    client: discord.Client, data: dict[str, Any], added: bool
) -> Action | None:
    """The payload as the core's action; the member's name from the cache, else REST.
    None for the bot itself (Discord counts an event's creator as interested)."""
    user_id = int(data["user_id"])
    if client.user is not None and user_id == client.user.id:
        return None
    guild = str(data["guild_id"])
    user = client.get_user(user_id)
    if user is None:
        try:
            user = await client.fetch_user(user_id)
        except discord.HTTPException as exc:
            log.info("discord: no name for member %s: %s", user_id, exc)
    name = user.display_name if user is not None else ""
    change = "add" if added else "remove"
    return Action(
        INTEREST_ACTION,
        f"{change}:{data['guild_scheduled_event_id']}",
        UserRef("discord", guild, str(user_id), name),
        ChannelRef("discord", guild, "0"),
    )
