"""The web console in a real browser (Chromium driven by Playwright), end to end.

Each scenario clicks the console's real buttons and fills its real forms, then checks what
the bot did where members see it: the fake Slack's and fake Discord's records, in the same
process, through the real slack-bolt and discord.py clients. Chromium must be installed
(tests/browser.py says how when it is not).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp
from playwright.async_api import Page

from adapters.discord import create as create_discord
from adapters.slack import create as create_slack
from bot.feeds import Feeds
from bot.feeds.demo import demo_feeds
from bot.model import ChannelRef
from tests.browser import browser_fixture, page_fixture, sign_in  # noqa: F401
from tests.fakes import feed_server as fake_feeds
from tests.fakes.fake_discord import FakeDiscord, fake_discord_fixture  # noqa: F401
from tests.fakes.fake_slack import TEAM_ID, FakeSlack, signed_headers, slash_command_body
from tests.fakes.fake_slack import fake_slack as fake_slack_fixture  # noqa: F401
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.web import WebRun

feed_server = fake_feeds.feed_server  # the fixture

SLACK_CHANNEL = "C1"
SLACK_SECRET = "test-signing-secret"
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
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
    }
    surface = create_slack(run.app, run.app.config.section("slack"), env)
    await surface.start()
    try:
        yield surface
    finally:
        await surface.stop()


@asynccontextmanager
async def discord_surface(run: WebRun, fake: FakeDiscord) -> AsyncIterator[Any]:
    """The real Discord adapter (discord.py) on the run's App, logged in to the fake."""
    env = {
        "DISCORD_TOKEN": "fake-token",
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    surface = create_discord(run.app, run.app.config.section("discord"), env, guild_ready_timeout=0.1)  # fmt: skip
    await surface.login()
    try:
        yield surface
    finally:
        await surface.stop()


def everywhere(fake: FakeDiscord) -> dict[str, Any]:
    """One community on the console, the fake Slack workspace and the fake Discord guild,
    with a channel on each: what it announces goes to all three."""
    guild = f"discord:{fake.guild_id}"
    return {
        "community": [
            {
                "name": "itSMF Norway",
                "workspaces": ["console:demo", f"slack:{TEAM_ID}", guild],
                "channels": [
                    "console:demo:general",
                    f"slack:{TEAM_ID}:{SLACK_CHANNEL}",
                    f"{guild}:{fake.channel_id}",
                ],
            }
        ],
        "slack": ONE_COMMUNITY["slack"],
        "discord": {"guild_id": fake.guild_id, "pace": 0},
    }


async def settle(run: WebRun, clock: Any) -> None:
    """Let edits' debounce and each channel's pace pass, then deliver what is due."""
    clock.advance(timedelta(seconds=5))
    await run.console.console.settle()


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


async def test_a_feed_added_in_the_browser_with_its_live_preview_posts_on_slack_then_is_removed(
    make_web, page: Page, fake_slack: FakeSlack, feed_server: FeedServer, clock
):
    run = await make_web(ONE_COMMUNITY)
    url = feed_server.set("fresh.xml", body=rss(entries(3, prefix="fresh"), title="Fresh news"))
    async with slack_surface(run, fake_slack):
        await sign_in(page, run)
        form = page.locator("#add-feed")
        await form.locator("input[name=url]").fill(url)
        # The preview is fetched by htmx as the address is typed: the newest item, as posted.
        await page.locator("#preview", has_text="fresh 3").wait_for()
        await form.locator("select[name=channel]").select_option(f"slack:{TEAM_ID}:{SLACK_CHANNEL}")
        await form.locator("input[name=backlog]").fill("1")
        async with page.expect_navigation(url=f"{run.base}/feeds"):
            await form.get_by_role("button", name="Add").click()
        assert "now follows" in await page.inner_text("section.said")
        row = page.locator("#feeds tbody tr", has_text="Fresh news")
        assert await row.locator("td").nth(3).inner_text() == "slack"
        await settle(run, clock)
        posted = posted_text(fake_slack, SLACK_CHANNEL)
        assert "fresh 3" in posted and "fresh 2" not in posted  # a backlog of one item

        page.once("dialog", lambda dialog: dialog.accept())  # "Stop following this feed…?"
        async with page.expect_navigation(url=f"{run.base}/feeds"):
            await row.get_by_role("button", name="Remove").click()
        assert await page.locator("#feeds tbody tr", has_text="Fresh news").count() == 0
    assert await feeds_of(run).store.subscriptions_in("slack", TEAM_ID) == []


# --------------------------------------------------------------------------- 3. edit an event

CONFERENCE = (
    '@mia! /event add title="itSMF UK Conference" start="2026-12-05 09:00" tz=Europe/London'
    ' end="2026-12-05 17:00" location="Novotel London West"'
)


async def test_editing_an_event_in_the_browser_edits_its_announcement_on_slack_and_discord(
    make_web, page: Page, fake_slack: FakeSlack, fake_discord: FakeDiscord, clock
):
    run = await make_web(everywhere(fake_discord))
    async with slack_surface(run, fake_slack), discord_surface(run, fake_discord):
        await run.console.say(CONFERENCE)
        await settle(run, clock)
        (on_slack,) = [c for c in fake_slack.calls_to("chat.postMessage") if c["channel"] == SLACK_CHANNEL]  # fmt: skip
        on_discord = fake_discord.requests_to("POST", f"/channels/{fake_discord.channel_id}/messages")  # fmt: skip
        assert "itSMF UK Conference" in str(on_slack) and len(on_discord) == 1
        slack_ts = fake_slack.messages[SLACK_CHANNEL][0]["ts"]
        discord_id = await run.app.outbox.message_id(f"event:1:discord:{fake_discord.guild_id}:{fake_discord.channel_id}")  # fmt: skip

        await sign_in(page, run)
        await page.get_by_role("link", name="Events").click()
        await page.locator("a", has_text="itSMF UK Conference").first.click()
        await page.wait_for_url(f"{run.base}/events/1")
        form = page.locator("#edit-event")
        assert await form.locator("input[name=start]").input_value() == "2026-12-05 09:00"
        await form.locator("input[name=title]").fill("itSMF UK Conference 2026")
        await form.locator("input[name=location]").fill("Online, on the chapter's own platform")
        async with page.expect_navigation(url=f"{run.base}/events/1"):
            await form.get_by_role("button", name="Save").click()
        assert "updated" in await page.inner_text("section.said")
        assert await form.locator("input[name=title]").input_value() == "itSMF UK Conference 2026"
        await settle(run, clock)

    (slack_edit,) = fake_slack.calls_to("chat.update")
    assert slack_edit["channel"] == SLACK_CHANNEL and slack_edit["ts"] == slack_ts
    assert "itSMF UK Conference 2026" in str(slack_edit) and "Online" in str(slack_edit)
    assert "Novotel" not in str(slack_edit)
    (discord_edit,) = fake_discord.requests_to("PATCH", f"/channels/{fake_discord.channel_id}/messages/{discord_id}")  # fmt: skip
    assert "itSMF UK Conference 2026" in str(discord_edit.json)
    assert "Online" in str(discord_edit.json) and "Novotel" not in str(discord_edit.json)
    assert len(fake_discord.requests_to("POST", f"/channels/{fake_discord.channel_id}/messages")) == 1  # edited, not posted again  # fmt: skip


# --------------------------------------------------------------------------- 4. approve a prompt

SUGGESTION = "Ask one business stakeholder which IT report they never read, and stop sending it"
AUTHOR = "U5"  # a Slack member


async def slack_command(surface: Any, fake: FakeSlack, top: str, text: str, user: str) -> str:
    """A slash command typed on Slack: signed and POSTed to the bot as Slack does; what the
    bot answered the member."""
    before = len(fake.responses)
    body = slash_command_body(f"/{top}", text, user, channel_id=SLACK_CHANNEL, response_url=fake.response_url())  # fmt: skip
    headers = signed_headers(SLACK_SECRET, body, timestamp=int(time.time()))
    url = f"http://127.0.0.1:{surface.port}/slack/events"
    async with aiohttp.ClientSession() as session, session.post(url, data=body.encode(), headers=headers) as response:  # fmt: skip
        assert response.status == 200
    answered = await fake.wait_for_response(before + 1)
    await asyncio.wait_for(surface.settled(), timeout=5)
    return str(answered[-1])


async def test_approving_a_suggestion_in_the_browser_thanks_its_slack_author_by_dm(
    make_web, page: Page, fake_slack: FakeSlack, clock
):
    config = {**ONE_COMMUNITY, "community": [{**ONE_COMMUNITY["community"][0], "moderators": "console:demo:moderators"}]}  # fmt: skip
    run = await make_web(config)
    async with slack_surface(run, fake_slack) as surface:
        said = await slack_command(surface, fake_slack, "justdoit", f'suggest "{SUGGESTION}" competency=inspire', AUTHOR)  # fmt: skip
        assert "by direct message" in said
        await settle(run, clock)
        assert (
            "Prompt suggestion" in run.console.text
        )  # the review card, in the moderators' channel
        assert fake_slack.calls_to("conversations.open") == []

        await sign_in(page, run)
        await page.get_by_role("link", name="Daily prompt").click()
        row = page.locator("#suggestions tr[data-suggestion='1']")
        assert SUGGESTION in await row.inner_text()
        assert await row.locator("select[name=competency]").input_value() == "inspire"
        async with page.expect_navigation(url=f"{run.base}/prompts"):
            await row.get_by_role("button", name="Approve").click()
        assert "No suggestions waiting." in await page.inner_text("#suggestions")
        await settle(run, clock)

    (opened,) = fake_slack.calls_to("conversations.open")
    assert opened["users"] == AUTHOR
    (thanks,) = [c for c in fake_slack.calls_to("chat.postMessage") if c["channel"] == f"D{AUTHOR}"]
    assert SUGGESTION in str(thanks) and "Inspire" in str(thanks)
    in_channel = [c for c in fake_slack.calls_to("chat.postMessage") if c["channel"] == SLACK_CHANNEL]  # fmt: skip
    assert SUGGESTION not in str(in_channel)  # thanked in private, never in the channel


# --------------------------------------------------------------------------- 5. a survey's cross-tab

LIGHTS_ON = "Keeping the lights on (IT operations)"
TRANSFORMING = "Transforming IT (running IT like a business)"
STRATEGIC = "Strategic to the business"
FINANCE = "Financial services and insurance"
# The BSM maturity survey's CIO question, compared by company size and by industry.
ANSWERS = {
    "ann": {"cio-role": LIGHTS_ON, "org-size": "Under 100", "industry": "Healthcare"},
    "ben": {"cio-role": LIGHTS_ON, "org-size": "10,000+", "industry": FINANCE},
    "cat": {"cio-role": STRATEGIC, "org-size": "10,000+", "industry": FINANCE},
    "dan": {"cio-role": TRANSFORMING, "org-size": "Under 100", "industry": FINANCE},
}


def console_numbers(said: str, seen_by: str) -> list[int]:
    """The console numbers of the messages `seen_by` ("public" or a member) was shown."""
    where = r"\[public\]" if seen_by == "public" else rf"\[only {seen_by} sees this\]"
    return [int(n) for n in re.findall(rf"^#(\d+)(?: \(edited\))? {where}", said, re.M)]


async def take_survey(run: WebRun, invitation: int, name: str, answers: dict[str, str]) -> None:
    """A member answers the survey on the console: the given answers, Skip for the rest."""
    card = console_numbers(await run.console.say(f"@{name} click {invitation} Take the survey"), name)[0]  # fmt: skip
    for question in run.app.features["survey"].specs["bsm-maturity"].questions():  # type: ignore[attr-defined]
        said = await run.console.say(f"@{name} click {card} {answers.get(question.qid, 'Skip')}")
        assert f"#{card} (edited)" in said, said


async def crosstab(page: Page, qid: str) -> dict[tuple[str, str], int]:
    """One question's cross-tab as the page shows it: (answer, segment) -> members."""
    table = page.locator(f"#crosstab table[data-question='{qid}']")
    heads = await table.locator("thead th[data-segment]").all_inner_texts()
    segments = [head.strip().rsplit(" (", 1)[0] for head in heads]
    cells: dict[tuple[str, str], int] = {}
    for row in await table.locator("tbody tr").all():
        answer = (await row.locator("th").inner_text()).strip()
        counts = await row.locator("td .count").all_inner_texts()
        cells.update({(answer, segment): int(n) for segment, n in zip(segments, counts, strict=True)})  # fmt: skip
    return cells


async def test_a_surveys_cross_tab_in_the_browser_compares_by_size_then_by_industry(
    web, page: Page
):
    said = await web.console.say("@mia! /survey start bsm-maturity")
    (invitation,) = console_numbers(said, "public")
    for name, answers in ANSWERS.items():
        await take_survey(web, invitation, name, answers)

    await sign_in(page, web)
    await page.get_by_role("link", name="Polls").click()
    await page.get_by_role("link", name="BSM maturity survey").click()
    await page.wait_for_url(re.compile(r"/polls/\d+$"))
    run_url = page.url
    assert await page.inner_text("#respondents") == "4 member(s)"
    by_size = await crosstab(page, "cio-role")
    assert by_size[(LIGHTS_ON, "Under 100")] == 1 and by_size[(LIGHTS_ON, "10,000+")] == 1
    assert by_size[(STRATEGIC, "10,000+")] == 1 and by_size[(STRATEGIC, "Under 100")] == 0
    assert by_size[(TRANSFORMING, "Under 100")] == 1

    # Choosing another segment swaps the table in place (htmx, under the page's CSP).
    await page.locator("form.poll-compare select[name=by]").select_option("industry")
    await page.locator("#crosstab em", has_text="Which industry").wait_for()
    assert page.url == run_url  # not a new page: the fragment replaced the table
    by_industry = await crosstab(page, "cio-role")
    assert by_industry[(LIGHTS_ON, FINANCE)] == 1 and by_industry[(LIGHTS_ON, "Healthcare")] == 1
    assert by_industry[(STRATEGIC, FINANCE)] == 1 and by_industry[(TRANSFORMING, FINANCE)] == 1
    assert by_industry[(STRATEGIC, "Healthcare")] == 0
    finance = page.locator("#crosstab table[data-question='cio-role'] th[data-segment]", has_text=FINANCE)  # fmt: skip
    assert "(3)" in await finance.inner_text()
