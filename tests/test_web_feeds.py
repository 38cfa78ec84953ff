"""The Feeds page: health of every subscription, pause / resume / remove, and add with a
live preview, through the real web server, the real feed fetcher and a local feed server."""

from __future__ import annotations

import re

from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import Entry, FeedServer, entries, rss
from tests.web import csrf_of

feed_server = fake_feeds.feed_server  # the fixture
CONFIG = {"feeds": {"allow_private": True, "timeout": 2.0}}


def state(html: str, sub_id: int) -> str:
    row = re.search(rf'<tr data-feed="{sub_id}" class="state-(\w+)">', html)
    assert row, f"no row for #{sub_id}"
    return row.group(1)


async def test_a_feed_added_on_the_page_is_previewed_then_posted_in_its_channel(
    make_web, feed_server: FeedServer
):  # noqa: E501
    web = await make_web(CONFIG)
    url = feed_server.set("itsm.xml", body=rss(entries(3), title="ITSM weekly"))
    client = await web.sign_in("mia")
    async with client.get(
        "/feeds/preview", params={"url": url, "template": "New: {title}"}
    ) as response:  # noqa: E501
        preview = await response.text()
    assert "New: item 3" in preview and "<article" in preview  # the newest item, as it will look
    page = await web.page(client, "/feeds")
    form = {"url": url, "channel": "console:demo:general", "backlog": "1", "csrf": csrf_of(page)}
    async with client.post(
        "/feeds/add", data=form
    ) as response:  # back to the page, told what happened
        html = await response.text()
    assert "now follows" in html and "ITSM weekly" in html and state(html, 1) == "running"
    await web.console.console.settle()
    assert "item 3" in web.console.text  # the backlog of one reached the channel


async def test_pause_resume_and_remove_from_the_page(make_web, feed_server: FeedServer):
    web = await make_web(CONFIG)
    url = feed_server.set("f.xml", body=rss(entries(2)))
    await web.console.say(f"@mia! /feed add {url} backlog=0")
    client = await web.sign_in("mia")
    response = await web.post(client, "/feeds/1/pause", csrf_from="/feeds")
    assert response.status == 303
    html = await web.page(client, "/feeds")
    assert state(html, 1) == "paused" and "Paused subscription #1" in html
    sub = await web.app.features["feeds"].store.subscription(1)
    assert sub is not None and sub.paused
    await web.post(client, "/feeds/1/resume", csrf_from="/feeds")
    assert state(await web.page(client, "/feeds"), 1) == "running"
    await web.post(client, "/feeds/1/remove", csrf_from="/feeds")
    html = await web.page(client, "/feeds")
    assert 'data-feed="1"' not in html and "no longer follows" in html
    assert await web.app.features["feeds"].store.subscription(1) is None


async def test_a_bad_address_is_refused_on_the_page_and_nothing_is_added(make_web, feed_server):
    web = await make_web(CONFIG)
    broken = feed_server.set(
        "broken.xml", body=b"<html><body>no feed here</body></html>", content_type="text/html"
    )  # noqa: E501
    client = await web.sign_in("mia")
    async with client.get("/feeds/preview", params={"url": broken}) as response:
        assert "announces no feed" in await response.text()
    page = await web.page(client, "/feeds")
    form = {"url": broken, "channel": "console:demo:general", "csrf": csrf_of(page)}
    async with client.post("/feeds/add", data=form) as response:
        html = await response.text()
    assert "announces no feed" in html and 'data-feed="' not in html


async def test_feed_text_is_escaped_on_the_page(make_web, feed_server: FeedServer):
    web = await make_web(CONFIG)
    hostile = "Tips <script>alert(1)</script> & <b>tricks</b>"
    entry = Entry("x", guid="h1", link="https://e.org/1")
    url = feed_server.set("h.xml", body=rss([entry], title=hostile))
    await web.console.say(f"@mia! /feed add {url} backlog=0")
    source = (await web.app.features["feeds"].store.all_sources())[0]
    assert "<" in source.title or "&" in source.title  # what the feed said, kept as text
    html = await web.page(await web.sign_in("mia"), "/feeds")
    assert "<script>" not in html and "<b>tricks" not in html
    shown = source.title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert shown in html
