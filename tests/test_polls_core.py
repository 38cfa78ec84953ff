"""Polls through the core and a real SQLite store: create, vote, change, close, deadlines,
hidden and anonymous polls, exports, charts, bad input and concurrent bursts."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta

import pytest

from bot.polls import Polls, Surveys
from bot.store import IntegrityError
from tests.test_polls_support import (
    COMMUNITY,
    DISCORD,
    SLACK,
    Recorder,
    click,
    member,
    only_post,
    say,
    text_of,
)

MOD = member("mod")
CREATE = '/poll create "Which ITIL practice needs most love?" "Incident" "Change" "Problem"'


@pytest.fixture
async def polls(make_app):
    """An app with polls, a Slack and a Discord recorder, and a community linking both."""

    async def make(db: str = "bot.db", alongside: bool = False):
        app = await make_app(
            features=[Polls, Surveys], config=COMMUNITY, db=db, alongside=alongside
        )
        slack, discord = Recorder("slack"), Recorder("discord")
        app.outbox.attach(slack)
        app.outbox.attach(discord)
        return app, slack, discord

    return make


async def settle(app, clock) -> None:
    await app.features["poll"].refresher.flush()
    clock.advance(5)  # past the outbox's edit debounce
    await app.scheduler.run_due()
    await app.outbox.drain()


async def test_create_vote_change_and_remove(polls, clock):
    app, slack, _ = await polls()
    reply = only_post(await say(app, MOD, CREATE, mod=True))
    assert "Poll #1 is posted" in reply.text
    await app.outbox.drain()
    posted = slack.latest("poll:1:")
    assert [b.label for b in posted.buttons] == ["Incident", "Change", "Problem"]
    assert [b.value for b in posted.buttons] == ["1:0", "1:1", "1:2"]

    alice, bob = member("alice"), member("bob")
    assert "You voted **Incident**" in text_of(await click(app, alice, "poll.vote", "1:0"))
    await click(app, bob, "poll.vote", "1:0")
    changed = text_of(await click(app, bob, "poll.vote", "1:1"))
    assert "from **Incident** to **Change**" in changed
    await settle(app, clock)
    live = slack.latest("poll:1:")
    assert "**Incident**  `█████░░░░░` 1 · 50%" in live.text
    assert "**Change**  `█████░░░░░` 1 · 50%" in live.text
    assert "2 voted" in live.footer

    assert "removed" in text_of(await click(app, alice, "poll.vote", "1:0"))
    await settle(app, clock)
    assert "**Incident**  `░░░░░░░░░░` 0 · 0%" in slack.latest("poll:1:").text
    assert (await app.features["poll"].store.tallies(1)) == {"q": {1: 1}}


async def test_a_burst_of_votes_is_one_edit(polls, clock):
    app, slack, _ = await polls()
    await say(app, MOD, CREATE, mod=True)
    await app.outbox.drain()
    for i in range(30):
        await click(app, member(f"m{i}"), "poll.vote", f"1:{i % 3}")
    await settle(app, clock)
    assert len(slack.edits) == 1  # thirty votes, one platform edit
    assert "30 voted" in slack.latest("poll:1:").footer


async def test_close_by_creator_posts_results_with_chart_and_refuses_votes(polls, clock):
    app, slack, _ = await polls()
    creator = member("carol")
    await say(app, creator, CREATE)
    await app.outbox.drain()
    await click(app, member("alice"), "poll.vote", "1:2")
    refused = text_of(await say(app, member("mallory"), "/poll close 1"))
    assert "Only the poll's creator or a moderator" in refused
    assert "is closed" in text_of(await say(app, creator, "/poll close 1"))
    await settle(app, clock)
    results = slack.latest("poll:1:results:")
    assert "**Problem**  `██████████` 1 · 100%" in results.text
    png = results.attachments[0]
    assert png.content_type == "image/png" and png.data.startswith(b"\x89PNG\r\n\x1a\n")
    final = slack.latest("poll:1:")
    assert final.buttons == [] and "closed" in final.text
    late = text_of(await click(app, member("bob"), "poll.vote", "1:0"))
    assert "Poll #1 is closed: votes are no longer taken." in late
    assert "already closed" in text_of(await say(app, MOD, "/poll close 1", mod=True))
    assert (await app.features["poll"].store.tallies(1)) == {"q": {2: 1}}


async def test_deadline_closes_the_poll_after_a_restart(polls, clock):
    app, slack, _ = await polls()
    await say(app, MOD, CREATE + " closes=2d", mod=True)
    await app.outbox.drain()
    await click(app, member("alice"), "poll.vote", "1:1")
    assert [j.key for j in await app.scheduler.pending("poll:")] == ["poll:1:close"]
    await app.stop()

    clock.advance(timedelta(days=3))  # the bot was down when the deadline passed
    app2, slack2, _ = await polls(db="bot.db")
    await settle(app2, clock)
    assert await app2.scheduler.state("poll:1:close") == "done"
    run = await app2.features["poll"].store.get(1)
    assert run.closed_at is not None
    assert "**Change**  `██████████` 1 · 100%" in slack2.latest("poll:1:results:").text


async def test_a_vote_after_the_deadline_is_refused_before_the_job_runs(polls, clock):
    app, _, _ = await polls()
    await say(app, MOD, CREATE + " closes=1h", mod=True)
    clock.advance(timedelta(hours=2))
    refused = text_of(await click(app, member("alice"), "poll.vote", "1:0"))
    assert "closed" in refused
    assert await app.features["poll"].store.tallies(1) == {}


async def test_hidden_results_only_after_close(polls, clock):
    app, slack, _ = await polls()
    await say(app, MOD, CREATE + " hidden", mod=True)
    await app.outbox.drain()
    await click(app, member("alice"), "poll.vote", "1:0")
    await settle(app, clock)
    live = slack.latest("poll:1:")
    assert "1 voted so far" in live.text and "Incident**  `" not in live.text
    hidden = text_of(await say(app, MOD, "/poll results 1", mod=True))
    assert "hidden until it closes" in hidden and "1 voted so far" in hidden
    await say(app, MOD, "/poll close 1", mod=True)
    shown = text_of(await say(app, member("bob"), "/poll results 1"))
    assert "**Incident**  `██████████` 1 · 100%" in shown


async def test_anonymous_poll_stores_and_exports_no_identity(polls, clock, tmp_path):
    app, _, _ = await polls()
    await say(app, MOD, CREATE + " anonymous", mod=True)
    for name in ("alice", "bob"):
        await click(app, member(name), "poll.vote", "1:1")
    again = text_of(await click(app, member("alice"), "poll.vote", "1:1"))
    assert "removed" in again  # still one vote per member: alice was recognised
    await click(app, member("alice"), "poll.vote", "1:1")
    rows = await app.db.fetchall("SELECT * FROM vote_answers")
    assert len(rows) == 2
    for row in rows:
        assert "alice" not in row["voter"] and "bob" not in row["voter"]
        assert row["voter_name"] is None and row["answered_at"] is None
    export = only_post(await say(app, MOD, "/poll export 1", mod=True)).attachments[0]
    body = export.data.decode()
    assert "alice" not in body and "bob" not in body and "slack:T1" not in body
    table = list(csv.DictReader(io.StringIO(body)))
    assert {r["option"]: r["votes"] for r in table} == {
        "Incident": "0",
        "Change": "2",
        "Problem": "0",
    }
    await say(app, MOD, "/poll close 1", mod=True)
    assert await app.db.fetchval("SELECT secret FROM vote_runs WHERE id = 1") is None


async def test_export_lists_votes_for_creator_and_moderators_only(polls):
    app, _, _ = await polls()
    await say(app, member("carol"), CREATE)
    await click(app, member("alice"), "poll.vote", "1:0")
    refused = text_of(await say(app, member("bob"), "/poll export 1"))
    assert "Only the poll's creator or a moderator" in refused
    export = only_post(await say(app, member("carol"), "/poll export 1")).attachments[0]
    assert export.filename == "poll-1.csv" and export.content_type == "text/csv"
    table = list(csv.DictReader(io.StringIO(export.data.decode())))
    votes = [r for r in table if r["section"] == "vote"]
    assert [(r["option"], r["member"]) for r in votes] == [("Incident", "alice")]
    assert votes[0]["voted_at"].startswith("2026-11-23T09:00")


async def test_multi_choice_with_a_maximum(polls):
    app, _, _ = await polls()
    await say(app, MOD, '/poll create "Days?" Mon Tue Wed Thu multi max=2', mod=True)
    alice = member("alice")
    await click(app, alice, "poll.vote", "1:0")
    await click(app, alice, "poll.vote", "1:1")
    refused = text_of(await click(app, alice, "poll.vote", "1:2"))
    assert "at most 2" in refused
    await click(app, alice, "poll.vote", "1:0")  # press again: removed, room for another
    await click(app, alice, "poll.vote", "1:2")
    assert await app.features["poll"].store.tallies(1) == {"q": {1: 1, 2: 1}}


async def test_many_options_use_a_select(polls):
    app, slack, _ = await polls()
    options = " ".join(f'"Option {i}"' for i in range(8))
    await say(app, MOD, f'/poll create "Pick" {options} multi max=3', mod=True)
    await app.outbox.drain()
    post = slack.latest("poll:1:")
    assert post.buttons == [] and len(post.selects) == 1
    select = post.selects[0]
    assert select.action == "poll.vote" and select.value == "1" and select.max_values == 3
    alice = member("alice")
    await click(app, alice, "poll.vote", "1", values=["0", "7"])
    await click(app, alice, "poll.vote", "1", values=["3"])  # a select sets the whole choice
    assert await app.features["poll"].store.tallies(1) == {"q": {3: 1}}
    too_many = text_of(await click(app, alice, "poll.vote", "1", values=["0", "1", "2", "3"]))
    assert "at most 3" in too_many


async def test_everywhere_posts_on_both_platforms_and_tallies_together(polls, clock):
    app, slack, discord = await polls()
    await say(app, MOD, CREATE + " everywhere", mod=True)
    await app.outbox.drain()
    assert [k for _, _, k in slack.sent] == ["poll:1:slack:T1:C1"]
    assert [k for _, _, k in discord.sent] == ["poll:1:discord:G1:D1"]
    await click(app, member("alice"), "poll.vote", "1:0", channel=SLACK)
    await click(app, member("dave", "discord", "G1"), "poll.vote", "1:0", channel=DISCORD)
    await settle(app, clock)
    for recorder in (slack, discord):
        assert "**Incident**  `██████████` 2 · 100%" in recorder.latest("poll:1:").text


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ('/poll create "Q?" "Only one"', "at least 2 answers"),
        ('/poll create "Q?" ' + " ".join(f'"o{i}"' for i in range(26)), "at most 25 answers"),
        ('/poll create "   " "A" "B"', "The question is empty"),
        ('/poll create "" "A" "B"', "Missing `question`"),
        ('/poll create "Q?" "A" "B" closes=2020-01-01', "deadline is in the past"),
        ('/poll create "Q?" "A" "B" max=3', "`max` is 3 but the poll has only 2 answers"),
        ('/poll create "Q?" "A" "a"', "Two answers are the same"),
        ("/poll close 42", "There is no poll #42 here"),
        ("/poll results 42", "There is no poll #42 here"),
    ],
)
async def test_bad_input_is_refused_clearly_and_creates_nothing(polls, command, message):
    app, _, _ = await polls()
    assert message in text_of(await say(app, MOD, command, mod=True))
    assert await app.db.fetchval("SELECT count(*) FROM vote_runs") == 0
    assert await app.outbox.pending_count() == 0


async def test_a_poll_of_another_community_is_unknown(polls):
    app, _, _ = await polls()
    await say(app, MOD, CREATE, mod=True)
    other = member("eve", "slack", "T9")
    from bot.model import ChannelRef

    refused = text_of(
        await say(app, other, "/poll results 1", channel=ChannelRef("slack", "T9", "X"))
    )
    assert "There is no poll #1 here" in refused


async def test_concurrent_burst_and_repeated_clicks_give_exact_counts(polls):
    app, _, _ = await polls()
    await say(app, MOD, CREATE, mod=True)
    voters = [member(f"m{i}") for i in range(300)]
    hammer = member("hammer")
    clicks = [click(app, v, "poll.vote", f"1:{i % 3}") for i, v in enumerate(voters)]
    clicks += [click(app, hammer, "poll.vote", "1:2") for _ in range(51)]  # odd: ends voted
    replies = await asyncio.gather(*clicks)
    assert all("Something went wrong" not in text_of(r) for r in replies)
    assert await app.features["poll"].store.tallies(1) == {"q": {0: 100, 1: 100, 2: 101}}
    assert await app.db.fetchval("SELECT count(*) FROM vote_answers") == 301


async def test_concurrent_multi_choice_never_exceeds_the_maximum(polls):
    app, _, _ = await polls()
    await say(app, MOD, '/poll create "Days?" Mon Tue Wed Thu Fri multi max=2', mod=True)
    alice = member("alice")
    await asyncio.gather(*(click(app, alice, "poll.vote", f"1:{i}") for i in range(5)))
    assert await app.db.fetchval("SELECT count(*) FROM vote_answers") == 2


@pytest.mark.shared_only
async def test_two_workers_pressing_at_once_never_exceed_the_maximum(polls):
    first, _, _ = await polls()
    second, _, _ = await polls(alongside=True)  # a second worker on the same database
    await say(first, MOD, '/poll create "Days?" Mon Tue Wed Thu Fri multi max=2', mod=True)
    voters = [member(f"m{n}") for n in range(8)]
    await asyncio.gather(
        *(
            click((first, second)[i % 2], voter, "poll.vote", f"1:{i}")
            for voter in voters
            for i in range(5)
        )
    )
    held = await first.db.fetchall("SELECT voter, count(*) FROM vote_answers GROUP BY voter")
    assert len(held) == len(voters) and {n for _, n in held} == {2}, held


async def test_the_unique_key_refuses_a_second_single_choice_row(polls):
    app, _, _ = await polls()
    await say(app, MOD, CREATE, mod=True)
    await click(app, member("alice"), "poll.vote", "1:0")
    with pytest.raises(IntegrityError):
        await app.db.execute(
            "INSERT INTO vote_answers (run_id, qid, voter, slot, option) VALUES (1, 'q', ?, 0, 1)",
            (member("alice").key,),
        )


async def test_the_ballot_box_refuses_a_vote_for_a_question_the_run_does_not_have(polls, clock):
    from bot.polls.store import Question

    app, _, _ = await polls()
    await say(app, MOD, CREATE, mod=True)
    feature = app.features["poll"]
    run = await feature.store.get(1)
    stray = Question("nope", "Not in this poll", "single", ["A", "B"])
    with pytest.raises(IntegrityError):
        await feature.ballots.press(run, stray, member("alice"), 0, clock.now())
    assert await app.db.fetchval("SELECT count(*) FROM vote_answers") == 0
