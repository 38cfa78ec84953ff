"""Members' own time zones in the web console: the pages a signed-in member reads show times
in their zone (set with /my timezone), while another member, with none set, sees the
community's; what an action answered on the page is shown in the member's zone too."""

from __future__ import annotations

import re

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
CONFERENCE = (
    '@mia! /event add title="itSMF UK Conference" start="2026-12-05 09:00" tz=Europe/London'
)


def event_row(html: str) -> str:
    found = re.search(r'<tr data-event="1".*?</tr>', html, re.DOTALL)
    assert found, "no event 1 in the page"
    return found.group(0)


async def test_the_events_page_shows_times_in_the_signed_in_members_zone(make_web) -> None:
    web = await make_web(OSLO)
    await web.console.say(CONFERENCE, "@ann /my timezone America/New_York")
    ann = await web.sign_in("ann", moderator=False)
    html = await web.page(ann, "/events")
    # 09:00 in London is 04:00 in New York (and 10:00 in Oslo, the community's zone).
    assert '<time datetime="2026-12-05T09:00:00+00:00">2026-12-05 04:00</time>' in event_row(html)
    assert "Times are in your zone, America/New_York." in html
    assert "When (America/New_York)" in html
    detail = await web.page(ann, "/events/1")
    assert "2026-12-05 04:00" in detail and "(America/New_York)" in detail

    mia = await web.sign_in("mia")
    html = await web.page(mia, "/events")
    assert '<time datetime="2026-12-05T09:00:00+00:00">2026-12-05 10:00</time>' in event_row(html)
    assert "Times are in the community's zone, Europe/Oslo." in html


async def test_a_zone_set_after_signing_in_shows_on_the_next_page(make_web) -> None:
    web = await make_web(OSLO)
    await web.console.say(CONFERENCE)
    ann = await web.sign_in("ann", moderator=False)
    assert "2026-12-05 10:00" in event_row(await web.page(ann, "/events"))
    await web.console.say("@ann /my timezone Asia/Tokyo")
    assert "2026-12-05 18:00" in event_row(await web.page(ann, "/events"))
    await web.console.say("@ann /my timezone reset")
    assert "2026-12-05 10:00" in event_row(await web.page(ann, "/events"))
