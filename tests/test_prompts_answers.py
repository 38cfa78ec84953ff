"""Answers (command, button and form, edits, privacy), suggestions, streaks, the weekly
digest and the CSV export of the daily prompt.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime, timedelta

from click.testing import CliRunner

from bot.cli import main
from bot.model import (
    Action,
    Ephemeral,
    FormErrors,
    OpenForm,
    Public,
    Submission,
    UpdateMessage,
    UserRef,
)
from bot.prompts.habit import streak
from tests.test_prompts_daily import CHANNEL, MOD, Recorder, fire_next, say, start, text_of

ANA = UserRef("test", "ws", "ana", "Ana")
BEN = UserRef("test", "ws", "ben", "Ben")


async def scheduled_app(make_app, clock, days: str = "mon-fri"):
    recorder = Recorder()
    app = await start(make_app, recorder)
    await say(app, f"/justdoit schedule time=08:30 tz=UTC days={days}")
    return app, recorder


async def member(app, text: str, user: UserRef = ANA) -> list:
    return await say(app, text, user=user, moderator=False)


async def test_answer_then_edit_keeps_one_answer(make_app, clock) -> None:
    app, _ = await scheduled_app(make_app, clock)
    await fire_next(app, clock)  # Tuesday's prompt
    store = app.features["justdoit"].store
    first = await member(app, '/justdoit answer "Thanked the service desk analyst by name"')
    public = [r for r in first if isinstance(r, Public)]
    assert len(public) == 1
    assert "Ana** did it: Thanked the service desk analyst by name" in public[0].post.text
    assert public[0].post.footer.startswith("re: the prompt of Tue 24 Nov")
    assert "Your streak: **1**" in text_of([r for r in first if isinstance(r, Ephemeral)])
    second = await member(app, '/justdoit answer "Bought the analyst a coffee" competency=inspire')
    assert "updated what they did: Bought the analyst a coffee" in text_of(second)
    answers = await store.member_answers(CHANNEL, ANA)
    assert [(a.text, a.competency) for a in answers] == [("Bought the analyst a coffee", "inspire")]


async def test_answer_needs_a_prompt_and_a_valid_competency(make_app, clock) -> None:
    app, _ = await scheduled_app(make_app, clock)
    none_yet = await member(app, '/justdoit answer "did it"')
    assert "no prompt in this channel yet" in text_of(none_yet)
    await fire_next(app, clock)
    bad = await member(app, '/justdoit answer "did it" competency=bravery')
    assert "not one of" in text_of(bad)
    long = await member(app, "/justdoit answer " + '"' + "x" * 501 + '"')
    assert "at most 500" in text_of(long)
    assert await app.features["justdoit"].store.member_answers(CHANNEL, ANA) == []


async def test_button_opens_a_form_that_saves_and_edits(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    await fire_next(app, clock)
    _, prompt = recorder.prompts()[0]
    button = prompt.buttons[0]
    assert button.label == "I did it"
    opened = await app.act(Action(button.action, button.value, BEN, CHANNEL, "1"))
    form = opened[0].form
    assert isinstance(opened[0], OpenForm)
    chosen = next(f for f in form.fields if f.id == "competency")
    latest = await app.features["justdoit"].store.latest_day(CHANNEL)
    assert chosen.default == latest.prompt.competency == "inspire"
    empty = await app.submit(Submission(form.id, form.value, {"what": " "}, BEN, CHANNEL))
    assert isinstance(empty[0], FormErrors) and "what" in empty[0].errors
    values = {"what": "Asked a customer how the outage felt", "competency": "influence"}
    saved = await app.submit(Submission(form.id, form.value, values, BEN, CHANNEL))
    assert "Ben** did it: Asked a customer how the outage felt" in text_of(saved)
    reopened = await app.act(Action(button.action, button.value, BEN, CHANNEL, "1"))
    fields = {f.id: f for f in reopened[0].form.fields}
    assert fields["what"].default == "Asked a customer how the outage felt"
    assert fields["competency"].default == "influence"


async def test_private_answers_are_not_posted(make_app, clock) -> None:
    app, _ = await scheduled_app(make_app, clock)
    await fire_next(app, clock)
    changed = await say(app, "/justdoit settings answers=private")
    assert "**private**" in text_of(changed)
    replies = await member(app, '/justdoit answer "Sent a thank-you note"')
    assert all(isinstance(r, Ephemeral) for r in replies)
    assert "Saved your answer" in text_of(replies)
    refused = await member(app, "/justdoit settings answers=public")
    assert "moderators only" in text_of(refused)


async def test_suggestion_approved_joins_the_bank(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    feature = app.features["justdoit"]
    text = "Ask one customer what a good day with IT looks like"
    thanks = await member(app, f'/justdoit suggest "{text}" competency=develop-relationships')
    assert "Moderators will review" in text_of(thanks)
    await app.outbox.drain()
    _, review, key = recorder.sent[-1]
    assert key.startswith("justdoit:suggestion:")
    assert text in review.text
    approve = next(b for b in review.buttons if b.label == "Approve")
    refused = await app.act(Action(approve.action, approve.value, BEN, CHANNEL, "1"))
    assert "Only moderators" in text_of(refused)
    done = await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    assert isinstance(done[0], UpdateMessage)
    assert "**Approved** by Mo as Develop relationships" in done[0].post.text
    assert done[0].post.buttons == []
    community = await app.communities.of(CHANNEL)
    bank = await feature.bank_for(community.id)
    assert any(p.text == text and p.competency == "develop-relationships" for p in bank)
    twice = await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    assert "already approved" in text_of(twice)


async def test_suggestion_rejected_or_filed_with_the_select(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    feature = app.features["justdoit"]
    community = await app.communities.of(CHANNEL)
    await member(app, '/justdoit suggest "Reply to every open ticket with a smile"')
    await member(app, '/justdoit suggest "Walk over and say thanks to second line"', user=BEN)
    await app.outbox.drain()
    (_, first, _), (_, second, _) = recorder.sent[-2:]
    assert [b.label for b in first.buttons] == ["Reject"]  # no competency: choose one
    reject = first.buttons[0]
    rejected = await app.act(Action(reject.action, reject.value, MOD, CHANNEL, "1", True))
    assert "**Rejected** by Mo" in rejected[0].post.text
    select = second.selects[0]
    filed = await app.act(
        Action(select.action, select.value, MOD, CHANNEL, "2", True, values=["establish-teams"])
    )
    assert "as Establish teams and collaboration" in filed[0].post.text
    bank = await feature.bank_for(community.id)
    added = [p.text for p in bank if p.id.startswith("suggested-")]
    assert added == ["Walk over and say thanks to second line"]
    short = await member(app, '/justdoit suggest "hi"')
    assert "too short" in text_of(short)


async def test_approved_suggestion_is_posted_in_the_rotation(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock, days="daily")
    feature = app.features["justdoit"]
    await member(app, '/justdoit suggest "Write the customer a plain summary" competency=inspire')
    await app.outbox.drain()
    review = recorder.sent[-1][1]
    approve = next(b for b in review.buttons if b.label == "Approve")
    await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    await app.outbox.drain()  # the thank-you to the member
    for _ in range(len(feature.bank) + 1):
        await fire_next(app, clock)
    texts = [p.text.split("\n")[0] for _, p in recorder.prompts()]
    assert texts.count("Write the customer a plain summary") == 1


def test_streak_arithmetic_over_skipped_and_unscheduled_days() -> None:
    mon, tue, wed, thu, fri = (date(2026, 11, 23) + timedelta(days=i) for i in range(5))
    nxt_mon, nxt_tue = date(2026, 11, 30), date(2026, 12, 1)
    sat = date(2026, 11, 28)
    # Wednesday was a skip date (no prompt); the weekend is not scheduled.
    days = [(mon, True), (tue, True), (thu, True), (fri, True), (nxt_mon, True)]
    assert streak(days, [mon, tue, thu, fri, nxt_mon], nxt_mon) == (5, 5)
    # Missing a scheduled day breaks it.
    assert streak(days, [mon, tue, fri, nxt_mon], nxt_mon) == (2, 2)
    # Today not answered yet: the streak still stands.
    assert streak(days, [mon, tue, thu, fri], nxt_mon) == (4, 4)
    # ...but tomorrow it is broken.
    later = [*days, (nxt_tue, True)]
    assert streak(later, [mon, tue, thu, fri], nxt_tue) == (0, 4)
    # A prompt posted on an unscheduled Saturday counts if answered, never breaks.
    with_sat = sorted([*days, (sat, False)])
    assert streak(with_sat, [mon, tue, thu, fri, sat, nxt_mon], nxt_mon) == (6, 6)
    assert streak(with_sat, [mon, tue, thu, fri, nxt_mon], nxt_mon) == (5, 5)
    assert streak([], [], mon) == (0, 0)


async def test_stats_show_streak_over_a_skipped_day(make_app, clock) -> None:
    app, _ = await scheduled_app(make_app, clock)
    await say(app, "/justdoit skip 2026-11-25")
    for n in range(3):  # Tue, Thu (Wed skipped), Fri
        await fire_next(app, clock)
        await member(app, f'/justdoit answer "Thing {n}"')
        if n < 2:
            await member(app, f'/justdoit answer "Ben {n}"', user=BEN)
    stats = await member(app, "/justdoit stats")
    post = stats[0].post
    fields = {f.name: f.value for f in post.fields}
    assert fields["Your streak"] == "**3** days (best 3)"
    assert fields["Your answers"] == "3"
    assert "Thing 2" in fields["Your latest"]
    assert "5 answers from 2 members" in fields["Community"]
    ben = {f.name: f.value for f in (await member(app, "/justdoit stats", user=BEN))[0].post.fields}
    assert ben["Your streak"] == "**2** days (best 2)"  # Friday is still open
    await fire_next(app, clock)  # Monday: Ben missed Friday
    ben = {f.name: f.value for f in (await member(app, "/justdoit stats", user=BEN))[0].post.fields}
    assert ben["Your streak"] == "**0** days (best 2)"


async def test_weekly_digest_lists_what_members_did_by_competency(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    await fire_next(app, clock)  # Tue 24
    await member(app, '/justdoit answer "Named the analyst in the review" competency=inspire')
    await member(app, '/justdoit answer "Settled the SLA dispute over coffee" '
                 "competency=manage-conflict", user=BEN)  # fmt: skip
    await fire_next(app, clock)  # Wed 25
    await member(app, '/justdoit answer "Joined the change board as a listener"')  # Influence
    digest_jobs = await app.scheduler.pending("justdoit:digest:")
    assert [j.due_at for j in digest_jobs] == [datetime(2026, 11, 30, 8, 30, tzinfo=UTC)]
    clock.set(digest_jobs[0].due_at)
    await app.scheduler.run_due()
    await app.outbox.drain()
    digest = next(p for _, p, k in recorder.sent if k.startswith("justdoit:digest:"))
    fields = {f.name: f.value for f in digest.fields}
    assert "3 things done by 2 members" in digest.text
    assert fields["Inspire (1)"] == "- Ana: Named the analyst in the review"
    assert fields["Influence (1)"] == "- Ana: Joined the change board as a listener"
    assert "Ben: Settled the SLA dispute over coffee" in fields["Manage conflict (1)"]
    assert "23 Nov to 29 Nov 2026" in digest.title
    nxt = await app.scheduler.pending("justdoit:digest:")
    assert [j.due_at for j in nxt] == [datetime(2026, 12, 7, 8, 30, tzinfo=UTC)]


async def test_the_community_digest_carries_the_prompts_week_instead(make_app, clock) -> None:
    """With the community's weekly digest on, the prompt's own digest is not posted (the
    community digest has the streaks and shared answers); it still rearms for the week the
    community digest may be off again."""
    app, recorder = await scheduled_app(make_app, clock)
    await say(app, "/digest schedule day=tue time=09:00 tz=UTC")
    await fire_next(app, clock)
    await member(app, '/justdoit answer "Named the analyst in the review"')
    clock.set(datetime(2026, 11, 30, 8, 30, tzinfo=UTC))
    await app.scheduler.run_due()
    await app.outbox.drain()
    assert not [k for _, _, k in recorder.sent if k.startswith("justdoit:digest:")]
    nxt = await app.scheduler.pending("justdoit:digest:")
    assert [j.due_at for j in nxt] == [datetime(2026, 12, 7, 8, 30, tzinfo=UTC)]
    await say(app, "/digest off")
    await fire_next(app, clock)  # Tue 1 Dec
    await member(app, '/justdoit answer "Asked the CIO what keeps her up at night"')
    clock.set(datetime(2026, 12, 7, 8, 30, tzinfo=UTC))
    await app.scheduler.run_due()
    await app.outbox.drain()
    digests = [p for _, p, k in recorder.sent if k.startswith("justdoit:digest:")]
    assert len(digests) == 1 and "Asked the CIO" in str(digests[0])


async def test_private_digest_shows_counts_only(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    await say(app, "/justdoit settings answers=private")
    await fire_next(app, clock)
    await member(app, '/justdoit answer "A private thing"')
    clock.set(datetime(2026, 11, 30, 8, 30, tzinfo=UTC))
    await app.scheduler.run_due()
    await app.outbox.drain()
    digest = next(p for _, p, k in recorder.sent if k.startswith("justdoit:digest:"))
    assert "A private thing" not in str(digest)
    assert "1 done" in digest.fields[0].value


async def test_export_command_and_cli(make_app, clock, tmp_path) -> None:
    app, _ = await scheduled_app(make_app, clock)
    await fire_next(app, clock)
    await member(app, '/justdoit answer "=HYPERLINK(\\"x\\") was a test"')
    await member(app, '/justdoit answer "Said thanks, in person"', user=BEN)
    refused = await member(app, "/justdoit export")
    assert "moderators only" in text_of(refused)
    replies = await say(app, "/justdoit export")
    attachment = replies[0].post.attachments[0]
    assert attachment.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(attachment.data.decode())))
    assert [r["member_name"] for r in rows] == ["Ana", "Ben"]
    assert rows[0]["answer"].startswith("'=HYPERLINK")  # no formula in a spreadsheet
    assert rows[1]["answer"] == "Said thanks, in person"
    assert rows[1]["day"] == "2026-11-24" and rows[1]["answered_at"].startswith("2026-11-24T08:30")
    cli = CliRunner()
    args = ["prompts", "export", "--db", app.db.path]  # its file, or its server
    result = await asyncio.to_thread(cli.invoke, main, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("day,channel,member,member_name")
    assert "Said thanks, in person" in result.output
    args = ["prompts", "export", "--db", str(tmp_path / "nope.db")]
    missing = await asyncio.to_thread(cli.invoke, main, args)
    assert missing.exit_code != 0 and "no such database file" in missing.output


def test_console_demo_shows_streak_and_answer() -> None:
    script = (
        "@mod! /justdoit today\n"
        '@member1 /justdoit answer "Thanked the service desk analyst by name"\n'
        "@member1 /justdoit stats\n"
    )
    result = CliRunner().invoke(main, ["demo"], input=script)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "I did it" in out
    assert "member1 did it: Thanked the service desk analyst by name" in out
    stats = out[out.index("Just do it: member1") :]
    assert "Your streak: 1 day (best 1)" in stats
    assert "Thanked the service desk analyst by name" in stats
