"""An event's posts on every surface: the console writes the times out in the display
zone; Slack shows them per reader with <!date^…>; nothing a moderator typed can ping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from adapters.console.render import render as console_render
from adapters.slack.render import render as slack_render
from adapters.slack.render import render_form as slack_form
from bot.events import render
from bot.events.commands import add_form
from bot.events.store import Counts, Event
from bot.model import ChannelRef

START = datetime(2031, 11, 5, 9, 0, tzinfo=UTC)
TS = int(START.timestamp())


def sample(**changes) -> Event:
    event = Event(
        id=5,
        community_id=1,
        uid="x@itsm-bot",
        channel=ChannelRef("slack", "T1", "C1"),
        title="itSMF UK Conference <!channel>",
        start=START,
        end=START + timedelta(hours=8),
        tz="Europe/London",
        location="Novotel London West @everyone",
        url="https://example.org/conf",
        organiser="itSMF UK",
        description="Forged \u27e6@:U123\u27e7 mention",
        remind=[timedelta(days=1), timedelta(hours=1)],
    )
    for name, value in changes.items():
        setattr(event, name, value)
    return event


def test_console_shows_the_listing_in_the_display_zone():
    post = render.announcement(sample(), Counts(going=3, interested=1), "America/New_York")
    text = console_render(post, 2, "public")
    assert "RSVP: 3 going · 1 interested · 0 not going" in text
    assert "- WHEN: Wednesday 05 November 2031 04:00 EST" in text  # the reader's zone
    assert "Local time: Wed 05 Nov 2031, 09:00–17:00 Europe/London" in text
    assert "[Going] [Going + remind me] [Interested] [Not going]" in text
    assert "Forged [@:U123] mention" in text  # the forged marker stayed inert


def test_slack_shows_times_per_reader_and_no_forged_ping():
    post = render.announcement(sample(), Counts(going=2), "UTC", ics=b"BEGIN:VCALENDAR")
    message = slack_render(post)
    blob = json.dumps(message["blocks"], ensure_ascii=False)
    assert f"<!date^{TS}^{{date_long_pretty}} {{time}}|" in blob
    assert f"<!date^{TS}^{{ago}}|" in blob
    assert "09:00–17:00 Europe/London" in blob
    assert "<!channel>" not in blob and "<@U123>" not in blob and "@everyone" not in blob
    actions = [b for b in message["blocks"] if b["type"] == "actions"][0]
    values = [e["value"] for e in actions["elements"]]
    assert values == ["5:going", "5:going+notify", "5:interested", "5:not_going"]


def test_slack_reminder_pings_nobody_and_shows_the_start_per_reader():
    post = render.reminder(sample(), timedelta(hours=1), "UTC")
    blob = json.dumps(slack_render(post)["blocks"], ensure_ascii=False)
    assert "<@" not in blob and "<!channel>" not in blob and post.mentions == []
    assert f"<!date^{TS}^{{ago}}|" in blob


def test_direct_reminder_says_why_and_has_no_buttons():
    post = render.direct_reminder(sample(), timedelta(hours=1), "UTC")
    text = console_render(post, 1, "@dee")
    assert text.startswith("#1 [direct to dee]")
    assert "asked to be reminded" in text
    assert post.buttons == [] and post.mentions == []


def test_the_add_form_fits_a_slack_modal():
    view = slack_form(add_form("Europe/London"))
    assert view["type"] == "modal"
    ids = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert ids == ["title", "start", "tz", "location", "description"]


# --- Discord ------------------------------------------------------------------------------


async def test_discord_shows_times_per_reader_with_buttons_and_the_ics_file():
    from adapters.discord.render import render as discord_render

    post = render.announcement(sample(), Counts(going=2), "UTC", ics=b"BEGIN:VCALENDAR")
    shown = discord_render(post)
    embed = shown.embeds[0]
    when = next(f.value for f in embed.fields if f.name == "WHEN")
    assert f"<t:{TS}:F>" in when and f"<t:{TS}:R>" in when
    assert "09:00–17:00 Europe/London" in when
    everything = str(embed.to_dict())
    assert "@everyone" not in everything and "<@U123>" not in everything
    buttons = [getattr(item, "item", item) for item in shown.view.children]
    assert [b.label for b in buttons] == ["Going", "Going + remind me", "Interested", "Not going"]
    assert all("5:" in b.custom_id for b in buttons)
    assert [f.filename for f in shown.files] == ["event-5.ics"]
    assert shown.allowed_mentions.users is False and shown.allowed_mentions.everyone is False


async def test_discord_reminder_pings_nobody():
    from adapters.discord.render import render as discord_render

    post = render.reminder(sample(), timedelta(hours=1), "UTC")
    shown = discord_render(post)
    assert not shown.content
    assert shown.allowed_mentions.users is False and shown.allowed_mentions.everyone is False
    assert f"<t:{TS}:R>" in shown.embeds[0].description


async def test_the_add_form_fits_a_discord_modal():
    from adapters.discord.views import FormModal

    modal = FormModal(add_form("Europe/London"), "event-form")
    assert len(modal.children) == 5  # Discord's most
