"""The console's Events page: the list with RSVP counts, the month calendar, one event with
its RSVPs, and editing or cancelling it from the web through `/event edit` and `/event
cancel`, so the announcement in chat changes as when a moderator types the command.

Everything goes through the real console (events added and answered as in chat) and the
real web server on 127.0.0.1.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.events.drafts import Draft
from bot.model import ChannelRef

OSLO = {
    "community": [
        {
            "name": "itSMF Norway",
            "timezone": "Europe/Oslo",
            "workspaces": ["console:demo"],
            "channels": ["console:demo:general"],
        }
    ]
}
TWO_COMMUNITIES = {
    "community": [
        {
            "name": "itSMF Norway",
            "workspaces": ["console:demo"],
            "channels": ["console:demo:general"],
        },
        {"name": "itSMF UK", "workspaces": ["slack:T2"], "channels": ["slack:T2:C1"]},
    ]
}
CONFERENCE = (
    '@mia! /event add title="itSMF UK Conference" start="2026-12-05 09:00" tz=Europe/London'
    ' end="2026-12-05 17:00" location="Novotel London West" remind=1d'
)
SEMINAR = '@mia! /event add title="BRM Seminar" start="2026-12-14 10:00" tz=Europe/Oslo location=Online'  # fmt: skip
HOSTILE = "<img src=x onerror=alert(1)>"


def row(html: str, table: str, event_id: int) -> str:
    """The <tr> of one event in the table `table` ('' when it is not there)."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    found = re.search(rf'<tr data-event="{event_id}".*?</tr>', body, re.DOTALL)
    return found.group(0) if found else ""


def day(html: str, iso: str) -> str:
    """The calendar's cell for one day."""
    found = re.search(rf'<td data-day="{iso}".*?</td>', html, re.DOTALL)
    assert found, f"no day {iso} in the calendar"
    return found.group(0)


def cell(tr: str, name: str) -> str:
    found = re.search(rf'<td class="num {name}">(\d+)</td>', tr)
    assert found, tr
    return found.group(1)


def announcement_number(web, event_id: int) -> int:
    return web.console.console.screen.by_key[f"event:{event_id}:console:demo:general"]


async def settle(web, clock) -> None:
    """Let the announcement edit's debounce pass, then deliver it."""
    clock.advance(timedelta(seconds=2))
    await web.console.console.settle()


async def answered(web, event_id: int, *answers: str) -> None:
    """Members click the announcement's RSVP buttons, as in chat."""
    number = announcement_number(web, event_id)
    for answer in answers:
        name, label = answer.split(" ", 1)
        said = await web.console.say(f"@{name} click {number} {label}")
        assert "Noted:" in said, said


async def test_the_list_shows_every_event_with_its_time_place_channel_counts_and_state(
    make_web, clock
):
    web = await make_web(OSLO)
    await web.console.say(CONFERENCE, SEMINAR, '@mia! /event add title=Gone start="2026-12-20 10:00"')  # fmt: skip
    await answered(web, 1, "sam Going", "ann Going", "bob Interested", "eve Not going")
    await answered(web, 2, "sam Interested")
    await web.console.say("@mia! /event cancel 3")
    client = await web.sign_in("mia")
    html = await web.page(client, "/events")
    conference = row(html, "upcoming", 1)
    assert "itSMF UK Conference" in conference and "Novotel London West" in conference
    # 09:00 in London is 10:00 in Oslo, the community's zone, which the list shows.
    assert '<time datetime="2026-12-05T09:00:00+00:00">2026-12-05 10:00</time>' in conference
    assert "organisers' zone: Europe/London" in conference
    assert "#general" in conference and "console" in conference
    assert (cell(conference, "going"), cell(conference, "interested"), cell(conference, "not-going")) == ("2", "1", "1")  # fmt: skip
    seminar = row(html, "upcoming", 2)
    assert (cell(seminar, "going"), cell(seminar, "interested")) == ("0", "1")
    assert "organisers" not in seminar  # entered in the community's own zone
    gone = row(html, "upcoming", 3)
    assert 'class="state-cancelled"' in gone and '<td class="state">cancelled</td>' in gone
    assert '<td class="state">scheduled</td>' in conference
    assert "3 upcoming, 0 past" in html


async def test_a_finished_event_moves_to_past_and_a_started_one_is_happening(web, clock):
    await web.console.say(CONFERENCE, SEMINAR)
    clock.set(datetime(2026, 12, 5, 12, 0, tzinfo=UTC))  # the conference is on
    client = await web.sign_in("mia")
    html = await web.page(client, "/events")
    assert '<td class="state">happening</td>' in row(html, "upcoming", 1)
    clock.set(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    client = await web.sign_in("mia")
    html = await web.page(client, "/events")
    assert row(html, "upcoming", 1) == "" and row(html, "past", 1)
    assert '<td class="state">over</td>' in row(html, "past", 1)
    assert row(html, "upcoming", 2) and "1 upcoming, 1 past" in html


async def test_the_month_calendar_puts_each_event_on_its_day_in_the_communitys_zone(make_web):
    web = await make_web(OSLO)
    await web.console.say(
        CONFERENCE,
        SEMINAR,
        # 23:30 in London on the 9th is 00:30 on the 10th in Oslo.
        '@mia! /event add title="Late call" start="2026-12-09 23:30" tz=Europe/London',
        '@mia! /event add title="Two day summit" start="2026-12-30 09:00" end="2027-01-01 00:00" tz=Europe/Oslo',
        '@mia! /event add title="January SIG" start="2027-01-12 15:00" tz=Europe/Oslo',
    )  # fmt: skip
    client = await web.sign_in("mia")
    html = await web.page(client, "/events?month=2026-12")
    assert 'data-month="2026-12"' in html and "December 2026" in html
    assert '<td data-day="2026-11-30" class="other-month">' in html  # from the Monday before
    assert 'href="/events?month=2026-11#calendar-title"' in html
    assert 'href="/events?month=2027-01#calendar-title"' in html
    conference = day(html, "2026-12-05")
    assert 'data-event="1"' in conference and "10:00" in conference
    assert 'data-event="2"' in day(html, "2026-12-14")
    assert 'data-event="3"' in day(html, "2026-12-10") and "00:30" in day(html, "2026-12-10")
    assert 'data-event="3"' not in day(html, "2026-12-09")
    assert 'data-event="4"' in day(html, "2026-12-30") and "09:00" in day(html, "2026-12-30")
    assert "cont." in day(html, "2026-12-31") and 'data-event="4"' in day(html, "2026-12-31")
    assert 'data-event="4"' not in day(html, "2027-01-01")  # it ends at midnight
    assert 'data-event="5"' not in html.split('id="calendar"')[1].split("</table>")[0]
    january = await web.page(client, "/events?month=2027-01")
    assert 'data-event="5"' in day(january, "2027-01-12")
    assert 'data-event="1"' not in january.split('id="calendar"')[1].split("</table>")[0]
    now = await web.page(client, "/events")  # no month: this month (November 2026)
    assert 'data-month="2026-11"' in now and 'class="today"' in day(now, "2026-11-23")
    nonsense = await web.page(client, "/events?month=2026-13")
    assert 'data-month="2026-11"' in nonsense


async def test_a_moderator_sees_who_answered_and_a_member_only_how_many(web):
    await web.console.say(CONFERENCE)
    await answered(web, 1, "sam Going + remind me", "ann Interested", "bob Not going")
    mia = await web.sign_in("mia")
    html = await web.page(mia, "/events/1")
    rsvps = html.split('id="rsvps"')[1].split("</table>")[0]
    assert '<span class="name">sam 🔔</span>' in rsvps
    assert '<span class="name">ann</span>' in rsvps and '<span class="name">bob</span>' in rsvps
    assert 'id="edit-event"' in html and 'id="cancel-event"' in html
    assert "Organisers' time: Sat 05 Dec 2026, 09:00–17:00 Europe/London" in html
    sam = await web.sign_in("sam", moderator=False)
    html = await web.page(sam, "/events/1")
    rsvps = html.split('id="rsvps"')[1].split("</table>")[0]
    assert re.search(r'data-status="going">\s*<td>Going</td>\s*<td class="num">1</td>', rsvps)
    assert re.search(r'data-status="interested">\s*<td>Interested</td>\s*<td class="num">1</td>', rsvps)  # fmt: skip
    for name in ("sam", "ann", "bob"):
        assert f'<span class="name">{name}' not in html
    assert "who answered, and changes, are for moderators" in html
    assert 'id="edit-event"' not in html and 'id="cancel-event"' not in html
    listing = await web.page(sam, "/events")  # members read the list and the calendar too
    assert cell(row(listing, "upcoming", 1), "going") == "1"
    for verb in ("edit", "cancel"):
        response = await web.post(sam, f"/events/1/{verb}", {"title": "Mine"}, csrf_from="/events/1")  # fmt: skip
        assert response.status == 403
    event = await web.app.features["event"].service.store.get(1)
    assert (event.title, event.state) == ("itSMF UK Conference", "scheduled")


async def test_editing_from_the_web_edits_the_announcement_in_chat(web, clock):
    await web.console.say(CONFERENCE)
    client = await web.sign_in("mia")
    form = await web.page(client, "/events/1")
    assert 'name="start" value="2026-12-05 09:00"' in form  # in the event's own zone
    assert 'name="remind" value="1d"' in form
    before = len(web.console.out)
    response = await web.post(
        client, "/events/1/edit", {
            "title": "itSMF UK Conference 2026", "start": "2026-12-06 10:00",
            "end": "2026-12-06 17:00", "tz": "Europe/London", "location": "Online",
            "url": "", "organiser": "", "description": "", "remind": "1d",
        }, csrf_from="/events/1",
    )  # fmt: skip
    assert response.status == 303 and response.headers["Location"] == "/events/1"
    await settle(web, clock)
    shown = "\n".join(web.console.out[before:])
    number = announcement_number(web, 1)
    assert f"#{number} (edited) [public]" in shown
    assert "itSMF UK Conference 2026" in shown and "Sun 06 Dec 2026, 10:00–17:00 Europe/London" in shown  # fmt: skip
    assert "Online" in shown and "Novotel" not in shown
    event = await web.app.features["event"].service.store.get(1)
    assert event.start == datetime(2026, 12, 6, 10, 0, tzinfo=UTC) and event.sequence == 1
    assert event.location == "Online"
    jobs = await web.app.scheduler.pending("event:1:remind:")
    assert [j.due_at for j in jobs] == [datetime(2026, 12, 5, 10, 0, tzinfo=UTC)]
    page = await web.page(client, "/events/1")
    said = page.split('class="said"')[1].split("</section>")[0]
    assert "updated: starts Sun 06 Dec 2026, 10:00 Europe/London" in said
    assert 'name="title" value="itSMF UK Conference 2026"' in page


async def test_an_emptied_field_is_removed_and_an_unchanged_form_changes_nothing(web, clock):
    await web.console.say(CONFERENCE + ' url=https://example.org/c organiser="itSMF UK"')
    client = await web.sign_in("mia")
    values = {
        "title": "itSMF UK Conference", "start": "2026-12-05 09:00", "end": "2026-12-05 17:00",
        "tz": "Europe/London", "location": "Novotel London West", "url": "https://example.org/c",
        "organiser": "itSMF UK", "description": "", "remind": "1d",
    }  # fmt: skip
    await web.post(client, "/events/1/edit", values, csrf_from="/events/1")
    page = await web.page(client, "/events/1")
    assert "Nothing to change" in page
    store = web.app.features["event"].service.store
    assert (await store.get(1)).sequence == 0
    emptied = {**values, "url": "", "end": "", "remind": "", "description": "Line one\r\nLine two"}
    await web.post(client, "/events/1/edit", emptied, csrf_from="/events/1")
    event = await store.get(1)
    assert (event.url, event.end, event.remind) == ("", None, [])
    assert event.description == "Line one\nLine two" and event.organiser == "itSMF UK"
    assert await web.app.scheduler.pending("event:1:remind:") == []


async def test_an_invalid_edit_shows_the_commands_error_and_changes_nothing(web, clock):
    await web.console.say(CONFERENCE)
    await settle(web, clock)
    client = await web.sign_in("mia")
    store = web.app.features["event"].service.store
    before = len(web.console.out)
    for start, error in (
        ("2026-11-01 09:00", "is in the past"),
        ("someday", "can&#39;t read <code>someday</code> as a date"),
    ):
        response = await web.post(
            client, "/events/1/edit", {"title": "Renamed", "start": start}, csrf_from="/events/1"
        )
        assert response.status == 303
        page = await web.page(client, "/events/1")
        said = page.split('class="said"')[1].split("</section>")[0]
        assert error in said, said
        event = await store.get(1)
        assert (event.title, event.sequence) == ("itSMF UK Conference", 0)
        assert event.start == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    await settle(web, clock)
    assert "(edited)" not in "\n".join(web.console.out[before:])


async def test_cancelling_from_the_web_cancels_the_event_and_its_announcement(web, clock):
    await web.console.say(CONFERENCE)
    client = await web.sign_in("mia")
    before = len(web.console.out)
    response = await web.post(client, "/events/1/cancel", csrf_from="/events/1")
    assert response.status == 303
    await settle(web, clock)
    number = announcement_number(web, 1)
    shown = "\n".join(web.console.out[before:])
    assert f"#{number} (edited) [public]" in shown and "CANCELLED: itSMF UK Conference" in shown
    assert web.console.console.screen.messages[number].post.buttons == []
    event = await web.app.features["event"].service.store.get(1)
    assert event.cancelled
    assert await web.app.scheduler.pending("event:1:") == []
    page = await web.page(client, "/events/1")
    assert "is cancelled; its announcement says so" in page
    assert 'id="edit-event"' not in page and 'id="cancel-event"' not in page
    listing = await web.page(client, "/events")
    assert '<td class="state">cancelled</td>' in row(listing, "upcoming", 1)
    again = await web.post(client, "/events/1/cancel", csrf_from="/events")
    assert again.status == 303
    assert "already cancelled" in await web.page(client, "/events/1")


async def test_another_communitys_event_answers_404_on_every_route(make_web):
    web = await make_web(TWO_COMMUNITIES)
    service = web.app.features["event"].service
    channel = ChannelRef("slack", "T2", "C1")
    community = await web.app.communities.of(channel)
    start = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    draft = Draft(title="UK members only", start=start, tz="Europe/London")
    theirs = (await service.create(community.id, channel, draft, "slack:T2:U1")).event
    await web.console.say(CONFERENCE)
    mia = await web.sign_in("mia")  # a moderator of itSMF Norway, the console's community
    listing = await web.page(mia, "/events?month=2026-12")
    assert "itSMF UK Conference" in listing and "UK members only" not in listing
    async with mia.get(f"/events/{theirs.id}") as response:
        assert response.status == 404
    for verb in ("edit", "cancel"):
        response = await web.post(mia, f"/events/{theirs.id}/{verb}", {"title": "Ours now"}, csrf_from="/events")  # fmt: skip
        assert response.status == 404
    sam = await web.sign_in("sam", moderator=False)
    async with sam.get(f"/events/{theirs.id}") as response:
        assert response.status == 404
    async with mia.get("/events/999") as response:
        assert response.status == 404
    still = await service.store.get(theirs.id)
    assert (still.title, still.state, still.sequence) == ("UK members only", "scheduled", 0)


async def test_titles_and_details_are_escaped_everywhere(web):
    await web.console.say(
        f'@mia! /event add title="{HOSTILE}" start="2026-12-05 09:00"'
        ' location="<b>Oslo</b>" description="<script>alert(2)</script>"'
    )
    client = await web.sign_in("mia")
    listing = await web.page(client, "/events?month=2026-12")
    detail = await web.page(client, "/events/1")
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert escaped in row(listing, "upcoming", 1) and escaped in day(listing, "2026-12-05")
    assert escaped in detail.split('id="facts"')[0]  # the heading
    assert escaped in detail.split("The announcement, as it reads now")[1]
    assert 'value="&lt;img src=x onerror=alert(1)&gt;"' in detail
    for page in (listing, detail):
        assert "<img src=x" not in page and "<script>alert" not in page and "<b>Oslo" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in detail
