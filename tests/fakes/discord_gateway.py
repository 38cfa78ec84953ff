"""The fake Discord gateway's sessions: one per IDENTIFY, each for one shard.

A client that IDENTIFYs with `shard: [id, count]` gets, as from Discord, the events of the
servers whose shard that is (`(guild_id >> 22) % count == id`): their GUILD_CREATE, their
interactions, their scheduled events. Events of no server (a direct message's interaction)
go to shard 0. A client that sends no `shard` is shard 0 of 1: it gets everything.

A new IDENTIFY for a shard replaces that shard's session; a session outlives its socket, so
the events dispatched while it was away are replayed when the client RESUMEs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

UNSHARDED = (0, 1)
GUILD_EVENTS_BY_ID = {"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"}  # the guild's "id"


def shard_of(guild_id: int, count: int) -> int:
    return (guild_id >> 22) % count


def guild_of(event: str, data: dict[str, Any]) -> int | None:
    """The server an event belongs to, or None (a DM, the session's own READY)."""
    raw = data.get("id") if event in GUILD_EVENTS_BY_ID else data.get("guild_id")
    return int(raw) if raw else None


@dataclass
class Session:
    ws: web.WebSocketResponse | None
    shard: tuple[int, int]  # (id, count)
    session_id: str
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # dispatches, for a RESUME
    ready: bool = False  # READY and its GUILD_CREATEs are out

    def holds(self, guild_id: int | None) -> bool:
        shard, count = self.shard
        return shard == (0 if guild_id is None else shard_of(guild_id, count))

    def frame(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """The next DISPATCH frame of this session, kept for a RESUME."""
        self.seq += 1
        frame = {"op": 0, "t": event, "s": self.seq, "d": data}
        self.sent.append(frame)
        return frame

    @property
    def live(self) -> bool:
        return self.ws is not None and not self.ws.closed


class Sessions:
    """Every shard's current session, oldest IDENTIFY first."""

    def __init__(self) -> None:
        self.current: list[Session] = []
        self.opened = 0  # sessions sent READY and their GUILD_CREATEs, in all

    def open(self, ws: web.WebSocketResponse, shard: Any, session_id: str) -> Session:
        wanted = tuple(shard) if shard else UNSHARDED
        session = Session(ws, (int(wanted[0]), int(wanted[1])), session_id)
        self.current = [s for s in self.current if s.shard != session.shard] + [session]
        return session

    def by_id(self, session_id: str | None) -> Session | None:
        return next((s for s in self.current if s.session_id == session_id), None)

    def holding(self, guild_id: int | None) -> Session | None:
        """The newest session whose shard receives this server's events."""
        return next((s for s in reversed(self.current) if s.holds(guild_id)), None)

    def ready_for(self, guild_id: int | None) -> bool:
        session = self.holding(guild_id)
        return session is not None and session.ready

    def on(self, ws: web.WebSocketResponse) -> Session | None:
        return next((s for s in self.current if s.ws is ws), None)
