"""Turns shared by the workers on one database (bot/turns.py): one taker per period,
however many ask at once, on both backends."""

from __future__ import annotations

import asyncio

from bot import turns
from bot.help import Help


async def test_a_turn_is_taken_once_per_period_and_free_again_after_it(make_app) -> None:
    app = await make_app(features=[Help])
    assert await turns.take(app.db, "start", 60.0) == 0.0
    wait = await turns.take(app.db, "start", 60.0)
    assert 50.0 < wait <= 60.0  # taken: the rest of the minute to wait, nothing taken
    assert await turns.take(app.db, "another", 60.0) == 0.0  # each name its own
    assert await turns.take(app.db, "quick", 0.05) == 0.0
    free_at = await app.db.fetchval("SELECT next_at FROM turns WHERE name = 'quick'")
    await turns.wait_turn(app.db, "quick", 0.05)  # waits out the rest, then takes it
    taken_until = await app.db.fetchval("SELECT next_at FROM turns WHERE name = 'quick'")
    assert taken_until >= free_at + 0.05  # taken once free, not before


async def test_workers_asking_at_once_get_one_turn_between_them(make_app) -> None:
    """Ten asks at once from two workers on one database (on SQLite, two Apps on one file
    in one process): one is given the turn, nine are told to wait."""
    first = await make_app(features=[Help], db="shared.db")
    second = await make_app(features=[Help], db="shared.db", alongside=True)
    asks = [turns.take(app.db, "identify", 60.0) for app in (first, second) * 5]
    waits = await asyncio.gather(*asks)
    assert sorted(waits)[0] == 0.0 and all(w > 0 for w in sorted(waits)[1:]), waits
