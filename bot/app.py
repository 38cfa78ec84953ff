"""The core: one object that holds the store, the outbox, the scheduler and the features,
and answers the three things an adapter can hand it: a command, an action and a form.

Handlers receive a `Context` bound to where the request came from and return replies;
they raise `UserError` for anything the member should be told. Nothing here knows which
platform a request came from beyond the name in its refs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from bot import commands as cmd
from bot import communities, intake, outbox, scheduler, turns
from bot.clock import Clock, SystemClock
from bot.communities import Communities, Community, CommunitySpec, Settings
from bot.config import CoreConfig, Section
from bot.errors import PermissionDenied, UserError
from bot.failure_notices import FailureNotices
from bot.intake import Intake
from bot.model import (
    MARK_OPEN,
    Action,
    ChannelRef,
    Ephemeral,
    Invocation,
    Post,
    Reply,
    Submission,
    UserRef,
    inert,
)
from bot.outbox import Outbox, OutboxSettings
from bot.scheduler import Scheduler
from bot.store import Database

log = logging.getLogger(__name__)

ERROR_COLOR = 0xCC3333
# The engine's own tables, migrated before any feature's.
CORE_SCHEMAS: tuple[tuple[str, list[str]], ...] = (
    ("communities", communities.MIGRATIONS),
    ("outbox", outbox.MIGRATIONS),
    ("scheduler", scheduler.MIGRATIONS),
    ("intake", intake.MIGRATIONS),
    ("turns", turns.MIGRATIONS),
)


@dataclass(frozen=True)
class SurfaceNames:
    """How one surface names what the core's texts mention: its help command (Slack has
    no /help: its help is /itsm) and what a workspace is called there. Each adapter says
    it once (`App.name_surface`); the core itself knows no platform's names."""

    help: str = "/help"
    workspace: str = ""  # e.g. "Slack workspace"; empty: "<platform> workspace"

    def workspace_words(self, platform: str) -> str:
        return self.workspace or f"{platform.title()} workspace"


@dataclass
class Context:
    """Who asked, where, and when; handed to every handler."""

    app: App
    user: UserRef
    channel: ChannelRef
    is_moderator: bool
    community: Community
    now: datetime
    message_id: str = ""

    @property
    def tz(self) -> str:
        return self.community.timezone

    @property
    def names(self) -> SurfaceNames:
        return self.app.names(self.channel.platform)

    @property
    def help(self) -> str:
        """The help command of the surface the request came from (`/help`, Slack `/itsm`)."""
        return self.names.help


ActionHandler = Callable[[Context, Action], Awaitable[Any]]
FormHandler = Callable[[Context, Submission], Awaitable[Any]]


class Feature:
    """One job of the bot. Subclasses declare their schema, settings and handlers."""

    name: ClassVar[str]
    migrations: ClassVar[list[str]] = []
    Settings: ClassVar[type[Section] | None] = None

    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def settings(self) -> Any:
        return self.app.config.section(self.name) if self.Settings else None

    def register(self) -> None:
        """Declare commands, actions, forms and job kinds on `self.app`."""

    async def start(self) -> None:
        """Runs once the store is migrated and the scheduler is up."""

    async def stop(self) -> None:
        """Runs before the store closes."""

    async def seed_demo(self, channel: ChannelRef) -> None:
        """Load bundled content for the offline demo into `channel` (idempotent)."""


def schemas(features: list[type[Feature]]) -> list[tuple[str, list[str]]]:
    """Every schema an App of these features keeps, by name in `schema_versions`, in the
    order `App.start` migrates them."""
    return [*CORE_SCHEMAS, *((f.name, list(f.migrations)) for f in features)]


class App:
    def __init__(
        self,
        config: CoreConfig,
        db: Database,
        clock: Clock,
        features: list[type[Feature]],
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.registry = cmd.Registry()
        self.communities = Communities(db, config.bot.timezone)
        self.settings = Settings(db)
        # Small writes that must be on disk before a platform hears back (votes, journaled
        # requests) share one batching connection of their own.
        self.writer = db.group_commit()
        self.intake = Intake(db, self.writer, clock)
        self.outbox = Outbox(db, clock, outbox_settings(config))
        self.outbox.lanes.on_give_up = FailureNotices(self).given_up
        self.scheduler = Scheduler(db, clock, config.scheduler.grace, lease=config.scheduler.lease)
        self._actions: dict[str, tuple[ActionHandler, bool]] = {}
        self._forms: dict[str, FormHandler] = {}
        self._names: dict[str, SurfaceNames] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        # A member's own zone (bot/members.py sets it), for the replies only they see; with
        # ask=False only a zone already known, never a question to the platform.
        self.member_zone: Callable[..., Awaitable[str | None]] | None = None
        self.outbox.for_member = self._direct_in_member_zone
        self.features: dict[str, Feature] = {}
        for cls in features:
            feature = cls(self)
            self.features[cls.name] = feature
            feature.register()

    # --- Life cycle ----------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        config: CoreConfig,
        features: list[type[Feature]],
        clock: Clock | None = None,
        db_path: str | None = None,
        background: bool = True,
    ) -> AsyncIterator[App]:
        """Open the store, migrate, start everything; close it all on the way out.

        With `background=False` no sender loop or timer runs: tests drive the outbox and
        the scheduler themselves under a fake clock.
        """
        db = await Database.open(db_path or config.bot.database)
        app = cls(config, db, clock or SystemClock(), features)
        try:
            await app.start(background)
            yield app
        finally:
            await app.stop()
            await db.close()

    async def start(self, background: bool = True) -> None:
        for name, scripts in CORE_SCHEMAS:
            await self.db.migrate(name, scripts)
        await self.outbox.recover()
        await self.intake.prune()
        for name, feature in self.features.items():
            await self.db.migrate(name, feature.migrations)
        await self.communities.declare(
            [CommunitySpec(**msgspec.structs.asdict(c)) for c in self.config.community]
        )
        for feature in self.features.values():
            await feature.start()
        await self.scheduler.start(paused=not background)
        # Handled requests are remembered a day (to refuse one delivered again), then go.
        self.scheduler.timers.add_job(
            self.intake.prune, "interval", hours=1, id="intake-prune", replace_existing=True
        )
        if background:
            self._tasks.append(asyncio.create_task(self.outbox.run(), name="outbox"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for feature in reversed(list(self.features.values())):
            await feature.stop()
        await self.writer.close()
        self.scheduler.stop()

    # --- Declaring -----------------------------------------------------------------------

    def command(self, command: cmd.Command) -> cmd.Command:
        return self.registry.add(command)

    def on_action(self, action: str, handler: ActionHandler, moderator: bool = False) -> None:
        """A button handler. Its `ctx.is_moderator` is reliable only if `moderator=True`:
        for other buttons an adapter may leave the (costly) check undone."""
        self._actions[action] = (handler, moderator)

    def on_form(self, form: str, handler: FormHandler) -> None:
        self._forms[form] = handler

    def name_surface(self, platform: str, help: str = "/help", workspace: str = "") -> None:
        """An adapter says how its platform names help and a workspace, once, at start."""
        self._names[platform] = SurfaceNames(help, workspace)

    def names(self, platform: str) -> SurfaceNames:
        return self._names.get(platform) or SurfaceNames()

    # --- Answering -----------------------------------------------------------------------

    async def context(
        self, user: UserRef, channel: ChannelRef, is_moderator: bool, message_id: str = ""
    ) -> Context:
        community = await self.communities.of(channel)
        return Context(self, user, channel, is_moderator, community, self.clock.now(), message_id)

    async def invoke(self, inv: Invocation) -> list[Reply]:
        """Run a command: resolve, check permission, bind and check options, call."""

        async def run() -> Any:
            help = self.names(inv.channel.platform).help
            if inv.text is not None:
                command, rest = self.registry.resolve(inv.path[0], inv.text, help)
                values = cmd.bind_text(command, rest, help)
            else:
                command = self.registry.commands.get(tuple(inv.path))
                if command is None:
                    command, _ = self.registry.resolve(inv.path[0], " ".join(inv.path[1:]), help)
                values = dict(inv.options)
            if command.moderator and not inv.is_moderator:
                raise PermissionDenied(
                    f"`/{command.name}` is for moderators only.",
                    hint=f"Ask a moderator, or type {help} to see what you can use.",
                )
            ctx = await self.context(inv.user, inv.channel, inv.is_moderator)
            place = cmd.Place(inv.channel, ctx.tz, ctx.now, help)
            options = cmd.coerce(command, values, place)
            return await command.handler(ctx, **options)

        return await self._answer(f"/{' '.join(inv.path)}", inv.user, run)

    async def act(self, action: Action) -> list[Reply]:
        async def run() -> Any:
            entry = self._actions.get(action.action)
            if entry is None:
                raise UserError("That button is no longer in use.")
            handler, moderator = entry
            is_moderator = action.is_moderator
            if moderator and not is_moderator and action.moderator_check is not None:
                is_moderator = await action.moderator_check()
            if moderator and not is_moderator:
                raise PermissionDenied("Only moderators can use that button.")
            ctx = await self.context(action.user, action.channel, is_moderator, action.message_id)
            return await handler(ctx, action)

        return await self._answer(f"action {action.action}", action.user, run)

    async def submit(self, sub: Submission) -> list[Reply]:
        async def run() -> Any:
            handler = self._forms.get(sub.form)
            if handler is None:
                raise UserError("That form has expired; please start again.")
            ctx = await self.context(sub.user, sub.channel, sub.is_moderator)
            return await handler(ctx, sub)

        return await self._answer(f"form {sub.form}", sub.user, run)

    async def _answer(
        self, what: str, user: UserRef, run: Callable[[], Awaitable[Any]]
    ) -> list[Reply]:
        try:
            result = await run()
        except UserError as exc:
            log.info("%s by %s refused: %s", what, user.key, exc.message)
            return [Ephemeral(error_post(exc))]
        except Exception:
            ref = secrets.token_hex(3)
            log.exception("%s by %s failed (ref %s)", what, user.key, ref)
            return [
                Ephemeral(
                    Post(
                        text=f"Something went wrong on my side (ref `{ref}`). "
                        "A moderator can find the details in the bot's log.",
                        color=ERROR_COLOR,
                    )
                )
            ]
        return await self._in_member_zone(user, _replies(result))

    async def _in_member_zone(self, user: UserRef, replies: list[Reply]) -> list[Reply]:
        """A reply only its member sees shows its times in that member's zone, where they
        have one (posts in a channel keep the community's). The zone is looked up only for
        a reply that shows a time: a vote's answer costs no lookup. Posts are copied, never
        changed: a handler may hand the same post to several members."""
        if self.member_zone is None:
            return replies
        if not any(isinstance(r, Ephemeral) and shows_time(r.post) for r in replies):
            return replies
        zone = await self._zone_or_none(user, ask=True)
        if not zone:
            return replies
        return [
            Ephemeral(replace(r.post, zone=zone))
            if isinstance(r, Ephemeral) and shows_time(r.post)
            else r
            for r in replies
        ]

    async def _direct_in_member_zone(self, channel: ChannelRef, post: Post) -> Post:
        """A direct message is read by one member too: its times in their zone, where one
        is known already (a reminder to many members never waits on the platform)."""
        if self.member_zone is None or not shows_time(post):
            return post
        member = UserRef(channel.platform, channel.workspace, channel.direct_user)
        zone = await self._zone_or_none(member, ask=False)
        return replace(post, zone=zone) if zone else post

    async def _zone_or_none(self, member: UserRef, ask: bool) -> str | None:
        assert self.member_zone is not None
        try:
            return await self.member_zone(member, ask=ask)
        except Exception:  # the message matters more than its zone: the community's, then
            log.exception("the zone of %s could not be read", member.key)
            return None


def outbox_settings(config: CoreConfig) -> OutboxSettings:
    values = msgspec.structs.asdict(config.outbox)
    values["give_up_after"] = config.outbox.give_up_after.total_seconds()
    return OutboxSettings(**values)


def freeze_startup_heap() -> None:
    """Once up and connected: set everything made so far (modules, clients, config)
    aside from the garbage collector. A full collection then walks only what came
    after, instead of pausing the whole bot for 50-90 ms in the middle of a burst of
    votes (seen in bench/votes.py). Objects made at start-up live as long as the bot."""
    gc.freeze()


def shows_time(post: Post) -> bool:
    """Whether a post carries a time marker (`time_tag`) anywhere a renderer shows one."""
    mark = MARK_OPEN + "t:"
    texts = [post.title, post.text, post.footer, *(f.name + f.value for f in post.fields)]
    return post.timestamp is not None or any(mark in text for text in texts)


def error_post(exc: UserError) -> Post:
    """An error for the member. Errors often quote what was typed, and the core never means
    an error to carry a time or a mention, so the whole message is made inert here, once."""
    text = f"**{inert(exc.message)}**"
    if exc.hint:
        text += f"\n{inert(exc.hint)}"
    return Post(text=text, color=ERROR_COLOR)


def _replies(result: Any) -> list[Reply]:
    if result is None:
        return []
    if isinstance(result, list):
        return result
    if isinstance(result, Reply):
        return [result]
    raise TypeError(f"a handler returned {type(result).__name__}, not a reply")
