"""Feed store queries that must be exact."""

from __future__ import annotations

from bot.feeds import Feeds
from bot.feeds.store import FeedStore
from bot.help import Help
from bot.model import ChannelRef


async def test_subscriptions_in_a_workspace_treat_underscore_and_percent_as_text(make_app):
    app = await make_app(features=[Help, Feeds])
    store = FeedStore(app.db)
    source = await store.ensure_source("https://example.org/feed", now=0.0)
    channels = {
        "w_1": ChannelRef("slack", "w_1", "news"),
        "wx1": ChannelRef("slack", "wx1", "news"),
        "w%": ChannelRef("slack", "w%", "news"),
        "wide": ChannelRef("slack", "wide", "news"),
        "other platform": ChannelRef("discord", "w_1", "news"),
    }
    for channel in channels.values():
        await store.subscribe(
            source.id, channel, include="", exclude="", template="", backlog=0,
            created_by="", now=0.0,
        )  # fmt: skip
    for workspace in ("w_1", "w%", "wx1"):
        subs = await store.subscriptions_in("slack", workspace)
        assert [s.channel for s in subs] == [channels[workspace]]
    assert await store.subscriptions_in("slack", "w") == []
