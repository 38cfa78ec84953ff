"""The web console in a real browser (Chromium driven by Playwright), end to end.

Each scenario clicks the console's real buttons and fills its real forms, then checks what
the bot did where members see it: the fake Slack's and fake Discord's records, in the same
process, through the real slack-bolt and discord.py clients. Chromium must be installed
(tests/browser.py says how when it is not).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from playwright.async_api import Page

from adapters.slack import create as create_slack
from bot.feeds import Feeds
from bot.feeds.demo import demo_feeds
from bot.model import ChannelRef
from tests.browser import browser_fixture, page_fixture, sign_in  # noqa: F401
from tests.fakes import feed_server as fake_feeds
from tests.fakes.fake_slack import TEAM_ID, FakeSlack
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.web import WebRun

feed_server = fake_feeds.feed_server  # the fixture

SLACK_CHANNEL = "C1"
# One community on the console and the fake Slack workspace: its moderator, signed in from
# the console, manages the Slack channel's feeds too.
ONE_COMMUNITY = {
    "community": [
        {
            "name": "itSMF Norway",
            "workspaces": ["console:demo", f"slack:{TEAM_ID}"],
            "channels": ["console:demo:general", f"slack:{TEAM_ID}:{SLACK_CHANNEL}"],
        }
    ],
    "feeds": {"allow_private": True},
    "slack": {"mode": "http", "host": "127.0.0.1", "port": 0},
}
LATER = timedelta(hours=1)  # past any feed's interval and jitter


def feeds_of(run: WebRun) -> Feeds:
    return run.app.features["feeds"]  # type: ignore[return-value]


@asynccontextmanager
async def slack_surface(run: WebRun, fake: FakeSlack) -> AsyncIterator[Any]:
    """The real Slack adapter (slack-bolt, HTTP mode) on the run's App, posting to the fake."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": fake.base_url,
        "SLACK_SIGNING_SECRET": "test-signing-secret",
    }
    surface = create_slack(run.app, run.app.config.section("slack"), env)
    await surface.start()
    try:
        yield surface
    finally:
        await surface.stop()


def posted_text(fake: FakeSlack, channel: str) -> str:
    """Everything the bot posted in a Slack channel, as one searchable text."""
    return "\n".join(str(call) for call in fake.calls_to("chat.postMessage") if call.get("channel") == channel)  # fmt: skip


async def feed_row(page: Page, sub_id: int) -> Any:
    return page.locator(f"#feeds tr[data-feed='{sub_id}']")


# --------------------------------------------------------------------------- 1. sign in


async def test_a_moderator_signs_in_with_the_link_and_sees_the_demo_feeds(web, page: Page):
    for feature in web.app.features.values():
        await feature.seed_demo(web.console.console.channel)
    await web.console.console.settle()

    link = await web.link("mia", moderator=True)
    await page.goto(link)
    assert "This link signs you in once" in await page.inner_text("main")
    await page.click("#sign-in")
    await page.wait_for_url(f"{web.base}/feeds")

    assert await page.title() == "Feeds · ITSM community bot"
    assert "mia (moderator)" in await page.inner_text("header .who")
    titles = await page.locator("#feeds tbody tr td:nth-child(2) a").all_inner_texts()
    assert sorted(titles) == sorted(feed.title for feed in demo_feeds())
    states = await page.locator("#feeds tbody td.state").all_inner_texts()
    assert states and set(states) == {"running"}

    await page.goto(link)  # the link was used: a second visit signs nobody in
    assert "was used already" in await page.inner_text("main")


async def test_a_member_signs_in_and_reads_the_feeds_without_the_forms(web, page: Page):
    await feeds_of(web).subscribe("https://example.org/feed", web.console.console.channel, title="Members read this")  # fmt: skip
    await sign_in(page, web, "sam", moderator=False)
    assert "read only" in await page.inner_text("header .who")
    assert await page.locator("#feeds td a").inner_text() == "Members read this"
    assert await page.locator("#add-feed").count() == 0
    assert await page.get_by_role("button", name="Pause").count() == 0


# --------------------------------------------------------------------------- 2. pause a feed


async def test_pausing_a_feed_in_the_browser_stops_its_posts_on_slack(
    make_web, page: Page, fake_slack: FakeSlack, feed_server: FeedServer, clock
):
    run = await make_web(ONE_COMMUNITY)
    feeds = feeds_of(run)
    channel = ChannelRef("slack", TEAM_ID, SLACK_CHANNEL)
    quiet_url = feed_server.set("quiet.xml", body=rss(entries(1, prefix="quiet"), title="To pause"))  # fmt: skip
    busy_url = feed_server.set("busy.xml", body=rss(entries(1, prefix="busy"), title="Keeps going"))  # fmt: skip
    _, quiet = await feeds.subscribe(quiet_url, channel, backlog=0, allow_private=True)
    _, busy = await feeds.subscribe(busy_url, channel, backlog=0, allow_private=True)
    async with slack_surface(run, fake_slack):
        await feeds.poll_due()  # both feeds read once: what they have now is old news
        await run.app.outbox.drain()

        await sign_in(page, run)
        row = await feed_row(page, quiet.id)
        assert await row.locator("td.state").inner_text() == "running"
        assert await row.locator("td").nth(3).inner_text() == "slack"
        async with page.expect_navigation(url=f"{run.base}/feeds"):
            await row.get_by_role("button", name="Pause").click()
        row = await feed_row(page, quiet.id)
        assert await row.locator("td.state").inner_text() == "paused"
        assert await row.get_by_role("button", name="Resume").count() == 1
        assert f"Paused subscription #{quiet.id}" in await page.inner_text("section.said")
        busy_row = await feed_row(page, busy.id)
        assert await busy_row.locator("td.state").inner_text() == "running"

        feed_server.set("quiet.xml", body=rss(entries(2, prefix="quiet"), title="To pause"))
        feed_server.set("busy.xml", body=rss(entries(2, prefix="busy"), title="Keeps going"))
        clock.advance(LATER)
        await feeds.poll_due()
        await run.app.outbox.drain()

    posted = posted_text(fake_slack, SLACK_CHANNEL)
    assert "busy 2" in posted  # the feed still running posts its new item
    assert "quiet" not in posted  # the paused one posts nothing
    assert (await feeds.store.subscription(quiet.id)).paused  # type: ignore[union-attr]
