"""Durable intake on Discord: an interaction is acknowledged only once it is safe.

Discord's acknowledgement is an interaction's first response. A fast answer is that very
response, sent after the core has done its work, so the work is on disk before Discord
hears back. A slow one is deferred ("thinking…"), and before the deferral goes out the
interaction's raw payload is journaled (bot/intake.py): after a crash it is parsed again
at the next start as if it had just arrived, and its answers go out as follow-ups while its
token lives (15 minutes). discord.py does not keep raw payloads, so the connection state
remembers the latest few.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import discord
from discord.state import ConnectionState

from bot.intake import Intake

log = logging.getLogger(__name__)

PLATFORM = "discord"
REMEMBERED = 512  # raw interaction payloads kept, newest first out last


def request_id(interaction_id: int) -> str:
    return f"{PLATFORM}:{interaction_id}"


class RememberingState(ConnectionState):  # type: ignore[type-arg]
    """discord.py's connection state, keeping the raw payload of recent interactions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw_interactions: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def parse_interaction_create(self, data: Any) -> None:
        self.raw_interactions[int(data["id"])] = data
        while len(self.raw_interactions) > REMEMBERED:
            self.raw_interactions.popitem(last=False)
        super().parse_interaction_create(data)


class Journal:
    """Which interactions are journaled or being handled again, and the writes for them."""

    def __init__(self, intake: Intake, state: RememberingState) -> None:
        self.intake = intake
        self.state = state
        self.replaying: set[int] = set()

    def replayed(self, interaction: discord.Interaction) -> bool:
        return interaction.id in self.replaying

    async def hold(self, interaction: discord.Interaction) -> bool:
        """Journal the interaction before it is deferred; False if its payload is gone."""
        payload = self.state.raw_interactions.get(interaction.id)
        if payload is None:
            log.warning("discord: no payload kept for interaction %s", interaction.id)
            return False
        await self.intake.hold(PLATFORM, request_id(interaction.id), payload)
        return True

    async def done(self, interaction: discord.Interaction) -> None:
        self.replaying.discard(interaction.id)
        self.state.raw_interactions.pop(interaction.id, None)
        await self.intake.done(request_id(interaction.id))

    async def replay(self) -> int:
        """Parse again every interaction journaled and not handled before the last stop."""
        held = await self.intake.held(PLATFORM)
        for _, payload in held:
            self.replaying.add(int(payload["id"]))
            self.state.parse_interaction_create(payload)
        if held:
            log.warning("discord: handling %d interaction(s) again that a stop cut off", len(held))
        return len(held)
