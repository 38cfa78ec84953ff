"""The weekly digest on Slack and Discord: real slack-bolt / slack-sdk and discord.py against
the fakes. The week's feed posts are delivered to the fake by the bot's own transport;
members react and reply there; the digest reads that back (Slack reactions.get and
conversations.replies, Discord the message's reactions and its thread) to rank them, and
the post it makes of a crowded, hostile week fits each platform's limits without any cut.

The rest of the week (polls, events, prompt answers) is seeded through the core's own entry
points (`App.invoke`, `App.act`), as the adapters call them; the digest is scheduled with
each platform's own slash command.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import discord
import pytest

from adapters.discord import create as create_discord
from adapters.slack import create as create_slack
from bot.app import App
from bot.lanes import Engagement
from bot.model import Action, ChannelRef, Invocation, UserRef
from tests.fakes import feed_server as fake_feeds
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import FakeSlack, signed_headers, slash_command_body
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.fakes.feed_server import Entry, FeedServer, rss

feed_server = fake_feeds.feed_server  # the fixture

SECRET = "test-signing-secret"
FEEDS = {"allow_private": True, "timeout": 2, "per_channel_cap": 50}
MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)
HOSTILE = "Tips & <tricks> for ~~ITIL~~ || __change__ * @everyone # - `code` \\ "
MEMBERS = [f"u{i}" for i in range(8)]
ARTICLES = 30
POPULAR = 7  # the article members discussed most


def articles() -> list[Entry]:
    """Thirty articles with long titles full of what renderers must escape, newest first."""
    return [
        Entry(
            title=f"Story {i}: {HOSTILE}{HOSTILE}{HOSTILE}",
            guid=f"story-{i}",
            link=f"https://example.org/itil/{i}?a=1&b=2",
            summary=f"<p>Story {i}.</p>",
        )
        for i in range(ARTICLES, 0, -1)
    ]


def engagement(index: int) -> tuple[int, int]:
    """(reactions, replies) members give article `index`: a few on many, most on one."""
    return (9, 4) if index == POPULAR else (index % 4, index % 3)


# --- Seeding through the core ------------------------------------------------------------


class Week:
    """Says commands and presses buttons as members of one channel, through the core."""

    def __init__(self, app: App, channel: ChannelRef, clock: Any) -> None:
        self.app, self.channel, self.clock = app, channel, clock

    def member(self, name: str) -> UserRef:
        return UserRef(self.channel.platform, self.channel.workspace, name, name.title())

    async def say(self, line: str, user: str = "mod", moderator: bool = True) -> list[Any]:
        top, _, text = line.lstrip("/").partition(" ")
        inv = Invocation((top,), self.member(user), self.channel, moderator, text=text)
        replies = await self.app.invoke(inv)
        await self.settle()
        return replies

    async def vote(self, run_id: int, option: int, user: str) -> None:
        action = Action("poll.vote", f"{run_id}:{option}", self.member(user), self.channel)
        await self.app.act(action)

    async def settle(self) -> None:
        await self.app.scheduler.run_due()
        await self.app.outbox.drain()

    async def at(self, moment: datetime) -> None:
        self.clock.set(moment)
        await self.settle()

    async def feed(self, server: FeedServer) -> list[str]:
        """The thirty articles posted through the platform; their message ids, oldest first."""
        self.clock.advance(timedelta(minutes=5))
        url = server.set("itil.xml", body=rss(articles()))
        await self.say(f"/feed add {url} backlog={ARTICLES}")
        rows = await self.app.db.fetchall(
            "SELECT message_id FROM outbox WHERE key LIKE 'feed:%' AND state = 'sent' ORDER BY id"
        )
        assert len(rows) == ARTICLES
        return [r["message_id"] for r in rows]

    async def the_rest(self) -> None:
        """Polls closed, events ahead, a week of prompt answers, members' choices."""
        await self.say("/justdoit schedule time=08:30 tz=UTC days=daily")
        for run_id in range(1, 5):
            question = f"{HOSTILE * 4} question {run_id}"[:300]
            await self.say(f'/poll create "{question}" "Incident {HOSTILE}" Change Problem')
            for n, member in enumerate(MEMBERS):
                await self.vote(run_id, n % 3 if n < 5 else 0, member)
            await self.say(f"/poll close {run_id}")
        for day in range(1, 9):
            title = f"{HOSTILE * 4} event {day}"[:200]
            await self.say(f'/event add title="{title}" start="2026-12-{day:02d} 18:00" tz=UTC '
                           f'url="https://example.org/events/{day}?x=1&y=2"')  # fmt: skip
        for day in range(24, 31):
            await self.at(datetime(2026, 11, day, 8, 45, tzinfo=UTC))
            for member in MEMBERS[: 2 + (day - 24)]:
                await self.say(f'/justdoit answer "{HOSTILE} on day {day}"', member, False)
        for member in MEMBERS[:4]:
            await self.say("/digest named yes", member, False)
        for member in MEMBERS:
            await self.say("/digest share", member, False)


def assert_ranked_by_engagement(text: str) -> None:
    """The most discussed article comes first (each is found by its address); the others
    listed have had something; one with nothing is not listed."""
    listed = [i for i in range(1, ARTICLES + 1) if f"/itil/{i}?" in text]
    assert listed[0] == POPULAR or min(listed, key=lambda i: text.index(f"/itil/{i}?")) == POPULAR
    assert all(sum(engagement(i)) > 0 for i in listed) and len(listed) >= 3
    assert "/itil/12?" not in text and sum(engagement(12)) == 0


# --- Slack -----------------------------------------------------------------------------


class Slack:
    def __init__(self, app: App, surface: Any, fake: FakeSlack, session: aiohttp.ClientSession):
        self.app, self.surface, self.fake, self.session = app, surface, fake, session

    async def command(self, top: str, text: str, user: str = "UMOD") -> dict:
        before = len(self.fake.responses)
        body = slash_command_body(f"/{top}", text, user, response_url=self.fake.response_url())
        headers = signed_headers(SECRET, body, timestamp=int(time.time()))
        url = f"http://127.0.0.1:{self.surface.port}/slack/events"
        async with await asyncio.wait_for(
            self.session.post(url, data=body.encode(), headers=headers), timeout=3
        ) as response:
            assert response.status == 200
        return (await self.fake.wait_for_response(before + 1))[-1]


@pytest.fixture
async def slack(make_app, fake_slack: FakeSlack) -> AsyncIterator[Slack]:
    config = {"slack": {"mode": "http", "host": "127.0.0.1", "port": 0, "pace": 0}, "feeds": FEEDS}
    app = await make_app(config=config)
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake_slack.base_url,
           "SLACK_SIGNING_SECRET": SECRET}  # fmt: skip
    fake_slack.users["UMOD"] = {"is_admin": True}
    surface = create_slack(app, app.config.section("slack"), env)
    await surface.start()
    async with aiohttp.ClientSession() as session:
        try:
            yield Slack(app, surface, fake_slack, session)
        finally:
            await surface.stop()


def section_texts(blocks: list[dict]) -> list[str]:
    texts = []
    for block in blocks:
        if block.get("text"):
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields") or []]
        texts += [e.get("text", "") for e in block.get("elements") or [] if "text" in e]
    return texts


async def test_slack_reads_reactions_and_replies_and_the_digest_fits(
    slack: Slack, clock, feed_server
) -> None:
    fake, channel = slack.fake, ChannelRef("slack", "T1", "C1")
    week = Week(slack.app, channel, clock)
    said = await slack.command("digest", "schedule day=mon time=09:00 tz=UTC")
    assert "every Monday at 09:00 (UTC)" in json.dumps(said)
    refused = await slack.command("digest", "preview", user="U5")
    assert "for moderators only" in json.dumps(refused)
    ids = await week.feed(feed_server)
    for index, ts in enumerate(ids, 1):
        reactions, replies = engagement(index)
        for n in range(reactions):
            fake.react("C1", ts, ["+1", "tada", "eyes"][n % 3], f"U{100 + n}")
        for n in range(replies):
            fake.reply("C1", ts, f"Reply {n}", f"U{200 + n}")
    fake.react("C1", ids[0], "+1", "UBOT")  # the bot's own reaction counts for nothing
    assert await slack.app.outbox.lanes.engagement(channel, ids[0]) == Engagement(1, 1)
    await week.the_rest()
    before = len(fake.calls_to("chat.postMessage"))
    await week.at(MONDAY)

    read = {c["timestamp"] for c in fake.calls_to("reactions.get")}
    assert read == set(ids)  # every feed post of the week, and only those
    assert {c["ts"] for c in fake.calls_to("conversations.replies")} >= set(ids)
    digests = [c for c in fake.calls_to("chat.postMessage")[before:] if "week in" in c["text"]]
    assert len(digests) == 1 and digests[0]["channel"] == "C1"
    blocks = digests[0]["blocks"]
    assert len(blocks) <= 50
    texts = section_texts(blocks)
    assert all(len(t) <= 3000 for t in texts)
    assert not any(t.endswith("…") for t in texts)  # nothing was cut by the renderer
    assert "more part(s) not shown" not in json.dumps(blocks)
    shown = "\n".join(texts)
    assert_ranked_by_engagement(shown)
    assert "9 reactions · 4 replies" in shown
    assert "&lt;tricks&gt;" in shown and "<tricks>" not in shown and "@everyone" not in shown
    for part in ("Polls and surveys closed", "Coming up in the next two weeks",
                 "Just do it: streaks", "Shared by members"):  # fmt: skip
        assert part in shown, part


# --- Discord ---------------------------------------------------------------------------


@asynccontextmanager
async def discord_bot(make_app: Any, fake: FakeDiscord) -> AsyncIterator[tuple[App, Any]]:
    config = {"discord": {"guild_id": fake.guild_id, "pace": 0}, "feeds": FEEDS}
    app = await make_app(config=config)
    env = {"DISCORD_TOKEN": "fake-token", "DISCORD_API_URL": fake.api_base,
           "DISCORD_GATEWAY_URL": fake.gateway_url}  # fmt: skip
    surface = create_discord(app, app.config.section("discord"), env, guild_ready_timeout=0.1)
    await surface.login()
    try:
        yield app, surface
    finally:
        await surface.stop()


async def interact(fake: FakeDiscord, surface: Any, payload: dict[str, Any]) -> dict[str, Any]:
    surface.client._connection.parse_interaction_create(payload)
    return await fake.wait_interaction_response(payload["id"], timeout=3.0)


def slash(fake: FakeDiscord, verb: str, permissions: str = MANAGE_GUILD, **options: str) -> dict:
    typed = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    return fake.slash_payload("digest", [{"type": 1, "name": verb, "options": typed}],
                              permissions=permissions)  # fmt: skip


def embed_size(embed: dict[str, Any]) -> int:
    fields = embed.get("fields") or []
    return (
        sum(len(embed.get(k) or "") for k in ("title", "description"))
        + sum(len(f["name"]) + len(f["value"]) for f in fields)
        + len((embed.get("footer") or {}).get("text", ""))
    )


async def test_discord_reads_reactions_and_threads_and_the_digest_fits(
    fake_discord: FakeDiscord, make_app: Any, clock: Any, feed_server: FeedServer
) -> None:
    fake = fake_discord
    async with discord_bot(make_app, fake) as (app, surface):
        channel = ChannelRef("discord", str(fake.guild_id), str(fake.channel_id))
        week = Week(app, channel, clock)
        body = await interact(fake, surface, slash(fake, "schedule", day="mon", time="09:00",
                                                   tz="UTC"))  # fmt: skip
        assert "every Monday at 09:00 (UTC)" in json.dumps(body)
        ids = await week.feed(feed_server)
        for index, message_id in enumerate(ids, 1):
            reactions, replies = engagement(index)
            if reactions:
                fake.react(int(message_id), "👍", reactions)
            if replies:
                fake.reply_in_thread(int(message_id), replies)
        fake.react(int(ids[0]), "🎉", 1, me=True)  # the bot's own reaction counts for nothing
        assert await app.outbox.lanes.engagement(channel, ids[0]) == Engagement(1, 1)
        await week.the_rest()
        preview = await interact(fake, surface, slash(fake, "preview"))
        assert preview["data"]["flags"] & 64  # only the moderator sees it
        assert "Preview: only you see this" in json.dumps(preview)
        await week.at(MONDAY)

        reads = {
            r.path.rsplit("/", 1)[-1] for r in fake.requests_to("GET", "/channels/*/messages/*")
        }
        assert reads >= set(ids)
        digests = [
            m
            for m in fake.messages.values()
            if m["type"] == 0 and m.get("embeds") and "week in" in m["embeds"][0].get("title", "")
        ]  # the preview was type 20
        # fmt: skip
        assert len(digests) == 1
        embed = digests[0]["embeds"][0]
        fields = embed.get("fields") or []
        assert len(fields) <= 25 and len(embed.get("description", "")) <= 4096
        assert embed_size(embed) <= 6000
        assert all(len(f["value"]) <= 1024 and not f["value"].endswith("…") for f in fields)
        assert not any("not shown" in f["name"] + f["value"] for f in fields)
        shown = "\n".join(f["value"] for f in fields)
        assert_ranked_by_engagement(shown)
        assert "9 reactions · 4 replies" in shown
        names = [f["name"] for f in fields]
        assert names == ["Most discussed articles", "Polls and surveys closed this week",
                         "Coming up in the next two weeks", "Just do it: streaks",
                         "Shared by members"]  # fmt: skip
        assert "@everyone" not in json.dumps(embed).replace("@\u200beveryone", "")
        assert digests[0].get("mention_everyone") is False
