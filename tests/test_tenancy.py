"""joined() and left() in the core, on the console: a left workspace's scheduled jobs run to
nothing (no post, no failure told), its queued posts wait, and a community spread over two
workspaces is 'left' only once both are."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from adapters.console import Console
from bot.events import Events
from bot.help import Help
from bot.model import ChannelRef, Invocation, Post, UserRef
from bot.tenancy import Tenancy, tenancy_of

WS = "chapter-b"
CHANNEL = ChannelRef("console", WS, "events")


async def boot(make_app, config=None):
    app = await make_app(features=[Tenancy, Help, Events], config=config)
    out: list[str] = []
    return app, Console(app, write=out.append), out


async def add_event(app) -> None:
    mod = UserRef("console", WS, "mod", "mod")
    text = 'add title=SIG start="2026-11-23 12:00" remind=1h'
    await app.invoke(Invocation(("event",), mod, CHANNEL, True, text=text))
    await app.outbox.drain()


async def test_a_left_workspaces_reminder_runs_quietly_to_nothing_and_is_not_sent_late(
    make_app, clock
) -> None:
    app, _, out = await boot(make_app)
    await add_event(app)
    assert await tenancy_of(app).left("console", WS)
    clock.set(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))
    ran = await app.scheduler.run_due()
    assert [outcome for key, outcome in ran if ":remind:" in key] == ["done"]
    await app.outbox.drain()
    assert not any("⏰" in block for block in out)
    assert (await app.outbox.health()).failed == 0  # not a delivery failure to report
    await tenancy_of(app).joined("console", WS)
    await app.outbox.drain()
    assert not any("⏰" in block for block in out)  # its moment has passed


async def test_posts_queued_before_leaving_wait_across_a_restart_and_go_on_return(
    make_app, clock
) -> None:
    app, _, out = await boot(make_app)
    tenancy = tenancy_of(app)
    await tenancy.joined("console", WS)
    assert await app.outbox.enqueue(CHANNEL, Post(text="queued before"), "queued:1")
    assert await tenancy.left("console", WS)  # before the lane was served
    assert not await tenancy.left("console", WS)  # already left
    app, _, out = await boot(make_app)  # a restart on the same database
    await app.outbox.drain()
    assert await app.outbox.state("queued:1") == "pending"
    assert not tenancy_of(app).is_active("console", WS)
    await tenancy_of(app).joined("console", WS)
    await app.outbox.drain()
    assert await app.outbox.state("queued:1") == "sent"
    assert any("queued before" in block for block in out)


async def test_unknown_workspace_and_nobody_to_welcome(make_app, caplog) -> None:
    app, _, _ = await boot(make_app)
    caplog.set_level(logging.INFO)
    assert not await tenancy_of(app).left("console", "never-seen")
    assert await app.db.fetchval("SELECT count(*) FROM communities") == 0
    community = await tenancy_of(app).joined("console", WS)  # no adder, no channel
    assert community.name == f"console:{WS}"
    assert "nobody to welcome" in caplog.text
    assert await app.outbox.pending_count() == 0
    assert await app.outbox.enqueue(CHANNEL, Post(text="x"), "after")  # active: queued


async def test_a_community_on_two_platforms_is_left_once_both_workspaces_are(
    make_app, clock
) -> None:
    config = {"community": [{"name": "itSMF Norway", "timezone": "Europe/Oslo",
              "workspaces": ["discord:111", "slack:T222"], "channels": []}]}  # fmt: skip
    app, _, _ = await boot(make_app, config)
    tenancy = tenancy_of(app)

    async def state() -> str:
        return await app.db.fetchval("SELECT state FROM communities WHERE name = 'itSMF Norway'")

    assert await tenancy.left("discord", "111")
    assert await state() == "active"
    await app.outbox.enqueue(ChannelRef("slack", "T222", "C1"), Post(text="x"), "slack-post")
    assert await app.outbox.state("slack-post") == "pending"  # the other workspace goes on
    assert await tenancy.left("slack", "T222")
    assert await state() == "left"
    await tenancy.joined("slack", "T222")
    assert await state() == "active"
