"""The daily prompt page: schedules, today's prompt and its answers, streaks, and the
suggestion queue, whose Approve and Decline press the review card's own buttons (the member
hears back by direct message, and the card in chat shows the decision)."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.model import ChannelRef, UserRef
from tests.test_web_signin import TWO_COMMUNITIES
from tests.web import WebRun, csrf_of

SUGGESTION = "Ask a customer what a good day with IT looks like"


async def scheduled(web: WebRun) -> None:
    """A daily prompt in #general, today's posted."""
    await web.console.say(
        "@mia! /justdoit schedule time=08:30 tz=Europe/Oslo days=daily", "@mia! /justdoit today"
    )


async def suggest(web: WebRun, competency: str = "inspire", who: str = "sam") -> str:
    """A member suggests a prompt; the review card goes to mia (who scheduled the prompt)."""
    chosen = f" competency={competency}" if competency else ""
    said = await web.console.say(f'@{who} /justdoit suggest "{SUGGESTION}"{chosen}')
    assert "[direct to mia]" in said and "Prompt suggestion" in said
    return said


def card_number(text: str) -> int:
    """The console number of the (last) review card shown."""
    numbers = re.findall(r"#(\d+) \[direct to mia\]\n  \*\* Prompt suggestion \*\*", text)
    assert numbers, text
    return int(numbers[-1])


def queued(html: str) -> list[str]:
    return re.findall(r'data-suggestion="(\d+)"', html)


async def settle(web: WebRun) -> str:
    """Let the outbox deliver what the page's action queued (an edit waits out its debounce
    first); what the console printed."""
    start = len(web.console.out)
    web.app.clock.advance(timedelta(seconds=web.app.outbox.settings.edit_debounce + 1))
    await web.console.console.settle()
    return "\n".join(web.console.out[start:])


async def test_approving_on_the_page_thanks_the_author_and_closes_the_card(web):
    await scheduled(web)
    card = card_number(await suggest(web))
    client = await web.sign_in("mia")
    html = await web.page(client, "/prompts")
    assert queued(html) == ["1"] and SUGGESTION in html
    response = await web.post(
        client, "/prompts/suggestions/1/approve", {"competency": "inspire"}, csrf_from="/prompts"
    )
    assert response.status == 303 and response.headers["Location"] == "/prompts"
    chat = await settle(web)
    thanks = chat.split("[direct to sam]", 1)[1]
    assert "Your prompt suggestion is now in the bank (Inspire)" in thanks
    edited = re.search(rf"#{card} \(edited\) \[direct to mia\]\n(.*?)(?=\n#|\Z)", chat, re.S)
    assert edited, chat
    assert "Approved by mia as Inspire" in edited.group(1)
    assert "[Approve]" not in edited.group(1) and "[Reject]" not in edited.group(1)
    html = await web.page(client, "/prompts")
    assert queued(html) == [] and "No suggestions waiting." in html
    assert "Approved</strong> by mia" in html  # what the action answered, shown once
    suggestion = await web.app.features["justdoit"].suggestions.get(1)
    assert suggestion.state == "approved" and suggestion.competency == "inspire"
    again = await web.console.say(f"@mia! click {card} Approve")
    assert "no button" in again  # the card offers no buttons any more


async def test_declining_on_the_page_tells_the_author_without_the_moderators_name(web):
    await scheduled(web)
    card = card_number(await suggest(web))
    client = await web.sign_in("mia")
    response = await web.post(client, "/prompts/suggestions/1/decline", csrf_from="/prompts")
    assert response.status == 303
    chat = await settle(web)
    declined = chat.split("[direct to sam]", 1)[1].split("\n#", 1)[0]
    assert "did not add this one" in declined and SUGGESTION in declined
    assert "mia" not in declined
    assert f"#{card} (edited) [direct to mia]" in chat and "Rejected by mia" in chat
    html = await web.page(client, "/prompts")
    assert queued(html) == []
    suggestion = await web.app.features["justdoit"].suggestions.get(1)
    assert suggestion.state == "rejected"
    # Deciding again (a stale page) changes nothing and says why; nobody is told twice.
    await web.post(client, "/prompts/suggestions/1/approve", {"competency": "inspire"}, csrf_from="/prompts")  # fmt: skip
    assert "[direct to sam]" not in await settle(web)
    assert "already rejected" in await web.page(client, "/prompts")


async def test_a_suggestion_without_a_competency_is_filed_where_the_moderator_chooses(web):
    await scheduled(web)
    await suggest(web, competency="")
    client = await web.sign_in("mia")
    html = await web.page(client, "/prompts")
    assert "none given" in html and "Choose a competency" in html
    await web.post(client, "/prompts/suggestions/1/approve", {"competency": ""}, csrf_from="/prompts")  # fmt: skip
    html = await web.page(client, "/prompts")
    assert "Choose the competency" in html and queued(html) == ["1"]
    assert "[direct to sam]" not in await settle(web)
    await web.post(client, "/prompts/suggestions/1/approve", {"competency": "manage-conflict"}, csrf_from="/prompts")  # fmt: skip
    assert "now in the bank (Manage conflict)" in await settle(web)
    suggestion = await web.app.features["justdoit"].suggestions.get(1)
    assert suggestion.state == "approved" and suggestion.competency == "manage-conflict"


async def test_the_schedule_todays_answers_and_streaks_are_shown(web, clock):
    await scheduled(web)
    await web.console.say(
        '@sam /justdoit answer "Thanked the service desk analyst by name"',
        '@lea /justdoit answer "Asked finance what a good month looks like" competency=develop-relationships',
    )  # fmt: skip
    clock.advance(timedelta(days=1))
    await settle(web)  # Tuesday: the scheduled prompt posts
    await web.console.say('@sam /justdoit answer "Walked over to second line to say thanks"')
    clock.advance(timedelta(days=1))
    await settle(web)  # Wednesday: lea missed Tuesday
    await web.console.say(
        '@sam /justdoit answer "Shared a service win with sales"',
        '@lea /justdoit answer "<script>alert(1)</script> <b>bold</b>"',
    )
    client = await web.sign_in("mia")
    html = await web.page(client, "/prompts")
    row = re.search(r'<tr data-channel="console:demo:general".*?</tr>', html, re.S).group(0)
    assert all(part in row for part in ("08:30", "Europe/Oslo", "daily", "running"))
    assert "2026-11-26" in row  # the next prompt, Thursday
    assert "Today, Wednesday 25 November" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>alert" not in html and "<b>bold" not in html
    streaks = dict(
        (name, (int(now), int(best), int(count)))
        for name, now, best, count in re.findall(
            r'<tr><td>(\w+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>'
            r'<td class="num">(\d+)</td></tr>', html
        )
    )  # fmt: skip
    assert streaks == {"sam": (3, 3, 3), "lea": (1, 1, 2)}
    assert html.index(">sam<") < html.index(">lea<")  # the longest run first
    earlier = html.split("Earlier this month", 1)[1]
    assert "Walked over to second line" in earlier and "Asked finance" in earlier
    assert "Develop relationships" in earlier
    await web.console.say("@mia! /justdoit pause")
    row = re.search(r'<tr data-channel="console:demo:general".*?</tr>', await web.page(client, "/prompts"), re.S).group(0)  # fmt: skip
    assert "paused" in row and "2026-11-26" not in row


async def test_another_communitys_suggestion_is_not_found_and_not_listed(make_web):
    web = await make_web(TWO_COMMUNITIES)
    theirs = ChannelRef("slack", "T2", "C1")
    uk = await web.app.communities.of(theirs)
    suggestions = web.app.features["justdoit"].suggestions
    their_id = await suggestions.add(
        uk.id, theirs, UserRef("slack", "T2", "U9", "Ursula"), "Only for the UK moderators",
        "inspire", web.app.clock.now(),
    )  # fmt: skip
    client = await web.sign_in("mia")  # a moderator of itSMF Norway
    html = await web.page(client, "/prompts")
    assert "Only for the UK moderators" not in html and queued(html) == []
    for verb in ("approve", "decline"):
        response = await web.post(
            client, f"/prompts/suggestions/{their_id}/{verb}", {"competency": "inspire"},
            csrf_from="/prompts",
        )  # fmt: skip
        assert response.status == 404
    response = await web.post(client, "/prompts/suggestions/999/approve", csrf_from="/prompts")
    assert response.status == 404
    assert (await suggestions.get(their_id)).state == "pending"
    assert await web.app.outbox.state(f"justdoit:suggestion:{their_id}:thanks") is None


async def test_a_member_can_neither_read_the_page_nor_decide(web):
    await scheduled(web)
    await suggest(web)
    client = await web.sign_in("sam", moderator=False)
    async with client.get("/prompts") as response:
        assert response.status == 403
        assert SUGGESTION not in await response.text()
    csrf = csrf_of(await web.page(client, "/feeds"))
    for verb in ("approve", "decline"):
        async with client.post(
            f"/prompts/suggestions/1/{verb}", data={"csrf": csrf, "competency": "inspire"},
            allow_redirects=False,
        ) as response:  # fmt: skip
            assert response.status == 403
    assert (await web.app.features["justdoit"].suggestions.get(1)).state == "pending"
    assert "[direct to sam]" not in await settle(web)
