"""Feeds: new articles from RSS/Atom sources, posted once each into subscribed channels.

`/feed add|list|remove|pause|resume|preview` manage subscriptions; a periodic job calls
`poll_due()`, which checks the feeds that are due (see `poller`). The pieces: `feature`
(the commands and the feature itself), `fetch` (safe HTTP), `parse` (bytes -> items, off
the event loop), `filters`, `render` (item -> Post), `store` (queries), `opml` and `cli`
(import/export), `demo` (the offline sample server), `worker` (a parser process's start).

This package imports nothing itself: `from bot.feeds import Feeds` loads `feature` when
asked, so importing `bot.feeds.parse` (as a parser process does) brings the parser alone,
without the app, aiohttp or the configuration's msgspec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.feeds.feature import (
        DEMO_BACKLOG,
        POLL_JOB,
        PRIVATE_HINT,
        AlreadySubscribed,
        Feeds,
    )

__all__ = ["DEMO_BACKLOG", "POLL_JOB", "PRIVATE_HINT", "AlreadySubscribed", "Feeds"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bot.feeds import feature

        return getattr(feature, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
