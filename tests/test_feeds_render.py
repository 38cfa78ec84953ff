"""A feed item as a Post, and no feed text able to ping anyone on any surface."""

from __future__ import annotations

import re

import pytest

from adapters.console.render import render as console_render
from bot.feeds.parse import parse_feed
from bot.feeds.render import check_template, item_post
from bot.model import MARK_CLOSE, MARK_OPEN
from tests.fakes.feed_server import Entry, rss

HOSTILE = "@everyone <!channel> <!here> <!everyone> <@123> <@U0123ABC> <!subteam^S1> <@&42> <#99> @here ⟦@:123⟧ ⟦t:0:f⟧"  # fmt: skip


def hostile_item():
    body = rss([
        Entry(
            title=f"Alert {HOSTILE}",
            guid="h-1",
            link="https://example.org/h",
            summary=f"<p>{HOSTILE}</p><script>alert(1)</script><a href='javascript:x' onclick='y()'>z</a>",
            author=f"mallory@example.org ({HOSTILE})",
            categories=("@everyone",),
        )
    ], title=f"Source {HOSTILE}")  # fmt: skip
    feed = parse_feed(body)
    return feed.items[0], feed.title


def test_post_carries_no_marker_and_no_mention():
    item, source = hostile_item()
    post = item_post(item, source)
    # the only marker is the item's own date; the forged ones are neutralised
    markers = re.findall(re.escape(MARK_OPEN) + r"[^" + re.escape(MARK_CLOSE) + "]*", post.text)
    assert all(m.startswith(MARK_OPEN + "t:") for m in markers) and len(markers) == 1
    assert MARK_OPEN not in post.title
    assert post.mentions == []


def test_console_shows_hostile_text_inert():
    item, source = hostile_item()
    shown = console_render(item_post(item, source), 1, "public")
    assert "@everyone" in shown  # shown as text, never turned into a mention
    assert "[@:123]" in shown and "[t:0:f]" in shown  # forged markers shown as plain text
    assert "<script" not in shown and "onclick" not in shown and "javascript:" not in shown
    assert "<@123>" not in shown and "<!channel>" not in shown  # no tag-like sequence survives


def test_slack_rendering_has_no_live_mention():
    from adapters.slack.render import render

    item, source = hostile_item()
    rendered = render(item_post(item, source))
    flat = repr(rendered)
    for live in ("<!channel>", "<!here>", "<!everyone>", "<@", "<!subteam", "<script"):
        assert live not in flat, live
    assert "<https://example.org/h|" in flat  # the title is still a link


def test_discord_rendering_has_no_live_mention():
    import discord

    from adapters.discord.render import render

    item, source = hostile_item()
    rendered = render(item_post(item, source))
    assert rendered.allowed_mentions.everyone is False
    assert rendered.allowed_mentions.users is False and rendered.allowed_mentions.roles is False
    texts = [rendered.content]
    for embed in rendered.embeds:
        data = embed.to_dict()
        texts += [data.get("title", ""), data.get("description", ""), str(data.get("footer", ""))]
        texts += [f["name"] + f["value"] for f in data.get("fields", [])]
    joined = "\n".join(texts)
    assert not re.search(r"@(everyone|here)", joined)
    assert not re.search(r"<@[!&]?\d", joined) and not re.search(r"<#\d", joined)
    assert "<script" not in joined
    assert isinstance(rendered.embeds[0], discord.Embed)


def test_default_post_layout():
    body = rss([Entry("Title", guid="g", link="https://example.org/a", summary="<p>Short.</p>",
                      author="ann@example.org (Ann)", image="https://example.org/i.png")], title="Blog")  # fmt: skip
    item = parse_feed(body).items[0]
    post = item_post(item, "Blog", zone="Europe/Oslo")
    assert post.title == "Title" and post.url == "https://example.org/a"
    assert post.text.startswith("Short.\n_Blog · by Ann · ⟦t:")
    assert post.image == "https://example.org/i.png" and post.zone == "Europe/Oslo"


def test_template_placeholders():
    item = parse_feed(rss([Entry("T", guid="g", link="https://example.org/a", author="al@example.org (Al)")])).items[0]  # fmt: skip
    post = item_post(item, "Src", template="{source}: {title} by {author} <{link}> {date}")
    assert post.text.startswith("Src: T by Al <https://example.org/a> ⟦t:")
    with pytest.raises(ValueError, match="unknown placeholder"):
        check_template("{title} {__class__}")
