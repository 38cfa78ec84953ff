"""The demo flows on the console surface: a poll and a survey, typed as a member would."""

from __future__ import annotations


async def test_poll_on_the_console(console, clock):
    out = await console.say(
        '@mod! /poll create "Which ITIL practice needs most love?" "Incident" "Change" "Problem"'
    )
    assert "Poll #1 is posted" in out
    assert "#2 [public]" in out and "[Incident] [Change] [Problem]" in out
    out = await console.say("@member1 click 2 Incident", "@member2 click 2 Incident")
    assert "You voted Incident; press it again to remove your vote." in out
    await console.app.features["poll"].refresher.flush()
    clock.advance(2)  # past the edit debounce: the poll message is redrawn in place
    out = await console.say("@member3 click 2 Problem")
    assert "#2 (edited)" in out
    out = await console.say("@member1 /poll close 1")
    assert "Only the poll's creator or a moderator can close it." in out
    out = await console.say("@mod! /poll close 1")
    assert "Results: Which ITIL practice needs most love?" in out
    assert "Incident  `███████░░░` 2 · 67%" in out
    assert "(attached: poll-1.png," in out
    out = await console.say("@member4 click 2 Change")
    assert "Poll #1 is closed: votes are no longer taken." in out
    out = await console.say("@mod! /poll export 1")
    assert "(attached: poll-1.csv," in out


async def test_bad_poll_input_on_the_console(console):
    out = await console.say('/poll create "Q?" "One"')
    assert "at least 2 answers" in out
    out = await console.say('/poll create "Q?" A B closes=2020-01-01')
    assert "deadline is in the past" in out
    out = await console.say("/poll results 7")
    assert "There is no poll #7 here" in out


async def test_survey_on_the_console(console):
    out = await console.say("@mod! /survey start bsm-maturity")
    assert "#2 [public]" in out and "[Take the survey]" in out
    out = await console.say("@member1 click 2 Take the survey")
    assert "#3 [only member1 sees this]" in out and "BSM maturity survey — 1/11" in out
    out = await console.say("@member1 click 3 Strategic to the business")
    assert "#3 (edited)" in out and "Saved." in out and "2/11" in out  # one card, replaced
    out = await console.say("@member1 click 3 Skip")
    assert "#3 (edited)" in out and "3/11" in out
    out = await console.say("@member1 click 2 Take the survey")  # resume: question 2 is open
    assert "#4 [only member1 sees this]" in out and "2/11" in out
    out = await console.say("@member1 click 4 Back")
    assert "1/11" in out and "Your answer: Strategic to the business" in out
    out = await console.say("@member2 /survey results bsm-maturity by=cio-role")
    assert "by cio-role" in out
    out = await console.say("@mod! /survey close bsm-maturity")
    assert "Results: BSM maturity survey" in out and "1 members answered (closed)" in out
    assert "(attached: survey-bsm-maturity-1.png," in out
