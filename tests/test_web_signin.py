"""Signing in to the web console, and the rules that keep it closed to everyone else."""

from __future__ import annotations

from datetime import timedelta

import aiohttp

from bot.web.server import COOKIE
from tests.web import csrf_of


async def test_a_moderator_signs_in_once_with_the_link_and_sees_the_feeds_page(web):
    client = web.client()
    link = (await web.link("mia", moderator=True)).removeprefix(web.base)
    async with client.get(link) as response:  # a link preview opens it too: it only asks
        assert response.status == 200
        assert 'id="sign-in"' in await response.text()
    async with client.post(link, allow_redirects=False) as response:
        assert response.status == 303
        cookie = response.cookies[COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
    html = await web.page(client, "/feeds")
    assert "(moderator)" in html and "Add a feed" in html
    again = web.client()
    async with again.post(link, allow_redirects=False) as response:
        assert response.status == 410
        assert COOKIE not in response.cookies


async def test_an_expired_link_signs_nobody_in(web, clock):
    link = (await web.link("mia")).removeprefix(web.base)
    clock.advance(timedelta(minutes=10, seconds=1))
    client = web.client()
    async with client.post(link, allow_redirects=False) as response:
        assert response.status == 410
    async with client.get("/feeds") as response:
        assert response.status == 401


async def test_a_forged_or_expired_cookie_is_refused(web, clock):
    client = await web.sign_in("mia")
    cookie = next(c for c in client.cookie_jar if c.key == COOKIE).value
    forged = web.client()
    forged.cookie_jar.update_cookies(
        {COOKIE: cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")}
    )
    async with forged.get("/feeds") as response:
        assert response.status == 401
    clock.advance(timedelta(hours=12, seconds=1))
    async with client.get("/feeds") as response:
        assert response.status == 401


async def test_a_form_without_its_csrf_token_changes_nothing(web):
    client = await web.sign_in("mia")
    html = await web.page(client, "/feeds")
    assert 'data-feed="' not in html  # no feeds in a fresh app: add one through a forged form
    async with client.post("/feeds/1/pause", data={}, allow_redirects=False) as response:
        assert response.status == 403
    async with client.post(
        "/feeds/1/pause", data={"csrf": "0" * 64}, allow_redirects=False
    ) as response:  # noqa: E501
        assert response.status == 403
    assert csrf_of(html)


async def test_a_member_reads_what_members_may_and_changes_nothing(web):
    client = await web.sign_in("sam", moderator=False)
    html = await web.page(client, "/feeds")
    assert "read only" in html and "Add a feed" not in html
    async with client.post(
        "/feeds/add",
        data={
            "csrf": csrf_of(html),
            "url": "http://127.0.0.1:1/x",
            "channel": "console:demo:general",
        },
        allow_redirects=False,
    ) as response:  # noqa: E501
        assert response.status == 403


async def test_signing_out_ends_the_session(web):
    client = await web.sign_in("mia")
    html = await web.page(client, "/feeds")
    async with client.post(
        "/signout", data={"csrf": csrf_of(html)}, allow_redirects=False
    ) as response:  # noqa: E501
        assert response.status == 303
    async with client.get("/feeds") as response:
        assert response.status == 401


async def test_web_without_the_console_switched_on_says_so(console):
    said = await console.say("@mia! /web")
    assert "not switched on" in said


async def test_pages_are_not_framed_or_cached(web):
    client = await web.sign_in("mia")
    async with client.get("/feeds") as response:
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"
    assert isinstance(client, aiohttp.ClientSession)


TWO_COMMUNITIES = {
    "community": [
        {
            "name": "itSMF Norway",
            "workspaces": ["console:demo"],
            "channels": ["console:demo:general"],
        },  # noqa: E501
        {"name": "itSMF UK", "workspaces": ["slack:T2"], "channels": ["slack:T2:C1"]},
    ]
}


async def test_another_communitys_moderator_neither_sees_nor_changes_its_feeds(make_web):
    from bot.model import ChannelRef

    web = await make_web(TWO_COMMUNITIES)
    feeds = web.app.features["feeds"]
    _, theirs = await feeds.subscribe(
        "https://uk.example.org/feed", ChannelRef("slack", "T2", "C1"), title="UK only news"
    )  # noqa: E501
    client = await web.sign_in("mia")  # a moderator of itSMF Norway (the console's community)
    html = await web.page(client, "/feeds")
    assert "itSMF Norway" in html and "UK only news" not in html
    for verb in ("pause", "remove"):
        response = await web.post(client, f"/feeds/{theirs.id}/{verb}", csrf_from="/feeds")
        assert response.status == 404
    still = await feeds.store.subscription(theirs.id)
    assert still is not None and not still.paused
