"""A repeating event imported from a calendar is announced once, as a series (issue 15):
the one announcement says how it repeats and names its next dates, and each occurrence is
reminded in its turn, once, across a restart. Driven through `/event import` on the console
against a calendar served on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from bot.events.render import repeat_words
from tests.test_events_ical import MONTHLY_SIG, boot

CONFIG = {"event": {"import_allow_private": True}}
DECEMBER = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
JANUARY = datetime(2027, 1, 14, 18, 0, tzinfo=UTC)  # the occurrence moved a week
APRIL = datetime(2027, 4, 1, 17, 0, tzinfo=UTC)


@pytest.fixture(name="calendar_url")
async def calendar_url_fixture():
    """MONTHLY_SIG (a monthly SIG with a moved, an excluded and a cancelled date, beside a
    one-off AGM) served at a local URL."""

    async def cal(request):
        return web.Response(body=MONTHLY_SIG, content_type="text/calendar")

    application = web.Application()
    application.router.add_get("/sig.ics", cal)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/sig.ics"
    await runner.cleanup()


def posts(console, title_start: str) -> list:
    return [
        s.post for s in console.screen.messages.values() if s.post.title.startswith(title_start)
    ]


async def import_sig(make_app, url, db="bot.db"):
    app, console, out = await boot(make_app, db=db, config=CONFIG)
    await console.handle(f"@mod! /event import {url}")
    await app.outbox.drain()
    return app, console, out


async def test_an_imported_monthly_series_posts_one_announcement_naming_its_next_dates(
    make_app, calendar_url
):
    app, console, out = await import_sig(make_app, calendar_url)
    announcements = posts(console, "📅")
    assert sorted(p.title for p in announcements) == ["📅 Chapter AGM", "📅 Service Design SIG"]
    (sig,) = (p for p in announcements if "SIG" in p.title)
    when = next(f.value for f in sig.fields if f.name == "WHEN")
    assert "Repeats monthly · next:" in when
    assert when.count("⟦") >= 3  # its own time and the next dates, in each reader's zone
    summary = "\n".join(out)
    assert "Added 5 event(s)." in summary  # Dec, Jan, Apr, May (Feb out, Mar cancelled)
    assert "and 3 more date(s) of the series" in summary and "announced once" in summary

    # /event list shows the series once, at its next date.
    await console.handle("@ann /event list")
    listing = console.screen.messages[max(console.screen.messages)].post.text
    assert listing.count("Service Design SIG") == 1 and "repeats monthly, 3 more dates" in listing

    # Importing the same calendar again adds and announces nothing.
    before = len(posts(console, "📅"))
    await console.handle(f"@mod! /event import {calendar_url}")
    await app.outbox.drain()
    assert len(posts(console, "📅")) == before
    assert "5 already known" in "\n".join(out)


async def test_each_occurrence_is_reminded_in_its_turn_once_across_a_restart(
    make_app, calendar_url, clock
):
    app, console, _ = await import_sig(make_app, calendar_url)
    for occurrence in (DECEMBER, JANUARY):  # the calendar's own alarm: a day before each
        clock.set(occurrence - timedelta(days=1))
        await app.scheduler.run_due()
        await app.outbox.drain()
    first = [p.title for p in posts(console, "⏰")]
    assert first == [
        "⏰ In 1 day: Service Design SIG",
        "⏰ In 1 day: Service Design SIG (moved a week)",
    ]
    january = posts(console, "⏰")[1]
    assert [b.label for b in january.buttons][:1] == ["Going"]  # members answer it there

    again, console2, _ = await boot(make_app, db="bot.db", config=CONFIG)  # a restart
    clock.set(APRIL - timedelta(hours=23))
    await again.scheduler.run_due()
    await again.outbox.drain()
    later = [p.title for p in posts(console2, "⏰")]
    assert later == ["⏰ In 1 day: Service Design SIG"]  # April's; none again
    assert posts(console2, "📅") == []  # no occurrence was announced on its own


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("FREQ=MONTHLY;BYDAY=1TH;COUNT=8", "monthly"),
        ("FREQ=WEEKLY;INTERVAL=2", "every 2 weeks"),
        ("freq=daily", "daily"),
        ("FREQ=HOURLY", ""),
        ("FREQ=WEEKLY;INTERVAL=<@U1>", "weekly"),  # nothing of the calendar's own reaches a post
        ("", ""),
    ],
)
def test_a_series_rule_in_words(rule, words):
    assert repeat_words(rule) == words
