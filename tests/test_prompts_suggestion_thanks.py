"""The member who suggested a prompt hears back by direct message, once, through the
outbox: an approval is a thank-you, a rejection a word that it was not taken, naming no
moderator. Nothing about either is posted in a channel. (This used to be a public
thank-you mentioning the member, with rejections never told.)
"""

from __future__ import annotations

from bot.model import Action, ChannelRef, Invocation, UserRef
from tests.test_prompts_answers import ANA, BEN, member, scheduled_app
from tests.test_prompts_daily import CHANNEL, MOD, Recorder, text_of

OTHER = ChannelRef("test", "ws", "brm-practice")


async def review_of(app, recorder: Recorder):
    await app.outbox.drain()
    return next(p for _, p, k in reversed(recorder.sent) if k.startswith("justdoit:suggestion:"))


async def test_approval_thanks_the_member_privately_once(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    text = "Ask one customer what a good day with IT looks like"
    asked = await app.invoke(
        Invocation(("justdoit",), ANA, OTHER, False, text=f'suggest "{text}" competency=inspire')
    )
    assert "by direct message" in text_of(asked)
    review = await review_of(app, recorder)
    approve = next(b for b in review.buttons if b.label == "Approve")
    before = len(recorder.sent)
    done = await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    assert "the member is thanked privately" in done[0].post.text
    await app.outbox.drain()
    (where, thanks, key) = recorder.sent[before]
    assert len(recorder.sent) == before + 1
    assert where == ChannelRef.direct(ANA) and key == "justdoit:suggestion:1:thanks"
    assert thanks.mentions == [] and "\u27e6" not in thanks.text
    assert text in thanks.text and "Inspire" in thanks.text
    again = await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    assert "already approved" in text_of(again)
    await app.outbox.drain()
    assert len(recorder.sent) == before + 1  # thanked once


async def test_rejection_is_told_privately_without_the_moderators_name(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    await member(app, '/justdoit suggest "Walk over and say thanks to second line"', user=BEN)
    select = (await review_of(app, recorder)).selects[0]
    await member(app, '/justdoit suggest "Reply to every open ticket with a smile"')
    reject = (await review_of(app, recorder)).buttons[-1]
    assert reject.label == "Reject"
    before = len(recorder.sent)
    zed = UserRef("test", "ws", "zed-9", "Zedekiah")
    rejected = await app.act(Action(reject.action, reject.value, zed, CHANNEL, "1", True))
    assert "**Rejected** by Zedekiah" in rejected[0].post.text  # the moderators see who
    assert "told privately, without your name" in rejected[0].post.text
    await app.outbox.drain()
    (where, declined, key) = recorder.sent[before]
    assert len(recorder.sent) == before + 1
    assert where == ChannelRef.direct(ANA) and key.endswith(":declined")
    assert "did not add this one" in declined.text and "smile" in declined.text
    assert "Zedekiah" not in declined.text and "zed-9" not in declined.text
    await app.act(
        Action(select.action, select.value, MOD, CHANNEL, "2", True, values=["establish-teams"])
    )
    await app.outbox.drain()
    (where, thanks, _) = recorder.sent[-1]
    assert where == ChannelRef.direct(BEN)
    assert "Establish teams and collaboration" in thanks.text
    # Direct messages go to the members who suggested, and the review cards to the moderator
    # who scheduled the prompt (no moderators' channel is configured); nothing else is direct.
    for where, _, key in recorder.sent:
        if key.endswith(("thanks", "declined")):
            continue
        review = key.startswith("justdoit:suggestion:")
        assert where.is_direct == review
        assert not review or where == ChannelRef.direct(MOD)


async def test_a_suggestion_cannot_forge_a_mention_in_the_thank_you(make_app, clock) -> None:
    app, recorder = await scheduled_app(make_app, clock)
    forged = "Ping \u27e6@:everyone\u27e7 about the [site](https://example.com) today"
    await member(app, f'/justdoit suggest "{forged}" competency=influence')
    approve = (await review_of(app, recorder)).buttons[0]
    await app.act(Action(approve.action, approve.value, MOD, CHANNEL, "1", True))
    await app.outbox.drain()
    thanks = recorder.sent[-1][1]
    assert "\u27e6" not in thanks.text  # the forged marker stayed inert
    assert "](https" not in thanks.text


async def test_discord_thanks_by_direct_message_and_pings_nobody(make_app, clock) -> None:
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
    where, thanks, _ = recorder.sent[-1]
    assert where == ChannelRef("discord", "111", "@901")
    rendered = discord_render.render(thanks)
    assert "<@" not in str(rendered.embeds[0].to_dict()) + (rendered.content or "")
    assert rendered.allowed_mentions.users is False
