"""Fair share between communities: community A has 1,000 feed posts waiting, paced one a
second per channel as on Discord and Slack; community B's event reminder still goes out in
the first delivery round after it comes due, at its time on the bot's clock, long before
A's backlog is through. Each channel is a lane of its own (bot/lanes.py), so A's backlog
only ever waits behind itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.console import Console
from bot.events import Events
from bot.help import Help
from bot.model import ChannelRef, Invocation, Post, UserRef
from bot.tenancy import Tenancy

PACE = 1.0  # seconds between two posts in one channel, the platforms' default
REMINDER_DUE = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 1 h before B's 12:00 event


async def reminder_row(app, channel: ChannelRef):
    return await app.db.fetchone(
        "SELECT state, sent_at FROM outbox WHERE channel = ? AND key LIKE 'event:%:remind:%'",
        (channel.key,),
    )


async def waiting(app, channels: list[ChannelRef]) -> int:
    marks = ", ".join("?" for _ in channels)
    return await app.db.fetchval(
        f"SELECT count(*) FROM outbox WHERE state = 'pending' AND channel IN ({marks})",
        [c.key for c in channels],
    )


@pytest.mark.parametrize("a_channels", [1, 100], ids=["one-channel", "100-channels"])
async def test_a_busy_community_does_not_delay_another_communitys_reminder(
    make_app, clock, a_channels: int
) -> None:
    app = await make_app(features=[Tenancy, Help, Events])
    console = Console(app, write=lambda _: None)
    console.transport.pace = PACE
    b = ChannelRef("console", "chapter-b", "events")
    mod = UserRef("console", "chapter-b", "mod", "mod")
    await app.invoke(
        Invocation(
            ("event",), mod, b, True, text='add title=SIG start="2026-11-23 12:00" remind=1h'
        )
    )
    await app.outbox.drain()  # B's announcement goes out now, well before the reminder

    # Just before the reminder, community A's feeds bring 1,000 items.
    clock.set(REMINDER_DUE - timedelta(seconds=30))
    a = [ChannelRef("console", "chapter-a", f"news-{n}") for n in range(a_channels)]
    for i in range(1000):
        post = Post(title=f"Item {i}", url=f"https://example.org/{i}")
        assert await app.outbox.enqueue(a[i % a_channels], post, f"feed:{i % a_channels}:{i}")
    await app.outbox.deliver_due()
    assert await waiting(app, a) == 1000 - a_channels  # one each, then the pace

    clock.set(REMINDER_DUE)
    ran = await app.scheduler.run_due()
    assert [key for key, _ in ran if ":remind:" in key]
    assert (await reminder_row(app, b))["state"] == "pending"
    await app.outbox.deliver_due()  # the first round after it came due
    row = await reminder_row(app, b)
    assert row["state"] == "sent"
    assert row["sent_at"] - REMINDER_DUE.timestamp() < 1.0  # within a second of its time
    assert await waiting(app, a) == 1000 - 2 * a_channels  # A's backlog: still most of it
    assert await app.outbox.state("feed:0:999" if a_channels == 1 else "feed:99:999") == "pending"
