"""An answer belongs to the prompt of the day it is given (in the channel's zone): never to
an older prompt, by command, by an old message's button, or by a form left open past
midnight; each refusal says where the answer can go and hands the member's text back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.model import Action, Ephemeral, OpenForm, Public, Submission, channel_tag, time_tag
from tests.test_prompts_answers import ANA, member, scheduled_app
from tests.test_prompts_daily import CHANNEL, fire_next, say, text_of

TUE = date(2026, 11, 24)


async def answered_days(app, user=ANA, channel=CHANNEL) -> list[tuple[date, str]]:
    answers = await app.features["justdoit"].store.member_answers(channel, user)
    return [(a.day, a.text) for a in answers]


async def test_answer_after_a_paused_week_does_not_land_on_last_weeks_prompt(
    make_app, clock
) -> None:
    app, _ = await scheduled_app(make_app, clock)
    await fire_next(app, clock)  # Tue 24 Nov
    await say(app, "/justdoit pause")
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))  # a week later
    replies = await member(app, '/justdoit answer "Called a customer back"')
    assert [type(r) for r in replies] == [Ephemeral]
    said = text_of(replies)
    assert f"no prompt today in {channel_tag(CHANNEL)}" in said
    assert "paused" in said
    assert "Called a customer back" in said  # handed back, not lost
    assert await answered_days(app) == []

    await say(app, "/justdoit resume")
    waiting = text_of(await member(app, '/justdoit answer "Called a customer back"'))
    tomorrow = datetime(2026, 12, 2, 8, 30, tzinfo=UTC)
    assert f"The next prompt comes {time_tag(tomorrow, 'f')}" in waiting
    assert await answered_days(app) == []

    await fire_next(app, clock)  # Wed 2 Dec
    saved = await member(app, '/justdoit answer "Called a customer back"')
    assert any(isinstance(r, Public) for r in saved)
    assert await answered_days(app) == [(date(2026, 12, 2), "Called a customer back")]


async def test_before_todays_prompt_an_answer_waits_for_it(make_app, clock) -> None:
    app, _ = await scheduled_app(make_app, clock)
    await fire_next(app, clock)  # Tue 24 Nov 08:30
    clock.set(datetime(2026, 11, 25, 7, 0, tzinfo=UTC))  # Wednesday, before its prompt
    said = text_of(await member(app, '/justdoit answer "Late for yesterday"'))
    due = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    assert "no prompt today" in said and time_tag(due, "f") in said
    assert await answered_days(app) == []


async def test_today_is_the_schedules_local_day_not_utcs(make_app, clock) -> None:
    app, _ = await scheduled_app(make_app, clock)
    await say(app, "/justdoit schedule time=20:00 tz=America/New_York")
    due = await fire_next(app, clock)  # Mon 23 Nov 20:00 in New York = Tue 01:00 UTC
    assert due == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    clock.set(due + timedelta(hours=2))  # Tuesday in UTC, still Monday evening in New York
    await member(app, '/justdoit answer "Thanked the night shift"')
    assert await answered_days(app) == [(date(2026, 11, 23), "Thanked the night shift")]
    clock.set(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))  # Tuesday morning in New York
    refused = text_of(await member(app, '/justdoit answer "Another thing"'))
    assert "no prompt today" in refused
    assert await answered_days(app) == [(date(2026, 11, 23), "Thanked the night shift")]


async def test_an_old_prompts_button_points_to_todays_prompt(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    await fire_next(app, clock)  # Tue 24 Nov
    await fire_next(app, clock)  # Wed 25 Nov
    (_, tuesday), (_, wednesday) = recorder.prompts()
    old = tuesday.buttons[0]
    replies = await app.act(Action(old.action, old.value, ANA, CHANNEL, "1"))
    assert [type(r) for r in replies] == [Ephemeral]
    said = text_of(replies)
    assert "The prompt of Tue 24 Nov is closed" in said
    assert wednesday.text.split("\n")[0] in said  # today's prompt, to answer instead
    current = wednesday.buttons[0]
    opened = await app.act(Action(current.action, current.value, ANA, CHANNEL, "2"))
    assert isinstance(opened[0], OpenForm)
    assert opened[0].form.value == "2026-11-25"


async def test_a_form_left_open_past_midnight_hands_the_answer_back(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    await fire_next(app, clock)  # Tue 24 Nov
    button = recorder.prompts()[0][1].buttons[0]
    clock.set(datetime(2026, 11, 24, 23, 58, tzinfo=UTC))
    opened = await app.act(Action(button.action, button.value, ANA, CHANNEL, "1"))
    form = opened[0].form
    clock.set(datetime(2026, 11, 25, 0, 2, tzinfo=UTC))
    values = {"what": "Wrote up the review with the customer", "competency": "inspire"}
    replies = await app.submit(Submission(form.id, form.value, values, ANA, CHANNEL))
    assert [type(r) for r in replies] == [Ephemeral]
    said = text_of(replies)
    assert "The prompt of Tue 24 Nov is closed" in said
    assert "Wrote up the review with the customer" in said
    assert "next prompt comes" in said
    assert await answered_days(app) == []


async def test_console_refuses_last_weeks_prompt(console, clock) -> None:
    ana, where = console.console.user("ana"), console.console.channel
    await console.say("@mod! /justdoit today")
    clock.advance(timedelta(days=7))
    out = await console.say('@ana /justdoit answer "Thanked the analyst"', "@ana click 2 I did it")
    assert "There is no prompt today in #general." in out
    assert "Thanked the analyst" in out
    assert "The prompt of Mon 23 Nov is closed" in out
    assert "Form:" not in out
    assert await answered_days(console.app, ana, where) == []
    out = await console.say("@mod! /justdoit today", '@ana /justdoit answer "Thanked the analyst"')
    assert "ana did it: Thanked the analyst" in out
    assert await answered_days(console.app, ana, where) == [
        (date(2026, 11, 30), "Thanked the analyst")
    ]
