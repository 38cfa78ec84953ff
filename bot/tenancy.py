"""Hosting many communities: the bot is added to a workspace, removed from it, or back.

Adapters report only the facts, platform-neutrally: `joined(platform, workspace, by)` when
the bot arrives in a Discord server or a Slack workspace after start (`by`: the member who
added it, if known), and `left(platform, workspace)` when it is removed or uninstalled.

- Joining creates the workspace's community on first sight, the way any unknown workspace
  gets one (`Communities.of`), and welcomes whoever added the bot by direct message through
  the outbox: once per workspace ever (the key is spent), so a restart or the same arrival
  reported twice welcomes nobody again. When that message cannot be delivered (closed DMs)
  it goes to the `fallback` channel the adapter named, if any; else the log says so.
- Leaving keeps everything: the workspace's queued posts wait in their lanes (held, not
  dropped), new posts for it (a feed item, a reminder whose job comes due) are not queued,
  so its scheduled jobs run quietly to nothing. `joined` again lifts the hold and the lanes
  go on from where they stopped. The operator erases a community's data with
  `itsm-bot community delete ID` (bot/tenancy_cli.py, bot/erasure.py).

The state is kept per workspace (`community_workspaces.state`) and summed up per community
(`communities.state`: 'left' once every one of its workspaces has, since `left_at`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.app import Feature
from bot.communities import Community
from bot.model import ChannelRef, Post, UserRef, inert
from bot.postcodec import load_post

log = logging.getLogger(__name__)

WELCOME_PREFIX = "welcome:"
WELCOME_COLOR = 0x2E86C1

GiveUp = Callable[[ChannelRef, str, str], Awaitable[None]]


def welcome_key(platform: str, workspace: str) -> str:
    return f"{WELCOME_PREFIX}{platform}:{workspace}"


class Tenancy(Feature):
    """Arrivals and departures of the bot, for every platform alike."""

    name = "tenancy"

    def register(self) -> None:
        # The welcome's fallback: told of the direct message the outbox gave up on.
        self._told: GiveUp | None = self.app.outbox.lanes.on_give_up
        self.app.outbox.lanes.on_give_up = self._given_up

    async def start(self) -> None:
        rows = await self.app.db.fetchall(
            "SELECT platform, workspace FROM community_workspaces WHERE state = 'left'"
        )
        for row in rows:
            self.app.outbox.lanes.hold(row["platform"], row["workspace"])

    # --- What adapters report ------------------------------------------------------------

    async def joined(
        self,
        platform: str,
        workspace: str,
        by: str = "",
        *,
        fallback: str = "",
        name: str = "",
        moderator_role: str = "",
    ) -> Community:
        """The bot is in `workspace` (new, or back): its community, active, and a welcome.

        `by`: the platform's id of the member who added the bot ('' if unknown); `fallback`:
        a channel id for the welcome when their direct messages are closed; `name`: the
        workspace's display name; `moderator_role`: the role or group whose members are
        moderators there, as the adapter's settings name it ('' none)."""
        community = await self.app.communities.of(ChannelRef(platform, workspace, ""))
        async with self.app.db.transaction() as tx:
            await tx.execute(
                "UPDATE community_workspaces SET state = 'active', left_at = NULL,"
                " added_by = coalesce(nullif(?, ''), added_by) WHERE platform = ? AND workspace = ?",
                (by, platform, workspace),
            )
            await tx.execute(
                "UPDATE communities SET state = 'active', left_at = NULL WHERE id = ?",
                (community.id,),
            )
        self.app.outbox.lanes.release(platform, workspace)
        log.info("joined %s workspace %s (community %d), added by %s",
                 platform, workspace, community.id, by or "someone unknown")  # fmt: skip
        await self._welcome(platform, workspace, by, fallback, welcome_post(self, platform, name, moderator_role))  # fmt: skip
        return community

    async def left(self, platform: str, workspace: str) -> bool:
        """The bot is no longer in `workspace`: hold its work, keep its data. False if it
        was not there (unknown, or already left)."""
        now = self.app.clock.now().timestamp()
        async with self.app.db.transaction() as tx:
            changed = await tx.fetchone(
                "UPDATE community_workspaces SET state = 'left', left_at = ?"
                " WHERE platform = ? AND workspace = ? AND state = 'active' RETURNING community_id",
                (now, platform, workspace),
            )
            if changed is not None:
                await tx.execute(
                    "UPDATE communities SET state = 'left', left_at = ? WHERE id = ? AND NOT"
                    " EXISTS (SELECT 1 FROM community_workspaces WHERE community_id = ?"
                    " AND state = 'active')",
                    (now, changed[0], changed[0]),
                )
        self.app.outbox.lanes.hold(platform, workspace)
        if changed is None:
            log.info("left %s workspace %s, which had no active community", platform, workspace)
            return False
        log.warning("left %s workspace %s (community %d): its work waits, its data is kept",
                    platform, workspace, changed[0])  # fmt: skip
        return True

    def is_active(self, platform: str, workspace: str) -> bool:
        """Whether the bot works for that workspace now (it has not left it)."""
        return (platform, workspace) not in self.app.outbox.lanes.held

    # --- The welcome -----------------------------------------------------------------------

    async def _welcome(
        self, platform: str, workspace: str, by: str, fallback: str, post: Post
    ) -> None:
        if fallback:
            await self.app.db.execute(
                "INSERT INTO settings VALUES (?, 'welcome_fallback', ?) ON CONFLICT(scope, key)"
                " DO UPDATE SET value = excluded.value",
                (_scope(platform, workspace), fallback),
            )
        if by:
            where = ChannelRef.direct(UserRef(platform, workspace, by))
        elif fallback:
            where = ChannelRef(platform, workspace, fallback)
        else:
            log.warning("nobody to welcome in %s workspace %s: no adder, no channel", platform, workspace)  # fmt: skip
            return
        await self.app.outbox.enqueue(where, post, welcome_key(platform, workspace))

    async def _given_up(self, channel: ChannelRef, key: str, error: str) -> None:
        if channel.is_direct and key == welcome_key(channel.platform, channel.workspace):
            await self._welcome_in_channel(channel, key, error)
        elif self._told is not None:
            await self._told(channel, key, error)

    async def _welcome_in_channel(self, dm: ChannelRef, key: str, error: str) -> None:
        fallback = await self.app.db.fetchval(
            "SELECT value FROM settings WHERE scope = ? AND key = 'welcome_fallback'",
            (_scope(dm.platform, dm.workspace),),
        )
        if not fallback:
            log.warning("the welcome to %s was not delivered (%s) and %s workspace %s has no"
                        " channel for it; skipped", dm.direct_user, error, dm.platform, dm.workspace)  # fmt: skip
            return
        post = await self.app.db.fetchval("SELECT payload FROM outbox WHERE key = ?", (key,))
        channel = ChannelRef(dm.platform, dm.workspace, fallback)
        await self.app.outbox.enqueue(channel, load_post(post), f"{key}:channel")
        log.info("the welcome to %s was not delivered (%s); posting it in %s",
                 dm.direct_user, error, channel.key)  # fmt: skip


def tenancy_of(app: object) -> Tenancy:
    """The running bot's Tenancy (what an adapter calls `joined` / `left` on)."""
    return app.features["tenancy"]  # type: ignore[attr-defined, no-any-return]


def _scope(platform: str, workspace: str) -> str:
    return f"{platform}:{workspace}:"  # a workspace's prefix: erased with the community


def welcome_post(tenancy: Tenancy, platform: str, name: str, moderator_role: str) -> Post:
    """The welcome, in the core's words; the surface's names fill in help and workspace."""
    names = tenancy.app.names(platform)
    place = names.workspace_words(platform)
    role = f', and members of the role named "{inert(moderator_role)}"' if moderator_role else ""
    web = "; `/web` opens the moderators' web console" if ("web",) in tenancy.app.registry.commands else ""  # fmt: skip
    title = f"Thanks for adding me to {inert(name)}" if name else "Thanks for adding me"
    return Post(
        title=title,
        text=(
            "I post new articles from feeds, run polls and surveys, announce events with"
            " reminders, and post a daily BRM prompt, in the channels you choose.\n"
            f"**Moderators** are the members who may manage the {place}{role}. Only they"
            " can use the 🔒 commands.\n"
            "**Where posts go**: each job posts where a moderator sets it up: `/feed add URL"
            " #channel`, `/event add` in the channel to announce in, `/justdoit schedule"
            " #channel`. Notices about them (a feed I paused) go to whoever set them up.\n"
            f"**Start here**: `{names.help}` lists every command{web}."
        ),
        color=WELCOME_COLOR,
    )
