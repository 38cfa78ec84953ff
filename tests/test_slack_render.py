"""Pure tests of Post/Form -> Block Kit and Slack payload -> core requests (no network)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.slack import render as r
from adapters.slack import translate as t
from bot.model import (
    Button,
    ChannelRef,
    Field,
    Form,
    FormField,
    Post,
    Select,
    SelectOption,
    UserRef,
    inert,
    mention_tag,
    time_tag,
)
from tests.fakes.fake_slack import (
    block_actions_payload,
    slash_command_payload,
    view_submission_payload,
)

MOMENT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
HOSTILE = (
    "<!channel> <!here> <!everyone> @here @channel <@U123> <!subteam^S1|@mods> "
    "<https://evil.example|click> & [x](javascript:alert(1)) &lt;!here&gt;"
)


def _texts(node: Any) -> list[str]:
    """Every string Slack will show from a rendered message or view."""
    if isinstance(node, dict):
        return [s for k, v in node.items() if k in ("text", "blocks", "elements", "fields",
                "label", "title", "submit", "close", "options", "placeholder", "alt_text",
                "description") or isinstance(v, dict | list) for s in _texts(v)]  # fmt: skip
    if isinstance(node, list):
        return [s for item in node for s in _texts(item)]
    return [node] if isinstance(node, str) else []


def _tags(text: str) -> list[str]:
    return re.findall(r"<[^>]*>", text)


# --------------------------------------------------------------------------- escaping


def test_hostile_text_can_neither_ping_nor_link_anywhere() -> None:
    post = Post(
        title=HOSTILE,
        text=HOSTILE,
        fields=[Field(HOSTILE, HOSTILE), Field("wide", HOSTILE, inline=False)],
        footer=HOSTILE,
        buttons=[Button(HOSTILE, "x.y", "1")],
        selects=[Select("x.z", [SelectOption(HOSTILE, "v", HOSTILE)], placeholder=HOSTILE)],
    )
    message = r.render(post)

    shown = _texts(message)
    assert len(shown) >= 8
    for text in shown:
        assert _tags(text) == [], text
        assert "@here" not in text and "@channel" not in text
        assert re.search(r"&(?!amp;|lt;|gt;)", text) is None, text  # every & is escaped
    assert "&amp;lt;!here&amp;gt;" in message["blocks"][1]["text"]["text"]


def test_only_the_cores_own_links_mentions_and_times_become_tags() -> None:
    text = (
        f"**New** [the article](https://example.org/a?x=1&y=2) by {mention_tag(UserRef('slack', 'T1', 'U42'))} "
        f"at {time_tag(MOMENT)} {inert(chr(0x27E6) + '@:U999' + chr(0x27E7))}"
    )
    post = Post(text=text, zone="Europe/London", mentions=["U42"])
    section = r.render(post)["blocks"][0]["text"]["text"]

    assert _tags(section) == [
        "<https://example.org/a?x=1&amp;y=2|the article>",
        "<@U42>",
        f"<!date^{int(MOMENT.timestamp())}^{{date_short_pretty}} {{time}}|Sat 05 Dec 2026 09:30 GMT>",
    ]
    assert section.startswith("*New*")
    assert "[@:U999]" in section  # a forged marker stays text
    # A mention marker of a member the post does not list is a name, as on Discord.
    unlisted = r.render(Post(text=text))["blocks"][0]["text"]["text"]
    assert "<@U42>" not in unlisted and "@U42" in unlisted


@pytest.mark.parametrize(
    ("style", "slack_format", "fallback"),
    [
        ("d", "{date_short_pretty}", "05 Dec 2026"),
        ("t", "{time}", "04:30"),
        ("F", "{date_long_pretty} {time}", "Saturday 05 December 2026 04:30 EST"),
        ("R", "{ago}", "05 Dec 2026 04:30 EST"),
    ],
)
def test_time_styles_are_shown_in_each_readers_zone(
    style: str, slack_format: str, fallback: str
) -> None:
    """Slack localises the token per reader; the fallback is in the post's zone."""
    shown = r.mrkdwn(time_tag(MOMENT, style), "America/New_York")
    assert shown == f"<!date^{int(MOMENT.timestamp())}^{slack_format}|{fallback}>"


def test_markdown_subset_becomes_mrkdwn() -> None:
    text = "**Bold** and _italic_ and `code`\n- one\n- two"
    assert r.mrkdwn(text) == "*Bold* and _italic_ and `code`\n• one\n• two"


def test_fallback_text_is_escaped_too_and_never_empty() -> None:
    assert r.render(Post(title="<!channel> & co"))["text"] == "&lt;!channel&gt; &amp; co"
    assert r.render(Post(buttons=[Button("Go", "a.b")]))["text"] == "Message"


# --------------------------------------------------------------------------- limits


def test_section_text_is_cut_at_3000_with_a_visible_ellipsis() -> None:
    section = r.render(Post(text="word " * 1000))["blocks"][0]["text"]["text"]
    assert len(section) <= r.SECTION_TEXT
    assert section.endswith("…")


def test_a_cut_never_leaves_half_a_link_or_entity() -> None:
    link = "[label](https://example.org/" + "p" * 100 + ")"
    for pad in range(2900, 3000, 7):
        section = r.cut(r.mrkdwn("a" * pad + link + " & more"), r.SECTION_TEXT)
        assert section.endswith("…") and len(section) <= r.SECTION_TEXT
        assert section.count("<") == section.count(">")
        assert re.search(r"&[a-z]*…$", section) is None


def test_header_is_cut_at_150_and_a_linked_title_keeps_its_link() -> None:
    header = r.render(Post(title="T" * 400))["blocks"][0]
    assert header["type"] == "header"
    assert len(header["text"]["text"]) == r.HEADER_TEXT
    assert header["text"]["text"].endswith("…")

    linked = r.render(Post(title="Read me", url="https://example.org/x"))["blocks"][0]
    assert linked["text"]["text"] == "*<https://example.org/x|Read me>*"


def test_a_linked_title_holds_no_other_tag_and_fits_its_section() -> None:
    title = f"[x](https://evil.example) | {mention_tag(UserRef('slack', 'T1', 'U42'))} {time_tag(MOMENT)}"
    block = r.render(Post(title=title, url="https://example.org/a"))["blocks"][0]

    # The title names another address than the one it links to: it is not a link, and
    # the real address is shown beside it.
    assert _tags(block["text"]["text"]) == ["<https://example.org/a>"]
    assert block["text"]["text"].startswith("*x (https://evil.example) ¦ @U42 Sat 05 Dec")
    honest = f"x | {mention_tag(UserRef('slack', 'T1', 'U42'))} {time_tag(MOMENT)}"
    block = r.render(Post(title=honest, url="https://example.org/a"))["blocks"][0]
    assert _tags(block["text"]["text"]) == [
        "<https://example.org/a|x ¦ @U42 Sat 05 Dec 2026 09:30 UTC>"
    ]

    long_url = "https://example.org/" + "&" * 1000
    (header,) = r.render(Post(title="Too long to link", url=long_url))["blocks"]
    assert header == {"type": "header", "text": r.plain_text("Too long to link", r.HEADER_TEXT)}


def test_fields_are_cut_at_2000_and_ten_to_a_section() -> None:
    fields = [Field(f"f{n}", "v" * 2500) for n in range(13)] + [Field("wide", "w", inline=False)]
    blocks = r.render(Post(fields=fields))["blocks"]

    assert [len(b.get("fields", [])) for b in blocks] == [10, 3, 0]
    assert all(
        len(f["text"]) <= r.FIELD_TEXT and f["text"].endswith("…") for f in blocks[0]["fields"]
    )
    assert blocks[2]["text"]["text"] == "*wide*\nw"


def test_buttons_are_25_to_an_actions_block_with_labels_cut_at_75() -> None:
    buttons = [Button("L" * 100, "poll.vote", str(n)) for n in range(30)]
    blocks = r.render(Post(text="vote", buttons=buttons))["blocks"]
    actions = [b for b in blocks if b["type"] == "actions"]

    assert [len(a["elements"]) for a in actions] == [25, 5]
    ids = [e["action_id"] for a in actions for e in a["elements"]]
    assert len(set(ids)) == 30 and {t.core_action(i) for i in ids} == {"poll.vote"}
    label = actions[0]["elements"][0]["text"]["text"]
    assert len(label) == r.BUTTON_LABEL and label.endswith("…")


def test_button_styles_and_link_buttons() -> None:
    buttons = [
        Button("Yes", "a.b", style="success"),
        Button("No", "a.b", style="danger"),
        Button("Read", style="link", url="https://example.org"),
    ]
    elements = r.render(Post(buttons=buttons))["blocks"][0]["elements"]
    assert [e.get("style") for e in elements] == ["primary", "danger", None]
    assert elements[2]["url"] == "https://example.org"
    with pytest.raises(ValueError):
        r.render(Post(buttons=[Button("Bad", style="link", url="javascript:alert(1)")]))


def test_never_more_than_50_blocks_and_the_cut_is_announced() -> None:
    fields = [Field(f"f{n}", "v", inline=False) for n in range(80)]
    blocks = r.render(
        Post(title="Many", fields=fields, buttons=[Button("Go", "a.b")], footer="end")
    )["blocks"]

    assert len(blocks) == r.MAX_BLOCKS
    assert blocks[-1]["type"] == "context" and blocks[-2]["type"] == "actions"
    notice = blocks[-3]["elements"][0]["text"]
    assert notice.startswith("…") and "34 more" in notice  # 81 body blocks, 47 kept


def test_selects_carry_their_context_and_respect_option_limits() -> None:
    options = [SelectOption("O" * 90, f"v{n}") for n in range(120)]
    single, multi = r.render(
        Post(
            selects=[
                Select("poll.pick", options, value="poll-7"),
                Select("poll.many", options[:3], max_values=2),
            ]
        )
    )["blocks"]

    element = single["elements"][0]
    assert element["type"] == "static_select" and len(element["options"]) == r.OPTIONS_PER_SELECT
    assert len(element["options"][0]["text"]["text"]) == r.OPTION_TEXT
    assert t.select_value(single["block_id"]) == "poll-7"
    assert multi["elements"][0]["type"] == "multi_static_select"
    assert multi["elements"][0]["max_selected_items"] == 2
    with pytest.raises(ValueError, match="150"):
        r.render(Post(selects=[Select("a.b", [SelectOption("x", "v" * 151)])]))


def test_images_only_from_web_addresses() -> None:
    assert r.render(Post(title="Chart", image="https://example.org/c.png"))["blocks"][1] == {
        "type": "image",
        "image_url": "https://example.org/c.png",
        "alt_text": "Chart",
    }
    assert len(r.render(Post(title="x", image="file:///etc/passwd"))["blocks"]) == 1


def test_form_becomes_a_modal_within_limits() -> None:
    form = Form(
        "feeds.suggest",
        "Suggest a feed for the community",
        [
            FormField("url", "Feed URL", placeholder="https://…", max_length=9000),
            FormField("why", "Why", kind="paragraph", required=False, default="because"),
            FormField(
                "kind",
                "Kind",
                kind="select",
                default="b",
                options=[SelectOption("A", "a"), SelectOption("B", "b")],
            ),
        ],  # fmt: skip
        submit_label="Send",
    )
    view = r.render_form(form, '{"v":"1"}')

    assert view["callback_id"] == "feeds.suggest" and view["private_metadata"] == '{"v":"1"}'
    assert view["title"]["text"] == "Suggest a feed for the…"  # 24 at most, cut at a word
    url, why, kind = view["blocks"]
    assert (url["block_id"], url["element"]["max_length"], url["optional"]) == ("url", 3000, False)
    assert (why["element"]["multiline"], why["element"]["initial_value"]) == (True, "because")
    assert kind["element"]["initial_option"]["value"] == "b"
    with pytest.raises(ValueError, match="context"):
        r.render_form(form, "x" * 3001)


def test_form_errors_only_name_the_modals_inputs() -> None:
    view = {
        "blocks": [{"type": "input", "block_id": "title"}, {"type": "input", "block_id": "start"}]
    }
    errors = {"start": "Not a date.", "remind": "Too many.", "end": "Before the start."}

    assert r.form_errors(errors, view) == {
        "start": "Not a date.",
        "title": "Too many. Before the start.",
    }
    assert r.form_errors(errors, {"blocks": [{"type": "section", "block_id": "start"}]}) == {}


# --------------------------------------------------------------------------- translate


def test_slash_command_becomes_an_invocation_with_slacks_escaping_undone() -> None:
    payload = slash_command_payload(
        "/poll", "create q=&quot;a &amp; b&quot; &lt;x&gt; <https://example.org/feed> <@U9|bob>"
    )
    inv = t.invocation(payload, is_moderator=True)

    assert inv.path == ("poll",)
    assert inv.text == "create q=&quot;a & b&quot; <x> https://example.org/feed <@U9|bob>"
    assert inv.user == UserRef("slack", "T1", "U1") and inv.user.name == "member1"
    assert inv.channel == ChannelRef("slack", "T1", "C1")
    assert inv.is_moderator and inv.raw is payload
    assert t.invocation(slash_command_payload("/itsm", "poll")).path == ("help",)


def test_button_click_becomes_an_action_and_links_are_ignored() -> None:
    payload = block_actions_payload("poll.vote#3", "opt-2", user_id="U5", message_ts="17.5")
    action = t.action(payload)

    assert action is not None
    assert (action.action, action.value, action.message_id) == ("poll.vote", "opt-2", "17.5")
    assert (action.user.user, action.channel.channel) == ("U5", "C1")
    assert t.action(block_actions_payload("link#0", "")) is None


def test_select_choice_becomes_an_action_with_values_and_context() -> None:
    payload = block_actions_payload("poll.pick#s0", "")
    chosen = {"type": "static_select", "action_id": "poll.pick#s0",
              "block_id": t.select_block_id(0, "poll-7"), "selected_option": {"value": "v2"}}  # fmt: skip
    payload["actions"] = [chosen]
    action = t.action(payload)

    assert action is not None
    assert (action.action, action.value, action.values) == ("poll.pick", "poll-7", ["v2"])


def test_view_submission_becomes_a_submission_with_its_context() -> None:
    meta = t.form_metadata("poll-7", ChannelRef("slack", "T1", "C3"), "17.5")
    payload = view_submission_payload("feeds.suggest", {"url": "https://x", "note": ""}, meta)
    payload["view"]["state"]["values"]["kind"] = {
        "kind": {"type": "static_select", "selected_option": {"value": "b"}}
    }
    sub = t.submission(payload)

    assert (sub.form, sub.value, sub.channel.channel) == ("feeds.suggest", "poll-7", "C3")
    assert sub.values == {"url": "https://x", "note": "", "kind": "b"}
    assert json.loads(meta)["m"] == "17.5"
