"""Calendar feeds through the real web server: `/event calendar` gives the URL, a plain HTTP
client (no session) reads it as calendar apps do, and what moderators change in chat shows
in the next reading; revoked, unknown and other communities' feeds stay shut."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import aiohttp
import icalendar

from bot.events.drafts import Draft
from bot.model import ChannelRef
from tests.test_web_signin import TWO_COMMUNITIES

ADD = '@mia! /event add title="itSMF UK Conference" start="2026-12-05 09:00" tz=Europe/London'
_FEED = re.compile(r"https?://[^\s`<>]+/calendar/[\w-]+\.ics")


def feed_urls(said: str) -> list[str]:
    """The https feed URLs an answer of /event calendar gives, in order, once each."""
    found = list(dict.fromkeys(_FEED.findall(said)))
    assert found, f"no calendar URL in:\n{said}"
    return found


async def ask(web, line: str = "@sam /event calendar") -> list[str]:
    return feed_urls(await web.console.say(line))


async def fetch(url: str, **headers: str) -> aiohttp.ClientResponse:
    """GET as a calendar app does: no cookie, no session."""
    async with aiohttp.ClientSession() as client, client.get(url, headers=headers) as response:
        await response.read()
        return response


async def read(url: str) -> icalendar.Calendar:
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        assert response.status == 200, await response.text()
        return icalendar.Calendar.from_ical(await response.read())


def vevents(cal: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(e["summary"]): e for e in cal.walk("VEVENT")}


def announcement(console, title: str = "itSMF UK Conference"):
    """The (last) announcement of the event with this title, as the console shows it now."""
    posts = [m.post for m in console.console.screen.messages.values()]
    return [p for p in posts if p.title.endswith(title)][-1]


async def settle(web, clock) -> None:
    """Let the announcement edits' debounce pass, then deliver them."""
    clock.advance(timedelta(seconds=2))
    await web.console.console.settle()


async def test_the_feed_is_a_calendar_with_the_events_zone_and_its_vtimezone(web):
    await web.console.say(ADD + ' end="2026-12-05 17:00" location="Novotel London West"'
                          " url=https://example.org/c remind=1d")  # fmt: skip
    [url] = await ask(web)
    response = await fetch(url)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "max-age=300"
    etag = response.headers["ETag"]
    cal = await read(url)
    assert str(cal["version"]) == "2.0" and "ITSM" in str(cal["prodid"])
    assert "events" in str(cal["x-wr-calname"])
    assert cal["refresh-interval"].to_ical() == b"PT1H"
    assert cal["refresh-interval"].params["VALUE"] == "DURATION"
    assert str(cal["x-published-ttl"]) == "PT1H"
    [vevent] = cal.walk("VEVENT")
    stored = await web.app.features["event"].service.store.get(1)
    assert str(vevent["uid"]) == stored.uid
    assert vevent["dtstart"].params["TZID"] == "Europe/London"
    assert vevent.decoded("dtstart") == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert vevent["dtend"].params["TZID"] == "Europe/London"
    assert [str(z["tzid"]) for z in cal.walk("VTIMEZONE")] == ["Europe/London"]
    assert str(vevent["location"]) == "Novotel London West"
    assert str(vevent["url"]) == "https://example.org/c"
    assert str(vevent["status"]) == "CONFIRMED" and int(vevent["sequence"]) == 0
    assert "dtstamp" in vevent and "last-modified" in vevent
    assert not vevent.walk("VALARM")  # a subscriber did not ask to be reminded of it all
    again = await fetch(url, **{"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag


async def test_each_zone_the_events_use_has_its_vtimezone(web):
    await web.console.say(ADD, '@mia! /event add title="Pink Elephant breakfast"'
                          ' start="2026-12-09 08:00" tz=America/Toronto', '@mia! /event add'
                          ' title="Standup" start="2026-12-10 08:00" tz=UTC')  # fmt: skip
    [url] = await ask(web)
    cal = await read(url)
    assert sorted(str(z["tzid"]) for z in cal.walk("VTIMEZONE")) == [
        "America/Toronto", "Europe/London",
    ]  # fmt: skip
    shown = vevents(cal)
    assert shown["Pink Elephant breakfast"]["dtstart"].params["TZID"] == "America/Toronto"
    assert shown["Pink Elephant breakfast"].decoded("dtstart") == datetime(
        2026, 12, 9, 13, 0, tzinfo=UTC
    )
    assert shown["Standup"].decoded("dtstart") == datetime(2026, 12, 10, 8, 0, tzinfo=UTC)


async def test_an_edit_shows_in_the_next_reading_with_a_higher_sequence_and_a_cancellation_as_cancelled(
    web,
):
    await web.console.say(ADD)
    [url] = await ask(web)
    first = (await fetch(url)).headers["ETag"]
    await web.console.say('@mia! /event edit 1 location=Online start="2026-12-05 10:00"')
    edited = vevents(await read(url))["itSMF UK Conference"]
    assert int(edited["sequence"]) == 1 and str(edited["location"]) == "Online"
    assert edited.decoded("dtstart") == datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert (await fetch(url)).headers["ETag"] != first
    assert (await fetch(url, **{"If-None-Match": first})).status == 200
    await web.console.say("@mia! /event cancel 1")
    cancelled = vevents(await read(url))["itSMF UK Conference"]
    assert str(cancelled["status"]) == "CANCELLED"  # kept, so subscribed calendars drop it
    assert int(cancelled["sequence"]) == 2


async def test_an_event_stays_a_month_after_it_ended_then_leaves_the_feed(web, clock):
    await web.console.say(ADD + ' end="2026-12-05 17:00"')
    [url] = await ask(web)
    clock.advance(timedelta(days=12 + 29))  # ended 29 days ago (5 Dec 17:00 + 29 days)
    assert "itSMF UK Conference" in vevents(await read(url))
    clock.advance(timedelta(days=2))
    assert vevents(await read(url)) == {}


async def test_a_revoked_url_answers_404_the_new_one_works_and_announcements_carry_it(web, clock):
    await web.console.say(ADD)
    [old] = await ask(web)
    assert await ask(web) == [old]  # kept from one ask to the next
    said = await web.console.say("@sam /event calendar revoke")
    assert "Only moderators" in said
    assert (await fetch(old)).status == 200
    said = await web.console.say("@mia! /event calendar revoke")
    assert "old URL no longer works" in said
    [new] = feed_urls(said)
    assert new != old
    assert (await fetch(old)).status == 404
    assert "itSMF UK Conference" in vevents(await read(new))
    assert await ask(web) == [new]
    # The announcement's link was edited to the new URL: the old one would answer 404.
    await settle(web, clock)
    [link] = [b for b in announcement(web.console).buttons if b.style == "link"]
    assert link.url == new


async def test_a_channels_feed_holds_only_the_events_announced_there(web):
    await web.console.say(ADD, '@mia! /event add title="Service Desk SIG" start="2026-12-08 14:00"'
                          " channel=#service-desk")  # fmt: skip
    said = await web.console.say("@sam /event calendar #service-desk")
    community, channel = feed_urls(said)
    assert "Only the events announced in" in said
    assert set(vevents(await read(channel))) == {"Service Desk SIG"}
    assert set(vevents(await read(community))) == {"itSMF UK Conference", "Service Desk SIG"}
    [general] = feed_urls(await web.console.say("@sam /event calendar #general"))[1:]
    assert set(vevents(await read(general))) == {"itSMF UK Conference"}
    assert "service-desk" in str((await read(channel))["x-wr-calname"])


async def test_another_communitys_events_never_appear(make_web):
    web = await make_web(TWO_COMMUNITIES)
    feature = web.app.features["event"]
    uk_channel = ChannelRef("slack", "T2", "C1")
    uk = await web.app.communities.of(uk_channel)
    draft = Draft(title="UK only meetup", start=datetime(2026, 12, 10, 18, tzinfo=UTC),
                  tz="Europe/London")  # fmt: skip
    await feature.service.create(uk.id, uk_channel, draft, "test")
    await web.console.say(ADD.replace("itSMF UK Conference", "Oslo breakfast"))
    [norway] = await ask(web)
    assert set(vevents(await read(norway))) == {"Oslo breakfast"}
    theirs = await feature.calendars.url(uk.id)
    assert theirs != norway
    assert set(vevents(await read(theirs))) == {"UK only meetup"}
    assert str((await read(theirs))["x-wr-calname"]) == "itSMF UK events"


async def test_an_unknown_token_answers_404(web):
    await web.console.say(ADD)
    await ask(web)
    for path in ("/calendar/not-a-token.ics", "/calendar/.ics", "/calendar/x"):
        assert (await fetch(web.base + path)).status == 404


async def test_the_announcement_carries_the_subscribe_link_while_the_server_is_on(web, clock):
    await web.console.say(ADD)
    post = announcement(web.console)
    assert [b.label for b in post.buttons] == [
        "Going", "Going + remind me", "Interested", "Not going", "Subscribe to the calendar",
    ]  # fmt: skip
    [url] = await ask(web)
    assert post.buttons[-1].url == url and post.buttons[-1].style == "link"
    said = await web.console.say("@sam /event calendar")
    assert "Other calendars → From URL" in said
    assert "webcal://" + url.partition("://")[2] in said
    await web.console.say("@mia! /event cancel 1")
    await settle(web, clock)
    cancelled = announcement(web.console)
    # Cancelled: nothing left to answer, nor to subscribe to from here.
    assert cancelled.title.startswith("CANCELLED") and not cancelled.buttons


async def test_without_the_web_server_the_command_says_so_and_announcements_are_unchanged(
    console,
):
    said = await console.say("@sam /event calendar")
    assert "web server, which is not switched on" in said and "[web] enabled" in said
    await console.say(ADD)
    post = announcement(console)
    assert [b.label for b in post.buttons] == [
        "Going", "Going + remind me", "Interested", "Not going",
    ]  # fmt: skip


async def test_an_event_whose_announcement_is_still_to_come_stays_out_until_announced(web, clock):
    await web.console.say(ADD + ' announce="2026-11-30 09:00"')
    [url] = await ask(web)
    assert vevents(await read(url)) == {}
    clock.advance(timedelta(days=7))
    await web.console.console.settle()
    assert "itSMF UK Conference" in vevents(await read(url))
