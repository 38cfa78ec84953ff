"""The polls and surveys page of the web console, driven as moderators and members use it:
runs made and answered in the console, read and closed through the real web server."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.model import ChannelRef, UserRef
from bot.polls.store import Question
from tests.web import csrf_of

POLL = '@mia! /poll create "Best <b>meetup</b> day?" "Tue" "Wed" "Thu"'


def numbers(said: str, audience: str) -> list[int]:
    """The message numbers the console printed for one audience ("public", a member)."""
    label = "public" if audience == "public" else f"only {audience} sees this"
    return [int(n) for n in re.findall(rf"#(\d+) \[{re.escape(label)}\]", said)]


def run_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-run="(\d+)"', html)]


def list_row(html: str, run_id: int) -> str:
    found = re.search(rf'<tr data-run="{run_id}".*?</tr>', html, re.DOTALL)
    assert found, f"no row for run {run_id}"
    return found.group(0)


def bar(html: str, qid: str, option: int) -> tuple[int, str]:
    """(count, percent) of one answer in one question's bars."""
    section = re.search(rf'data-question="{re.escape(qid)}">.*?</section>', html, re.DOTALL)
    assert section, f"no results for {qid}"
    row = re.search(
        rf'<tr data-option="{option}">.*?class="num count">(\d+)</td><td class="num percent">(\d+%)',
        section.group(0),
        re.DOTALL,
    )
    assert row, f"no bar {option} in {qid}"
    return int(row.group(1)), row.group(2)


def cell(html: str, qid: str, option: int, segment: int) -> int:
    found = re.search(
        rf'data-cell="{re.escape(qid)}/{option}/{segment}">.*?class="count">(\d+)<', html
    )
    assert found, f"no cell {qid}/{option}/{segment}"
    return int(found.group(1))


def per_day(html: str) -> dict[str, int]:
    return {d: int(n) for d, n in re.findall(r'data-day="([\d-]+)" data-count="(\d+)"', html)}


async def poll_with_votes(web, votes: dict[str, str]) -> int:
    """A poll by moderator mia, voted on by each member; the poll message's number."""
    said = await web.console.say(POLL)
    message = numbers(said, "public")[0]
    await web.console.say(*(f"@{name} click {message} {label}" for name, label in votes.items()))
    return message


async def answer_survey(web, invite: int, name: str, answers: dict[str, str]) -> None:
    """One member takes the itsm-focus survey: the given answers (a label, or the text of
    a written answer), Skip for every other question, one card replaced in place."""
    card = numbers(await web.console.say(f"@{name} click {invite} Take the survey"), name)[0]
    for question in web.app.features["survey"].specs["itsm-focus"].questions():
        given = answers.get(question.qid)
        if given is None:
            said = await web.console.say(f"@{name} click {card} Skip")
        elif question.kind == "text":
            await web.console.say(f"@{name} click {card} Write answer")
            said = await web.console.say(f'@{name} form answer="{given}"')
        else:
            said = await web.console.say(f"@{name} click {card} {given}")
        assert f"#{card} (edited)" in said, said


async def survey_with_answers(web) -> int:
    """The itsm-focus survey (run #1) answered by four members; its invitation's number."""
    said = await web.console.say("@mia! /survey start itsm-focus")
    invite = numbers(said, "public")[0]
    small, large = "Under 100", "10,000+"
    people = {
        "sam": {"focus": "Not sure", "org-size": small, "role": "Practitioner"},
        "ann": {"focus": "Not sure", "org-size": small, "next-step": "<script>alert(1)</script>"},
        "bob": {"focus": "A mix that depends on the team", "org-size": large},
        "cid": {"focus": "Not sure", "org-size": large, "role": "Consultant"},
    }
    for name, answers in people.items():
        await answer_survey(web, invite, name, answers)
    return invite


def last_attachment(web) -> bytes:
    """The file the console's latest message with one carries (a chat export)."""
    for shown in reversed(list(web.console.console.screen.messages.values())):
        if shown.post.attachments:
            return shown.post.attachments[0].data
    raise AssertionError("no message with a file")


# --- The list ------------------------------------------------------------------------------


async def test_the_list_shows_every_run_newest_first_with_its_voters_and_state(web, clock):
    await poll_with_votes(web, {"sam": "Tue", "ann": "Tue", "bob": "Thu"})
    clock.advance(timedelta(minutes=5))
    await web.console.say('@mia! /poll create "Kept quiet?" Yes No hidden closes=2d')
    clock.advance(timedelta(minutes=5))
    await web.console.say('@mia! /poll create "Over already?" Yes No', "@mia! /poll close 3")
    clock.advance(timedelta(minutes=5))
    await web.console.say("@mia! /survey start itsm-focus")
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls")
    assert run_ids(html) == [4, 3, 2, 1]
    first = list_row(html, 1)
    assert '<td class="num voters">3</td>' in first and '<td class="state">open</td>' in first
    assert "Best &lt;b&gt;meetup&lt;/b&gt; day?" in first and "<b>meetup" not in html
    assert "#general" in first and '<a href="/polls/1">' in first
    hidden = list_row(html, 2)
    assert '<td class="state">hidden</td>' in hidden and "closes <time" in hidden
    closed = list_row(html, 3)
    assert '<td class="state">closed</td>' in closed and "closed <time" in closed
    survey = list_row(html, 4)
    assert "survey" in survey and "itsm-focus" in survey and "anonymous" in survey
    assert '<td class="num voters">0</td>' in survey


async def test_the_list_counts_each_runs_voters_apart(web, clock):
    store = web.app.features["poll"].store
    mia = UserRef("console", "demo", "mia", "mia")
    general = ChannelRef("console", "demo", "general")
    community = await web.app.communities.of(general)
    question = Question("q", "Which?", "single", ["A", "B"])
    for n in range(1, 31):
        run_id = await store.create(
            kind="poll", title=f"Poll {n}", community_id=community.id, channel=general,
            creator=mia, questions=[question], now=clock.now(),
        )  # fmt: skip
        run = await store.get(run_id)
        for voter in range(n):
            member = UserRef("console", "demo", f"m{voter}", f"m{voter}")
            await store.choose(run, question, member, [voter % 2], clock.now())
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls")
    voters = {
        int(run_id): int(count)
        for run_id, count in re.findall(
            r'<tr data-run="(\d+)".*?class="num voters">(\d+)<', html, re.DOTALL
        )
    }
    assert voters == {n: n for n in range(1, 31)}


# --- One run's results ---------------------------------------------------------------------


async def test_a_polls_results_and_its_answers_per_day(web, clock):
    message = await poll_with_votes(web, {"zoltan": "Tue", "yvette": "Tue", "xavier": "Wed"})
    clock.advance(timedelta(days=2))  # 25 November: two more, and xavier changes his vote
    await web.console.say(
        f"@wilma click {message} Thu", f"@vernon click {message} Tue",
        f"@xavier click {message} Thu",
    )  # fmt: skip
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls/1")
    assert '<dd id="respondents">5 member(s)</dd>' in html
    assert bar(html, "q", 0) == (3, "60%")
    assert bar(html, "q", 1) == (0, "0%")
    assert bar(html, "q", 2) == (2, "40%")
    assert 'style="width: 60.0%"' in html
    # xavier's answer counts on the day he last gave it; the day between is drawn empty.
    assert per_day(html) == {"2026-11-23": 2, "2026-11-24": 0, "2026-11-25": 3}
    assert "5 answer(s) by the day each was last given" in html
    for name in ("zoltan", "yvette", "xavier", "wilma", "vernon"):
        assert name not in html  # the page never names a voter


async def test_days_are_the_communitys_days(make_web, clock):
    web = await make_web({"bot": {"timezone": "Pacific/Auckland"}})  # UTC+13 in November
    await poll_with_votes(web, {"sam": "Tue"})  # 09:00 UTC is 22:00 on the 23rd there
    clock.advance(timedelta(hours=3))  # 01:00 on the 24th there
    await web.console.say("@ann click 2 Wed")
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls/1")
    assert per_day(html) == {"2026-11-23": 1, "2026-11-24": 1}


async def test_a_surveys_results_cross_tab_and_written_answers(web):
    await survey_with_answers(web)
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls/1")
    assert '<dd id="respondents">4 member(s)</dd>' in html
    assert bar(html, "focus", 5) == (3, "75%")  # Not sure
    assert bar(html, "focus", 4) == (1, "25%")
    assert bar(html, "org-size", 0) == (2, "50%")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    # The cross-tab by the first segment question, org-size, unless another is asked for.
    assert 'data-question="focus"' in html and '<option value="org-size" selected>' in html
    assert cell(html, "focus", 5, 0) == 2  # Not sure, under 100
    assert cell(html, "focus", 5, 3) == 1  # Not sure, 10,000+
    assert cell(html, "focus", 4, 3) == 1  # A mix, 10,000+
    assert cell(html, "focus", 4, 0) == 0
    assert cell(html, "role", 0, 0) == 1 and cell(html, "role", 3, 3) == 1
    # Anonymous: no answer times; the chart counts members by the UTC day they first answered.
    assert "anonymous survey keeps no answer times, only these counts" in html
    assert per_day(html) == {"2026-11-23": 4}
    by_role = await web.page(client, "/polls/1?by=role")
    assert '<option value="role" selected>' in by_role
    assert cell(by_role, "org-size", 0, 0) == 1  # under 100, practitioner
    assert cell(by_role, "org-size", 3, 3) == 1  # 10,000+, consultant
    assert cell(by_role, "org-size", 3, 0) == 0
    async with client.get("/polls/1/crosstab?by=role", headers={"HX-Request": "true"}) as r:
        fragment = await r.text()
        assert r.status == 200
    assert fragment.startswith('<div id="crosstab">') and "<html" not in fragment
    assert cell(fragment, "org-size", 0, 0) == 1
    async with client.get("/polls/1?by=next-step") as r:  # a written question: no segment
        assert r.status == 400


async def test_the_csv_is_the_chat_exports_file(web):
    await poll_with_votes(web, {"sam": "Tue", "ann": "Wed"})
    await web.console.say("@mia! /poll export 1")
    poll_export = last_attachment(web)
    await survey_with_answers(web)  # run #2
    await web.console.say("@mia! /survey export itsm-focus")
    survey_export = last_attachment(web)
    client = await web.sign_in("mia")
    async with client.get("/polls/1.csv") as response:
        assert response.status == 200 and response.content_type == "text/csv"
        assert 'filename="poll-1.csv"' in response.headers["Content-Disposition"]
        assert await response.read() == poll_export
    assert b"sam" in poll_export  # a named poll's export names its voters, as in chat
    async with client.get("/polls/2.csv") as response:
        assert 'filename="survey-itsm-focus-2.csv"' in response.headers["Content-Disposition"]
        assert await response.read() == survey_export
    assert b"alert(1)" in survey_export and b"sam" not in survey_export


# --- Hidden and anonymous polls ------------------------------------------------------------


async def test_a_hidden_poll_shows_moderators_its_results_and_says_so(web):
    await web.console.say('@mia! /poll create "Kept quiet?" Yes No hidden', "@sam click 2 Yes")
    said = await web.console.say("@sam /poll results 1")
    assert "hidden until it closes" in said  # what chat tells everyone
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls/1")
    assert '<dd class="state state-hidden" id="state">hidden</dd>' in html
    assert "members see no results until it closes" in html
    assert bar(html, "q", 0) == (1, "100%")
    assert "hides its results until it closes" in html and 'href="/polls/1.csv"' not in html
    async with client.get("/polls/1.csv") as response:
        assert response.status == 409  # as /poll export refuses it
    await web.console.say("@mia! /poll close 1")
    html = await web.page(client, "/polls/1")
    assert "its results are now shown to everyone" in html and 'href="/polls/1.csv"' in html
    async with client.get("/polls/1.csv") as response:
        assert response.status == 200


async def test_an_anonymous_poll_names_no_one_anywhere(web):
    await web.console.say('@mia! /poll create "Honest?" Yes No anonymous')
    await web.console.say("@sam click 2 Yes", "@ann click 2 No")
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls/1")
    assert "Anonymous: who answered what is not recorded" in html
    assert bar(html, "q", 0) == (1, "50%") and bar(html, "q", 1) == (1, "50%")
    assert "anonymous poll keeps no answer times" in html and per_day(html) == {"2026-11-23": 2}
    # Pressing again (taking the vote back) and voting again counts no new member.
    await web.console.say("@sam click 2 Yes", "@sam click 2 No")
    web.app.clock.advance(86400)
    await web.console.say("@lea click 2 Yes")
    client = await web.sign_in("mia")  # a day later: the session of yesterday has ended
    assert per_day(await web.page(client, "/polls/1")) == {"2026-11-23": 2, "2026-11-24": 1}
    async with client.get("/polls/1.csv") as response:
        data = await response.read()
    assert b"total,Yes,1,33%" in data and b"total,No,2,67%" in data
    assert b"sam" not in data and b"ann" not in data and b"lea" not in data


# --- Closing -------------------------------------------------------------------------------


async def test_closing_a_poll_from_the_web_posts_its_results_in_the_channel(web, clock):
    await poll_with_votes(web, {"sam": "Tue", "ann": "Tue", "bob": "Wed"})
    client = await web.sign_in("mia")
    before = len(web.console.out)
    response = await web.post(client, "/polls/1/close", csrf_from="/polls/1")
    assert response.status == 303 and response.headers["Location"] == "/polls/1"
    await web.app.outbox.drain()
    clock.advance(timedelta(seconds=2))  # past the edit debounce: the poll message too
    await web.app.outbox.drain()
    channel = "\n".join(web.console.out[before:])
    assert "[public]" in channel and "Results: Best <b>meetup</b> day?" in channel
    assert "Tue  `███████░░░` 2 · 67%" in channel
    assert "#2 (edited)" in channel and "This poll is closed." in channel
    run = await web.app.features["poll"].store.get(1)
    assert run is not None and run.closed_at is not None
    html = await web.page(client, "/polls/1")
    assert "Poll #1 is closed; the results are posted." in html  # what the command answered
    assert '<dd class="state state-closed" id="state">closed</dd>' in html
    assert "Close poll" not in html
    response = await web.post(client, "/polls/1/close", csrf_from="/polls/1")
    assert response.status == 303
    assert "Poll #1 is already closed." in await web.page(client, "/polls/1")


async def test_closing_a_survey_from_the_web_runs_survey_close(web):
    await survey_with_answers(web)
    client = await web.sign_in("mia")
    response = await web.post(client, "/polls/1/close", csrf_from="/polls/1")
    assert response.status == 303
    await web.app.outbox.drain()
    assert "Results: Could you explain your ITSM to a visitor from outer space?" in web.console.text
    assert "4 members answered (closed)" in web.console.text
    # A new run of the same survey is not closed by pressing Close on the old one again.
    await web.console.say("@mia! /survey start itsm-focus")
    await web.post(client, "/polls/1/close", csrf_from="/polls/1")
    newer = await web.app.features["survey"].store.get(2)
    assert newer is not None and newer.closed_at is None
    assert "Survey #1 is already closed." in await web.page(client, "/polls/1")


# --- A repeating poll ----------------------------------------------------------------------


def trend_cells(html: str) -> dict[str, str]:
    """The trend table: "option/run" -> that answer's share in that run."""
    return dict(re.findall(r'data-trend="(\d+/\d+)">([^<]+)<', html))


def polyline(html: str, option: int) -> list[tuple[float, float]]:
    found = re.search(rf'<g data-option="{option}">.*?<polyline points="([^"]*)"', html, re.S)
    assert found, f"no line for answer {option}"
    return [(float(x), float(y)) for x, y in (p.split(",") for p in found.group(1).split())]


async def test_a_repeating_polls_trend_is_a_line_per_answer(web, clock):
    said = await web.console.say(
        '@mia! /poll create "Best meetup day?" "Tue" "Wed" "<i>Thu</i>" repeat=weekly'
    )
    first = numbers(said, "public")[0]
    await web.console.say(
        f"@sam click {first} Tue", f"@ann click {first} Tue", f"@bob click {first} Wed",
        f"@cid click {first} Tue",
    )  # fmt: skip
    clock.advance(timedelta(weeks=1))  # run 1 closes as run 2 opens
    await web.app.scheduler.run_due()
    await web.app.outbox.drain()
    second = web.console.console.screen.by_key["poll:2:console:demo:general"]
    await web.console.say(f"@sam click {second} Wed", f"@ann click {second} Wed")
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls/2")
    assert '<dd id="series">run 2 of a repeating poll</dd>' in html
    assert "runs 1 to 2 (one a week)" in html
    assert bar(html, "q", 1) == (2, "100%")  # run 2's own votes
    assert trend_cells(html) == {
        "0/1": "75%", "0/2": "0%", "1/1": "25%", "1/2": "100%", "2/1": "0%", "2/2": "0%",
    }  # fmt: skip
    tue, wed = polyline(html, 0), polyline(html, 1)
    assert [y for _, y in tue] == [40.0, 130.0]  # 75% then 0%: the chart is 120 high from 10
    assert [y for _, y in wed] == [100.0, 10.0]  # 25% then 100%
    assert tue[0][0] < tue[1][0] and [x for x, _ in tue] == [x for x, _ in wed]
    assert "&lt;i&gt;Thu&lt;/i&gt;" in html and "<i>Thu" not in html
    assert '<a href="/polls/1">Run 1</a>' in html
    assert 'class="poll-trend"' not in await web.page(client, "/polls/1")  # one run: no trend

    listing = await web.page(client, "/polls")
    assert '<td class="state">scheduled</td>' in list_row(listing, 3)  # the next, made ahead
    assert "opens <time" in list_row(listing, 3)
    next_run = await web.page(client, "/polls/3")
    assert '<dd class="state state-scheduled" id="state">scheduled</dd>' in next_run
    assert "<code>/poll stop 3</code>" in next_run and "Close poll" not in next_run
    await web.console.say("@mia! /poll stop 2")
    listing = await web.page(client, "/polls")
    assert '<td class="state">cancelled</td>' in list_row(listing, 3)
    assert "never posted" in list_row(listing, 3)
    assert '<td class="state">open</td>' in list_row(listing, 2)


async def test_a_poll_to_be_posted_later_is_cancelled_from_the_web(web, clock):
    said = await web.console.say('@mia! /poll create "Later?" Yes No opens=1d')
    assert "Poll #1 will be posted" in said
    client = await web.sign_in("mia")
    html = await web.page(client, "/polls/1")
    assert "Cancel poll" in html and "Close poll" not in html and '<dd id="opens">' in html
    response = await web.post(client, "/polls/1/close", csrf_from="/polls/1")
    assert response.status == 303 and response.headers["Location"] == "/polls/1"
    html = await web.page(client, "/polls/1")
    assert "Poll #1 is cancelled: it will not be posted." in html  # what the command answered
    assert '<dd class="state state-cancelled" id="state">cancelled</dd>' in html
    assert "(cancelled: never posted)" in html
    clock.advance(timedelta(days=2))
    await web.app.scheduler.run_due()
    await web.app.outbox.drain()
    assert "poll:1:console:demo:general" not in web.console.console.screen.by_key


# --- Who may see what ----------------------------------------------------------------------


TWO_COMMUNITIES = {
    "community": [
        {
            "name": "itSMF Norway",
            "workspaces": ["console:demo"],
            "channels": ["console:demo:general"],
        },  # fmt: skip
        {"name": "itSMF UK", "workspaces": ["slack:T2"], "channels": ["slack:T2:C1"]},
    ]
}


async def test_another_communitys_runs_are_not_found(make_web, clock):
    web = await make_web(TWO_COMMUNITIES)
    store = web.app.features["poll"].store
    theirs = ChannelRef("slack", "T2", "C1")
    uk = await web.app.communities.of(theirs)
    question = Question("q", "UK only question", "single", ["Yes", "No"])
    run_id = await store.create(
        kind="poll", title="UK only question", community_id=uk.id, channel=theirs,
        creator=UserRef("slack", "T2", "U1", "uk"), questions=[question], now=clock.now(),
    )  # fmt: skip
    await poll_with_votes(web, {"sam": "Tue"})  # Norway's own poll
    client = await web.sign_in("mia")  # a moderator of itSMF Norway
    html = await web.page(client, "/polls")
    assert run_ids(html) == [run_id + 1] and "UK only" not in html
    for path in (f"/polls/{run_id}", f"/polls/{run_id}.csv", f"/polls/{run_id}/crosstab"):
        async with client.get(path) as response:
            assert response.status == 404, path
    response = await web.post(client, f"/polls/{run_id}/close", csrf_from="/polls")
    assert response.status == 404
    still = await store.get(run_id)
    assert still is not None and still.closed_at is None


async def test_members_may_not_open_the_page_nor_close(web):
    await poll_with_votes(web, {"sam": "Tue"})
    moderator = await web.sign_in("mia")
    csrf = csrf_of(await web.page(moderator, "/polls/1"))
    client = await web.sign_in("sam", moderator=False)
    for path in ("/polls", "/polls/1", "/polls/1.csv"):
        async with client.get(path) as response:
            assert response.status == 403, path
    feeds = await web.page(client, "/feeds")  # a page members may read: a valid token
    async with client.post(
        "/polls/1/close", data={"csrf": csrf_of(feeds)}, allow_redirects=False
    ) as response:
        assert response.status == 403
    run = await web.app.features["poll"].store.get(1)
    assert run is not None and run.closed_at is None and csrf
