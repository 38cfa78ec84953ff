"""The member who suggested a prompt hears back: an approval is a public thank-you that
mentions them in the channel where they suggested it (once, through the outbox); a
rejection is never announced.
"""

from __future__ import annotations

from bot.model import Action, ChannelRef, Invocation, UserRef, mention_tag
from tests.test_prompts_answers import ANA, BEN, member, scheduled_app
from tests.test_prompts_daily import CHANNEL, MOD, Recorder, text_of

OTHER = ChannelRef("test", "ws", "brm-practice")


async def review_of(app, recorder: Recorder):
    await app.outbox.drain()
    return next(p for _, p, k in reversed(recorder.sent) if k.startswith("justdoit:suggestion:"))


async def test_approval_thanks_the_member_where_they_suggested(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    text = "Ask one customer what a good day with IT looks like"
    asked = await app.invoke(
        Invocation(("justdoit",), ANA, OTHER, False, text=f'suggest "{text}" competency=inspire')
    )
    assert "I will thank you here in #brm-practice" in text_of(asked)
    review = await review_of(app, recorder)
    approve = next(b for b in review.buttons if b.label == "Approve")
    before = len(recorder.sent)
    done = await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    assert "with a thank-you in #brm-practice" in done[0].post.text
    await app.outbox.drain()
    (where, thanks, key) = recorder.sent[before]
    assert len(recorder.sent) == before + 1
    assert where == OTHER and key.endswith(":thanks")
    assert mention_tag(ANA) in thanks.text and thanks.mentions == ["ana"]
    assert text in thanks.text and "Inspire" in thanks.text
    again = await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    assert "already approved" in text_of(again)
    await app.outbox.drain()
    assert len(recorder.sent) == before + 1  # thanked once


async def test_approval_with_the_select_thanks_too_and_rejection_stays_quiet(
    make_app, clock
) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    await member(app, '/justdoit suggest "Walk over and say thanks to second line"', user=BEN)
    select = (await review_of(app, recorder)).selects[0]
    await member(app, '/justdoit suggest "Reply to every open ticket with a smile"')
    reject = (await review_of(app, recorder)).buttons[-1]
    assert reject.label == "Reject"
    before = len(recorder.sent)
    rejected = await app.act(Action(reject.action, reject.value, MOD, CHANNEL, "1", True))
    assert "**Rejected** by Mo" in rejected[0].post.text
    assert "thank-you" not in rejected[0].post.text
    await app.outbox.drain()
    assert len(recorder.sent) == before  # nothing public about a rejection
    await app.act(
        Action(select.action, select.value, MOD, CHANNEL, "2", True, values=["establish-teams"])
    )
    await app.outbox.drain()
    (where, thanks, _) = recorder.sent[-1]
    assert where == CHANNEL
    assert mention_tag(BEN) in thanks.text and thanks.mentions == ["ben"]
    assert "Establish teams and collaboration" in thanks.text
    assert mention_tag(ANA) not in str([p.text for _, p, _ in recorder.sent])


async def test_a_suggestion_cannot_forge_a_mention_in_the_thank_you(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    forged = "Ping \u27e6@:everyone\u27e7 about the [site](https://example.com) today"
    await member(app, f'/justdoit suggest "{forged}" competency=influence')
    approve = (await review_of(app, recorder)).buttons[0]
    await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    await app.outbox.drain()
    thanks = recorder.sent[-1][1]
    assert thanks.text.count("\u27e6") == 1  # only the deliberate mention of Ana
    assert "](https" not in thanks.text


async def test_discord_pings_only_the_member_thanked(make_app, clock) -> None:
    from adapters.discord import render as discord_render

    channel = ChannelRef("discord", "111", "222")
    ana = UserRef("discord", "111", "901", "ana")
    recorder = Recorder()
    recorder.platform = "discord"
    app = await make_app()
    app.outbox.attach(recorder)
    await app.invoke(
        Invocation(
            ("justdoit",),
            ana,
            channel,
            False,
            text='suggest "Thank a colleague today" competency=inspire',
        )  # fmt: skip
    )
    await app.outbox.drain()
    approve = recorder.sent[-1][1].buttons[0]
    mod = UserRef("discord", "111", "900", "mo")
    await app.act(Action(approve.action, approve.value, mod, channel, "5", True))
    await app.outbox.drain()
    rendered = discord_render.render(recorder.sent[-1][1])
    assert "<@901>" in str(rendered.embeds[0].to_dict()) + (rendered.content or "")
    assert [u.id for u in rendered.allowed_mentions.users] == [901]
