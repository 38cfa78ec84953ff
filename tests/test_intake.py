"""Durable intake in the core: the group commit, the journal, and a press applied once."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest

from bot.groupcommit import GroupCommit
from bot.help import Help
from bot.intake import ORPHANED_AFTER
from bot.model import Action, ChannelRef, Invocation, UserRef
from bot.polls import Polls

CHANNEL = ChannelRef("test", "w1", "general")
MOD = UserRef("test", "w1", "mod", "Mod")


async def test_one_failing_write_changes_nothing_and_the_rest_of_its_batch_commits(tmp_path):
    path = str(tmp_path / "w.db")
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    setup.close()
    writer = GroupCommit(path)

    def insert(key: str):
        async def write(tx) -> str:
            await tx.execute("INSERT INTO t VALUES (?)", (key,))
            if key == "bad":
                raise ValueError("refused after writing")
            return key

        return write

    results = await asyncio.gather(
        *(writer.run(insert(k)) for k in ("a", "bad", "b", "a")), return_exceptions=True
    )
    await writer.close()
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], ValueError)
    assert isinstance(results[3], sqlite3.IntegrityError)  # the second "a": UNIQUE holds
    check = sqlite3.connect(path)
    assert sorted(r[0] for r in check.execute("SELECT k FROM t")) == ["a", "b"]
    check.close()


async def test_a_held_request_is_given_back_until_it_is_done(make_app, clock):
    app = await make_app([Help])
    assert await app.intake.hold("slack", "slack:1", {"n": 1}) is True
    assert await app.intake.hold("slack", "slack:2", {"n": 2}) is True
    assert await app.intake.hold("slack", "slack:1", {"n": 1}) is False  # delivered again
    assert await app.intake.hold("discord", "discord:9", {"n": 9}) is True
    if app.db.shared:  # given back once no live worker can still be on them
        clock.advance(timedelta(seconds=ORPHANED_AFTER + 1))
    await app.intake.done("slack:1")
    assert await app.intake.held("slack") == [("slack:2", {"n": 2})]
    assert [rid for rid, _ in await app.intake.held("discord")] == ["discord:9"]
    # A request handled long ago is forgotten; one still held is kept whatever its age.
    await app.intake.done("slack:2")
    clock.advance(2 * 86400)
    assert await app.intake.prune() == 2
    assert await app.intake.held("discord") != []
    assert await app.intake.hold("slack", "slack:1", {"n": 1}) is True
    # A bot that runs for months forgets them too: the prune runs every hour.
    prune = app.scheduler.timers.get_job("intake-prune")
    assert prune is not None and prune.trigger.interval.total_seconds() == 3600


async def test_a_vote_handled_again_after_a_crash_is_not_undone(make_app, clock):
    """A button press toggles: applying one journaled press twice would take the vote back."""
    app = await make_app([Help, Polls], db="votes.db")
    await app.invoke(Invocation(("poll",), MOD, CHANNEL, True, text='create "Q?" "A" "B"'))
    ann = UserRef("test", "w1", "ann", "Ann")
    press = Action("poll.vote", "1:0", ann, CHANNEL, "m1", request_id="test:click-1")
    assert await app.intake.hold("test", "test:click-1", {"click": 1})
    # The bot acknowledged the click and died before applying it: the restart finds it
    # held and handles it (on a shared database, once no live worker can still be on it).
    if app.db.shared:
        clock.advance(timedelta(seconds=ORPHANED_AFTER + 1))
    assert [rid for rid, _ in await app.intake.held("test")] == ["test:click-1"]
    first = await app.act(press)
    assert "You voted **A**" in first[0].post.text
    # The press marked its journal entry done in the vote's own transaction: however soon
    # a crash comes after, no restart handles it again...
    assert await app.intake.held("test") == []
    # ...and the same press handled once more (the platform delivering it again) finds
    # its effect there instead of toggling the vote back off.
    again = await app.act(press)
    assert "counted" in again[0].post.text
    votes = await app.db.fetchall("SELECT voter, option FROM vote_answers")
    assert [(r["voter"].rsplit(":", 1)[1], r["option"]) for r in votes] == [("ann", 0)]
    # A second, new press by the same member still toggles, as members expect.
    third = await app.act(Action("poll.vote", "1:0", ann, CHANNEL, "m1", request_id="test:click-2"))
    assert "removed" in third[0].post.text


@pytest.mark.parametrize("request_id", ["", "test:click-9"])
async def test_presses_without_a_journal_entry_still_count(make_app, request_id):
    app = await make_app([Help, Polls], db="votes.db")
    await app.invoke(Invocation(("poll",), MOD, CHANNEL, True, text='create "Q?" "A" "B"'))
    bob = UserRef("test", "w1", "bob", "Bob")
    replies = await app.act(Action("poll.vote", "1:1", bob, CHANNEL, "m1", request_id=request_id))
    assert "You voted **B**" in replies[0].post.text
    assert await app.db.fetchval("SELECT count(*) FROM vote_answers") == 1
