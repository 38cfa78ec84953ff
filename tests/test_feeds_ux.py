"""What a first-time moderator reads from /feed (issue 15): channels named as channels, when
capped items will appear, durations in words, no dangling separators, the setting to name."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.feeds import Feeds
from bot.feeds.parse import parse_feed
from bot.feeds.render import item_post
from bot.help import Help
from bot.model import ChannelRef, Ephemeral, Invocation, UserRef, channel_tag
from bot.timeutil import duration_words
from tests import test_feeds_flow as flow
from tests.fakes.feed_server import Entry, FeedServer, entries, rss

start, feed_server = flow.start, flow.feed_server  # the fixtures

SLACK = ChannelRef("slack", "T1", "C111")
OPS = ChannelRef("slack", "T1", "C222")
MOD = UserRef("slack", "T1", "UMOD", "Mo")


async def invoke(app, path: tuple[str, ...], channel: ChannelRef = SLACK, **options) -> str:
    """A command from a Slack channel; the text of its first reply."""
    replies = await app.invoke(Invocation(path, MOD, channel, True, options=options))
    assert replies and isinstance(replies[0], Ephemeral)
    post = replies[0].post
    return "\n".join([post.text, *(f.value for f in post.fields)])


# --- 1. Channels are named as channels -------------------------------------------------------


async def test_replies_name_the_channel_with_a_channel_tag(make_app, feed_server: FeedServer):
    app = await make_app(features=[Help, Feeds], config=flow.CONFIG)
    url = feed_server.set("f.xml", body=rss(entries(2)))
    added = await invoke(app, ("feed", "add"), url=url, channel=OPS, backlog=0)
    assert added.startswith(f"{channel_tag(OPS)} now follows") and "#C222" not in added
    again = await invoke(app, ("feed", "add"), url=url, channel=OPS)
    assert f"{channel_tag(OPS)} already follows this feed (subscription #1)" in again
    assert "#C222" not in again
    listing = await invoke(app, ("feed", "list"))
    assert f"in {channel_tag(OPS)}" in listing and "#C222" not in listing
    removed = await invoke(app, ("feed", "remove"), id=1)
    assert removed.startswith(f"{channel_tag(OPS)} no longer follows") and "#C222" not in removed


# --- 2. A capped channel: say when the items will appear -------------------------------------


async def test_add_in_a_capped_channel_says_when_the_items_appear(
    start, feed_server: FeedServer, clock
):
    run = await start({"feeds": {"per_channel_cap": 2, "per_channel_window": "10m"}})
    url = feed_server.set("f.xml", body=rss(entries(5)))
    out = await run.say(f"@mod! /feed add {url} backlog=5")
    assert "latest 5 items now" not in out and "item(s)" not in out
    last = (clock.now() + timedelta(minutes=20)).strftime("%d %b %Y %H:%M UTC")
    assert "2 now" in out and f"the rest by {last}" in out
    assert "at most 2 feed posts every 10 min" in out


async def test_add_when_the_cap_is_already_full_says_when_the_first_appears(
    start, feed_server: FeedServer, clock
):
    run = await start({"feeds": {"per_channel_cap": 2, "per_channel_window": "10m"}})
    a = feed_server.set("a.xml", body=rss(entries(2, prefix="a")))
    b = feed_server.set("b.xml", body=rss(entries(2, prefix="b")))
    await run.say(f"@mod! /feed add {a} backlog=2")
    out = await run.say(f"@mod! /feed add {b} backlog=2")
    at = (clock.now() + timedelta(minutes=10)).strftime("%d %b %Y %H:%M UTC")
    assert "items now" not in out and f"Posting the latest 2 items at {at}" in out
    assert "** b " not in out  # and indeed nothing appeared


# --- 3. backlog=0 ----------------------------------------------------------------------------


async def test_backlog_zero_says_only_new_items_are_posted(start, feed_server: FeedServer):
    run = await start()
    url = feed_server.set("f.xml", body=rss(entries(5)))
    out = await run.say(f"@mod! /feed add {url} backlog=0")
    assert "latest 0" not in out
    assert "Only new items are posted" in out


# --- 4. Durations in words -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=10), "10 s"),
        (timedelta(minutes=30), "30 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=3), "3 days"),
        (timedelta(minutes=90), "1 h 30 min"),
    ],
)
def test_duration_words(delta: timedelta, words: str):
    assert duration_words(delta) == words


@pytest.mark.parametrize(
    ("interval", "shown"), [("10s", "every 10 s"), ("2h", "every 2 h"), ("1d", "every 1 day")]
)
async def test_add_and_list_show_the_interval_in_words(
    start, feed_server: FeedServer, interval: str, shown: str
):
    run = await start({"feeds": {"interval": interval, "max_interval": "2d"}})
    url = feed_server.set("f.xml", body=rss(entries(1)))
    out = await run.say(f"@mod! /feed add {url}")
    assert shown in out and "0.166667" not in out
    assert shown in await run.say("/feed list")


async def test_list_shows_a_failing_feeds_wait_in_words(start, feed_server: FeedServer, clock):
    run = await start({"feeds": {"jitter": 0, "interval": "30m"}})
    url = feed_server.set("f.xml", body=rss(entries(1)))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("f.xml", status=500)
    await flow.tick(run, clock)
    await flow.tick(run, clock)
    listing = await run.say("/feed list")
    assert "failing (2 in a row)" in listing
    assert "backing off: 1 h after the last failure" in listing


# --- 5. Empty values leave no dangling separators --------------------------------------------


def _item(**fields: str):
    entry = Entry(title=fields.get("title", "T"), guid="g", link="https://example.org/a",
                  author=fields.get("author", ""), date=fields.get("date", ""))  # fmt: skip
    return parse_feed(rss([entry])).items[0]


@pytest.mark.parametrize(
    ("template", "shown"),
    [
        ("{title} by {author}: {link}", "T https://example.org/a"),
        ("{title} ({author})", "T"),
        ("{title} · {author} · {link}", "T · https://example.org/a"),
        ("New on {source}: {title}", "T"),
        ("{title}\nAuthor: {author}\n{link}", "T\nhttps://example.org/a"),
        ("{title} — _by {author}_", "T"),
        ("{title} by {author} {date}", "T"),
    ],
)
def test_a_template_drops_empty_values_with_their_separators(template: str, shown: str):
    post = item_post(_item(), "", template=template)
    assert post.text == shown


def test_a_template_keeps_what_has_a_value():
    item = _item(author="al@example.org (Al)")
    post = item_post(item, "Src", template="New on {source}: {title} by {author} ({link})")
    assert post.text == "New on Src: T by Al (https://example.org/a)"


def test_default_rendering_has_no_dangling_byline():
    post = item_post(_item(author="   "), "")
    assert "by" not in post.text and "·" not in post.text and "__" not in post.text


# --- 6. The refusal names the setting --------------------------------------------------------


async def test_private_address_refusal_names_the_setting(start, feed_server: FeedServer):
    run = await start({"feeds": {"allow_private": False}})
    url = feed_server.set("f.xml", body=rss(entries(1)))
    out = await run.say(f"@mod! /feed add {url}")
    assert "refused: 127.0.0.1 is a loopback address" in out
    assert "[feeds] allow_private" in out and "never in production" in out
