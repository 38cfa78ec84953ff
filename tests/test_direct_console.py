"""Direct messages on the console: shown as "[direct to NAME]", edited in place, found again."""

from __future__ import annotations

from datetime import timedelta

from adapters.console.render import render
from bot.model import ChannelRef, Post, UserRef


def ana() -> UserRef:
    return UserRef("console", "demo", "ana", "ana")


async def test_direct_post_is_printed_for_that_member(console):
    app = console.app
    await app.outbox.enqueue(ChannelRef.direct(ana()), Post(text="Just for you."), "dm:1")
    await app.outbox.drain()
    assert console.out[-1] == "#1 [direct to ana]\n  Just for you."
    assert await app.outbox.message_id("dm:1") == "1"
    assert await console.console.transport.find(ChannelRef.direct(ana()), "dm:1", 0.0) == "1"


async def test_edited_direct_post_stays_direct(console, clock):
    app = console.app
    await app.outbox.enqueue(ChannelRef.direct(ana()), Post(text="v1"), "dm:1")
    await app.outbox.drain()
    await app.outbox.edit("dm:1", Post(text="v2"))
    clock.advance(timedelta(seconds=5))
    await app.outbox.drain()
    assert console.out[-1] == "#1 (edited) [direct to ana]\n  v2"


def test_render_keeps_public_and_ephemeral_heads():
    assert render(Post(text="x"), 3, "public").startswith("#3 [public]")
    assert render(Post(text="x"), 3, "bob").startswith("#3 [only bob sees this]")
    assert render(Post(text="x"), 3, "@bob").startswith("#3 [direct to bob]")


async def test_an_approved_suggestion_reaches_its_author_as_a_direct_message(console):
    asked = await console.say('@ana /justdoit suggest "Thank the service desk in person today"')
    assert "by direct message" in asked
    review = max(n for n, s in console.console.screen.messages.items() if s.audience == "public")
    shown = await console.say(f"@mod! click {review} Approve as Inspire")
    assert "[direct to ana]" in shown and "Thank you! Your prompt suggestion" in shown
    assert "[public]" not in shown.replace(f"#{review} (edited) [public]", "")
