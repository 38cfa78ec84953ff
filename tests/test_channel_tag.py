"""A channel named in a reply reads as the platform names channels, never as a raw id."""

from __future__ import annotations

from adapters.console.render import render as console
from adapters.discord.render import render as discord
from adapters.slack.render import render as slack
from bot.model import ChannelRef, Post, channel_tag, inert


def test_each_platform_shows_a_channel_its_own_way():
    slack_post = Post(text=f"{channel_tag(ChannelRef('slack', 'T1', 'C111'))} follows it")
    assert slack(slack_post)["text"].startswith("<#C111> follows")
    discord_post = Post(text=f"{channel_tag(ChannelRef('discord', '1', '3000000000000000001'))}")
    assert discord(discord_post).embeds[0].description == "<#3000000000000000001>"
    console_post = Post(text=f"{channel_tag(ChannelRef('console', 'demo', 'general'))} follows")
    assert "#general follows" in console(console_post, 1, "public")


def test_a_typed_channel_marker_stays_text():
    typed = inert(channel_tag(ChannelRef("slack", "T1", "C999")))
    assert "<#" not in slack(Post(text=typed))["text"]
    assert "<#" not in (discord(Post(text=typed)).embeds[0].description or "")
