"""A subscription's one ping (`/feed add … ping=@role`, `/feed edit ID ping=…|none|noping`):
its posts mention that role or user group and nothing else, whatever the feed writes
(@everyone, <@&id>, <!subteam^ID>, <!channel>, a mention marker). On the console, on Slack
(slack-bolt against the fake: `<!subteam^ID>` first in the text and in a block of its own)
and on Discord (discord.py against the fake: `<@&ROLE>` in the content, allowed_mentions
limited to that role).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from adapters.console import Console
from bot.feeds import Feeds
from bot.help import Help
from bot.postcodec import load_post
from tests.conftest import ConsoleRun
from tests.fakes import feed_server as fake_feeds
from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
)
from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.fakes.feed_server import Entry, FeedServer, entries, rss
from tests.feeds_platforms import discord_bot, slack_bot

feed_server = fake_feeds.feed_server  # the fixture

CONFIG = {"feeds": {"allow_private": True, "timeout": 1, "per_channel_cap": 50}}
LATER = timedelta(hours=1)
HOSTILE = "@everyone @here <@&42> <@123> <!subteam^S0EVIL|@evil> <!channel> <!here> ⟦@:123⟧"
SLACK_LIVE = ("<!channel", "<!here", "<!everyone", "<@", "<!subteam")


def hostile(n: int) -> Entry:
    return Entry(
        f"Alert {n} {HOSTILE}", guid=f"alert-{n}", link=f"https://example.org/a/{n}",
        summary=f"<p>Read this {HOSTILE}</p>",
    )  # fmt: skip


@pytest.fixture
def start(make_app):
    async def start() -> ConsoleRun:
        app = await make_app(features=[Help, Feeds], config=CONFIG)
        out: list[str] = []
        return ConsoleRun(Console(app, write=out.append), out)

    return start


async def queued_posts(run_app) -> list:
    """Every feed item post the outbox holds, as the core made it."""
    rows = await run_app.db.fetchall(
        "SELECT payload FROM outbox WHERE key LIKE 'feed:%' ORDER BY id"
    )
    return [load_post(r["payload"]) for r in rows]


async def tick(run: ConsoleRun, clock) -> str:
    clock.advance(LATER)
    before = len(run.out)
    await run.app.features["feeds"].poll_due()
    await run.app.outbox.drain()
    return "\n".join(run.out[before:])


# --- Console -----------------------------------------------------------------------------


async def test_the_chosen_role_is_the_posts_only_ping_on_the_console(
    start, feed_server: FeedServer, clock
):
    run = await start()
    url = feed_server.set("f.xml", body=rss([hostile(1)]))
    out = await run.say(f"@mod! /feed add {url} ping=@oncall backlog=1")
    assert "Its posts ping @oncall." in out
    post_lines = [b for b in run.out if "Alert 1" in b]
    assert len(post_lines) == 1 and post_lines[0].splitlines()[1] == "  @oncall"
    (post,) = await queued_posts(run.app)
    assert post.mention_roles == ["oncall"] and post.mentions == []
    assert "pings @oncall" in await run.say("/feed list")


async def test_ping_none_and_noping_remove_it(start, feed_server: FeedServer, clock):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} ping=@oncall backlog=0")
    assert "its posts ping nobody" in await run.say("@mod! /feed edit 1 ping=none")
    feed_server.set("f.xml", body=rss(entries(2)))
    shown = await tick(run, clock)
    assert "item 2" in shown and "@oncall" not in shown
    assert "its posts ping @sre" in await run.say("@mod! /feed edit 1 ping=@sre")
    feed_server.set("f.xml", body=rss(entries(3)))
    assert "  @sre" in await tick(run, clock)
    assert "its posts ping nobody" in await run.say("@mod! /feed edit 1 noping")
    feed_server.set("f.xml", body=rss(entries(4)))
    assert "@sre" not in await tick(run, clock)
    assert [p.mention_roles for p in await queued_posts(run.app)] == [[], ["sre"], []]


@pytest.mark.parametrize(
    ("ping", "said"),
    [
        ("@everyone", "never pings everyone"),
        ("@here", "never pings everyone"),
        ("<!channel>", "never pings everyone"),
        ("<!here>", "never pings everyone"),
        ("<@123>", "is not a role or user group"),
        ("<#C1>", "is not a role or user group"),
        ('"two words"', "is not a role or user group"),
    ],
)
async def test_a_ping_that_is_not_one_role_is_refused(start, feed_server, ping, said):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(1)))
    out = await run.say(f"@mod! /feed add {url} ping={ping}")
    assert "`ping`" in out and said in out and "now follows" not in out


# --- Slack -------------------------------------------------------------------------------


async def test_slack_pings_the_user_group_named_and_nothing_the_feed_says(
    make_app, fake_slack: FakeSlack, feed_server: FeedServer, clock
):
    url = feed_server.set("f.xml", body=rss([hostile(1)]))
    async with slack_bot(make_app, fake_slack) as slack:
        said = await slack.command(f"add {url} ping=<!subteam^S0ONCALL|@oncall> backlog=1")
        assert "Its posts ping @oncall." in json.dumps(said)
        await slack.app.outbox.drain()
        (post,) = slack.posts()
        assert post["text"].startswith("<!subteam^S0ONCALL> ")
        first, *rest = post["blocks"]
        assert first == {"type": "section", "text": {"type": "mrkdwn", "text": "<!subteam^S0ONCALL>"}}  # fmt: skip
        others = json.dumps(rest, ensure_ascii=False) + post["text"].removeprefix("<!subteam^S0ONCALL>")  # fmt: skip
        assert "Alert 1" in others
        for live in SLACK_LIVE:
            assert live not in others, live  # the feed's own tags are text
        assert "@\u200beveryone" in others and "@&amp;42&gt;" in others  # shown as text

        assert "ping nobody" in json.dumps(await slack.command("edit 1 ping=none"))
        feed_server.set("f.xml", body=rss([hostile(2), hostile(1)]))
        clock.advance(LATER)
        await slack.app.features["feeds"].poll_due()
        await slack.app.outbox.drain()
        latest = slack.posts()[-1]
        assert "Alert 2" in json.dumps(latest)
        assert not any(live in json.dumps(latest) for live in SLACK_LIVE)


async def test_slack_refuses_a_broadcast_as_the_ping(
    make_app, fake_slack: FakeSlack, feed_server: FeedServer
):
    url = feed_server.set("f.xml", body=rss(entries(1)))
    async with slack_bot(make_app, fake_slack) as slack:
        said = await slack.command(f"add {url} ping=<!here>")
        assert said["response_type"] == "ephemeral" and "never pings everyone" in json.dumps(said)
        assert slack.posts() == []


# --- Discord -----------------------------------------------------------------------------


async def test_discord_allows_only_the_chosen_role_to_be_mentioned(
    make_app, fake_discord: FakeDiscord, feed_server: FeedServer, clock
):
    fake = fake_discord
    role = fake.add_role("oncall")
    url = feed_server.set("f.xml", body=rss([hostile(1)]))
    async with discord_bot(make_app, fake) as bot:
        said = await bot.feed("add", role=role, url=url, backlog=1)
        assert "Its posts ping @oncall." in said
        await bot.app.outbox.drain()
        (post,) = bot.posts()
        assert post["content"] == f"<@&{role['id']}>"
        assert post["allowed_mentions"] == {"parse": [], "roles": [int(role["id"])]}
        embed = json.dumps(post["embeds"], ensure_ascii=False)
        assert "Alert 1" in embed
        assert "<@&42>" not in embed and "@&42>" in embed  # the feed's role tag is text
        assert "@everyone" not in embed and "@\u200beveryone" in embed

        assert "ping nobody" in await bot.feed("edit", id=1, noping=True)
        feed_server.set("f.xml", body=rss([hostile(2), hostile(1)]))
        clock.advance(LATER)
        await bot.app.features["feeds"].poll_due()
        await bot.app.outbox.drain()
        latest = bot.posts()[-1]
        assert "Alert 2" in json.dumps(latest["embeds"])
        assert not latest.get("content") and latest["allowed_mentions"] == {"parse": []}

        sre = fake.add_role("sre")
        assert "its posts ping @sre" in await bot.feed("edit", role=sre, id=1)
        assert (await bot.app.features["feeds"].store.subscription(1)).ping_role == sre["id"]  # type: ignore[union-attr]
        feed_server.set("f.xml", body=rss([hostile(3), hostile(2), hostile(1)]))
        clock.advance(LATER)
        await bot.app.features["feeds"].poll_due()
        await bot.app.outbox.drain()
        latest = bot.posts()[-1]
        assert "Alert 3" in json.dumps(latest["embeds"]) and latest["content"] == f"<@&{sre['id']}>"
        assert latest["allowed_mentions"] == {"parse": [], "roles": [int(sre["id"])]}  # one role
