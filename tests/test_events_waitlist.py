"""Capacity and the waiting list (issue 20): once `capacity` members are going, "Going" puts
a member on the waiting list with their place; a place given up moves the first one up,
who is told by direct message exactly once, across restarts and a stop between the move
and the message; a lower capacity keeps those going; the last place pressed for at once
goes to one member. Driven on the console (and through App.act for simultaneous clicks)."""

from __future__ import annotations

import asyncio

from adapters.console import Console
from bot.events import Events
from bot.help import Help
from bot.model import Action

FEATURES = [Help, Events]
ADD = '@mod! /event add title="ITIL 4 Workshop" start="2026-12-05 09:00" tz=Europe/London'


async def boot(make_app, db="bot.db"):
    app = await make_app(features=FEATURES, db=db)
    out: list[str] = []
    return app, Console(app, write=out.append), out


async def say(console: Console, out: list[str], line: str) -> str:
    start = len(out)
    await console.handle(line)
    await console.app.outbox.drain()
    return "\n".join(out[start:])


async def settle(app, clock) -> None:
    clock.advance(2)  # past the announcement edits' debounce
    await app.outbox.drain()


async def statuses(app) -> dict[str, str]:
    rows = await app.db.fetchall("SELECT member, status FROM event_rsvps ORDER BY member")
    return {r["member"].rsplit(":", 1)[1]: r["status"] for r in rows}


async def waiting(app) -> list[str]:
    rows = await app.db.fetchall(
        "SELECT member FROM event_waitlist WHERE moved_up_at IS NULL ORDER BY id"
    )
    return [r["member"].rsplit(":", 1)[1] for r in rows]


def direct(console: Console, name: str) -> list:
    return [s.post for s in console.screen.messages.values() if s.audience == f"@{name}"]


async def test_a_full_event_puts_going_on_the_waiting_list_with_a_place(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " capacity=2")
    await console.handle("@ann click 2 going")
    await console.handle("@bob click 2 going + remind me")
    assert "waiting list" not in out[-1]
    said = await say(console, out, "@cat click 2 going")
    assert "is full (2 going): you're on the waiting list, number 1" in said
    assert "number 2" in await say(console, out, "@dan click 2 going")
    assert "number 1" in await say(console, out, "@cat click 2 going")  # keeps the place
    assert await statuses(app) == {"ann": "going", "bob": "going"}
    assert await waiting(app) == ["cat", "dan"]
    await settle(app, clock)
    assert console.screen.messages[2].post.text == (
        "**RSVP:** 2/2 going · 2 waiting · 0 interested · 0 not going"
    )
    mine = await say(console, out, "@dan /event mine")
    assert "#1 ITIL 4 Workshop" in mine and "waiting list, number 2" in mine
    listed = await say(console, out, "@mod! /event rsvps 1")
    assert "Going (2 of 2): ann, bob 🔔" in listed and "Waiting list (2): 1. cat, 2. dan" in listed


async def test_a_place_given_up_moves_the_first_up_who_is_told_once_across_restarts(
    make_app, clock
):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " capacity=1")
    for name in ("ann", "bob", "cat"):
        await console.handle(f"@{name} click 2 going")
    await console.handle("@bob click 2 interested")  # a waiting member leaves the list
    assert await waiting(app) == ["cat"]
    await say(console, out, "@ann click 2 not going")
    assert await statuses(app) == {"ann": "not_going", "bob": "interested", "cat": "going"}
    assert await waiting(app) == []
    (told,) = direct(console, "cat")
    assert told.title == "🎟️ You have a place: ITIL 4 Workshop"
    assert "you're now going" in told.text
    await settle(app, clock)
    assert console.screen.messages[2].post.text.startswith("**RSVP:** 1/1 going · 1 interested")

    again, console2, _ = await boot(make_app)  # a restart sends nothing again
    await again.outbox.drain()
    assert direct(console2, "cat") == []
    sent = await again.db.fetchval(
        "SELECT count(*) FROM outbox WHERE key LIKE 'event:1:moved-up:%'"
    )
    assert sent == 1


async def test_a_stop_between_the_move_up_and_its_message_is_finished_once(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " capacity=1")
    await console.handle("@ann click 2 going")
    await console.handle("@cat click 2 going")
    # What a stop right after the move-up's transaction leaves: cat going, not yet told.
    await app.db.execute(
        "UPDATE event_rsvps SET status = 'not_going' WHERE member = 'console:demo:ann'"
    )
    await app.db.execute(
        "INSERT INTO event_rsvps (event_id, member, name, status, notify, updated_at)"
        " VALUES (1, 'console:demo:cat', 'cat', 'going', 0, 0)"
    )
    await app.db.execute("UPDATE event_waitlist SET moved_up_at = 1 WHERE event_id = 1")

    again, console2, _ = await boot(make_app)
    await again.outbox.drain()
    assert [p.title for p in direct(console2, "cat")] == ["🎟️ You have a place: ITIL 4 Workshop"]
    third, console3, _ = await boot(make_app)
    await third.outbox.drain()
    assert direct(console3, "cat") == []


async def test_lowering_capacity_keeps_those_going_and_raising_it_moves_them_up(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " capacity=3")
    for name in ("ann", "bob", "cat"):
        await console.handle(f"@{name} click 2 going")
    said = await say(console, out, "@mod! /event edit 1 capacity=2")
    assert "3 are already going, more than the capacity of 2: they stay going" in said
    assert "number 1" in await say(console, out, "@dan click 2 going")
    await console.handle("@ann click 2 not going")  # 2 going now: still no place free
    assert await waiting(app) == ["dan"]
    await console.handle("@eve click 2 going")
    said = await say(console, out, "@mod! /event edit 1 capacity=3")
    assert "1 member(s) moved up from the waiting list and told" in said
    assert await waiting(app) == ["eve"] and len(direct(console, "dan")) == 1
    await say(console, out, "@mod! /event edit 1 capacity=none")  # no limit: everyone in
    assert await waiting(app) == [] and len(direct(console, "eve")) == 1
    assert await statuses(app) == {
        "ann": "not_going", "bob": "going", "cat": "going", "dan": "going", "eve": "going"
    }  # fmt: skip
    refused = await say(console, out, "@mod! /event edit 1 capacity=many")
    assert "is not a number of places" in refused


async def test_the_last_place_pressed_for_at_once_goes_to_one_member(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " capacity=3")
    clicks = [
        Action("event.rsvp", "1:going", console.user(f"m{i}"), console.channel, "2")
        for i in range(12)
    ]
    await asyncio.gather(*(app.act(click) for click in clicks))
    assert list((await statuses(app)).values()) == ["going"] * 3
    assert len(await waiting(app)) == 9
    places = await app.db.fetchall("SELECT id FROM event_waitlist ORDER BY id")
    assert len({r["id"] for r in places}) == 9


async def test_a_series_date_has_its_own_waiting_list(make_app, clock):
    app, console, out = await boot(make_app)
    await say(console, out, ADD + " capacity=1 repeat=weekly count=2")
    await console.handle("@ann click 2 going")
    said = await say(console, out, '@bob click 2 "Going to every date"')
    assert "is full: you're number 1 on its waiting list" in said
    assert await statuses(app) == {"ann": "going", "bob": "going"}  # bob on the second date
    rows = await app.db.fetchall("SELECT event_id, member FROM event_rsvps ORDER BY event_id")
    assert [(r["event_id"], r["member"]) for r in rows] == [
        (1, "console:demo:ann"), (2, "console:demo:bob")
    ]  # fmt: skip
    await settle(app, clock)
    assert "1/1 going · 1 waiting" in console.screen.messages[2].post.text
