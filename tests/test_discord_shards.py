"""Discord shards: which shards a process connects, the fake gateway's routing by shard, and
two real workers on one PostgreSQL database, each holding one shard of two.

Discord sends a server's events and interactions on shard `(guild_id >> 22) % count` only,
so the worker holding that shard answers its members; posting is REST, which any worker may
do, so the outbox's lanes (claimed once, in order, on the shared database) deliver to every
server whichever workers are alive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord import DiscordSettings, create
from adapters.discord.client import IDENTIFY_EVERY
from adapters.discord.shards import Shards, plan, shard_of
from bot import config as configuration
from bot.errors import ConfigError
from bot.help import Help
from tests import process, workers_db
from tests.discord_process import DiscordBotProcess, nonces, titles
from tests.fakes.discord_guilds import GuildsFake
from tests.fakes.feed_server import FeedServer, entries, rss
from tests.process import Delivery, subscribe_feed, write_config
from tests.workers_db import query, settled

feeds = process.feeds  # the fixtures
database = workers_db.database

WAIT = 30.0  # seconds for a sharded start: discord.py IDENTIFYs shards 5 s apart
MANAGE_GUILD = str(discord.Permissions(manage_guild=True).value)


# --- Which shards: the file, the environment, and what is refused ----------------------


def load(tmp_path: Path, text: str) -> DiscordSettings:
    path = tmp_path / "bot.toml"
    path.write_text(text)
    return configuration.load(path, {"discord": DiscordSettings}).section("discord")


def test_without_shard_settings_the_bot_connects_unsharded(tmp_path: Path) -> None:
    settings = load(tmp_path, "[discord]\npace = 1\n")
    assert plan(settings.shard_count, settings.shard_ids, {}) is None


def test_the_file_names_the_shards_and_a_count_alone_means_all_of_them(tmp_path: Path) -> None:
    settings = load(tmp_path, "[discord]\nshard_count = 4\nshard_ids = [1, 3]\n")
    assert plan(settings.shard_count, settings.shard_ids, {}) == Shards(4, (1, 3))
    every = load(tmp_path, "[discord]\nshard_count = 3\n")
    assert plan(every.shard_count, every.shard_ids, {}) == Shards(3, (0, 1, 2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shard_ids = [0]", "shard_ids needs shard_count"),
        ("shard_count = 2\nshard_ids = [2]", r"shard_ids \[2\] outside 0..1"),
        ("shard_count = 2\nshard_ids = [-1, 0]", r"shard_ids \[-1\] outside 0..1"),
        ("shard_count = 0", "shard_count must be at least 1, not 0"),
        ("shard_count = 2\nshard_ids = []", "shard_ids is empty"),
        ("shard_count = 3\nshard_ids = [1, 1]", "names a shard twice"),
        ('shard_ids = "0,1"', "shard_ids"),
    ],
)
def test_bad_shards_in_the_file_stop_start_up_naming_the_section(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load(tmp_path, f"[discord]\n{text}\n")
    assert "discord" in str(raised.value)


def test_the_environment_wins_over_the_file_each_variable_on_its_own() -> None:
    env = {"DISCORD_SHARD_COUNT": "3", "DISCORD_SHARD_IDS": " 2 "}
    assert plan(2, [0], env) == Shards(3, (2,))
    assert plan(4, [0], {"DISCORD_SHARD_IDS": "1,3"}) == Shards(4, (1, 3))
    assert plan(None, None, {"DISCORD_SHARD_COUNT": "2"}) == Shards(2, (0, 1))
    assert plan(2, [1], {"DISCORD_SHARD_COUNT": "", "DISCORD_SHARD_IDS": ""}) == Shards(2, (1,))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DISCORD_SHARD_IDS": "0"}, "shard_ids needs shard_count"),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "1,2"}, r"\[2\] outside 0..1"),
        ({"DISCORD_SHARD_COUNT": "two"}, "DISCORD_SHARD_COUNT='two' is not a whole number"),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0;1"}, "comma-separated"),
        ({"DISCORD_SHARD_COUNT": "0"}, "at least 1"),
    ],
)
def test_bad_shard_variables_are_refused_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(None, None, env)


async def test_create_refuses_bad_variables_before_connecting(make_app: Any) -> None:
    app = await make_app([Help])
    env = {"DISCORD_TOKEN": "t", "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "5"}
    with pytest.raises(ConfigError, match="DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS"):
        create(app, app.config.section("discord"), env)


# --- One process against the fake gateway ----------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[GuildsFake]:
    """The fake with a second server: its own guild is on shard 0 of 2, the second on 1."""
    discord_fake = await GuildsFake().start()
    second = discord_fake.snowflake_on_shard(1, 2)
    discord_fake.new_guild(discord_fake.owner_user_id, "Shard One", guild_id=second)
    try:
        yield discord_fake
    finally:
        await discord_fake.close()


def second_guild(fake: GuildsFake) -> tuple[int, int]:
    """The added server and its channel."""
    guild_id = next(iter(fake.extra_guilds))
    return guild_id, int(fake.extra_guilds[guild_id]["channels"][0]["id"])


def env_for(fake: GuildsFake, **shards: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": "fake-token",
        "DISCORD_API_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        **shards,
    }


@pytest.fixture
async def surface_of(make_app: Any, fake: GuildsFake) -> AsyncIterator[Any]:
    """Start the bot's Discord surface on the fake with these variables; stopped after."""
    surfaces: list[Any] = []

    async def start(**shards: str) -> Any:
        app = await make_app([Help], config={"discord": {"pace": 0}})
        env = env_for(fake, **shards)
        surface = create(app, app.config.section("discord"), env, guild_ready_timeout=0.1)
        surfaces.append(surface)
        await surface.start()
        return surface

    yield start
    for surface in surfaces:
        await surface.stop()


async def help_answered(fake: GuildsFake, guild_id: int, channel_id: int) -> dict[str, Any]:
    """Send /help from a member in that server's channel; the bot's one answer."""
    payload = fake.in_guild(fake.slash_payload("help", user_id=4242), guild_id, channel_id)
    await fake.send_interaction(payload)
    return await fake.wait_interaction_response(payload["id"], timeout=WAIT)


async def test_one_process_on_both_shards_receives_both_servers(
    fake: GuildsFake, surface_of: Any
) -> None:
    surface = await surface_of(DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS="0,1")
    other, other_channel = second_guild(fake)
    assert isinstance(surface.client, discord.AutoShardedClient) and surface.client.is_ready()
    assert fake.shards_identified() == [[0, 2], [1, 2]]
    assert {g.id: g.shard_id for g in surface.client.guilds} == {fake.guild_id: 0, other: 1}
    for guild_id, channel_id in ((fake.guild_id, fake.channel_id), (other, other_channel)):
        body = await help_answered(fake, guild_id, channel_id)
        assert body["type"] == 4 and body["data"]["flags"] & 64, body


async def test_a_process_on_one_shard_gets_only_that_shards_server(
    fake: GuildsFake, surface_of: Any
) -> None:
    surface = await surface_of(DISCORD_SHARD_COUNT="2", DISCORD_SHARD_IDS="1")
    other, other_channel = second_guild(fake)
    assert fake.shards_identified() == [[1, 2]]
    assert [g.id for g in surface.client.guilds] == [other]
    assert (await help_answered(fake, other, other_channel))["type"] == 4
    # The fake's own server is on shard 0, which nobody holds: its events go nowhere.
    frame = await fake.dispatch("GUILD_UPDATE", {**fake.guild_payload()})
    assert frame["s"] is None and surface.client.get_guild(fake.guild_id) is None


async def test_without_shards_one_connection_gets_every_server(
    fake: GuildsFake, surface_of: Any
) -> None:
    surface = await surface_of()
    other, other_channel = second_guild(fake)
    assert not isinstance(surface.client, discord.AutoShardedClient)
    assert fake.shards_identified() == [None]
    assert {g.id for g in surface.client.guilds} == {fake.guild_id, other}
    assert (await help_answered(fake, other, other_channel))["type"] == 4
    assert shard_of(other, 2) == 1 and shard_of(fake.guild_id, 2) == 0


# --- Two workers, one shard each, one PostgreSQL database -------------------------------

FEED_CHANNELS = 5  # per server: 10 channels of feed posts
ITEMS = 20  # a feed each: 200 posts
TIMEOUT = 240.0  # seconds for everything to arrive on a busy machine


def sections() -> dict[str, dict[str, Any]]:
    return {
        "feeds": {"poll_every": "1s", "interval": "4s", "min_interval": "1s", "jitter": 0,
                  "allow_private": True, "per_channel_cap": 100000},
        # Slow enough that the kill comes mid-delivery, after the interactions.
        "discord": {"pace": 0.4, "scheduled_events": False},
        # A dead worker's claims are a lease of three call timeouts: short, for the test.
        "outbox": {"call_timeout": 5},
    }  # fmt: skip


async def subscribe_all(
    fake: GuildsFake, feeds: FeedServer, tmp: Path, url: str
) -> dict[int, list[str]]:
    """FEED_CHANNELS new channels in each server, each subscribed to a feed of ITEMS."""
    expected: dict[int, list[str]] = {}
    for guild_id in (fake.guild_id, *fake.extra_guilds):
        for n in range(FEED_CHANNELS):
            channel = fake.add_channel(guild_id, f"feed-{n}")
            prefix = f"{channel} item"
            feed = feeds.set(f"{channel}.xml", body=rss(entries(ITEMS, prefix=prefix)))
            key = f"discord:{guild_id}:{channel}"
            await subscribe_feed(tmp, url, feed, key, name=str(channel))  # type: ignore[arg-type]
            expected[channel] = [f"{prefix} {i}" for i in range(1, ITEMS + 1)]
    return expected


async def poll_and_vote(fake: GuildsFake, guild_id: int, channel_id: int) -> list[str]:
    """A moderator's /poll create and a member's vote in that server; the interaction ids."""
    options = [
        {"name": "question", "type": 3, "value": f"Which practice, in {guild_id}?"},
        {"name": "choices", "type": 3, "value": "Incident | Change"},
    ]
    create_poll = fake.slash_payload(
        "poll", [{"type": 1, "name": "create", "options": options}], user_id=4242,
        permissions=MANAGE_GUILD,
    )  # fmt: skip
    await fake.send_interaction(fake.in_guild(create_poll, guild_id, channel_id))
    created = await fake.wait_interaction_response(create_poll["id"], timeout=WAIT)
    assert "is posted" in str(created), created

    def poll_message() -> dict[str, Any] | None:
        return next((m for m in fake.posts(channel_id) if m.get("components")), None)

    message = await fake.wait_until(poll_message, TIMEOUT, "the poll's message")
    button = message["components"][0]["components"][0]["custom_id"]
    click = fake.in_guild(
        fake.component_payload(button, int(message["id"]), user_id=77), guild_id, channel_id
    )
    await fake.send_interaction(click)
    voted = await fake.wait_interaction_response(click["id"], timeout=WAIT)
    assert "You voted" in str(voted), voted
    return [create_poll["id"], click["id"]]


def callbacks(fake: GuildsFake, interaction_id: str) -> int:
    return len(fake.requests_to("POST", f"/interactions/{interaction_id}/*/callback"))


async def test_two_workers_hold_one_shard_each_and_the_survivor_posts_everywhere(
    fake: GuildsFake, feeds: FeedServer, tmp_path: Path, database: str
) -> None:
    fake.latency = 0.01
    expected = await subscribe_all(fake, feeds, tmp_path, database)
    other, other_channel = second_guild(fake)
    bots = []
    for shard in (0, 1):
        directory = tmp_path / f"worker-{shard}"
        directory.mkdir()
        config = write_config(directory, database, sections())  # type: ignore[arg-type]
        shards = {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": str(shard)}
        bots.append(DiscordBotProcess(fake, config, directory, extra_env=shards))
    total = sum(len(t) for t in expected.values())
    posted = lambda: sum(len(titles(fake, c)) for c in expected)  # noqa: E731
    try:
        for bot in bots:  # started together, as a host starts a scaled worker line
            await bot.start(connect=False)
        await bots[1].wait_connected(2)
        assert sorted(fake.shards_identified()) == [[0, 2], [1, 2]]  # each its own shard
        # One session start per five seconds for the bot, whichever worker starts it.
        first, second = fake.identify_times
        assert second - first >= IDENTIFY_EVERY - 0.5, fake.identify_times
        interactions = await poll_and_vote(fake, fake.guild_id, fake.channel_id)
        interactions += await poll_and_vote(fake, other, other_channel)
        assert posted() < total, "every post was out before the kill: slow the pace"
        await fake.wait_until(lambda: posted() >= total // 2, TIMEOUT, "half the posts")
        await bots[0].kill()  # shard 0's worker, with posts and leases in its hands
        in_shard_0 = [c for c in expected if fake.channels[c]["guild_id"] == str(fake.guild_id)]
        left_in_shard_0 = sum(ITEMS - len(titles(fake, c)) for c in in_shard_0)
        assert left_in_shard_0 > 0, "shard 0's server had every post before the kill"
        try:
            await fake.wait_until(lambda: posted() >= total, TIMEOUT, "every feed post")
        except TimeoutError:
            raise AssertionError(
                f"{posted()} of {total} posted\n" + bots[1].log()[-3000:]
            ) from None
        open_rows = await settled(database, TIMEOUT)
    finally:
        for bot in bots:
            await bot.close()
    tally = Delivery()
    for channel, wanted in expected.items():
        tally.add(str(channel), wanted, titles(fake, channel), nonces(fake, channel))
    assert tally.clean, str(tally)
    assert {i: callbacks(fake, i) for i in interactions} == {i: 1 for i in interactions}
    votes = await query(database, "SELECT run_id, voter, option FROM vote_answers ORDER BY run_id")
    voters = [f"discord:{fake.guild_id}:77", f"discord:{other}:77"]  # once each
    assert [tuple(v) for v in votes] == [(1, voters[0], 0), (2, voters[1], 0)]
    assert open_rows == [], open_rows
    assert fake.connections == 2  # nobody took over shard 0: posting needs no gateway
