"""The `[feeds]` configuration section: every key has a default."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from bot.config import Duration, Section


class FeedSettings(Section):
    interval: Duration = Duration(minutes=30)  # how often a healthy feed is checked
    max_interval: Duration = Duration(hours=24)  # ceiling when honouring a feed's TTL/max-age
    # The shortest `interval=` a subscription may ask for (never below `poll_every` either).
    min_interval: Duration = Duration(minutes=10)
    jitter: Annotated[float, Meta(ge=0, le=0.5)] = 0.1  # +/- fraction of the interval
    poll_every: Duration = Duration(seconds=30)  # how often due feeds are looked for
    timeout: Annotated[float, Meta(gt=0, le=120)] = 10.0  # seconds, whole request
    max_bytes: Annotated[int, Meta(ge=1024)] = 5_000_000  # response size cap (decompressed)
    concurrency: Annotated[int, Meta(ge=1, le=500)] = 50  # parallel fetches
    # 0: parse in a thread of the bot's process; N: poll rounds parse in N processes
    # (about 45 MB each, plus a forkserver), for a machine with cores to spare.
    parse_workers: Annotated[int, Meta(ge=0, le=32)] = 0
    max_failures: Annotated[int, Meta(ge=1, le=1000)] = 8  # consecutive, before auto-disable
    backoff_max: Duration = Duration(hours=12)
    backlog: Annotated[int, Meta(ge=0, le=50)] = 3  # items a new subscription posts at once
    per_channel_cap: Annotated[int, Meta(ge=1)] = 5  # feed posts per window in one channel
    per_channel_window: Duration = Duration(minutes=10)
    summary_chars: Annotated[int, Meta(ge=50, le=2000)] = 300
    allow_private: bool = False  # allow private/loopback/link-local addresses (tests, demo)
    user_agent: str = "itsm-community-bot/0.1 (feed reader)"
    import_max: Annotated[int, Meta(ge=1, le=100_000)] = 500  # feeds one `feeds import` file adds
