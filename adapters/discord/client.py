"""The discord.py client the surface drives: one gateway connection, or the shards this
process was given (adapters/discord/shards.py), with the same listeners either way.

Only the `guilds` intent is asked for, and `guild_scheduled_events` while events are
mirrored (members' "Interested"): members act through slash commands, buttons and modals,
never through message content, so no privileged intent is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord.state import AutoShardedConnectionState

from adapters.discord.journal import RememberingState
from adapters.discord.scheduled_events import InterestState, interest_action
from adapters.discord.shards import Shards
from bot import turns

if TYPE_CHECKING:
    from adapters.discord.surface import DiscordSurface

IDENTIFY_TURN = "discord:identify"  # one bucket: max_concurrency 1, as for most bots
IDENTIFY_EVERY = 5.0  # seconds between two session starts, as Discord asks


def intents(scheduled_events: bool = False) -> discord.Intents:
    """The fewest intents that work: guild and channel events, and who is interested in a
    scheduled event when events are mirrored."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_scheduled_events = scheduled_events
    return wanted


class State(InterestState, RememberingState):
    pass


class ShardedState(InterestState, RememberingState, AutoShardedConnectionState):  # type: ignore[misc]
    pass


class SurfaceListeners:
    """Mixed into the client: modal submissions and members' interest go to the surface
    that owns it; the connection state keeps the raw payloads of recent interactions (to
    journal one before deferring it)."""

    _connection: RememberingState
    surface: DiscordSurface

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.modal_submit:
            await self.surface.on_modal(interaction)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord starts one session per five seconds for a bot, over all its connections.
        discord.py spaces one process's shards; workers sharing a database take turns."""
        db = self.surface.app.db
        if not db.shared:  # this process is the bot's only one
            await super().before_identify_hook(shard_id, initial=initial)  # type: ignore[misc]
            return
        await turns.wait_turn(db, IDENTIFY_TURN, IDENTIFY_EVERY)

    async def on_native_interest(self, data: dict[str, Any], added: bool) -> None:
        action = await interest_action(self, data, added)  # type: ignore[arg-type]
        if action is not None:
            await self.surface.app.act(action)


class BotClient(SurfaceListeners, discord.Client):
    """One gateway connection, for every server of the bot."""

    def __init__(self, surface: DiscordSurface, **options: Any) -> None:
        super().__init__(intents=intents(surface.settings.scheduled_events), **options)
        self.surface = surface

    def _get_state(self, **options: Any) -> RememberingState:
        return State(
            dispatch=self.dispatch, handlers=self._handlers, hooks=self._hooks, http=self.http,
            **options,
        )  # fmt: skip


class ShardedBotClient(SurfaceListeners, discord.AutoShardedClient):
    """The given shards of the bot's servers, one gateway connection each (discord.py
    IDENTIFYs each with `[shard_id, shard_count]`, a few seconds apart)."""

    def __init__(self, surface: DiscordSurface, shards: Shards, **options: Any) -> None:
        super().__init__(
            intents=intents(surface.settings.scheduled_events),
            shard_count=shards.count,
            shard_ids=list(shards.ids),
            **options,
        )
        self.surface = surface

    def _get_state(self, **options: Any) -> RememberingState:
        return ShardedState(
            dispatch=self.dispatch, handlers=self._handlers, hooks=self._hooks, http=self.http,
            **options,
        )  # fmt: skip


def new_client(
    surface: DiscordSurface, shards: Shards | None, **options: Any
) -> BotClient | ShardedBotClient:
    """The client for `shards`, or for one unsharded connection (None)."""
    if shards is None:
        return BotClient(surface, **options)
    return ShardedBotClient(surface, shards, **options)
