"""The `[feeds]` configuration section: every key has a default."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from bot.config import Duration, Section


class FeedSettings(Section):
    interval: Duration = timedelta(minutes=30)  # how often a healthy feed is checked
    max_interval: Duration = timedelta(hours=24)  # ceiling when honouring a feed's TTL/max-age
    # The shortest `interval=` a subscription may ask for (never below `poll_every` either).
    min_interval: Duration = timedelta(minutes=10)
    jitter: float = Field(default=0.1, ge=0, le=0.5)  # +/- fraction of the interval
    poll_every: Duration = timedelta(seconds=30)  # how often due feeds are looked for
    timeout: float = Field(default=10.0, gt=0, le=120)  # seconds, whole request
    max_bytes: int = Field(default=5_000_000, ge=1024)  # response size cap (decompressed)
    concurrency: int = Field(default=50, ge=1, le=500)  # parallel fetches
    # 0: parse in a thread of the bot's process; N: poll rounds parse in N processes
    # (about 45 MB each, plus a forkserver), for a machine with cores to spare.
    parse_workers: int = Field(default=0, ge=0, le=32)
    max_failures: int = Field(default=8, ge=1, le=1000)  # consecutive, before auto-disable
    backoff_max: Duration = timedelta(hours=12)
    backlog: int = Field(default=3, ge=0, le=50)  # items a new subscription posts at once
    per_channel_cap: int = Field(default=5, ge=1)  # feed posts per window in one channel
    per_channel_window: Duration = timedelta(minutes=10)
    summary_chars: int = Field(default=300, ge=50, le=2000)
    allow_private: bool = False  # allow private/loopback/link-local addresses (tests, demo)
    user_agent: str = "itsm-community-bot/0.1 (feed reader)"
    import_max: int = Field(default=500, ge=1, le=100_000)  # feeds one `feeds import` file adds
