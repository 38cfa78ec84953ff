"""The walls on Discord, where a press in a direct message carries no guild: the DM the bot
sent the message to names the member's server, so a poll reminder's vote counts for the
member in their community, as the same voter as in the channel, and a press on a DM
message the bot never sent names no community at all.

Real discord.py against the fake Discord, interactions fed to its parser.
"""

from __future__ import annotations

from typing import Any

from bot.model import Button, ChannelRef, Post, UserRef
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.test_polls_discord import discord_bot, interact, said

MEMBER = 77


async def test_a_vote_pressed_in_a_dm_counts_for_the_member_in_their_server(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        options = [
            {"name": "question", "type": 3, "value": "Which practice needs most love?"},
            {"name": "choices", "type": 3, "value": "Incident | Change"},
        ]
        create = fake.slash_payload("poll", [{"type": 1, "name": "create", "options": options}])
        await interact(fake, surface, create)
        await app.outbox.drain()
        in_channel = int(
            await app.outbox.message_id(f"poll:1:discord:{fake.guild_id}:{fake.channel_id}")
        )
        vote = fake.component_payload("itsm:poll.vote:1:0", in_channel, user_id=MEMBER)
        assert "You voted **Incident**" in said(await interact(fake, surface, vote))

        # A reminder by direct message, with the poll's buttons, as `remind=` sends one.
        member = UserRef("discord", str(fake.guild_id), str(MEMBER))
        buttons = [Button("Incident", "poll.vote", "1:0"), Button("Change", "poll.vote", "1:1")]
        await app.outbox.enqueue(ChannelRef.direct(member), Post(text="Poll #1", buttons=buttons), "dm-poll")  # fmt: skip
        await app.outbox.drain()
        in_dm = int(await app.outbox.message_id("dm-poll"))
        press = fake.component_payload("itsm:poll.vote:1:1", in_dm, user_id=MEMBER, in_dm=True)
        answer = said(await interact(fake, surface, press))
        assert "You changed your vote from **Incident** to **Change**" in answer  # one voter
        voters = await app.db.fetchall("SELECT DISTINCT voter FROM vote_answers WHERE run_id = 1")
        assert [v[0] for v in voters] == [member.key]


async def test_a_press_on_a_dm_message_the_bot_keeps_no_record_of_reaches_no_community(
    fake_discord: FakeDiscord, make_app: Any
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        options = [
            {"name": "question", "type": 3, "value": "Which practice needs most love?"},
            {"name": "choices", "type": 3, "value": "Incident | Change"},
        ]
        create = fake.slash_payload("poll", [{"type": 1, "name": "create", "options": options}])
        await interact(fake, surface, create)
        member = UserRef("discord", str(fake.guild_id), str(MEMBER))
        buttons = [Button("Incident", "poll.vote", "1:0")]
        await app.outbox.enqueue(ChannelRef.direct(member), Post(text="Poll #1", buttons=buttons), "dm-hello")  # fmt: skip
        await app.outbox.drain()
        hello = int(await app.outbox.message_id("dm-hello"))
        await app.db.execute("DELETE FROM outbox WHERE key = 'dm-hello'")  # long gone
        forged = fake.component_payload("itsm:poll.vote:1:0", hello, user_id=MEMBER, in_dm=True)
        answer = said(await interact(fake, surface, forged))
        assert "That poll no longer exists" in answer
        assert await app.db.fetchval("SELECT count(*) FROM vote_answers") == 0
