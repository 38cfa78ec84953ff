"""The bot on Discord: one client (adapters/discord/client.py: one connection, or this
process's shards), the generated commands, and the listeners that turn interactions into
core calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands

from adapters.discord import commands
from adapters.discord.client import new_client
from adapters.discord.guilds import GuildWatch
from adapters.discord.identity import (
    PLATFORM,
    Moderators,
    channel_ref,
    neutral,
    user_ref,
    workspace_of,
)
from adapters.discord.journal import Journal, request_id
from adapters.discord.replies import Answer
from adapters.discord.scheduled_events import EventsTransport
from adapters.discord.settings import DiscordSettings
from adapters.discord.shards import Shards
from adapters.discord.views import (
    FORM_ID,
    FORM_TOKEN,
    CoreComponent,
    FormMemory,
    ReopenForm,
    build_modal,
    modal_values,
)
from bot.app import App
from bot.errors import StartupError
from bot.model import (
    Action,
    ChannelRef,
    Ephemeral,
    Form,
    Invocation,
    Post,
    Reply,
    Submission,
    UserRef,
)

log = logging.getLogger(__name__)


class DiscordSurface:
    """Connects the core to Discord; `start()` / `stop()` are all the CLI needs."""

    platform = "discord"

    def __init__(
        self,
        app: App,
        settings: DiscordSettings,
        token: str,
        api_url: str,
        gateway_url: str,
        shards: Shards | None = None,
        # discord.py waits this long after the last GUILD_CREATE before READY (its default,
        # 2 s, is for bots that chunk members, which this one never does): the guilds of
        # one connection come back to back, and one arriving later is handled all the same.
        guild_ready_timeout: float = 0.5,
    ) -> None:
        self.app = app
        app.name_surface(self.platform, "/help", "Discord server")
        self.settings = settings
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.gateway_url = gateway_url
        self.shards = shards
        self.client = new_client(self, shards, guild_ready_timeout=guild_ready_timeout)
        self.tree = app_commands.CommandTree(self.client)
        self.tree.on_error = self._command_error  # type: ignore[method-assign]
        for command in commands.build(app.registry, self.on_command):
            self.tree.add_command(command)
        self.memory = FormMemory()
        self.moderators = Moderators(settings.moderator_role)
        self.transport = EventsTransport(self.client, settings.pace, settings.scheduled_events)
        self.journal = Journal(app.intake, self.client._connection)
        self.guilds = GuildWatch(self)  # servers joined and left, told to the core
        self._saved_endpoints: tuple[str, yarl.URL] | None = None
        self._connection: asyncio.Task[None] | None = None

    # --- Life cycle ----------------------------------------------------------------------

    async def login(self) -> None:
        """REST only: log in, register the persistent items, sync commands, attach the outbox."""
        self._point_endpoints()
        try:
            await self.client.login(self._token)
        except discord.LoginFailure:
            self._restore_endpoints()
            raise StartupError(
                "Discord refused DISCORD_TOKEN (401 Unauthorized): set DISCORD_TOKEN to the "
                "bot's current token and restart"
            ) from None
        self.client.add_dynamic_items(CoreComponent, ReopenForm)
        await self.sync()
        self.app.outbox.attach(self.transport)
        await self.journal.replay()

    async def sync(self) -> list[app_commands.AppCommand]:
        """Send the command list: to the configured guild (instant) or globally."""
        if self.settings.guild_id:
            guild = discord.Object(self.settings.guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        where = f"guild {self.settings.guild_id}" if self.settings.guild_id else "globally"
        log.info("synced %d commands %s", len(synced), where)
        return synced

    async def start(self) -> None:
        await self.login()
        if self.shards is not None:
            log.info("discord: connecting %s", self.shards)
        self._connection = asyncio.create_task(self.client.connect(), name="discord-gateway")
        ready = asyncio.create_task(self.client.wait_until_ready())
        await asyncio.wait(
            {ready, self._connection},
            timeout=self.settings.ready_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if self._connection.done():
            ready.cancel()
            self._connection.result()  # a connection that ended at once: raise its error
        elif not ready.done():
            ready.cancel()
            log.warning("no READY from Discord yet; still trying in the background")

    async def stop(self) -> None:
        self.app.outbox.detach(self.transport)
        await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._connection, 10)
        self._restore_endpoints()

    def _point_endpoints(self) -> None:
        # discord.py keeps both as class attributes; set them for this run, put them back after.
        if self._saved_endpoints is None:
            self._saved_endpoints = (
                discord.http.Route.BASE,
                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            )
        discord.http.Route.BASE = self.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)

    def _restore_endpoints(self) -> None:
        if self._saved_endpoints is not None:
            base, gateway = self._saved_endpoints
            discord.http.Route.BASE = base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway
            self._saved_endpoints = None

    # --- Interactions --------------------------------------------------------------------

    async def on_command(
        self, interaction: discord.Interaction, path: tuple[str, ...], values: dict[str, Any]
    ) -> None:
        workspace = workspace_of(interaction)
        options = {k: neutral(v, workspace) for k, v in values.items() if v is not None}

        async def work() -> list[Reply]:
            invocation = Invocation(
                path,
                user_ref(interaction),
                channel_ref(interaction),
                await self.moderators.check(interaction),
                options=options,
                raw=interaction,
            )
            return await self.app.invoke(invocation)

        await self._answer(interaction, work())

    async def on_component(self, interaction: discord.Interaction, action: str, value: str) -> None:
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]

        async def work() -> list[Reply]:
            user, channel = await self._where_pressed(interaction)
            event = Action(
                action,
                value,
                user,
                channel,
                message_id=str(interaction.message.id) if interaction.message else "",
                values=[str(v) for v in data.get("values", [])],
                raw=interaction,
                # Asked only for moderator-only buttons: a vote needs no role lookup.
                moderator_check=lambda: self.moderators.check(interaction),
                request_id=request_id(interaction.id),
            )
            return await self.app.act(event)

        await self._answer(interaction, work())

    async def _where_pressed(self, interaction: discord.Interaction) -> tuple[UserRef, ChannelRef]:
        """Who pressed, and where. A press in a DM carries no guild: the DM the bot sent the
        message to names the member's server, so that the press counts for them in its
        community (a poll reminder's vote), and in no other."""
        user, channel = user_ref(interaction), channel_ref(interaction)
        if interaction.guild_id is not None or interaction.message is None:
            return user, channel
        direct = await self.app.outbox.direct_of(PLATFORM, str(interaction.message.id))
        if direct is None or direct.direct_user != user.user:
            return user, channel
        return replace(user, workspace=direct.workspace), direct

    async def on_modal(self, interaction: discord.Interaction) -> None:
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        custom_id = str(data.get("custom_id", ""))
        values = modal_values(data.get("components", []))
        found = self._form_of(custom_id)
        if found is None:
            if custom_id.startswith(FORM_TOKEN):
                await self._form_expired(interaction)
            return
        form_id, form_value, form = found

        async def work() -> list[Reply]:
            submission = Submission(
                form_id,
                form_value,
                values,
                user_ref(interaction),
                channel_ref(interaction),
                await self.moderators.check(interaction),
                raw=interaction,
            )
            return await self.app.submit(submission)

        remembered = (form, values) if form is not None else None
        await self._answer(interaction, work(), remembered)

    async def _answer(
        self,
        interaction: discord.Interaction,
        work: Awaitable[list[Reply]],
        form: tuple[Form, dict[str, str]] | None = None,
    ) -> None:
        """Answer within Discord's 3 seconds; journal the interaction if it must be deferred,
        and mark it handled once its answers are out (adapters/discord/journal.py)."""
        replayed = self.journal.replayed(interaction)
        answer = Answer(interaction, self.memory, form, self.journal_hold(interaction), replayed)
        try:
            await answer.run(work, self.settings.defer_after)
        finally:
            if answer.held or replayed:
                await self.journal.done(interaction)

    def journal_hold(self, interaction: discord.Interaction) -> Callable[[], Awaitable[bool]]:
        return lambda: self.journal.hold(interaction)

    def _form_of(self, custom_id: str) -> tuple[str, str, Form | None] | None:
        """(form id, form value, the Form if still remembered) for one of our modals."""
        if custom_id.startswith(FORM_TOKEN):
            entry = self.memory.get(custom_id[len(FORM_TOKEN) :])
            return (entry[0].id, entry[0].value, entry[0]) if entry else None
        match = FORM_ID.fullmatch(custom_id)
        if match is None:
            return None
        entry = self.memory.get(custom_id)
        return match["form"], match["value"], entry[0] if entry else None

    async def on_reopen(self, interaction: discord.Interaction, token: str) -> None:
        entry = self.memory.get(token)
        if entry is None:
            await self._form_expired(interaction)
            return
        form, values = entry
        await interaction.response.send_modal(build_modal(form, self.memory, values))

    async def _form_expired(self, interaction: discord.Interaction) -> None:
        """A form remembered only in memory, lost to a restart or pushed out by newer ones."""
        expired = Post(text="That form has expired; please start again.")
        await Answer(interaction, self.memory).send([Ephemeral(expired)])

    async def _command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("command failed: %s", error, exc_info=error)
        sorry = Post(text="Something went wrong on my side. Please try again.")
        with contextlib.suppress(discord.HTTPException):
            await Answer(interaction, self.memory).send([Ephemeral(sorry)])
