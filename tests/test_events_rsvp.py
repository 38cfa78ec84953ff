"""RSVP buttons: one answer per member per event, changed in place, live counts in every
announcement, exact under concurrent clicks; /event mine and /event rsvps."""

from __future__ import annotations

import asyncio

from adapters.console import Console
from bot.events import Events
from bot.help import Help
from bot.model import Action, Ephemeral, UpdateMessage

ADD = '@mod! /event add title=Seminar start="2026-12-05 09:00" location=Manchester'


async def boot(make_app):
    app = await make_app(features=[Help, Events])
    out: list[str] = []
    console = Console(app, write=out.append)
    await console.handle(ADD)
    return app, console, out


async def rows(app) -> list[tuple]:
    found = await app.db.fetchall("SELECT member, status, notify FROM event_rsvps ORDER BY member")
    return [tuple(r) for r in found]


async def test_one_answer_per_member_which_a_second_click_changes(make_app, clock):
    app, console, out = await boot(make_app)
    await console.handle("@ann click 2 going")
    assert "Noted: going for **Seminar**" not in out[-1]  # rendered, no markdown left
    assert "Noted: going for Seminar." in out[-1]
    await console.handle("@ann click 2 interested")
    await console.handle("@bob click 2 going + remind me")
    assert "I'll send you the last reminder as a direct message" in out[-1]
    assert await rows(app) == [
        ("console:demo:ann", "interested", 0),
        ("console:demo:bob", "going", 1),
    ]
    assert console.screen.messages[2].post.text == (
        "**RSVP:** 1 going · 1 interested · 0 not going"
    )


async def test_clicking_the_announcement_updates_it_at_once(make_app, clock):
    app, console, _ = await boot(make_app)
    channel = console.channel
    replies = await app.act(Action("event.rsvp", "1:going", console.user("ann"), channel, "2"))
    assert isinstance(replies[0], UpdateMessage)
    assert replies[0].post.text.startswith("**RSVP:** 1 going")
    assert isinstance(replies[1], Ephemeral)
    # The same button on a reminder post answers without replacing that post.
    other = await app.act(Action("event.rsvp", "1:going", console.user("bob"), channel, "7"))
    assert [type(r) for r in other] == [Ephemeral]


async def test_concurrent_clicks_give_exact_counts_everywhere(make_app, clock):
    app, console, _ = await boot(make_app)
    channel = console.channel
    answers = ["going", "interested", "not_going", "going+notify"]
    clicks = []
    for i in range(60):
        user = console.user(f"m{i % 40}")  # 20 members click twice
        clicks.append(Action("event.rsvp", f"1:{answers[i % 4]}", user, channel, "2"))
    await asyncio.gather(*(app.act(click) for click in clicks))
    # Each member's last click is the one that stands: m0..m19 clicked again at i+40.
    expected = {"going": 0, "interested": 0, "not_going": 0}
    for member in range(40):
        last = max(i for i in range(60) if i % 40 == member)
        expected[answers[last % 4].split("+")[0]] += 1
    counts = await app.features["event"].service.store.counts(1)
    assert vars(counts) == expected
    assert await app.db.fetchval("SELECT count(*) FROM event_rsvps") == 40
    clock.advance(5)
    await app.outbox.drain()
    line = console.screen.messages[2].post.text
    assert line == (
        f"**RSVP:** {expected['going']} going · {expected['interested']} interested"
        f" · {expected['not_going']} not going"
    )
    edits = await app.db.fetchval("SELECT count(*) FROM outbox WHERE kind = 'edit'")
    assert edits == 1  # sixty changes, one coalesced edit row


async def test_bad_or_stale_buttons_are_refused(make_app, clock):
    app, console, _ = await boot(make_app)
    channel, ann = console.channel, console.user("ann")
    for value, message in (
        ("1:maybe", "not one I know"),
        ("x:going", "not one I know"),
        ("9:going", "no longer exists"),
    ):
        replies = await app.act(Action("event.rsvp", value, ann, channel, "2"))
        assert message in replies[0].post.text
    clock.advance(60 * 60 * 24 * 20)
    replies = await app.act(Action("event.rsvp", "1:going", ann, channel, "2"))
    assert "has already started" in replies[0].post.text
    assert await rows(app) == []


async def test_members_see_their_own_rsvps_and_moderators_see_everyones(make_app, clock):
    app, console, out = await boot(make_app)
    await console.handle('@mod! /event add title="SIG" start="2026-12-10 15:00"')
    await console.handle("@ann click 2 going + remind me")
    await console.handle("@bob click 2 not going")
    await console.handle("@ann /event mine")
    mine = out[-1]
    assert "#1 Seminar" in mine and "going + remind me" in mine and "SIG" not in mine
    await console.handle("@cy /event mine")
    assert "You have not answered any upcoming event." in out[-1]
    await console.handle("@ann /event rsvps 1")
    assert "for moderators only" in out[-1]
    await console.handle("@mod! /event rsvps 1")
    assert "Going (1): ann 🔔" in out[-1]
    assert "Not going (1): bob" in out[-1]
    assert "Interested (0): —" in out[-1]
