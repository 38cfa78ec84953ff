"""The fake Discord must satisfy the real discord.py client, or tests built on it prove nothing.

Each test drives an unmodified discord.py ``Client`` (command tree, persistent view, modal) over
real sockets against ``tests.fakes.fake_discord`` and checks both sides: what the library did
and what the fake recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands

from tests.fakes.fake_discord import (  # noqa: F401
    FakeDiscord,
    discord_endpoints_fixture,
    fake_discord_fixture,
    pointed_at,
)

ORIGINAL_BASE = discord.http.Route.BASE
ORIGINAL_GATEWAY = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
WAIT = 5.0


@pytest.fixture(autouse=True)
def _discord_globals_untouched() -> Any:
    """Every test here must start and end with discord.py's process-wide endpoints pristine."""
    assert discord.http.Route.BASE == ORIGINAL_BASE
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == ORIGINAL_GATEWAY
    yield
    assert discord.http.Route.BASE == ORIGINAL_BASE
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == ORIGINAL_GATEWAY


def make_client(
    intents: discord.Intents | None = None,
) -> tuple[discord.Client, app_commands.CommandTree]:
    """A client as a bot would build it; guild_ready_timeout keeps on_ready from waiting 2 s."""
    client = discord.Client(intents=intents or discord.Intents.default(), guild_ready_timeout=0.1)
    return client, app_commands.CommandTree(client)


@asynccontextmanager
async def logged_in(client: discord.Client) -> AsyncIterator[discord.Client]:
    """The fast path: REST login only, no gateway; interactions are fed to the parser directly."""
    await client.login("fake-token")
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def running(client: discord.Client, fake: FakeDiscord) -> AsyncIterator[asyncio.Task[None]]:
    """The full path: client.start() as a task, until the fake has sent READY."""
    task = asyncio.create_task(client.start("fake-token"))
    try:
        await fake.wait_ready(WAIT)
        yield task
    finally:
        await client.close()
        await asyncio.wait_for(task, WAIT)


class _FastAsyncio:
    """Stands in for the asyncio module inside discord.http, so retry back-off sleeps are recorded, not slept."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        if delay:  # bucket refreshes also call sleep(0); only real waits count
            self.sleeps.append(delay)
        await asyncio.sleep(0)
        return result


# ---------------------------------------------------------------------- full gateway path


async def test_full_start_identifies_reaches_ready_and_syncs_commands(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    intents = discord.Intents.default()
    intents.message_content = True
    client, tree = make_client(intents)
    ready = asyncio.Event()

    @tree.command(name="ping", description="Check the bot is alive")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    @tree.command(name="feeds", description="List feeds")
    @app_commands.describe(category="Only this category")
    async def feeds(interaction: discord.Interaction, category: str | None = None) -> None:
        await interaction.response.send_message("none")

    @client.event
    async def on_ready() -> None:
        ready.set()

    async with running(client, fake) as task:
        await asyncio.wait_for(ready.wait(), WAIT)
        assert fake.intents == intents.value
        assert fake.identify_payloads[0]["token"] == "fake-token"
        assert any(frame["op"] == 1 for frame in fake.gateway_frames), "no heartbeat was sent"
        assert client.user is not None and client.user.id == fake.bot_user_id
        channel = client.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel) and channel.name == "general"
        guild = client.get_guild(fake.guild_id)
        assert guild is not None and guild.me is not None and guild.default_role.id == fake.guild_id

        synced = await tree.sync()
        assert {c.name for c in synced} == {"ping", "feeds"}
        assert all(c.id for c in synced)
        assert {c["name"] for c in fake.registered_commands["global"]} == {"ping", "feeds"}
        put = fake.requests_to("PUT", f"/applications/{fake.application_id}/commands")
        assert len(put) == 1
        feeds_options = next(c for c in put[0].json if c["name"] == "feeds")["options"]
        assert feeds_options[0]["name"] == "category" and feeds_options[0]["required"] is False
        assert not task.done()
    assert task.done() and task.exception() is None
    assert client.is_closed()


async def test_gateway_interaction_and_resume_after_restart(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, tree = make_client()
    resumed = asyncio.Event()
    seen: list[str] = []

    @tree.command(name="ping", description="Check the bot is alive")
    async def ping(interaction: discord.Interaction) -> None:
        seen.append(interaction.user.name)
        await interaction.response.send_message("pong")

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    async with running(client, fake):
        first = await fake.send_interaction(fake.slash_payload("ping", user_id=4242))
        assert (await fake.wait_interaction_response(first["id"])) == {
            "type": 4,
            "data": {"content": "pong", "tts": False},
        }

        session = client.ws.session_id
        await fake.restart_gateway()
        await asyncio.wait_for(resumed.wait(), WAIT)
        assert len(fake.identify_payloads) == 1, "the client identified again instead of resuming"
        assert fake.resume_payloads[-1]["session_id"] == session
        assert fake.resume_payloads[-1]["seq"] >= 3  # READY, GUILD_CREATE, INTERACTION_CREATE

        second = await fake.send_interaction(fake.slash_payload("ping"))
        body = await fake.wait_interaction_response(second["id"])
        assert body["data"]["content"] == "pong"
    assert seen == ["user4242", "user1001"]


async def test_interaction_sent_while_disconnected_is_replayed_on_resume(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, tree = make_client()
    answered = asyncio.Event()

    @tree.command(name="ping", description="Check the bot is alive")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")
        answered.set()

    async with running(client, fake):
        await fake.restart_gateway(wait=False)
        payload = await fake.send_interaction(fake.slash_payload("ping"))
        await asyncio.wait_for(answered.wait(), WAIT)
        assert (await fake.wait_interaction_response(payload["id"]))["type"] == 4
        assert len(fake.identify_payloads) == 1 and len(fake.resume_payloads) == 1
        # The client had seen READY (1) and GUILD_CREATE (2): the interaction came by replay.
        assert fake.resume_payloads[0]["seq"] == 2


# ---------------------------------------------------------------------- fast path: app commands


async def test_login_only_slash_command_gets_message_callback(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, tree = make_client()
    seen: dict[str, Any] = {}

    @tree.command(name="brm", description="Today's BRM prompt")
    @app_commands.describe(topic="What to talk about")
    async def brm(interaction: discord.Interaction, topic: str) -> None:
        seen["admin"] = interaction.permissions.administrator
        seen["user_id"] = interaction.user.id
        embed = discord.Embed(title=f"BRM: {topic}", description="Share one practice.")
        callback = await interaction.response.send_message("Today's prompt", embed=embed)
        seen["callback"] = callback
        original = await interaction.original_response()
        seen["original_id"] = original.id
        await interaction.followup.send("Reply in the thread", ephemeral=True)
        seen["done"] = True

    async with logged_in(client):
        assert [r.path for r in fake.requests] == ["/users/@me", "/oauth2/applications/@me"]
        payload = fake.slash_payload(
            "brm",
            options=[{"name": "topic", "type": 3, "value": "value streams"}],
            user_id=777,
            permissions=str(discord.Permissions(administrator=True).value),
        )
        client._connection.parse_interaction_create(payload)
        body = await fake.wait_interaction_response(payload["id"])
        await fake.wait_for_request("POST", f"/webhooks/{fake.application_id}/*")

    assert body["type"] == 4
    assert body["data"]["content"] == "Today's prompt"
    assert body["data"]["embeds"][0]["title"] == "BRM: value streams"
    callback_req = fake.requests_to("POST", "/interactions/*/callback")[0]
    assert callback_req.path == f"/interactions/{payload['id']}/{payload['token']}/callback"
    assert callback_req.query == {"with_response": "1"}
    assert callback_req.headers["Content-Type"] == "application/json"

    callback = seen["callback"]
    assert isinstance(callback, discord.InteractionCallbackResponse)
    assert isinstance(callback.resource, discord.InteractionMessage)
    assert callback.message_id == seen["original_id"]
    assert fake.messages[callback.message_id]["content"] == "Today's prompt"
    assert seen["admin"] is True and seen["user_id"] == 777 and seen.get("done")
    assert fake.followups == [{"content": "Reply in the thread", "tts": False, "flags": 64}]


async def test_deferred_response_then_edit_original(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, tree = make_client()
    edited: list[discord.InteractionMessage] = []

    @tree.command(name="digest", description="Build the digest")
    async def digest(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        edited.append(await interaction.edit_original_response(content="3 new items"))

    async with logged_in(client):
        payload = fake.slash_payload("digest")
        client._connection.parse_interaction_create(payload)
        assert (await fake.wait_interaction_response(payload["id"]))["type"] == 5
        await fake.wait_for_request("PATCH", "/webhooks/*/messages/@original")

    message = fake.messages[edited[0].id]
    assert message["content"] == "3 new items"
    assert message["flags"] & 128 == 0, "the loading flag should be gone after the edit"
    assert fake.followups[-1]["content"] == "3 new items"


async def test_answering_twice_is_refused_like_discord(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        payload = fake.slash_payload("anything")
        interaction = discord.Interaction(data=payload, state=client._connection)
        await interaction.response.send_message("first")
        # A second Interaction object for the same token forgets it already answered.
        again = discord.Interaction(data=payload, state=client._connection)
        with pytest.raises(discord.HTTPException) as info:
            await again.response.send_message("second")
    assert info.value.code == 40060
    assert len(fake.interaction_responses) == 1


# ---------------------------------------------------------------------- components and modals


class VoteView(discord.ui.View):
    """A persistent view: no timeout and a fixed custom_id, so it survives restarts."""

    def __init__(self, clicked: asyncio.Future[discord.Interaction]) -> None:
        super().__init__(timeout=None)
        self.clicked = clicked

    @discord.ui.button(label="Agree", style=discord.ButtonStyle.green, custom_id="vote:agree")
    async def agree(
        self, interaction: discord.Interaction, button: discord.ui.Button[VoteView]
    ) -> None:
        await interaction.response.edit_message(content="Thanks for voting", view=None)
        if not self.clicked.done():
            self.clicked.set_result(interaction)


async def test_button_click_reaches_persistent_view_and_updates_message(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    clicked: asyncio.Future[discord.Interaction] = asyncio.get_running_loop().create_future()

    async with logged_in(client):
        client.add_view(VoteView(clicked))
        channel = await client.fetch_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Do you use ITIL 4?", view=VoteView(clicked))
        stored = fake.messages[sent.id]
        assert stored["components"][0]["components"][0]["custom_id"] == "vote:agree"

        payload = fake.component_payload("vote:agree", sent.id, user_id=55)
        client._connection.parse_interaction_create(payload)
        interaction = await asyncio.wait_for(clicked, WAIT)
        body = await fake.wait_interaction_response(payload["id"])

    assert interaction.user.id == 55
    assert interaction.message is not None and interaction.message.id == sent.id
    assert body["type"] == 7
    assert body["data"]["content"] == "Thanks for voting" and body["data"]["components"] == []
    assert fake.messages[sent.id]["content"] == "Thanks for voting"
    assert fake.messages[sent.id]["components"] == []


class SuggestFeed(discord.ui.Modal, title="Suggest a feed"):
    url: discord.ui.TextInput[SuggestFeed] = discord.ui.TextInput(
        label="Feed URL", custom_id="feed_url"
    )
    note: discord.ui.TextInput[SuggestFeed] = discord.ui.TextInput(
        label="Why", custom_id="feed_note", style=discord.TextStyle.paragraph, required=False
    )

    def __init__(self, submitted: asyncio.Future[tuple[str, str]]) -> None:
        super().__init__(custom_id="suggest_feed_modal")
        self.submitted = submitted

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Suggestion received", ephemeral=True)
        self.submitted.set_result((self.url.value, self.note.value))


async def test_modal_is_sent_then_submit_reaches_on_submit(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, tree = make_client()
    submitted: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    @tree.command(name="suggest", description="Suggest a feed")
    async def suggest(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(SuggestFeed(submitted))

    async with logged_in(client):
        command = fake.slash_payload("suggest")
        client._connection.parse_interaction_create(command)
        body = await fake.wait_interaction_response(command["id"])
        assert body["type"] == 9
        modal = fake.last_modal()
        assert modal["custom_id"] == "suggest_feed_modal" and modal["title"] == "Suggest a feed"
        inputs = [row["components"][0] for row in modal["components"]]
        assert [(i["type"], i["custom_id"]) for i in inputs] == [(4, "feed_url"), (4, "feed_note")]

        submit = fake.modal_submit_payload(
            "suggest_feed_modal",
            {"feed_url": "https://example.org/rss", "feed_note": "good ITSM news"},
        )
        client._connection.parse_interaction_create(submit)
        values = await asyncio.wait_for(submitted, WAIT)
        answer = await fake.wait_interaction_response(submit["id"])

    assert values == ("https://example.org/rss", "good ITSM news")
    assert answer["type"] == 4 and answer["data"]["flags"] == 64


# ---------------------------------------------------------------------- REST behaviour


async def test_429_is_retried_and_message_created_once(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    fake.fail_next("POST", "/channels/*/messages", status=429, retry_after=0.05)
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        sent = await channel.send("New article")
    posts = fake.requests_to("POST", f"/channels/{fake.channel_id}/messages")
    assert [r.status for r in posts] == [429, 200]
    assert [m["content"] for m in fake.messages.values()] == ["New article"]
    assert sent.id in fake.messages


async def test_429_reply_has_what_discord_py_needs_to_retry(fake_discord: FakeDiscord) -> None:
    """Without Via or with a non-JSON body discord.py assumes a Cloudflare ban and raises at once."""
    fake = fake_discord
    fake.fail_next("GET", "/users/@me", status=429, retry_after=1.5)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.status == 429
            assert resp.headers["Via"] == "1.1 google"
            assert resp.headers["Content-Type"] == "application/json"
            assert resp.headers["X-RateLimit-Remaining"] == "0"
            assert await resp.json() == {
                "message": "You are being rate limited.",
                "retry_after": 1.5,
                "global": False,
            }


async def test_500_is_retried_with_backoff_then_succeeds(
    discord_endpoints: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = discord_endpoints
    fast = _FastAsyncio()
    monkeypatch.setattr(discord.http, "asyncio", fast)
    client, _tree = make_client()
    fake.fail_next("POST", "/channels/*/messages", status=500, times=2)
    async with logged_in(client):
        await client.get_partial_messageable(fake.channel_id).send("Survey results")
    assert [r.status for r in fake.requests_to("POST", "/channels/*/messages")] == [500, 500, 200]
    assert fast.sleeps == [1, 3]  # discord.py sleeps 1 + 2 * attempt between tries
    assert len(fake.messages) == 1


async def test_5xx_gives_up_after_five_tries_and_503_is_not_retried(
    discord_endpoints: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = discord_endpoints
    fast = _FastAsyncio()
    monkeypatch.setattr(discord.http, "asyncio", fast)
    client, _tree = make_client()
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        fake.fail_next("POST", "/channels/*/messages", status=502, times=5)
        with pytest.raises(discord.DiscordServerError):
            await channel.send("never")
        assert len(fake.requests_to("POST", "/channels/*/messages")) == 5
        assert fast.sleeps == [1, 3, 5, 7, 9]

        fake.fail_next("POST", "/channels/*/messages", status=503, times=1)
        with pytest.raises(discord.DiscordServerError):
            await channel.send("also never")
    assert len(fake.requests_to("POST", "/channels/*/messages")) == 6
    assert fake.messages == {}


async def test_file_attachment_arrives_as_multipart_with_its_bytes(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    data = b"week,votes\n1,12\n2,30\n" * 50
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        sent = await channel.send(
            "Poll results", file=discord.File(io.BytesIO(data), filename="results.csv")
        )
        downloaded = await sent.attachments[0].read()

    (req,) = fake.requests_to("POST", "/channels/*/messages")
    assert req.headers["Content-Type"].startswith("multipart/form-data")
    assert req.json["content"] == "Poll results"
    assert req.json["attachments"] == [{"id": 0, "filename": "results.csv"}]
    assert [(f.field, f.filename, f.data) for f in req.files] == [("files[0]", "results.csv", data)]
    assert sent.attachments[0].filename == "results.csv" and sent.attachments[0].size == len(data)
    assert downloaded == data


async def test_history_edit_delete_and_scheduled_event(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        channel = await client.fetch_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        first = await channel.send("one")
        await channel.send("two")
        third = await channel.send("three")
        await first.edit(content="one (edited)")
        await third.delete()
        newest = [m.content async for m in channel.history(limit=2)]
        everything = [m.content async for m in channel.history(limit=None)]

        guild = await client.fetch_guild(fake.guild_id)
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        event = await guild.create_scheduled_event(
            name="ITSM meetup",
            start_time=start,
            end_time=start + dt.timedelta(hours=1),
            entity_type=discord.EntityType.external,
            privacy_level=discord.PrivacyLevel.guild_only,
            location="https://example.org/meet",
            description="Monthly chat",
        )

    assert newest == ["two", "one (edited)"]
    assert everything == ["two", "one (edited)"]
    assert fake.messages[first.id]["edited_timestamp"] is not None
    assert event.name == "ITSM meetup" and event.location == "https://example.org/meet"
    (recorded,) = fake.scheduled_events
    assert recorded["entity_type"] == 3 and recorded["entity_metadata"] == {
        "location": "https://example.org/meet"
    }


async def test_replies_are_exact_json_and_unknown_routes_404(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    async with aiohttp.ClientSession(headers={"Authorization": "Bot x"}) as session:
        async with session.get(f"{fake.api_base}/users/@me") as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["id"] == str(fake.bot_user_id)
        async with session.post(f"{fake.api_base}/nowhere/42", json={"a": 1}) as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert json.loads(await resp.text())["message"] == "404: Not Found"
    assert [(r.method, r.path, r.json, r.status) for r in fake.requests][-1] == (
        "POST",
        "/nowhere/42",
        {"a": 1},
        404,
    )


async def test_wait_for_request_times_out_with_a_useful_message(fake_discord: FakeDiscord) -> None:
    with pytest.raises(TimeoutError, match="POST /channels"):
        await fake_discord.wait_for_request("POST", "/channels/*/messages", timeout=0.05)


async def test_pointed_at_restores_process_wide_settings_even_on_error(
    fake_discord: FakeDiscord,
) -> None:
    with pytest.raises(RuntimeError), pointed_at(fake_discord):
        assert discord.http.Route.BASE == fake_discord.api_base
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake_discord.gateway_url
        raise RuntimeError("boom")
    assert discord.http.Route.BASE == ORIGINAL_BASE
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == ORIGINAL_GATEWAY


# ---------------------------------------------------------------------- faults on demand


class _RecoverWhileSleeping(_FastAsyncio):
    """Records discord.py's back-off sleeps and ends the fake's outage during the first one."""

    def __init__(self, fake: FakeDiscord) -> None:
        super().__init__()
        self.fake = fake

    async def sleep(self, delay: float, result: Any = None) -> Any:
        if delay:
            self.fake.recover()
        return await super().sleep(delay, result)


async def test_latency_delays_the_answer_not_the_effect(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        fake.latency = 0.3
        started = time.monotonic()
        sent = await client.get_partial_messageable(fake.channel_id).send("slow")
        answered = time.monotonic()

    (req,) = fake.requests_to("POST", "/channels/*/messages")
    assert started <= req.at <= answered
    assert answered - req.at >= 0.3, "the answer came before the latency was over"
    assert req.status == 200 and sent.id in fake.messages


async def test_a_repeated_nonce_returns_the_message_already_created(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        first = await channel.send("announcement", nonce="key-1")
        again = await channel.send("announcement", nonce="key-1")
        other = await channel.send("announcement", nonce="key-2")
        dm = await client.create_dm(discord.Object(id=4242))
        in_dm = await dm.send("announcement", nonce="key-1")  # nonces are per channel

        fake.nonce_window = 0.0  # every earlier create is now outside the window
        later = await channel.send("announcement", nonce="key-1")
        fetched = await channel.fetch_message(first.id)

    posts = fake.requests_to("POST", f"/channels/{fake.channel_id}/messages")
    assert posts[0].json["enforce_nonce"] is True, "discord.py asks for enforcement itself"
    assert [r.status for r in posts] == [200, 200, 200, 200]
    assert again.id == first.id and first.nonce == again.nonce == "key-1"
    assert len({first.id, other.id, in_dm.id, later.id}) == 4
    assert [m["nonce"] for m in fake.posts(fake.channel_id)] == ["key-1", "key-2", "key-1"]
    assert fake.posts(dm.id)[0]["nonce"] == "key-1"
    assert fetched.nonce is None, "Discord only echoes the nonce when the message is created"


async def test_a_nonce_without_enforce_nonce_creates_a_duplicate(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    url = f"{fake.api_base}/channels/{fake.channel_id}/messages"
    async with aiohttp.ClientSession(headers={"Authorization": "Bot x"}) as session:
        for _ in range(2):
            async with session.post(url, json={"content": "x", "nonce": "n"}) as resp:
                assert resp.status == 200 and (await resp.json())["nonce"] == "n"
        async with session.post(
            url, json={"content": "x", "nonce": "n", "enforce_nonce": True}
        ) as resp:
            enforced = await resp.json()
    posts = fake.posts(fake.channel_id)
    assert len(posts) == 2 and enforced["id"] == posts[-1]["id"]


async def test_history_pages_through_a_busy_channel_like_discord(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        channel = await client.fetch_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        earlier = fake.add_messages(fake.channel_id, 3, content="old")
        ours = [await channel.send("ours #0")]
        fake.add_messages(fake.channel_id, 120)
        ours.append(await channel.send("ours #1"))
        fake.add_messages(fake.channel_id, 90, author_id=777)
        ours.append(await channel.send("ours #2"))
        expected = sorted(int(m["id"]) for m in fake.messages.values())[3:]

        oldest_first = [
            m.id
            async for m in channel.history(
                after=discord.Object(id=int(earlier[-1]["id"])), limit=None, oldest_first=True
            )
        ]
        newest_first = [m.id async for m in channel.history(limit=None)]
        before_ours = [m.id async for m in channel.history(before=ours[1], limit=150)]
        around = [m.id async for m in channel.history(around=ours[1], limit=6)]

    assert len(expected) == 213
    assert oldest_first == expected
    history_reqs = fake.requests_to("GET", f"/channels/{fake.channel_id}/messages")
    after_pages = [r.query for r in history_reqs if "after" in r.query]
    assert [q["limit"] for q in after_pages] == ["100", "100", "100"]
    assert after_pages[0]["after"] == earlier[-1]["id"]

    everything = sorted((int(i) for i in fake.messages), reverse=True)
    assert newest_first == everything
    below = [i for i in everything if i < ours[1].id]
    assert before_ours == below[:150]
    at = everything.index(ours[1].id)
    assert around == everything[at - 2 : at + 4], "3 from the message on, 3 older"
    assert [m.content for m in (ours[0], ours[1], ours[2])] == ["ours #0", "ours #1", "ours #2"]
    assert fake.messages[ours[1].id]["author"]["id"] == str(fake.bot_user_id)
    assert fake.messages[int(earlier[0]["id"])]["author"]["id"] == "1001"


async def test_history_answers_like_discord_at_the_edges(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    ids = [int(m["id"]) for m in fake.add_messages(fake.channel_id, 10)]
    url = f"{fake.api_base}/channels/{fake.channel_id}/messages"

    async def get(**params: Any) -> tuple[int, Any]:
        query = {k: str(v) for k, v in params.items()}
        async with aiohttp.ClientSession() as session, session.get(url, params=query) as resp:
            return resp.status, await resp.json()

    def listed(body: list[dict[str, Any]]) -> list[int]:
        return [int(m["id"]) for m in body]

    status, body = await get()
    assert status == 200 and listed(body) == ids[::-1], "default limit 50, newest first"
    assert listed((await get(after=ids[2], limit=3))[1]) == [ids[5], ids[4], ids[3]]
    assert listed((await get(before=ids[2], limit=5))[1]) == [ids[1], ids[0]]
    assert listed((await get(around=ids[5], limit=1))[1]) == [ids[5]]
    assert listed((await get(around=ids[5], limit=4))[1]) == [ids[6], ids[5], ids[4], ids[3]]
    assert listed((await get(around=ids[0], limit=4))[1]) == [ids[1], ids[0]]
    # Given several anchors (Discord says: pass one), ``around`` wins, then ``after``.
    assert listed((await get(around=ids[5], after=ids[8], limit=1))[1]) == [ids[5]]
    assert listed((await get(after=ids[7], before=ids[2]))[1]) == [ids[9], ids[8]]
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "many"}, {"before": "soon"}):
        status, body = await get(**bad)
        assert status == 400 and body["code"] == 50035, bad
        assert set(body["errors"]) == set(bad)


async def test_snowflakes_carry_real_time(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    moment = dt.datetime(2026, 11, 23, 9, 0, 0, 123000, tzinfo=dt.UTC)
    assert discord.utils.snowflake_time(fake.snowflake_at(moment.timestamp())) == moment
    assert fake.snowflake_at(moment.timestamp()) == discord.utils.time_snowflake(moment)

    before = time.time()
    ids = [fake.snowflake() for _ in range(1000)]
    after = time.time()
    assert ids == sorted(set(ids)), "ids must be unique and increasing"
    assert fake.snowflake_at(before) <= ids[0] and ids[-1] < fake.snowflake_at(after + 1)


async def test_outage_fails_every_request_until_recovered(
    discord_endpoints: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = discord_endpoints
    monkeypatch.setattr(discord.http, "asyncio", _FastAsyncio())
    client, _tree = make_client()
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        fake.outage(status=503)
        with pytest.raises(discord.DiscordServerError) as raised:
            await channel.send("lost in the outage")
        assert raised.value.status == 503
        with pytest.raises(discord.DiscordServerError):
            await client.fetch_channel(fake.channel_id)

        fake.outage(status=500, path_glob="/channels/*/messages", method="POST")
        assert (await client.fetch_channel(fake.channel_id)).id == fake.channel_id
        with pytest.raises(discord.DiscordServerError):
            await channel.send("still down")
        assert fake.messages == {}

        fake.recover()
        sent = await channel.send("back")
    statuses = [r.status for r in fake.requests_to("POST", "/channels/*/messages")]
    assert statuses == [503] + [500] * 5 + [200]  # discord.py retries a 500, not a 503
    assert [m["content"] for m in fake.posts(fake.channel_id)] == ["back"]
    assert sent.id in fake.messages


async def test_a_429_outage_is_waited_out_as_retry_after_says(
    discord_endpoints: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = discord_endpoints
    fast = _RecoverWhileSleeping(fake)
    monkeypatch.setattr(discord.http, "asyncio", fast)
    client, _tree = make_client()
    async with logged_in(client):
        fake.outage(status=429, retry_after=2.5)
        sent = await client.get_partial_messageable(fake.channel_id).send("patient")

    (limited, created) = fake.requests_to("POST", "/channels/*/messages")
    assert (limited.status, created.status) == (429, 200)
    assert fast.sleeps == [2.5], "discord.py must wait what the JSON retry_after says"
    assert [m["id"] for m in fake.posts(fake.channel_id)] == [str(sent.id)]


async def test_a_429_outage_answers_what_discord_py_needs(fake_discord: FakeDiscord) -> None:
    fake = fake_discord
    fake.outage(status=429, path_glob="/channels/*", retry_after=1.0)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_base}/channels/{fake.channel_id}") as resp:
            assert resp.status == 429
            assert resp.headers["Via"] and resp.headers["Retry-After"] == "1"
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["retry_after"] == 1.0
        async with session.get(
            f"{fake.api_base}/users/@me", headers={"Authorization": "Bot x"}
        ) as resp:
            assert resp.status == 200, "only the outage's paths fail"


async def test_a_lost_answer_raises_but_the_message_exists_and_the_nonce_dedupes(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        fake.lose_answer("POST", "/channels/*/messages")
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await channel.send("in doubt", nonce="key-1")
        (stored,) = fake.posts(fake.channel_id)
        assert stored["content"] == "in doubt" and stored["nonce"] == "key-1"

        retried = await channel.send("in doubt", nonce="key-1")

    assert [(r.status, r.lost) for r in fake.requests_to("POST", "/channels/*/messages")] == [
        (200, True),
        (200, False),
    ]
    assert retried.id == int(stored["id"])
    assert len(fake.posts(fake.channel_id)) == 1


async def test_a_hung_request_is_not_processed_until_released(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        fake.hang("POST", "/channels/*/messages", times=2)
        held = asyncio.create_task(channel.send("held"))
        try:
            await fake.wait_hung(1)
            (req,) = fake.requests_to("POST", "/channels/*/messages")
            assert req.status == 0 and fake.messages == {}
            assert (await client.fetch_channel(fake.channel_id)).id == fake.channel_id
            assert not held.done()

            fake.release_hangs()
            sent = await asyncio.wait_for(held, WAIT)
        finally:
            held.cancel()
        after = await channel.send("not held: releasing disarmed the rule")

    assert fake.hung == 0
    assert [m["id"] for m in fake.posts(fake.channel_id)] == [str(sent.id), str(after.id)]


async def test_closing_the_fake_drops_hung_requests_without_processing_them() -> None:
    fake = await FakeDiscord().start()
    client, _tree = make_client()
    try:
        with pointed_at(fake):
            await client.login("fake-token")
            fake.hang("POST", "/channels/*/messages")
            held = asyncio.create_task(client.get_partial_messageable(fake.channel_id).send("x"))
            try:
                await fake.wait_hung(1)
                await asyncio.wait_for(fake.close(), 30)
                with pytest.raises(aiohttp.ClientError):
                    await asyncio.wait_for(held, 30)
            finally:
                held.cancel()
    finally:
        await client.close()
        await fake.close()
    assert fake.messages == {} and fake.hung == 0
    assert [r.status for r in fake.requests_to("POST", "/channels/*/messages")] == [0]


async def test_a_revoked_token_fails_rest_login_and_identify(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        fake.revoke()
        with pytest.raises(discord.HTTPException) as raised:
            await client.get_partial_messageable(fake.channel_id).send("x")
        assert (raised.value.status, raised.value.code) == (401, 0)
        assert raised.value.text == "401: Unauthorized"
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(client.connect(reconnect=True), WAIT)
        assert closed.value.code == 4004
        assert len(fake.identify_payloads) == 1 and not fake._ready

    again, _tree = make_client()
    with pytest.raises(discord.LoginFailure):
        await again.login("fake-token")
    await again.close()
    assert fake.messages == {}

    fake.unrevoke()
    restored, _tree = make_client()
    async with logged_in(restored):
        await restored.get_partial_messageable(fake.channel_id).send("welcome back")
    assert len(fake.posts(fake.channel_id)) == 1


async def test_a_revoked_token_cannot_resume_either(discord_endpoints: FakeDiscord) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    task = asyncio.create_task(client.start("fake-token"))
    try:
        await fake.wait_ready(WAIT)
        fake.revoke()
        await fake.restart_gateway(wait=False)
        with pytest.raises(discord.ConnectionClosed) as closed:
            await asyncio.wait_for(task, WAIT)
    finally:
        await client.close()
        task.cancel()
    assert closed.value.code == 4004
    assert len(fake.resume_payloads) == 1 and len(fake.identify_payloads) == 1


async def test_posts_lists_the_bots_messages_in_order_with_their_nonces(
    discord_endpoints: FakeDiscord,
) -> None:
    fake = discord_endpoints
    client, _tree = make_client()
    async with logged_in(client):
        channel = client.get_partial_messageable(fake.channel_id)
        await channel.send("one", nonce="n1")
        fake.add_messages(fake.channel_id, 2)
        await channel.send("two")
        await channel.send("three", nonce="n3")
        payload = fake.slash_payload("secret")
        interaction = discord.Interaction(data=payload, state=client._connection)
        await interaction.response.send_message("only you", ephemeral=True)

    posts = fake.posts(fake.channel_id)
    assert [m["content"] for m in posts] == ["one", "two", "three"]
    nonces = [m["nonce"] for m in posts]
    assert nonces[0] == "n1" and nonces[2] == "n3"
    assert nonces[1] not in ("", "n1", "n3"), "discord.py sends a random nonce when given none"
    assert fake.posts(4242) == []
