"""Pure rendering of a Post for Discord: every limit, visible truncation, mention safety."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import discord

from adapters.discord.render import ZWSP, render
from adapters.discord.transport import marker
from bot.model import (
    Attachment,
    Button,
    Field,
    Post,
    Select,
    SelectOption,
    UserRef,
    inert,
    mention_tag,
    time_tag,
)

MOMENT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def embed_of(post: Post) -> dict[str, Any]:
    (embed,) = render(post).embeds
    return embed.to_dict()  # type: ignore[return-value]


def embed_total(embed: dict[str, Any]) -> int:
    fields = sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    footer = len(embed.get("footer", {}).get("text", ""))
    return len(embed.get("title", "")) + len(embed.get("description", "")) + fields + footer


def components(post: Post) -> list[dict[str, Any]]:
    view = render(post).view
    assert view is not None
    return view.to_components()


# --- Limits -------------------------------------------------------------------------------


def test_short_post_is_one_embed_with_link_colour_timestamp_and_image() -> None:
    post = Post(
        title="ITIL 4 update",
        url="https://example.org/a",
        text="**New** practice guide, see [the post](https://example.org/p)",
        color=0x123456,
        timestamp=MOMENT,
        image="https://example.org/i.png",
        footer="ITSM Review",
    )
    rendered = render(post)
    embed = embed_of(post)
    assert rendered.content == "" and rendered.view is None and rendered.files == []
    assert embed["title"] == "ITIL 4 update" and embed["url"] == "https://example.org/a"
    assert embed["description"] == "**New** practice guide, see [the post](https://example.org/p)"
    assert embed["color"] == 0x123456 and embed["image"] == {"url": "https://example.org/i.png"}
    assert embed["timestamp"].startswith("2026-12-01T18:00:00")
    assert embed["footer"] == {"text": "ITSM Review"}


def test_title_and_description_are_cut_visibly_at_their_limits() -> None:
    embed = embed_of(Post(title="T" * 300, text="d" * 5000))
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert len(embed["description"]) == 4096 and embed["description"].endswith("…")


def test_fields_are_cut_to_256_and_1024_and_the_6000_total_says_what_is_left_out() -> None:
    fields = [Field(f"name {i} " + "n" * 300, "v" * 2000) for i in range(30)]
    embed = embed_of(Post(fields=fields))
    shown = embed["fields"]
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in shown)
    assert shown[0]["name"].endswith("…") and shown[0]["value"].endswith("…")
    assert embed_total(embed) <= 6000
    hidden = 30 - (len(shown) - 1)
    assert shown[-1] == {"name": "…", "value": f"{hidden} more not shown", "inline": False}


def test_at_most_25_fields_the_last_saying_how_many_more() -> None:
    embed = embed_of(Post(fields=[Field(f"f{i}", f"v{i}") for i in range(30)]))
    shown = embed["fields"]
    assert len(shown) == 25
    assert [f["name"] for f in shown[:24]] == [f"f{i}" for i in range(24)]
    assert shown[-1]["value"] == "6 more not shown"
    assert len(embed_of(Post(fields=[Field(f"f{i}", "v") for i in range(25)]))["fields"]) == 25


def test_embed_total_stays_within_6000() -> None:
    fields = [Field(f"f{i}", "v" * 1024) for i in range(10)]
    embed = embed_of(Post(title="t" * 256, text="x" * 4096, fields=fields, footer="f" * 500))
    assert embed_total(embed) <= 6000
    assert embed["description"].endswith("…")


def test_empty_field_parts_get_a_placeholder_discord_accepts() -> None:
    (field,) = embed_of(Post(fields=[Field("", "")]))["fields"]
    assert field["name"] == ZWSP and field["value"] == ZWSP


def test_buttons_go_five_a_row_labels_cut_to_80_and_excess_is_said() -> None:
    buttons = [Button("L" * 100 if i == 0 else f"b{i}", "poll.vote", str(i)) for i in range(27)]
    post = Post(text="Pick", buttons=buttons)
    rows = components(post)
    assert len(rows) == 5
    assert [len(r["components"]) for r in rows] == [5, 5, 5, 5, 5]
    first = rows[0]["components"][0]
    assert len(first["label"]) == 80 and first["label"].endswith("…")
    assert first["custom_id"] == "itsm:poll.vote:0"
    assert "2 more choice(s) do not fit" in embed_of(post)["description"]


def test_selects_take_a_row_each_with_25_options_and_valid_bounds() -> None:
    options = [SelectOption(f"Option {i}" + "x" * 120, f"v{i}", "d" * 150) for i in range(30)]
    post = Post(
        text="Choose",
        buttons=[Button("Skip", "survey.skip", "1")],
        selects=[
            Select("survey.answer", options, placeholder="p" * 200, max_values=40, value="q1")
        ],
    )
    rows = components(post)
    assert [c["type"] for r in rows for c in r["components"]] == [2, 3]
    select = rows[1]["components"][0]
    assert select["custom_id"] == "itsm:survey.answer:q1"
    assert len(select["options"]) == 25 and select["max_values"] == 25
    assert len(select["placeholder"]) == 150
    assert all(len(o["label"]) <= 100 and len(o["description"]) <= 100 for o in select["options"])
    assert "5 more choice(s)" in embed_of(post)["description"]


def test_link_buttons_open_urls_and_duplicate_actions_get_distinct_ids() -> None:
    post = Post(
        buttons=[
            Button("Read", url="https://example.org/x", style="link"),
            Button("Yes", "rsvp.going", "e1"),
            Button("Yes again", "rsvp.going", "e1"),
            Button("Bad link", url="javascript:alert(1)", style="link"),
        ]
    )
    (row,) = components(post)
    link, yes, again, bad = row["components"]
    assert link["style"] == 5 and link["url"] == "https://example.org/x" and "custom_id" not in link
    assert yes["custom_id"] == "itsm:rsvp.going:e1"
    assert again["custom_id"] == "itsm:rsvp.going~2:e1"
    assert bad["disabled"] is True and "url" not in bad


def test_custom_id_over_100_characters_gives_a_disabled_button_not_a_failure() -> None:
    (row,) = components(Post(buttons=[Button("Too long", "feed.open", "v" * 120)]))
    (button,) = row["components"]
    assert button["disabled"] is True and len(button["custom_id"]) <= 100


def test_attachments_become_files() -> None:
    rendered = render(Post(text="Results", attachments=[Attachment("r.csv", b"a,b\n1,2\n")]))
    (file,) = rendered.files
    assert file.filename == "r.csv" and file.fp.read() == b"a,b\n1,2\n"


# --- Times and markdown -----------------------------------------------------------------


def test_times_become_discord_timestamps_where_rendered_and_local_text_elsewhere() -> None:
    post = Post(
        title=f"Meetup {time_tag(MOMENT, 'd')}",
        text=f"Starts {time_tag(MOMENT, 'F')} ({time_tag(MOMENT, 'R')})",
        fields=[Field("When", time_tag(MOMENT, "t"))],
        footer=f"Posted {time_tag(MOMENT)}",
        zone="Europe/London",
    )
    embed = embed_of(post)
    unix = int(MOMENT.timestamp())
    assert embed["description"] == f"Starts <t:{unix}:F> (<t:{unix}:R>)"
    assert embed["fields"][0]["value"] == f"<t:{unix}:t>"
    assert embed["title"] == "Meetup 01 Dec 2026"
    assert embed["footer"]["text"] == "Posted Tue 01 Dec 2026 18:00 GMT"


def test_discord_only_markdown_from_outside_is_shown_literally() -> None:
    text = "# Heading\n> quote\n-# small\n~~gone~~ ||secret|| __under__ *lone* **bold** _it_ `a*b`"
    embed = embed_of(Post(text=text))
    assert embed["description"] == (
        "\\# Heading\n\\> quote\n\\-# small\n\\~\\~gone\\~\\~ \\|\\|secret\\|\\| "
        "\\_\\_under\\_\\_ \\*lone\\* **bold** _it_ `a*b`"
    )


# --- Mention safety ---------------------------------------------------------------------


HOSTILE = "@everyone @here @EVERYONE <@123> <@!123> <@&456> <#789> hi"


def test_nothing_from_content_can_ping() -> None:
    post = Post(
        title=HOSTILE,
        text=HOSTILE,
        fields=[Field(HOSTILE, HOSTILE)],
        footer=HOSTILE,
        buttons=[Button(HOSTILE, "x.y", "1")],
    )
    rendered = render(post)
    assert rendered.content == ""
    assert rendered.allowed_mentions.to_dict() == {"parse": []}
    embed = rendered.embeds[0].to_dict()
    texts = [
        embed["title"],
        embed["description"],
        embed["fields"][0]["name"],
        embed["fields"][0]["value"],
        embed["footer"]["text"],
        components(post)[0]["components"][0]["label"],
    ]
    for text in texts:
        for live in ("@everyone", "@here", "@EVERYONE", "<@123>", "<@!123>", "<@&456>", "<#789>"):
            assert live not in text, (live, text)
    assert f"@{ZWSP}everyone" in embed["description"]
    assert f"<{ZWSP}@&456>" in embed["description"]


def test_only_the_listed_member_is_pinged_and_forged_markers_stay_text() -> None:
    alice = UserRef("discord", "1", "111")
    bob = UserRef("discord", "1", "222")
    forged = inert(mention_tag(bob))  # what a feed item containing a marker becomes
    post = Post(
        text=f"{mention_tag(alice)} and {mention_tag(bob)} said {forged}",
        mentions=["111", "not-an-id"],
    )
    rendered = render(post)
    assert rendered.content == "<@111>"
    assert rendered.allowed_mentions.to_dict() == {"parse": [], "users": [111]}
    description = rendered.embeds[0].description or ""
    assert description.startswith("<@111> and @222 said [@:222]")
    assert "<@222>" not in description


def test_marker_is_invisible_and_fits_within_the_limits() -> None:
    mark = marker("feed:1")
    assert mark == marker("feed:1") and mark != marker("feed:2")
    assert all(ch in "\u200b\u200c\u2060" for ch in mark)
    embed = render(Post(text="x" * 5000), marker=mark).embeds[0].to_dict()
    assert len(embed["description"]) == 4096 and embed["description"].endswith("…" + mark)
    only_file = render(Post(attachments=[Attachment("a.txt", b"a")]), marker=mark)
    assert only_file.embeds == [] and only_file.content == mark


def test_message_kwargs_leave_out_what_is_not_there() -> None:
    kwargs = render(Post(text="hello")).message_kwargs()
    assert set(kwargs) == {"content", "embeds", "allowed_mentions"}
    assert kwargs["content"] is None
    assert isinstance(kwargs["allowed_mentions"], discord.AllowedMentions)
