"""The delivery page: the community's posts waiting, in doubt and given up, per platform,
each with why, produced by the real outbox over the console transport told to fail the
way platforms fail (bot.errors.Failure); and nothing of another community's."""

from __future__ import annotations

import re
from datetime import timedelta

from adapters.console.adapter import ConsoleTransport
from bot.errors import DeliveryError, Failure
from bot.model import ChannelRef, Post, UserRef
from tests.web import WebRun

GENERAL = ChannelRef("console", "demo", "general")
NEWS = ChannelRef("console", "demo", "news")
SAM = ChannelRef.direct(UserRef("console", "demo", "sam", "sam"))


class FlakyConsole:
    """The console's transport, failing chosen posts (by outbox key) as a platform would."""

    platform = "console"
    pace = 0.0

    def __init__(self, inner: ConsoleTransport) -> None:
        self.inner = inner
        self.failures: dict[str, list[DeliveryError]] = {}

    def fail(self, key: str, *errors: DeliveryError) -> None:
        self.failures.setdefault(key, []).extend(errors)

    async def send(self, channel: ChannelRef, post: Post, key: str) -> str:
        if self.failures.get(key):
            raise self.failures[key].pop(0)
        return await self.inner.send(channel, post, key)

    async def edit(self, channel: ChannelRef, message_id: str, post: Post) -> None:
        await self.inner.edit(channel, message_id, post)

    async def find(self, channel: ChannelRef, key: str, since: float) -> str | None:
        return await self.inner.find(channel, key, since)


def flaky(web: WebRun) -> FlakyConsole:
    transport = FlakyConsole(web.console.console.transport)
    web.app.outbox.attach(transport)  # in place of the console's own
    return transport


def section(html: str, state: str) -> str:
    found = re.search(rf'<section class="delivery-state" id="{state}">(.*?)</section>', html, re.S)
    assert found, state
    return found.group(1)


def row(html: str, key: str) -> str:
    found = re.search(rf'<tr data-key="{re.escape(key)}".*?</tr>', html, re.S)
    assert found, key
    return found.group(0)


def counts(html: str, platform: str) -> tuple[int, int, int]:
    line = re.search(rf'<tr data-platform="{platform}".*?</tr>', html, re.S).group(0)
    return tuple(
        int(re.search(rf'class="num {name}">(\d+)<', line).group(1))
        for name in ("waiting", "in-doubt", "given-up")
    )  # type: ignore[return-value]


async def queue(web: WebRun, channel: ChannelRef, key: str, title: str) -> None:
    assert await web.app.outbox.enqueue(channel, Post(title=title), key)


async def test_waiting_in_doubt_and_given_up_posts_show_with_their_reasons(web, clock):
    transport = flaky(web)
    transport.fail("justdoit:console:demo:general:2026-11-23",
                   DeliveryError("missing_permissions: the bot may not post here", Failure.PERMANENT))  # fmt: skip
    await web.console.say("@mia! /justdoit today")  # the daily prompt, refused for good
    transport.fail("news-1", DeliveryError("console: no answer within 30 s", Failure.IN_DOUBT))
    transport.fail("general-1", DeliveryError("connection reset by peer", Failure.TRANSIENT))
    transport.fail("dm-1", DeliveryError("HTTP 503 from the platform", Failure.TRANSIENT))
    await queue(web, NEWS, "news-1", "ITIL 4 in practice")
    await queue(web, GENERAL, "general-1", "Service desk week")
    await queue(web, GENERAL, "general-2", "Problem management <b>clinic</b>")
    await queue(web, SAM, "dm-1", "Your event reminder")
    await web.app.outbox.drain()
    # A minute on, the retries (a 2 s backoff) are due, and fail again: they wait once more.
    clock.advance(timedelta(minutes=1))
    transport.fail("general-1", DeliveryError("connection reset by peer", Failure.TRANSIENT))
    transport.fail("dm-1", DeliveryError("HTTP 503 from the platform", Failure.TRANSIENT))
    transport.fail("news-1", DeliveryError("console: no answer within 30 s", Failure.IN_DOUBT))
    await web.app.outbox.drain()

    client = await web.sign_in("mia")
    html = await web.page(client, "/delivery")
    assert counts(html, "console") == (3, 1, 1)
    assert "connected" in re.search(r'<tr data-platform="console".*?</tr>', html, re.S).group(0)

    given_up = section(html, "given-up")
    prompt = row(given_up, "justdoit:console:demo:general:2026-11-23")
    assert "Just do it" in prompt and "missing_permissions: the bot may not post here" in prompt

    doubt = row(section(html, "in-doubt"), "news-1")
    assert "ITIL 4 in practice" in doubt and "#news" in doubt
    assert "no answer within 30 s" in doubt and "next try" in doubt

    waiting = section(html, "waiting")
    first = row(waiting, "general-1")
    assert "connection reset by peer" in first and "next try" in first
    second = row(waiting, "general-2")
    assert re.search(r'data-outbox="(\d+)"', first).group(1) in second  # "behind #N"
    assert "behind #" in second
    assert "Problem management &lt;b&gt;clinic&lt;/b&gt;" in second and "<b>clinic" not in second
    direct = row(waiting, "dm-1")
    assert "direct to @sam" in direct and "HTTP 503 from the platform" in direct
    assert 'id="oldest"' in html and "1 min ago" in html

    # Once the platform takes them, nothing is left waiting; the given-up post stays listed.
    clock.advance(timedelta(minutes=10))
    await web.app.outbox.drain()
    html = await web.page(client, "/delivery")
    assert counts(html, "console") == (0, 0, 1)
    assert 'data-key="general-2"' not in html and 'id="oldest"' not in html
    assert "ITIL 4 in practice" in web.console.text  # the post in doubt was looked up, then sent


async def test_a_refused_token_pauses_the_platform_and_every_post_says_so(web):
    transport = flaky(web)
    transport.fail("general-1", DeliveryError("console token refused: set CONSOLE_TOKEN", Failure.CREDENTIALS))  # fmt: skip
    await queue(web, GENERAL, "general-1", "Service desk week")
    await web.app.outbox.drain()
    await queue(web, NEWS, "news-1", "ITIL 4 in practice")  # queued while paused: kept
    await web.app.outbox.drain()
    client = await web.sign_in("mia")  # an answer to /web, not a queued post: not held
    html = await web.page(client, "/delivery")
    line = re.search(r'<tr data-platform="console".*?</tr>', html, re.S).group(0)
    assert "paused" in line and "set CONSOLE_TOKEN" in line
    for key in ("general-1", "news-1"):
        assert "console is paused: console token refused" in row(section(html, "waiting"), key)
    assert counts(html, "console") == (2, 0, 0)


OTHERS = {
    "community": [
        {
            "name": "itSMF Norway",
            "workspaces": ["console:demo"],
            "channels": ["console:demo:general"],
        },  # fmt: skip
        {
            "name": "itSMF UK",
            "workspaces": ["slack:T2", "console:demo2"],
            "channels": ["slack:T2:C1"],
        },  # fmt: skip
    ]
}


async def test_another_communitys_posts_never_appear(make_web):
    web = await make_web(OTHERS)
    transport = flaky(web)
    transport.fail("uk-console", DeliveryError("UK only refusal", Failure.PERMANENT))
    transport.fail("ours", DeliveryError("our own refusal", Failure.PERMANENT))
    await queue(web, ChannelRef("slack", "T2", "C1"), "uk-channel", "UK only news")
    await queue(web, ChannelRef.direct(UserRef("slack", "T2", "U9")), "uk-dm", "UK only reminder")
    await queue(web, ChannelRef("console", "demo2", "general"), "uk-console", "UK console post")
    await queue(web, GENERAL, "ours", "Norway's own post")
    await web.app.outbox.drain()
    assert await web.app.outbox.state("uk-console") == "failed"
    client = await web.sign_in("mia")  # a moderator of itSMF Norway
    html = await web.page(client, "/delivery")
    assert "Norway&#39;s own post" in html and "our own refusal" in html
    for theirs in ("uk-channel", "uk-dm", "uk-console", "UK only", "slack"):
        assert theirs not in html
    assert counts(html, "console") == (0, 0, 1)


async def test_a_member_cannot_read_the_delivery_page(web):
    client = await web.sign_in("sam", moderator=False)
    async with client.get("/delivery") as response:
        assert response.status == 403
