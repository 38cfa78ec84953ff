"""Surveys through the core: start, answer question by question, resume, change, never
count twice, cross-tab, export, close with a chart, and checked definitions."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta

import pytest

from bot.errors import ConfigError
from bot.model import FormErrors, OpenForm, Submission, UpdateMessage
from bot.polls import Polls, Surveys, definitions
from tests.test_polls_support import (
    COMMUNITY,
    SLACK,
    Recorder,
    click,
    member,
    only_post,
    say,
    text_of,
)

MOD = member("mod")


@pytest.fixture
async def surveys(make_app):
    async def make(db: str = "bot.db", config: dict | None = None):
        app = await make_app(features=[Polls, Surveys], config=config or COMMUNITY, db=db)
        slack, discord = Recorder("slack"), Recorder("discord")
        app.outbox.attach(slack)
        app.outbox.attach(discord)
        return app, slack, discord

    return make


def button(post, label):
    return next(b for b in post.buttons if b.label == label)


async def press(app, user, post, label):
    """Press a button, or choose an option of the post's select, by its label."""
    for b in post.buttons:
        if b.label == label:
            return await click(app, user, b.action, b.value)
    for select in post.selects:
        for option in select.options:
            if option.label == label:
                return await click(app, user, select.action, select.value, values=[option.value])
    raise AssertionError(f"no control {label!r} in {post}")


async def test_start_posts_the_invitation_in_linked_channels(surveys):
    app, slack, discord = await surveys()
    reply = text_of(await say(app, MOD, "/survey start community", mod=True))
    assert "survey is open (run #1)" in reply
    await app.outbox.drain()
    for recorder in (slack, discord):
        invite = recorder.latest("survey:1:")
        assert invite.title == "📝 Is there such a thing as an ITSM community?"
        assert button(invite, "Take the survey").value == "1"
    again = text_of(await say(app, MOD, "/survey start community", mod=True))
    assert "already running here" in again
    member_try = text_of(await say(app, member("alice"), "/survey start community"))
    assert "for moderators only" in member_try


async def test_answer_in_order_resume_and_change_without_double_counting(surveys):
    app, _, _ = await surveys()
    await say(app, MOD, "/survey start community", mod=True)
    alice = member("alice")
    first = only_post(await click(app, alice, "survey.take", "1"))
    assert first.title.endswith("1/5") and "Do you think there is such a thing" in first.text
    second = only_post(await press(app, alice, first, "Yes"), UpdateMessage)  # the same card
    assert second.title.endswith("2/5") and second.text.startswith("_Saved._")
    # Alice leaves; pressing "Take the survey" again resumes at the next unanswered question.
    resumed = only_post(await click(app, alice, "survey.take", "1"))
    assert resumed.title.endswith("2/5")
    back = only_post(await press(app, alice, resumed, "Back"), UpdateMessage)
    assert back.title.endswith("1/5") and "Your answer: Yes" in back.text
    await press(app, alice, back, "No")  # change the answer
    await press(app, alice, back, "No")  # the same answer twice counts once
    store = app.features["survey"].store
    assert (await store.tallies(1))["exists"] == {3: 1}
    assert await app.db.fetchval("SELECT count(*) FROM vote_answers WHERE qid = 'exists'") == 1


async def test_multi_question_select_skip_and_done(surveys):
    app, _, _ = await surveys()
    await say(app, MOD, "/survey start community", mod=True)
    bob = member("bob")
    post = only_post(await click(app, bob, "survey.go", "1:give-get"), UpdateMessage)
    select = post.selects[0]
    assert select.action == "survey.answer" and select.max_values == 5
    await click(app, bob, "survey.answer", select.value, values=["0", "4", "8"])
    too_many = text_of(await click(app, bob, "survey.answer", select.value, values=list("012345")))
    assert "at most 5" in too_many
    store = app.features["survey"].store
    assert (await store.tallies(1))["give-get"] == {0: 1, 4: 1, 8: 1}
    last = only_post(await click(app, bob, "survey.go", "1:channels"), UpdateMessage)
    done = only_post(await press(app, bob, last, "Skip"), UpdateMessage)
    assert "You answered 1 of 5 questions" in done.text


async def test_written_answers_open_a_form(surveys):
    app, _, _ = await surveys()
    await say(app, MOD, "/survey start itsm-focus", mod=True)
    carol = member("carol")
    post = only_post(await click(app, carol, "survey.go", "1:next-step"), UpdateMessage)
    replies = await press(app, carol, post, "Write answer")
    assert isinstance(replies[0], OpenForm)
    form = replies[0].form
    empty = Submission(form.id, form.value, {"answer": "  "}, carol, SLACK)
    assert isinstance((await app.submit(empty))[0], FormErrors)
    good = Submission(form.id, form.value, {"answer": "Define services with owners"}, carol, SLACK)
    after = await app.submit(good)
    assert isinstance(after[0], UpdateMessage) and after[0].post.title.endswith("11/12")
    rows = await app.db.fetchall("SELECT text FROM vote_answers WHERE qid = 'next-step'")
    assert [r[0] for r in rows] == ["Define services with owners"]


async def test_concurrent_answers_from_one_member_count_once(surveys):
    app, _, _ = await surveys()
    await say(app, MOD, "/survey start community", mod=True)
    dave = member("dave")
    await asyncio.gather(
        *(click(app, dave, "survey.answer", f"1:exists:{i % 5}") for i in range(40))
    )
    assert await app.db.fetchval("SELECT count(*) FROM vote_answers") == 1


async def test_cross_tab_by_segment_and_export(surveys):
    app, _, _ = await surveys()
    await say(app, MOD, "/survey start bsm-maturity", mod=True)
    answers = {
        "a1": (2, 0),  # strategic, under 100
        "a2": (2, 0),
        "a3": (0, 3),  # lights on, 10,000+
    }
    for name, (cio, size) in answers.items():
        user = member(name)
        await click(app, user, "survey.answer", f"1:cio-role:{cio}")
        await click(app, user, "survey.answer", f"1:org-size:{size}")
    table = text_of(await say(app, member("x"), "/survey results bsm-maturity by=org-size"))
    assert "Under 100 (2)" in table and "10,000+ (1)" in table
    assert (
        "**Strategic to the business** — Under 100: 2 | 100–999: 0 | 1,000–9,999: 0 | 10,000+: 0"
        in table
    )
    assert (
        "**Keeping the lights on (IT operations)** — Under 100: 0 | 100–999: 0 | 1,000–9,999: 0 | 10,000+: 1"
        in table
    )
    wrong = text_of(await say(app, member("x"), "/survey results bsm-maturity by=nope"))
    assert "`nope` is not a question to compare by" in wrong and "org-size, industry, role" in wrong
    export = only_post(await say(app, MOD, "/survey export bsm-maturity", mod=True)).attachments[0]
    rows = list(csv.DictReader(io.StringIO(export.data.decode())))
    assert [(r["respondent"], r["cio-role"], r["org-size"]) for r in rows] == [
        ("1", "Strategic to the business", "Under 100"),
        ("2", "Strategic to the business", "Under 100"),
        ("3", "Keeping the lights on (IT operations)", "10,000+"),
    ]
    assert "a1" not in export.data.decode()
    refused = text_of(await say(app, member("x"), "/survey export bsm-maturity"))
    assert "for moderators only" in refused


async def test_close_posts_results_with_chart_and_refuses_answers(surveys, clock):
    app, slack, _ = await surveys()
    await say(app, MOD, "/survey start community", mod=True)
    await app.outbox.drain()
    alice = member("alice")
    await click(app, alice, "survey.answer", "1:exists:0")
    assert "closed" in text_of(await say(app, MOD, "/survey close community", mod=True))
    clock.advance(5)
    await app.outbox.drain()
    results = slack.latest("survey:1:results:")
    assert "1 members answered (closed)" in results.text
    assert results.attachments[0].data.startswith(b"\x89PNG")
    assert slack.latest("survey:1:").buttons == []  # the invitation says closed
    late = text_of(await click(app, alice, "survey.take", "1"))
    assert "survey is closed" in late
    late = text_of(await click(app, alice, "survey.answer", "1:exists:1"))
    assert "survey is closed" in late
    assert (await app.features["survey"].store.tallies(1))["exists"] == {0: 1}
    # A new run can start after the close, and results then follow the new run.
    assert "run #2" in text_of(await say(app, MOD, "/survey start community", mod=True))


async def test_survey_deadline_survives_a_restart(surveys, clock):
    app, _, _ = await surveys()
    await say(app, MOD, "/survey start community closes=1w", mod=True)
    await app.stop()
    clock.advance(timedelta(days=8))
    app2, slack2, _ = await surveys(db="bot.db")
    await app2.outbox.drain()
    assert await app2.scheduler.state("survey:1:close") == "done"
    assert "members answered (closed)" in slack2.latest("survey:1:results:").text


async def test_list_shows_each_survey_and_its_state(surveys):
    app, _, _ = await surveys()
    await say(app, MOD, "/survey start itsm-focus", mod=True)
    listing = only_post(await say(app, member("x"), "/survey list"))
    states = {f.name: f.value for f in listing.fields}
    assert set(states) == {"bsm-maturity", "community", "itsm-focus"}
    assert "running (run #1, 0 answered)" in states["itsm-focus"]
    assert "not run here yet" in states["community"]


async def test_unknown_survey_name_is_a_usage_error(surveys):
    app, _, _ = await surveys()
    reply = text_of(await say(app, MOD, "/survey start nope", mod=True))
    assert "`nope` is not one of bsm-maturity, community, itsm-focus" in reply
    assert "has not been run here yet" in text_of(await say(app, MOD, "/survey results community"))


def test_bundled_surveys_load():
    found = definitions.load(definitions.BUNDLED)
    assert len(found["community"].question) == 5
    assert [q.id for q in found["bsm-maturity"].question if q.segment] == [
        "org-size",
        "industry",
        "role",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('name = "x"\ntitle = "X"\n[[question]]\nid = "a"\ntext = "A?"\nkind = "single"\n'
         'options = ["one"]\n', "question[0] (id 'a'): needs 2 to 25 options, has 1"),
        ('name = "x"\ntitle = "X"\ncolour = 1\n[[question]]\nid = "a"\ntext = "A?"\n'
         'kind = "text"\n', "colour: unknown key"),
        ('name = "x"\ntitle = "X"\n[[question]]\nid = "a"\ntext = "A?"\nkind = "poll"\n',
         "question[0].kind (id 'a'): Invalid enum value 'poll' (one of 'multi', 'single', 'text')"),
        ('name = "x"\n[[question]]\nid = "a"\ntext = "A?"\nkind = "text"\n',
         "title: missing (this key has no default)"),
        ('name = "x"\ntitle = "X"\n[[question]]\nid = "a"\ntext = "A?"\nkind = "text"\n'
         '[[question]]\nid = "B"\ntext = "B?"\nkind = "text"\n',
         "question[1].id (id 'B'): Expected `str` matching regex"),
        ('name = "x"\ntitle = "X"\n[[question]]\nid = "a"\ntext = "A?"\nkind = "multi"\n'
         'options = ["p", "q"]\nmax = 3\n', "`max` is 3 but there are 2 options"),
        ('name = "x"\ntitle = "X"\n[[question]]\nid = "a"\ntext = "A?"\nkind = "text"\n'
         '[[question]]\nid = "a"\ntext = "B?"\nkind = "text"\n', "question ids used twice: a"),
        ('name = "x"\ntitle = ', "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_survey_file_names_file_and_key(tmp_path, body, message):
    (tmp_path / "broken.toml").write_text(body)
    with pytest.raises(ConfigError) as error:
        definitions.load(tmp_path)
    assert str(tmp_path / "broken.toml") in str(error.value)
    assert message in str(error.value)


async def test_a_bad_survey_directory_stops_start_up(make_app, tmp_path):
    (tmp_path / "surveys").mkdir()
    (tmp_path / "surveys" / "bad.toml").write_text('name = "Bad Name"\ntitle = "t"\n')
    with pytest.raises(ConfigError, match="bad.toml"):
        await make_app(
            features=[Polls, Surveys], config={"survey": {"directory": str(tmp_path / "surveys")}}
        )
