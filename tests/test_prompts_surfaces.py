"""Today's prompt on each surface: rendered with its "I did it" button, and the button's
round trip (press -> form -> answer) through each platform's own payload shapes.
"""

from __future__ import annotations

from adapters.console import Console
from adapters.slack import render as slack_render
from adapters.slack import translate as slack
from bot.model import Action, ChannelRef, Invocation, OpenForm, Public, Submission, UserRef
from tests.test_prompts_daily import Recorder

SLACK_CHANNEL = ChannelRef("slack", "T1", "C1")


async def test_slack_renders_the_prompt_and_the_button_answers(make_app, clock) -> None:
    recorder = Recorder()
    recorder.platform = "slack"
    app = await make_app()
    app.outbox.attach(recorder)
    mod = UserRef("slack", "T1", "UMOD", "mo")
    await app.invoke(
        Invocation(("justdoit",), mod, SLACK_CHANNEL, True, text="schedule time=08:30 tz=UTC")
    )
    await app.invoke(Invocation(("justdoit",), mod, SLACK_CHANNEL, True, text="today"))
    await app.outbox.drain()
    (_, post, _) = recorder.sent[-1]
    message = slack_render.render(post)
    assert "Just do it" in message["text"]
    buttons = [
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    button = next(b for b in buttons if b["text"]["text"] == "I did it")
    assert button["value"] == "2026-11-23"
    assert "Tell one colleague outside IT" in str(message["blocks"])

    pressed = slack.action(
        {
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": "U2", "username": "ana", "team_id": "T1"},
            "channel": {"id": "C1"},
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
            "actions": [{"action_id": button["action_id"], "value": button["value"]}],
        }
    )
    opened = await app.act(pressed)
    assert isinstance(opened[0], OpenForm)
    form = opened[0].form
    view = slack_render.render_form(form, slack.form_metadata(form.value, SLACK_CHANNEL, "1.2"))
    select = next(b for b in view["blocks"] if b["block_id"] == "competency")
    assert select["element"]["initial_option"]["value"] == "inspire"
    submitted = slack.submission(
        {
            "type": "view_submission",
            "team": {"id": "T1"},
            "user": {"id": "U2", "username": "ana", "team_id": "T1"},
            "view": {
                "callback_id": view["callback_id"],
                "private_metadata": view["private_metadata"],
                "state": {
                    "values": {
                        "what": {
                            "what": {"type": "plain_text_input", "value": "Said <!here> thanks"}
                        },
                        "competency": {
                            "competency": {
                                "type": "static_select",
                                "selected_option": {"value": "influence"},
                            }
                        },
                    }
                },
            },
        }
    )
    replies = await app.submit(submitted)
    public = next(r for r in replies if isinstance(r, Public))
    shown = slack_render.render(public.post)
    assert "ana" in str(shown["blocks"])
    assert "<!here>" not in str(shown)  # a member cannot ping the channel through an answer
    answers = await app.features["justdoit"].store.member_answers(
        SLACK_CHANNEL, UserRef("slack", "T1", "U2")
    )
    assert [(a.text, a.competency) for a in answers] == [("Said <!here> thanks", "influence")]


async def test_console_shows_the_button_and_the_form(make_app) -> None:
    app = await make_app()
    out: list[str] = []
    console = Console(app, write=out.append)
    await console.handle("@mod! /justdoit today")
    await console.handle("@ana click 2 I did it")
    await console.handle('@ana form what="Asked the customer first" competency=inspire')
    await console.handle("@ana /justdoit stats")
    text = "\n".join(out)
    assert "[I did it]" in text
    assert "Form: What did you do?" in text
    assert "ana did it: Asked the customer first" in text
    assert "Your streak: 1 day (best 1)" in text


async def test_discord_renders_the_prompt_and_the_button_answers(make_app, clock) -> None:
    from adapters.discord import render as discord_render
    from adapters.discord.views import COMPONENT_TEMPLATE, FormMemory, build_modal, modal_values

    channel = ChannelRef("discord", "111", "222")
    recorder = Recorder()
    recorder.platform = "discord"
    app = await make_app()
    app.outbox.attach(recorder)
    mod = UserRef("discord", "111", "900", "mo")
    await app.invoke(Invocation(("justdoit",), mod, channel, True, text="today"))
    await app.outbox.drain()
    (_, post, _) = recorder.sent[-1]
    rendered = discord_render.render(post)
    embed = rendered.embeds[0].to_dict()
    assert embed["title"] == "Just do it · Inspire"
    assert "Tell one colleague outside IT" in embed["description"]
    assert rendered.view is not None
    (button,) = [c for row in rendered.view.to_components() for c in row["components"]]
    assert button["label"] == "I did it"
    routed = COMPONENT_TEMPLATE.fullmatch(button["custom_id"])
    assert routed is not None
    assert (routed["action"], routed["value"]) == ("justdoit.did", "2026-11-23")

    ana = UserRef("discord", "111", "901", "ana")
    opened = await app.act(Action(routed["action"], routed["value"], ana, channel, "5"))
    modal = build_modal(opened[0].form, FormMemory())
    assert modal.custom_id == "itsmf:justdoit.answer:2026-11-23"
    values = modal_values(
        [
            {"type": 1, "components": [{"type": 4, "custom_id": "what", "value": "@everyone hi"}]},
            {
                "type": 18,
                "component": {"type": 3, "custom_id": "competency", "values": ["inspire"]},
            },
        ]
    )
    replies = await app.submit(Submission("justdoit.answer", "2026-11-23", values, ana, channel))
    public = next(r for r in replies if isinstance(r, Public))
    shown = discord_render.render(public.post)
    assert "@everyone" not in str(shown.embeds[0].to_dict())
    assert shown.allowed_mentions.everyone is False


def test_discord_fits_the_suggestion_review() -> None:
    from adapters.discord import render as discord_render
    from bot.prompts.suggestions import review_post

    rendered = discord_render.render(review_post(7, "ana", "Ask a customer first", "inspire"))
    rows = rendered.view.to_components()
    ids = [c["custom_id"] for row in rows for c in row["components"]]
    assert ids == [
        "itsm:justdoit.approve:7",
        "itsm:justdoit.reject:7",
        "itsm:justdoit.approve_as:7",
    ]
    assert "do not fit" not in rendered.embeds[0].to_dict()["description"]
