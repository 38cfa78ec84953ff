"""Moderators hear of a post the bot gave up on, in their own channel.

When the outbox gives up on a channel post (the platform refused it for good, or it kept
failing past `[outbox] give_up_after`), the community's moderators' channel is told, at most
once per failing channel per day: a channel that lost its permission may fail a thousand
posts, and the count of the rest is in `/help` (Delivery). Without a moderators' channel
nothing is posted (the bot knows no moderator to tell by direct message; `/help` still
shows the failures). A member's direct messages that cannot be delivered (closed DMs) are
nobody's business, and a notice never tells of its own failure.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.model import ChannelRef, Post, channel_tag, inert

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

KEY_PREFIX = "failed-post:"
NOTICE_COLOR = 0xC0392B


class FailureNotices:
    def __init__(self, app: App) -> None:
        self.app = app

    async def given_up(self, channel: ChannelRef, key: str, error: str) -> None:
        """The outbox gave up on `key` in `channel`: tell the moderators (see the module)."""
        if channel.is_direct or key.startswith(KEY_PREFIX):
            return
        told = (await self.app.communities.of(channel)).moderators
        if told is None or told == channel:
            return
        day = self.app.clock.now().strftime("%Y-%m-%d")
        help = self.app.names(told.platform).help
        post = Post(
            title="A post could not be delivered",
            text=f"I gave up on a post to {_named(channel, told)}: {inert(error[:300])}\n"
            f"Others that fail there today are not told one by one: `{help}` counts them"
            " under Delivery.",
            color=NOTICE_COLOR,
        )
        await self.app.outbox.enqueue(told, post, f"{KEY_PREFIX}{channel.key}:{day}")


def _named(channel: ChannelRef, told: ChannelRef) -> str:
    """The failing channel as the moderators' channel can show it: a channel marker only
    means a channel of the workspace it is shown in."""
    if (channel.platform, channel.workspace) == (told.platform, told.workspace):
        return channel_tag(channel)
    return f"a {inert(channel.platform.title())} channel ({inert(channel.channel)})"
