"""The moderators' channel (issue 15): the moderation queue and the bot's notices for
moderators go to `[[community]] moderators`, not the members' channel; without one, to the
moderator who set the job up, by direct message; with nobody known, to the channel itself."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from adapters.console import Console
from bot import config as configuration
from bot.cli import sections
from bot.errors import ConfigError, DeliveryError, Failure
from bot.feeds import Feeds
from bot.help import Help
from bot.model import Action, ChannelRef, Post, UpdateMessage, UserRef, channel_tag
from bot.prompts import JustDoIt
from tests.conftest import ConsoleRun
from tests.fakes import feed_server as fake_feeds
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.test_outbox import Platform

feed_server = fake_feeds.feed_server  # the fixture

GENERAL = ChannelRef("console", "demo", "general")
MODS = ChannelRef("console", "demo", "mods")
COMMUNITY = {
    "name": "itSMF Demo",
    "timezone": "Europe/London",
    "workspaces": ["console:demo"],
    "channels": ["console:demo:general"],
}
WITH_MODS = {"community": [{**COMMUNITY, "moderators": "console:demo:mods"}]}
WITHOUT_MODS = {"community": [COMMUNITY]}
FEEDS = {"feeds": {"allow_private": True, "timeout": 0.5, "jitter": 0, "per_channel_cap": 50}}
LATER = timedelta(hours=1)


@pytest.fixture
def start(make_app):
    async def start(config: dict, features: list | None = None, db: str = "bot.db") -> ConsoleRun:
        app = await make_app(features=features or [Help, JustDoIt], config=config, db=db)
        out: list[str] = []
        return ConsoleRun(Console(app, write=out.append), out)

    return start


def blocks(text: str, head: str, words: str) -> list[str]:
    """The message blocks of `text` whose first line carries `head` and that say `words`."""
    found = re.split(r"\n(?=#\d+ )", text)
    return [b for b in found if head in b.split("\n", 1)[0] and words in b]


def number(block: str) -> int:
    return int(re.match(r"#(\d+)", block).group(1))  # type: ignore[union-attr]


# --- Prompt suggestions ---------------------------------------------------------------------


async def test_a_suggestion_is_reviewed_in_the_moderators_channel_and_approved_there(start):
    run = await start(WITH_MODS)
    await run.say("@lead! /justdoit schedule time=08:30")  # a DM fallback exists, unused
    out = await run.say('@ana /justdoit suggest "Thank the service desk in person today"')
    cards = blocks(out, "[public in #mods]", "Prompt suggestion")
    assert len(cards) == 1 and "Thank the service desk in person today" in cards[0]
    assert not blocks(out, "[public]", "Prompt suggestion")
    assert not blocks(out, "[direct to lead]", "Prompt suggestion")

    approved = await run.say(f"@mod! click {number(cards[0])} Approve as Inspire")
    assert blocks(approved, "(edited) [public in #mods]", "Approved by mod")
    assert "Approved by mod" in approved
    assert blocks(approved, "[direct to ana]", "Your prompt suggestion is now in the bank")

    # A click that comes from the moderators' channel itself finds the community.
    out = await run.say('@ben /justdoit suggest "Ask a customer what a good day looks like"')
    (card,) = blocks(out, "[public in #mods]", "Prompt suggestion")
    shown = run.console.screen.messages[number(card)].post
    select = next(s for s in shown.selects if s.action == "justdoit.approve_as")
    mod = UserRef("console", "demo", "mod", "mod")
    click = Action(select.action, select.value, mod, MODS, str(number(card)), True,
                   values=["influence"])  # fmt: skip
    replies = await run.app.act(click)
    assert isinstance(replies[0], UpdateMessage) and "Approved" in replies[0].post.text
    feature: JustDoIt = run.app.features["justdoit"]  # type: ignore[assignment]
    community = await run.app.communities.of(GENERAL)
    assert community.moderators == MODS
    bank = await feature.suggestions.approved_prompts(community.id)
    assert [p.text for p in bank] == [
        "Thank the service desk in person today",
        "Ask a customer what a good day looks like",
    ]


async def test_without_a_moderators_channel_the_card_goes_to_who_scheduled_the_prompt(start):
    run = await start(WITHOUT_MODS)
    await run.say("@lead! /justdoit schedule time=08:30 days=mon-fri")
    out = await run.say('@ana /justdoit suggest "Thank the service desk in person today"')
    cards = blocks(out, "[direct to lead]", "Prompt suggestion")
    assert len(cards) == 1
    assert not blocks(out, "[public", "Prompt suggestion")

    approved = await run.say(f"@lead! click {number(cards[0])} Approve as Inspire")
    assert "Approved by lead" in approved
    assert blocks(approved, "[direct to ana]", "Your prompt suggestion is now in the bank")

    # The moderator is remembered across a restart; one who sets the schedule again takes over.
    again = await start(WITHOUT_MODS, db="bot.db")
    out = await again.say('@ana /justdoit suggest "Ask a customer what a good day looks like"')
    assert len(blocks(out, "[direct to lead]", "Prompt suggestion")) == 1
    await again.say("@kim! /justdoit schedule time=09:00")
    out = await again.say('@ana /justdoit suggest "Walk over and say thanks to second line"')
    assert len(blocks(out, "[direct to kim]", "Prompt suggestion")) == 1


async def test_with_nobody_known_the_card_stays_where_it_went_before(start):
    run = await start(WITHOUT_MODS)
    out = await run.say('@ana /justdoit suggest "Thank the service desk in person today"')
    assert len(blocks(out, "[public]", "Prompt suggestion")) == 1


async def test_removing_the_moderators_channel_from_the_config_takes_effect(start):
    run = await start(WITH_MODS)
    await run.say("@lead! /justdoit schedule time=08:30")
    assert (await run.app.communities.of(GENERAL)).moderators == MODS
    again = await start(WITHOUT_MODS, db="bot.db")
    assert (await again.app.communities.of(GENERAL)).moderators is None
    out = await again.say('@ana /justdoit suggest "Thank the service desk in person today"')
    assert len(blocks(out, "[direct to lead]", "Prompt suggestion")) == 1


# --- Feed notices ---------------------------------------------------------------------------


def feeds(run: ConsoleRun) -> Feeds:
    return run.app.features["feeds"]  # type: ignore[return-value]


async def tick(run: ConsoleRun, clock) -> str:
    clock.advance(LATER)
    before = len(run.out)
    await feeds(run).poll_due()
    await run.app.outbox.drain()
    return "\n".join(run.out[before:])


async def test_a_paused_feed_notice_goes_to_the_moderators_channel(
    start, feed_server: FeedServer, clock
):
    run = await start({**FEEDS, **WITH_MODS}, features=[Help, Feeds])
    url = feed_server.set("dying.xml", body=rss(entries(1), title="Dying <@U1> feed"))
    await run.say(f"@mod! /feed add {url} backlog=0")
    feed_server.set("dying.xml", status=410)
    out = await tick(run, clock)
    (notice,) = blocks(out, "[public in #mods]", "Feed paused")
    assert "I stopped checking this feed in #general" in notice
    assert "/feed resume 1" in notice
    assert not blocks(out, "[public]", "paused") and not blocks(out, "[direct to", "paused")


async def test_feed_notices_without_a_moderators_channel_go_to_who_added_the_feed(
    start, feed_server: FeedServer, clock
):
    run = await start({**FEEDS, **WITHOUT_MODS}, features=[Help, Feeds])
    for i, who in enumerate(("ann", "ann", "bob")):
        url = feed_server.set(f"d{i}.xml", body=rss(entries(1), title=f"Dead {i}"))
        await run.say(f"@{who}! /feed add {url} backlog=0")
    imported = feed_server.set("opml.xml", body=rss(entries(1), title="Imported"))
    await feeds(run).subscribe(imported, GENERAL, backlog=0, created_by="opml")
    for name in ("d0.xml", "d1.xml", "d2.xml", "opml.xml"):
        feed_server.set(name, status=410)
    out = await tick(run, clock)
    (ann,) = blocks(out, "[direct to ann]", "feeds paused")  # her two feeds, one post
    assert "Dead 0" in ann and "Dead 1" in ann and "these feeds in #general" in ann
    (bob,) = blocks(out, "[direct to bob]", "Feed paused")
    assert "Dead 2" in bob
    (public,) = blocks(out, "[public]", "Feed paused")  # nobody to tell: the channel itself
    assert "opml.xml" in public and "in #general" not in public


# --- Configuration --------------------------------------------------------------------------


def load_text(tmp_path, text):
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return configuration.load(path, sections())


COMMUNITY_TOML = "[[community]]\nname = 'x'\nworkspaces = ['slack:T1', 'discord:42']\n"


def test_a_moderators_channel_is_read_on_any_platform_of_the_community(tmp_path):
    config = load_text(tmp_path, COMMUNITY_TOML + "moderators = 'discord:42:7'\n")
    assert config.community[0].moderators == "discord:42:7"
    assert load_text(tmp_path, COMMUNITY_TOML).community[0].moderators is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("'mods'", "Expected `str` matching regex"),
        ("'slack:T1'", "Expected `str` matching regex"),
        ("'Slack:T1:C1'", "Expected `str` matching regex"),
        ("['slack:T1:C1']", "Expected `str`, got `array`"),
        ("'slack:T9:C1'", "slack:T9 is not one of this community's workspaces"),
        ("'slack:T1:@U1'", "a channel, not a member's direct messages"),
    ],
)
def test_a_malformed_moderators_channel_is_refused_naming_the_key(tmp_path, value, says):
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, COMMUNITY_TOML + f"moderators = {value}\n")
    assert "community.0.moderators: " in str(err.value)
    assert says in str(err.value)


# --- Posts the bot gave up on ---------------------------------------------------------------

OPS = ChannelRef("test", "w1", "ops")
TEST_MODS = ChannelRef("test", "w1", "mods")
TEST_COMMUNITY = {"name": "Test", "workspaces": ["test:w1"]}


class Refusing(Platform):
    """A platform on which the bot has lost its place in one channel."""

    def __init__(self, refused: ChannelRef) -> None:
        super().__init__()
        self.refused = refused

    async def send(self, channel, post, key):
        if channel == self.refused:
            raise DeliveryError("not_in_channel", Failure.PERMANENT)
        return await super().send(channel, post, key)


async def give_up_on(make_app, community: dict, channel: ChannelRef, count: int):
    """`count` posts to `channel` that its platform refuses for good; the platform."""
    app = await make_app(features=[Help], config={"community": [community]})
    platform = Refusing(channel)
    app.outbox.attach(platform)
    for i in range(count):
        await app.outbox.enqueue(channel, Post(title=f"post {i}"), f"item-{i}")
    await app.outbox.drain()
    await app.outbox.drain()  # the notice, queued by the last give-up
    return app, platform


async def test_a_post_given_up_on_is_told_in_the_moderators_channel_once_a_day(make_app, clock):
    community = {**TEST_COMMUNITY, "moderators": TEST_MODS.key}
    app, platform = await give_up_on(make_app, community, OPS, 3)
    told = [post for channel, post in platform.posted.values() if channel == TEST_MODS]
    assert len(told) == 1 and told[0].title == "A post could not be delivered"
    assert channel_tag(OPS) in told[0].text and "not_in_channel" in told[0].text
    assert [await app.outbox.state(f"item-{i}") for i in range(3)] == ["failed"] * 3

    clock.advance(timedelta(days=1))  # a new day, a new failure: told again
    await app.outbox.enqueue(OPS, Post(title="tomorrow"), "item-tomorrow")
    await app.outbox.drain()
    await app.outbox.drain()
    told = [post for channel, post in platform.posted.values() if channel == TEST_MODS]
    assert len(told) == 2


async def test_without_a_moderators_channel_or_for_a_dm_nothing_is_told(make_app):
    _, platform = await give_up_on(make_app, TEST_COMMUNITY, OPS, 2)
    assert platform.posted == {}
    member = ChannelRef.direct(UserRef("test", "w1", "u1", "u1"))
    community = {**TEST_COMMUNITY, "moderators": TEST_MODS.key}
    _, platform = await give_up_on(make_app, community, member, 1)
    assert platform.posted == {}  # closed DMs are nobody's business


async def test_a_failing_moderators_channel_is_not_told_of_itself(make_app):
    community = {**TEST_COMMUNITY, "moderators": TEST_MODS.key}
    _, platform = await give_up_on(make_app, community, TEST_MODS, 2)
    assert platform.posted == {}
