"""Members' own time zones on Slack (slack-bolt in HTTP mode against the fake, with the zone
of the member's profile from `users.info`) and on Discord (discord.py against the fake, which
tells no zone): the member's zone in what only they see, their own choice over Slack's, a
mistyped zone refused naming the closest, and the daily prompt's reminder by direct message
at the member's local time, once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from adapters.discord import create
from bot.help import Help
from bot.members import My
from bot.model import UserRef
from bot.prompts import JustDoIt
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import TEAM_ID, FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.test_polls_discord import interact, said
from tests.test_polls_slack import slack_bot

FEATURES = [Help, My, JustDoIt]
MANAGE_GUILD = "32"


def shown(data: object) -> str:
    return json.dumps(data, ensure_ascii=False)


async def zone_row(app, user: str) -> dict | None:
    row = await app.db.fetchone('SELECT zone, source FROM member_zones WHERE "user" = ?', (user,))
    return dict(row) if row else None


async def run_at(app, clock, moment: datetime) -> None:
    clock.set(moment)
    await app.scheduler.run_due()
    await app.outbox.drain()


# --- Slack -------------------------------------------------------------------------------


async def test_slack_replies_use_the_profiles_zone_until_the_member_sets_one(
    make_app, fake_slack: FakeSlack
) -> None:
    fake_slack.users["U5"] = {"tz": "Europe/Oslo"}
    async with slack_bot(make_app, fake_slack, FEATURES) as slack:
        said_ = await slack.command("my", "timezone", user="U5")
        assert "Europe/Oslo (it is 10:00 there, UTC+01:00)*, as Slack has it" in shown(said_)
        assert await zone_row(slack.app, "U5") == {"zone": "Europe/Oslo", "source": "platform"}
        fake_slack.users["U1"] = {"is_admin": True}
        await slack.command("justdoit", "schedule time=08:30 tz=UTC days=daily", user="U1")
        reply = await slack.command("justdoit", "remind 13:00", user="U5")
        # Slack shows <!date> in each reader's zone; its fallback text is the member's zone.
        assert "13:00 Europe/Oslo" in shown(reply)
        assert "|Mon 23 Nov 2026 13:00 CET>" in shown(reply)
        (job,) = await slack.app.scheduler.pending("justdoit:remind:")
        assert job.due_at == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

        fake_slack.users["U5"] = {"tz": "Asia/Tokyo"}  # asked once: the kept answer stands
        assert "Europe/Oslo" in shown(await slack.command("my", "timezone", user="U5"))

        chosen = await slack.command("my", "timezone America/New_York", user="U5")
        assert chosen["response_type"] == "ephemeral"
        assert "Your time zone is now *America/New_York" in shown(chosen)
        assert await zone_row(slack.app, "U5") == {"zone": "America/New_York", "source": "member"}
        again = await slack.command("justdoit", "remind", user="U5")
        assert "13:00 America/New_York" in shown(again) and "EST>" in shown(again)
        # The member's choice is theirs: a later lookup never replaces it.
        assert await slack.app.features["my"].zone_of(UserRef("slack", TEAM_ID, "U5")) == (
            "America/New_York"
        )
        assert await zone_row(slack.app, "U5") == {"zone": "America/New_York", "source": "member"}


async def test_slack_a_failed_profile_lookup_answers_in_the_communitys_zone_and_asks_later(
    make_app, fake_slack: FakeSlack, clock
) -> None:
    fake_slack.users["U5"] = {"tz": "Europe/Oslo"}
    async with slack_bot(make_app, fake_slack, FEATURES) as slack:
        fake_slack.fail_next("users.info", status=500, times=2)  # the moderator check too
        reply = await slack.command("my", "timezone", user="U5")
        assert "You have not set a time zone: you see the community's" in shown(reply)
        assert await zone_row(slack.app, "U5") is None
        asked = len(fake_slack.calls_to("users.info"))
        await slack.command("my", "timezone", user="U5")
        assert await zone_row(slack.app, "U5") is None  # not asked again straight away
        assert len(fake_slack.calls_to("users.info")) == asked + 1  # the moderator check only
        clock.advance(3601)
        reply = await slack.command("my", "timezone", user="U5")
        assert "Europe/Oslo (it is 11:00 there, UTC+01:00)*, as Slack has it" in shown(reply)


async def test_slack_refuses_a_mistyped_zone_naming_the_closest(
    make_app, fake_slack: FakeSlack
) -> None:
    async with slack_bot(make_app, fake_slack, FEATURES) as slack:
        reply = await slack.command("my", "timezone Europe/Olso", user="U5")
        assert reply["response_type"] == "ephemeral"
        assert "is not a time zone I know" in shown(reply)
        assert "Did you mean Europe/Oslo?" in shown(reply)
        assert await zone_row(slack.app, "U5") is None


async def test_slack_reminder_arrives_by_direct_message_at_the_members_time_once(
    make_app, fake_slack: FakeSlack, clock
) -> None:
    fake_slack.users["U1"] = {"is_admin": True}
    fake_slack.users["U5"] = {"tz": "Asia/Tokyo"}
    async with slack_bot(make_app, fake_slack, FEATURES) as slack:
        await slack.command("justdoit", "schedule time=08:30 tz=UTC days=daily", user="U1")
        await slack.command("justdoit", "today", user="U1")
        await slack.command("justdoit", "remind 21:00", user="U5")  # 12:00 UTC
        await slack.app.outbox.drain()
        await run_at(slack.app, clock, datetime(2026, 11, 23, 11, 59, tzinfo=UTC))
        assert slack.fake.messages.get("DU5") in (None, [])
        await run_at(slack.app, clock, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        (dm,) = slack.fake.messages["DU5"]
        assert "Just do it: today's prompt" in shown(dm) and "Asia/Tokyo" in shown(dm)
        await run_at(slack.app, clock, datetime(2026, 11, 23, 13, 0, tzinfo=UTC))
        assert len(slack.fake.messages["DU5"]) == 1


# --- Discord -----------------------------------------------------------------------------


@asynccontextmanager
async def discord_bot(make_app: Any, fake: FakeDiscord) -> AsyncIterator[Any]:
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0}}
    app = await make_app(FEATURES, config=config)
    env = {
        "DISCORD_TOKEN": "fake-token",
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    surface = create(app, app.config.section("discord"), env, guild_ready_timeout=0.1)
    await surface.login()
    try:
        yield app, surface
    finally:
        await surface.stop()


def my_timezone(fake: FakeDiscord, zone: str | None, user_id: int = 77) -> dict[str, Any]:
    options = [{"name": "zone", "type": 3, "value": zone}] if zone else []
    return fake.slash_payload(
        "my", [{"type": 1, "name": "timezone", "options": options}], user_id=user_id
    )


def justdoit(fake: FakeDiscord, sub: str, options: dict, user_id: int, mod: bool = False):
    typed = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    return fake.slash_payload(
        "justdoit", [{"type": 1, "name": sub, "options": typed}], user_id=user_id,
        permissions=MANAGE_GUILD if mod else "0",
    )  # fmt: skip


async def test_discord_sets_shows_and_refuses_zones(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        before = await interact(fake, surface, my_timezone(fake, None))
        assert before["data"]["flags"] & 64
        assert "You have not set a time zone: you see the community's, **UTC (" in said(before)
        body = await interact(fake, surface, my_timezone(fake, "Europe/Oslo"))
        assert body["data"]["flags"] & 64
        assert "Europe/Oslo (it is 10:00 there, UTC+01:00)" in said(body)
        assert await zone_row(app, "77") == {"zone": "Europe/Oslo", "source": "member"}
        wrong = await interact(fake, surface, my_timezone(fake, "Europe/Olso", user_id=78))
        assert wrong["data"]["flags"] & 64 and "Did you mean Europe/Oslo?" in said(wrong)
        assert await zone_row(app, "78") is None


async def test_discord_reminder_arrives_at_the_members_local_time_once(
    fake_discord: FakeDiscord, make_app: Any, clock: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        schedule = {"time": "08:30", "tz": "UTC", "days": "daily"}
        await interact(fake, surface, justdoit(fake, "schedule", schedule, 4242, mod=True))
        await interact(fake, surface, justdoit(fake, "today", {}, 4242, mod=True))
        await interact(fake, surface, my_timezone(fake, "America/New_York"))
        reply = await interact(fake, surface, justdoit(fake, "remind", {"at": "12:00"}, 77))
        assert "12:00 America/New_York" in said(reply)
        due = int(datetime(2026, 11, 23, 17, 0, tzinfo=UTC).timestamp())
        assert f"<t:{due}:f>" in said(reply)  # Discord shows it in the reader's own zone
        await app.outbox.drain()
        await run_at(app, clock, datetime(2026, 11, 23, 16, 59, tzinfo=UTC))
        assert fake.dm_channel_of(77) is None
        await run_at(app, clock, datetime(2026, 11, 23, 17, 0, tzinfo=UTC))
        await run_at(app, clock, datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
        channel = fake.dm_channel_of(77)
        assert channel is not None
        dms = [m for m in fake.messages.values() if int(m["channel_id"]) == int(channel["id"])]
        assert len(dms) == 1
        assert "Just do it: today's prompt" in shown(dms[0]) and "America/New_York" in shown(dms[0])
